// Read bandwidth and peak FMA probes (see limits.h). The probes are Highway code compiled once
// per target; the dispatching functions below pick the best target at run time.
#include "bench/limits.h"

#include <cstdint>
#include <fstream>
#include <mutex>
#include <string>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "bench/limits.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

// Constants shared by every target's copy of the probes (this file is compiled once per target).
#ifndef RECUR_BENCH_LIMITS_CONSTANTS_
#define RECUR_BENCH_LIMITS_CONSTANTS_
namespace recur::bench {
// Independent FMA chains per iteration: 12 covers latency x throughput (4 cycles x 2 pipes on
// Zen 4/5, Intel cores alike) with margin and, with the two constants, still fits AVX2's 16
// registers.
inline constexpr size_t kFmaChains = 12;
}  // namespace recur::bench
#endif

HWY_BEFORE_NAMESPACE();
namespace recur::bench::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Sum of p: [n], read as one sequential stream with 8 independent vector accumulators so that
// neither add latency nor the loop limits the loads: the rate at which one core streams memory.
float SumFloats(const float* HWY_RESTRICT p, size_t n) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  auto a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
  auto a4 = hn::Zero(df), a5 = hn::Zero(df), a6 = hn::Zero(df), a7 = hn::Zero(df);
  size_t i = 0;
  for (; i + 8 * N <= n; i += 8 * N) {
    a0 = hn::Add(a0, hn::LoadU(df, p + i + 0 * N));
    a1 = hn::Add(a1, hn::LoadU(df, p + i + 1 * N));
    a2 = hn::Add(a2, hn::LoadU(df, p + i + 2 * N));
    a3 = hn::Add(a3, hn::LoadU(df, p + i + 3 * N));
    a4 = hn::Add(a4, hn::LoadU(df, p + i + 4 * N));
    a5 = hn::Add(a5, hn::LoadU(df, p + i + 5 * N));
    a6 = hn::Add(a6, hn::LoadU(df, p + i + 6 * N));
    a7 = hn::Add(a7, hn::LoadU(df, p + i + 7 * N));
  }
  float tail = 0.0f;
  for (; i < n; ++i) tail += p[i];
  const auto sum =
      hn::Add(hn::Add(hn::Add(a0, a1), hn::Add(a2, a3)), hn::Add(hn::Add(a4, a5), hn::Add(a6, a7)));
  return hn::GetLane(hn::SumOfLanes(df, sum)) + tail;
}

// Sum of p: [n] read as two concurrent sequential streams (the two halves), 4 accumulators
// each. Some memory systems give one core more bandwidth over two streams than over one; the
// benchmark takes the better of the two patterns as the limit so that no ratio flatters.
float SumFloats2(const float* HWY_RESTRICT p, size_t n) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  const size_t half = n / 2 / (4 * N) * (4 * N);
  const float* HWY_RESTRICT q = p + half;
  auto a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
  auto b0 = hn::Zero(df), b1 = hn::Zero(df), b2 = hn::Zero(df), b3 = hn::Zero(df);
  for (size_t i = 0; i < half; i += 4 * N) {
    a0 = hn::Add(a0, hn::LoadU(df, p + i + 0 * N));
    a1 = hn::Add(a1, hn::LoadU(df, p + i + 1 * N));
    a2 = hn::Add(a2, hn::LoadU(df, p + i + 2 * N));
    a3 = hn::Add(a3, hn::LoadU(df, p + i + 3 * N));
    b0 = hn::Add(b0, hn::LoadU(df, q + i + 0 * N));
    b1 = hn::Add(b1, hn::LoadU(df, q + i + 1 * N));
    b2 = hn::Add(b2, hn::LoadU(df, q + i + 2 * N));
    b3 = hn::Add(b3, hn::LoadU(df, q + i + 3 * N));
  }
  float tail = 0.0f;
  for (size_t i = 2 * half; i < n; ++i) tail += p[i];
  const auto sum =
      hn::Add(hn::Add(hn::Add(a0, a1), hn::Add(a2, a3)), hn::Add(hn::Add(b0, b1), hn::Add(b2, b3)));
  return hn::GetLane(hn::SumOfLanes(df, sum)) + tail;
}

// Runs iters x kFmaChains dependent-per-chain FMAs entirely in registers; returns a value that
// depends on all of them so the compiler cannot drop any.
float FmaChains(size_t iters, float seed) {
  const hn::ScalableTag<float> df;
  const auto mul = hn::Set(df, 0.999999f);
  const auto add = hn::Set(df, 1e-7f);
  // Named chains, not an array: SVE vectors are sizeless types, which cannot be array elements.
  static_assert(kFmaChains == 12, "one variable per chain below");
  auto c0 = hn::Set(df, seed), c1 = hn::Set(df, seed + 1.0f), c2 = hn::Set(df, seed + 2.0f);
  auto c3 = hn::Set(df, seed + 3.0f), c4 = hn::Set(df, seed + 4.0f), c5 = hn::Set(df, seed + 5.0f);
  auto c6 = hn::Set(df, seed + 6.0f), c7 = hn::Set(df, seed + 7.0f), c8 = hn::Set(df, seed + 8.0f);
  auto c9 = hn::Set(df, seed + 9.0f), c10 = hn::Set(df, seed + 10.0f);
  auto c11 = hn::Set(df, seed + 11.0f);
  for (size_t i = 0; i < iters; ++i) {
    c0 = hn::MulAdd(c0, mul, add);
    c1 = hn::MulAdd(c1, mul, add);
    c2 = hn::MulAdd(c2, mul, add);
    c3 = hn::MulAdd(c3, mul, add);
    c4 = hn::MulAdd(c4, mul, add);
    c5 = hn::MulAdd(c5, mul, add);
    c6 = hn::MulAdd(c6, mul, add);
    c7 = hn::MulAdd(c7, mul, add);
    c8 = hn::MulAdd(c8, mul, add);
    c9 = hn::MulAdd(c9, mul, add);
    c10 = hn::MulAdd(c10, mul, add);
    c11 = hn::MulAdd(c11, mul, add);
  }
  const auto sum = hn::Add(hn::Add(hn::Add(hn::Add(c0, c1), hn::Add(c2, c3)),
                                   hn::Add(hn::Add(c4, c5), hn::Add(c6, c7))),
                           hn::Add(hn::Add(c8, c9), hn::Add(c10, c11)));
  return hn::GetLane(hn::SumOfLanes(df, sum));
}

