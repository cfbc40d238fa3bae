// bench_ops: times the linear-algebra kernels against limits it measures itself.
//
// It first measures this machine's read bandwidth (streaming a buffer far larger than the last
// level cache) and peak f32 FMA throughput per thread (independent FMA chains in registers),
// then reports each MatVec as GB/s and a ratio to the bandwidth, and each MatMul as GFLOP/s and
// a ratio to peak x threads. Every figure is the median of repeated runs.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/limits.h"
#include "hwy/aligned_allocator.h"
#include "ops/convert.h"
#include "ops/matmul.h"
#include "ops/matvec.h"
#include "ops/types.h"
#include "runtime/threads.h"

namespace recur::bench {

// A small, fast generator: the benchmark needs bytes that are not all equal, not good randomness.
struct XorShift {
  uint64_t state = 0x9E3779B97F4A7C15ull;
  uint64_t Next() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  }
  // Uniform in [-0.5, 0.5): built from mantissa bits, so never subnormal.
  float NextFloat() {
    return ops::F32FromBits(0x3F800000u | static_cast<uint32_t>(Next() >> 41)) - 1.5f;
  }
};

const char* TypeName(ops::WeightType type) {
  switch (type) {
    case ops::WeightType::kF32:
      return "f32";
    case ops::WeightType::kF16:
      return "f16";
    case ops::WeightType::kBF16:
      return "bf16";
    case ops::WeightType::kQ8_0:
      return "q8_0";
  }
  return "?";
}

// `copies` copies of one random W: [rows, cols] of `type` (q8_0 with f16 scales), each in its own
// 64-byte aligned buffer holding the data and then the scales, as a .recur file lays them out.
struct WeightCopies {
  std::vector<hwy::AlignedFreeUniquePtr<uint8_t[]>> buffers;
  std::vector<ops::WeightView> views;
  size_t bytes_per_copy = 0;  // rows * RowBytes: what one matvec reads of W.
};

WeightCopies MakeWeights(ops::WeightType type, size_t rows, size_t cols, size_t copies) {
  WeightCopies out;
  ops::WeightView proto{type, nullptr, nullptr, ops::ScaleType::kF16, rows, cols};
  out.bytes_per_copy = rows * ops::RowBytes(proto);
  const size_t n = rows * cols;
  const size_t data_bytes = type == ops::WeightType::kF32    ? 4 * n
                            : type == ops::WeightType::kQ8_0 ? n
                                                             : 2 * n;
  const size_t scales_offset = (data_bytes + 63) / 64 * 64;
  const size_t total = scales_offset + 2 * (n / ops::kQ8Block) + 64;
  XorShift rng;
  for (size_t c = 0; c < copies; ++c) {
    auto buffer = hwy::AllocateAligned<uint8_t>(total);
    uint8_t* p = buffer.get();
    if (c == 0) {
      switch (type) {
        case ops::WeightType::kF32: {
          float* f = reinterpret_cast<float*>(p);
          for (size_t i = 0; i < n; ++i) f[i] = rng.NextFloat();
          break;
        }
        case ops::WeightType::kF16:
        case ops::WeightType::kBF16: {
          uint16_t* h = reinterpret_cast<uint16_t*>(p);
          for (size_t i = 0; i < n; ++i) {
            const float v = rng.NextFloat();
            h[i] = type == ops::WeightType::kF16 ? ops::F32ToF16(v) : ops::F32ToBF16(v);
          }
          break;
        }
        case ops::WeightType::kQ8_0: {
          for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(rng.Next() >> 56);
          uint16_t* scales = reinterpret_cast<uint16_t*>(p + scales_offset);
          for (size_t b = 0; b < n / ops::kQ8Block; ++b) {
            scales[b] = ops::F32ToF16(rng.NextFloat() * (1.0f / 64));
          }
          break;
        }
      }
    } else {
      std::memcpy(p, out.buffers[0].get(), total);
    }
    ops::WeightView view = proto;
    view.data = p;
    view.scales = type == ops::WeightType::kQ8_0 ? p + scales_offset : nullptr;
    out.views.push_back(view);
    out.buffers.push_back(std::move(buffer));
  }
  return out;
}

