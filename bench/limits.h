// The machine limits recur's benchmarks report against, measured in the same run: read
// bandwidth (streaming a buffer far larger than the last-level cache) and peak f32 FMA
// throughput (independent FMA chains in registers). Used by bench_ops and `recur bench`.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <vector>

#include "hwy/aligned_allocator.h"

#include "runtime/threads.h"

namespace recur::bench {

using Clock = std::chrono::steady_clock;

// A value the optimiser must assume is read, so timed results are never dead code.
inline volatile float g_sink = 0.0f;

inline double Seconds(Clock::time_point begin, Clock::time_point end) {
  return std::chrono::duration<double>(end - begin).count();
}

inline double Median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Median seconds of `repeats` timed calls of fn after one untimed warm-up call.
template <class F>
double MedianSeconds(int repeats, F&& fn) {
  fn();
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) {
    const auto begin = Clock::now();
    fn();
    times.push_back(Seconds(begin, Clock::now()));
  }
  return Median(times);
}

// Last-level cache size from sysfs, or 32 MiB if it cannot be read.
size_t LastLevelCacheBytes();

// f32 lanes of the best compiled-in Highway target this CPU supports.
size_t FloatLanes();

// The best Highway target this CPU runs, e.g. "AVX3_ZEN4".
const char* BestTargetName();

// Aggregate f32 FMA throughput of `threads` in GFLOP/s, each thread running iters x 12
// independent FMA chains in registers; median of `repeats` runs.
double PeakGflops(const Threads& threads, size_t iters, int repeats);

// Reads p: [n] once, split over the threads, each part as `streams` (1 or 2) sequential streams.
void StreamSum(const Threads& threads, const float* p, size_t n, int streams);

// Read bandwidth measured again and again around timed work, so that each timing is paired with
// the bandwidth of its own moment. On a shared machine the read bandwidth one core gets moves by
// 2x within minutes (other tenants' traffic), and a ratio of a decode speed to a bandwidth taken
// a minute later says more about the neighbours than about the kernel. The buffer (`bytes`,
// far larger than the last-level cache) is allocated and touched on first use, so a peak-RSS
// reading taken before then does not include it.
class BandwidthProbe {
 public:
  BandwidthProbe(const Threads& threads, size_t bytes) : threads_(threads), bytes_(bytes) {}
  // GB/s now: the buffer streamed once with one and once with two streams per thread, the better.
  double Gbps();

 private:
  const Threads& threads_;
  size_t bytes_;
  hwy::AlignedFreeUniquePtr<float[]> buffer_;
};

struct Limits {
  double read_gbps_1 = 0.0;    // One thread.
  double read_gbps_all = 0.0;  // All threads.
  double peak_gflops = 0.0;    // Per thread.
  double peak_gflops_all = 0.0;
};

// Both limits with 1 and with all threads. quick: a 256 MiB buffer and fewer repeats (about
// 2 s in all) instead of 1 GiB.
Limits MeasureLimits(const Threads& one, const Threads& all, bool quick);

}  // namespace recur::bench