size_t LanesF32() { return hn::Lanes(hn::ScalableTag<float>()); }

}  // namespace recur::bench::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE

#include "hwy/aligned_allocator.h"
#include "hwy/targets.h"

namespace recur::bench {

HWY_EXPORT(SumFloats);
HWY_EXPORT(SumFloats2);
HWY_EXPORT(FmaChains);
HWY_EXPORT(LanesF32);

size_t FloatLanes() { return HWY_DYNAMIC_DISPATCH(LanesF32)(); }

const char* BestTargetName() {
  const int64_t targets = hwy::SupportedTargets() & HWY_TARGETS;
  return hwy::TargetName(targets & -targets);
}

size_t LastLevelCacheBytes() {
  size_t best = 0;
  for (int index = 0; index < 8; ++index) {
    std::ifstream file("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) +
                       "/size");
    std::string text;
    if (!(file >> text) || text.empty() || text[0] < '0' || text[0] > '9') continue;
    size_t value = std::stoull(text);
    if (text.back() == 'K') value <<= 10;
    if (text.back() == 'M') value <<= 20;
    best = std::max(best, value);
  }
  return best != 0 ? best : size_t{32} << 20;
}

double PeakGflops(const Threads& threads, size_t iters, int repeats) {
  const double flops_per_thread = 2.0 * static_cast<double>(iters) * kFmaChains *
                                  static_cast<double>(FloatLanes());
  const double seconds = MedianSeconds(repeats, [&] {
    std::vector<float> results(static_cast<size_t>(threads.size()));
    threads.ParallelFor(results.size(), 1, [&](size_t begin, size_t end) {
      for (size_t i = begin; i < end; ++i) {
        results[i] = HWY_DYNAMIC_DISPATCH(FmaChains)(iters, static_cast<float>(i));
      }
    });
    for (float r : results) g_sink = g_sink + r;
  });
  return flops_per_thread * threads.size() / seconds * 1e-9;
}

void StreamSum(const Threads& threads, const float* p, size_t n, int streams) {
  std::mutex mutex;
  float total = 0.0f;
  // 64 KiB grain: large enough that each thread streams long runs, small enough to balance.
  threads.ParallelFor(n, 16384, [&](size_t begin, size_t end) {
    const float sum = streams == 1 ? HWY_DYNAMIC_DISPATCH(SumFloats)(p + begin, end - begin)
                                   : HWY_DYNAMIC_DISPATCH(SumFloats2)(p + begin, end - begin);
    const std::lock_guard<std::mutex> lock(mutex);  // Once per range: no contention.
    total += sum;
  });
  g_sink = g_sink + total;
}

namespace {

// A buffer of `bytes`, first touched by the threads that will read it so that pages are mapped
// (and placed) before timing.
hwy::AlignedFreeUniquePtr<float[]> TouchedBuffer(const Threads& threads, size_t n) {
  auto buffer = hwy::AllocateAligned<float>(n);
  float* p = buffer.get();
  threads.ParallelFor(n, 4096, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) p[i] = static_cast<float>(i & 7);
  });
  return buffer;
}

double StreamGbps(const Threads& threads, const float* p, size_t n, int repeats) {
  const double gb = static_cast<double>(n * sizeof(float)) * 1e-9;
  const double one = MedianSeconds(repeats, [&] { StreamSum(threads, p, n, 1); });
  const double two = MedianSeconds(repeats, [&] { StreamSum(threads, p, n, 2); });
  return std::max(gb / one, gb / two);
}

}  // namespace

double BandwidthProbe::Gbps() {
  const size_t n = bytes_ / sizeof(float);
  if (!buffer_) buffer_ = TouchedBuffer(threads_, n);
  return StreamGbps(threads_, buffer_.get(), n, 1);
}

Limits MeasureLimits(const Threads& one, const Threads& all, bool quick) {
  Limits limits;
  const size_t n = ((quick ? size_t{256} : size_t{1024}) << 20) / sizeof(float);
  auto buffer = TouchedBuffer(all, n);
  const int repeats = quick ? 3 : 7;
  limits.read_gbps_1 = StreamGbps(one, buffer.get(), n, repeats);
  limits.read_gbps_all = StreamGbps(all, buffer.get(), n, repeats);
  // Enough iterations for ~50 ms per run at 200 GFLOP/s, so timer and wake-up noise vanish.
  const size_t iters = quick ? 10'000'000 : 30'000'000;
  const int fma_repeats = quick ? 3 : 5;
  limits.peak_gflops = PeakGflops(one, iters, fma_repeats);
  limits.peak_gflops_all = PeakGflops(all, iters, fma_repeats);
  return limits;
}

}  // namespace recur::bench

#endif  // HWY_ONCE