struct Options {
  bool json = false;
  bool quick = false;
  int threads = 0;
};

struct Shape {
  size_t rows;
  size_t cols;
};

const ops::WeightType kTypes[] = {ops::WeightType::kF32, ops::WeightType::kF16,
                                  ops::WeightType::kBF16, ops::WeightType::kQ8_0};

// MatVec rows per ParallelFor chunk: 16 keeps the 8-row groups whole and splits even the
// smallest benchmarked matrix (768 rows) evenly over 2 threads.
constexpr size_t kMatVecGrain = 16;
// MatMul rows per chunk: 192 is a whole number of micro-panels for 16-lane AVX-512 (48 rows)
// and 8-lane AVX2 (16 rows), so threads never split a micro-panel.
constexpr size_t kMatMulGrain = 192;

nlohmann::json BenchMatVec(const Threads& one, const Threads& all, const Limits& limits,
                           const Options& options, size_t rotate_bytes) {
  nlohmann::json rows_out = nlohmann::json::array();
  std::vector<Shape> shapes = {{768, 3072}, {3072, 768}, {1536, 768}, {50280, 768}, {2048, 8192}};
  if (options.quick) shapes = {{768, 3072}, {2048, 8192}};
  const int repeats = options.quick ? 5 : 11;
  for (const Shape& shape : shapes) {
    std::vector<float> x(shape.cols);
    XorShift rng;
    for (float& v : x) v = rng.NextFloat();
    std::vector<float> y(shape.rows);
    for (ops::WeightType type : kTypes) {
      ops::WeightView proto{type, nullptr, nullptr, ops::ScaleType::kF16, shape.rows, shape.cols};
      const size_t matrix_bytes = shape.rows * ops::RowBytes(proto);
      // Rotate over enough copies that they never fit in the LLC together: each matvec then
      // reads W from DRAM, as decode does with a real model.
      const size_t copies = std::max<size_t>(2, (rotate_bytes + matrix_bytes - 1) / matrix_bytes);
      const WeightCopies weights = MakeWeights(type, shape.rows, shape.cols, copies);
      const double bytes_per_call =
          static_cast<double>(weights.bytes_per_copy + shape.cols * sizeof(float));
      double gbps_one_thread = 0.0;
      for (const Threads* threads : {&one, &all}) {
        if (threads == &all && all.size() == 1) continue;
        // Each repeat times one matvec pass over all copies and then a streaming read of the
        // same bytes with the same threads, so that the adjacent ratio compares the two under
        // the same conditions even when other work on the machine shifts the bandwidth.
        auto matvec_pass = [&] {
          for (const ops::WeightView& w : weights.views) {
            threads->ParallelFor(shape.rows, kMatVecGrain, [&](size_t begin, size_t end) {
              ops::MatVec(w, x.data(), nullptr, y.data(), begin, end);
            });
          }
        };
        auto read_pass = [&] {
          for (size_t c = 0; c < copies; ++c) {
            StreamSum(*threads, reinterpret_cast<const float*>(weights.buffers[c].get()),
                      weights.bytes_per_copy / sizeof(float), 1);
          }
        };
        matvec_pass();  // Warm-up: page faults, dispatch, thread wake-up.
        std::vector<double> matvec_times;
        std::vector<double> ratios;
        for (int rep = 0; rep < repeats; ++rep) {
          const auto t0 = Clock::now();
          matvec_pass();
          const auto t1 = Clock::now();
          read_pass();
          const auto t2 = Clock::now();
          matvec_times.push_back(Seconds(t0, t1));
          // bytes_per_call includes x, which the read pass does not read; scale accordingly.
          ratios.push_back(Seconds(t1, t2) / Seconds(t0, t1) * bytes_per_call /
                           static_cast<double>(weights.bytes_per_copy));
        }
        const double seconds = Median(matvec_times);
        const double ratio_adjacent = Median(ratios);
        g_sink = g_sink + y[0];
        const double gbps = bytes_per_call * static_cast<double>(copies) / seconds * 1e-9;
        const double limit = threads->size() == 1 ? limits.read_gbps_1 : limits.read_gbps_all;
        nlohmann::json row = {{"dtype", TypeName(type)},
                              {"rows", shape.rows},
                              {"cols", shape.cols},
                              {"threads", threads->size()},
                              {"copies", copies},
                              {"us_per_call", seconds / static_cast<double>(copies) * 1e6},
                              {"gbps", gbps},
                              {"ratio", gbps / limit},
                              {"ratio_adjacent_read", ratio_adjacent}};
        if (threads == &one) gbps_one_thread = gbps;
        const double speedup = gbps / gbps_one_thread;
        if (threads != &one) row["speedup_vs_1_thread"] = speedup;
        if (!options.json) {
          std::printf(
              "  matvec %-5s %6zu x %-5zu  %d thr  %9.1f us  %7.2f GB/s  %5.2f of read BW  "
              "%5.2f of adjacent read",
              TypeName(type), shape.rows, shape.cols, threads->size(),
              row["us_per_call"].get<double>(), gbps, gbps / limit, ratio_adjacent);
          if (threads != &one) std::printf("  %4.2fx 1 thread", speedup);
          std::printf("\n");
          std::fflush(stdout);
        }
        rows_out.push_back(row);
      }
    }
  }
  return rows_out;
}

// MatVec on a matrix that fits in L2 (256 x 1024, 256 KiB-1 MiB) called over and over: the
// kernel's compute ceiling for each weight type, one thread. Where this is not well above the
// read bandwidth, the kernel cannot hide DRAM latency behind its arithmetic and its DRAM ratio
// stays lower; the report says which.
nlohmann::json BenchMatVecInCache(const Limits& limits, const Options& options) {
  constexpr size_t kRows = 256;
  constexpr size_t kCols = 1024;
  std::vector<float> x(kCols);
  XorShift rng;
  for (float& v : x) v = rng.NextFloat();
  std::vector<float> y(kRows);
  nlohmann::json rows_out = nlohmann::json::array();
  for (ops::WeightType type : kTypes) {
    const WeightCopies weights = MakeWeights(type, kRows, kCols, 1);
    const ops::WeightView& w = weights.views[0];
    constexpr int kCallsPerRun = 200;  // ~1 ms per run: long enough to time, short to repeat.
    const double seconds = MedianSeconds(options.quick ? 5 : 15, [&] {
      for (int i = 0; i < kCallsPerRun; ++i) ops::MatVec(w, x.data(), nullptr, y.data(), 0, kRows);
    });
    g_sink = g_sink + y[0];
    const double gbps = static_cast<double>(weights.bytes_per_copy + kCols * sizeof(float)) *
                        kCallsPerRun / seconds * 1e-9;
    nlohmann::json row = {{"dtype", TypeName(type)},
                          {"rows", kRows},
                          {"cols", kCols},
                          {"threads", 1},
                          {"gbps", gbps},
                          {"ratio", gbps / limits.read_gbps_1}};
    if (!options.json) {
      std::printf("  matvec %-5s %6zu x %-5zu  in L2      %7.2f GB/s  %5.2f x the DRAM read BW\n",
                  TypeName(type), kRows, kCols, gbps, gbps / limits.read_gbps_1);
    }
    rows_out.push_back(row);
  }
  return rows_out;
}

nlohmann::json BenchMatMul(const Threads& one, const Threads& all, const Limits& limits,
                           const Options& options) {
  struct Case {
    Shape shape;
    size_t tokens;
    bool all_types;
  };
  std::vector<Case> cases = {{{768, 3072}, 512, true},   {{3072, 768}, 512, true},
                             {{2048, 8192}, 512, false}, {{768, 3072}, 64, true},
                             {{3072, 768}, 64, false},   {{50280, 768}, 64, false}};
  if (options.quick) cases = {{{768, 3072}, 512, false}, {{768, 3072}, 64, false}};
  const int repeats = options.quick ? 3 : 5;
  nlohmann::json rows_out = nlohmann::json::array();
  for (const Case& c : cases) {
    const size_t rows = c.shape.rows;
    const size_t cols = c.shape.cols;
    std::vector<float> X(c.tokens * cols);
    XorShift rng;
    for (float& v : X) v = rng.NextFloat();
    std::vector<float> Y(c.tokens * rows);
    for (ops::WeightType type : kTypes) {
      if (!c.all_types && type != ops::WeightType::kF32) continue;
      const WeightCopies weights = MakeWeights(type, rows, cols, 1);
      const ops::WeightView& w = weights.views[0];
      for (const Threads* threads : {&one, &all}) {
        if (threads == &all && all.size() == 1) continue;
        const double seconds = MedianSeconds(repeats, [&] {
          threads->ParallelFor(rows, kMatMulGrain, [&](size_t begin, size_t end) {
            ops::MatMul(w, X.data(), c.tokens, nullptr, Y.data(), begin, end, nullptr);
          });
        });
        g_sink = g_sink + Y[0];
        const double flops = 2.0 * static_cast<double>(c.tokens * rows * cols);
        const double gflops = flops / seconds * 1e-9;
        const double limit = limits.peak_gflops * threads->size();
        nlohmann::json row = {{"dtype", TypeName(type)},
                              {"rows", rows},
                              {"cols", cols},
                              {"tokens", c.tokens},
                              {"threads", threads->size()},
                              {"ms_per_call", seconds * 1e3},
                              {"gflops", gflops},
                              {"ratio", gflops / limit}};
        if (!options.json) {
          std::printf(
              "  matmul %-5s %6zu x %-5zu T=%-4zu %d thr  %8.2f ms  %7.1f GFLOP/s  %5.2f of "
              "peak\n",
              TypeName(type), rows, cols, c.tokens, threads->size(), seconds * 1e3, gflops,
              gflops / limit);
          std::fflush(stdout);
        }
        rows_out.push_back(row);
      }
    }
  }
  return rows_out;
}

int Main(int argc, char** argv) {
  Options options;
  CLI::App app{
      "bench_ops: times recur's MatVec and MatMul kernels for every weight type and reports\n"
      "each as a ratio to limits measured in the same run: read bandwidth with 1 and with all\n"
      "threads (a streaming sum over a 1 GiB buffer, best of 1 and 2 streams per thread) and\n"
      "peak f32 FMA throughput per thread (independent FMA chains in registers). MatVec rotates\n"
      "over copies of each matrix totalling at least 4x the last-level cache (and 256 MiB), so\n"
      "weights come from DRAM as in real decode; its ratio is to the read bandwidth at the same\n"
      "thread count, and its adjacent ratio to a streaming read of the same copies timed right\n"
      "after each pass (robust to bandwidth that drifts while the benchmark runs). MatMul's\n"
      "ratio is to peak x threads. Figures are medians of repeated runs;\n"
      "on a machine shared with other work, expect noise (the run warns when the FMA probe does\n"
      "not scale with threads)."};
  app.add_flag("--json", options.json,
               "Print one JSON object (read_bandwidth_gbps, peak_gflops, matvec, matmul) "
               "instead of tables");
  app.add_flag("--quick", options.quick,
               "Fewer shapes and repeats and a 256 MiB bandwidth buffer (a few seconds)");
  app.add_option("--threads", options.threads,
                 "Threads for the multi-threaded runs (default: all cores available)");
  CLI11_PARSE(app, argc, argv);

  const Threads one(1);
  const Threads all(options.threads);
  const char* target = BestTargetName();
  const size_t llc = LastLevelCacheBytes();
  const size_t rotate_bytes = std::max<size_t>(4 * llc, size_t{256} << 20);
  if (!options.json) {
    std::printf("bench_ops: target %s, %d threads, LLC %zu MiB%s\n", target, all.size(), llc >> 20,
                options.quick ? " (quick)" : "");
  }
  const Limits limits = MeasureLimits(one, all, options.quick);
  // The FMA probe has no shared resource, so it should scale with the thread count; if it does
  // not, other processes hold some of the cores and the multi-threaded figures say little.
  const double fma_scaling = limits.peak_gflops_all / limits.peak_gflops;
  const bool cores_shared = all.size() > 1 && fma_scaling < 0.8 * all.size();
  if (!options.json) {
    std::printf(
        "limits: read bandwidth %.2f GB/s (1 thread), %.2f GB/s (%d threads), best of "
        "1 and 2 streams per thread; peak %.1f GFLOP/s per thread, %.1f GFLOP/s "
        "(%d threads)\n",
        limits.read_gbps_1, limits.read_gbps_all, all.size(), limits.peak_gflops,
        limits.peak_gflops_all, all.size());
    if (cores_shared) {
      std::printf(
          "WARNING: peak FMA throughput scaled only %.2fx on %d threads: other processes "
          "are using these cores, so multi-threaded figures are not reliable\n",
          fma_scaling, all.size());
    }
    std::printf(
        "matvec (rotating over copies >= %zu MiB in total, so W streams from DRAM; "
        "ratio to the read bandwidth at the same thread count):\n",
        rotate_bytes >> 20);
  }
  nlohmann::json matvec = BenchMatVec(one, all, limits, options, rotate_bytes);
  if (!options.json) {
    std::printf(
        "matvec compute ceiling (one matrix resident in L2, 1 thread; ratio to the DRAM "
        "read bandwidth):\n");
  }
  nlohmann::json matvec_in_cache = BenchMatVecInCache(limits, options);
  if (!options.json) std::printf("matmul (ratio to peak GFLOP/s per thread x threads):\n");
  nlohmann::json matmul = BenchMatMul(one, all, limits, options);
  // Check again at the end: other work may have started on these cores during the run.
  const size_t recheck_iters = 5'000'000;  // ~10 ms per run.
  const double fma_scaling_end =
      PeakGflops(all, recheck_iters, 3) / PeakGflops(one, recheck_iters, 3);
  const bool cores_shared_end = all.size() > 1 && fma_scaling_end < 0.8 * all.size();
  if (cores_shared_end && !options.json) {
    std::printf(
        "WARNING: by the end of the run peak FMA throughput scaled only %.2fx on %d "
        "threads: other processes took cores during the run, so multi-threaded figures "
        "are not reliable\n",
        fma_scaling_end, all.size());
  }
  if (options.json) {
    nlohmann::json out = {{"target", target},
                          {"threads", all.size()},
                          {"llc_bytes", llc},
                          {"matvec_rotation_bytes", rotate_bytes},
                          {"read_bandwidth_gbps", limits.read_gbps_1},
                          {"read_bandwidth_gbps_all_threads", limits.read_gbps_all},
                          {"peak_gflops", limits.peak_gflops},
                          {"peak_gflops_all_threads", limits.peak_gflops_all},
                          {"cores_shared_warning", cores_shared || cores_shared_end},
                          {"fma_thread_scaling", {fma_scaling, fma_scaling_end}},
                          {"matvec", matvec},
                          {"matvec_in_cache", matvec_in_cache},
                          {"matmul", matmul}};
    std::printf("%s\n", out.dump(2).c_str());
  }
  return 0;
}

}  // namespace recur::bench

int main(int argc, char** argv) { return recur::bench::Main(argc, argv); }

