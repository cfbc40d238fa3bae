// The thread pool of one runtime instance: a oneTBB task_arena with the user's thread count.
//
// Kernels in ops/ have no threads of their own; callers split rows (or heads, channels) into
// ranges and run them through ParallelFor. The library never touches tbb::global_control, which
// would cap the host application's own TBB use.
#pragma once

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <utility>

// ThreadSanitizer builds (RECUR_TSAN, .ci/tsan): see ParallelFor.
#if defined(__SANITIZE_THREAD__)
#define RECUR_THREADS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RECUR_THREADS_TSAN 1
#endif
#endif
#ifdef RECUR_THREADS_TSAN
#include <thread>
#include <vector>
#endif

namespace recur {

class Threads {
 public:
  // n_threads <= 0 means every core this process may run on (its affinity mask).
  explicit Threads(int n_threads = 0);

  Threads(const Threads&) = delete;
  Threads& operator=(const Threads&) = delete;

  // Number of threads work is split across, the calling thread included.
  int size() const { return size_; }

  // Working memory per arena slot, for kernels that need a buffer per running thread (MatMul's
  // packed panel). A slot is held by one thread at a time, and parts of ParallelFor calls that
  // run at once (from one session or from several sharing this pool) run on different slots,
  // so they never share a buffer; and the buffers exist before any work runs, so no thread
  // allocates one mid-prefill (a thread_local buffer was allocated by whichever pool thread
  // joined a prefill first, which oneTBB decides, so "after the first call" was not a fixed
  // point). Call once, before the pool runs work. False when the memory cannot be had.
  bool ReserveSlotScratch(size_t floats);
  // The calling thread's slot buffer ([floats] as reserved) while it runs a part of this pool's
  // ParallelFor on the arena; null anywhere else (a single part runs inline on the caller,
  // outside the arena), and callers then use a buffer of their own.
  float* SlotScratch() const;

  // Calls fn(begin, end) over disjoint ranges covering [0, n) exactly once. Boundaries are
  // multiples of grain (except the final end, n), and the split depends only on n, grain and
  // size(): part i of P = min(size(), ceil(n / grain)) gets grain-chunks
  // [i * chunks / P, (i + 1) * chunks / P). Runs inline on the calling thread when size() == 1
  // or n <= grain, since waking workers costs more than such a small job.
  template <class F>
  void ParallelFor(size_t n, size_t grain, F&& fn) const {
    if (n == 0) return;
    grain = std::max<size_t>(grain, 1);
    const size_t chunks = (n + grain - 1) / grain;
    const size_t parts = std::min<size_t>(static_cast<size_t>(size_), chunks);
    if (parts <= 1) {
      fn(size_t{0}, n);
      return;
    }
    auto run_part = [&](size_t part) {
      const size_t begin = part * chunks / parts * grain;
      const size_t end = std::min(n, (part + 1) * chunks / parts * grain);
      if (begin < end) fn(begin, end);
    };
#ifdef RECUR_THREADS_TSAN
    // Debian's libtbb is not built with ThreadSanitizer, so TSan cannot see the hand-offs inside
    // it (a task published by one thread and run by another, finished parts seen by the waiting
    // caller) and reports every access on either side of them, in recur's kernels as much as in
    // TBB's headers. Suppressing those would hide real races in the kernels too, so instead a
    // TSan build runs the same parts, split the same way, on threads it can see: part 0 on the
    // caller, the others on std::threads joined before returning (pthread_create/join carry the
    // happens-before edges that TBB's spawn and wait provide). Races between parts, between
    // sessions on different threads, and against the caller are all still reported.
    std::vector<std::thread> helpers;
    helpers.reserve(parts - 1);
    for (size_t part = 1; part < parts; ++part) helpers.emplace_back(run_part, part);
    run_part(0);
    for (std::thread& t : helpers) t.join();
    return;
#endif
    arena_.execute([&] {
      // One task per part; static_partitioner hands them to the arena's threads without
      // stealing, so each thread runs the same parts from one call to the next.
      tbb::parallel_for(
          tbb::blocked_range<size_t>(0, parts, 1),
          [&](const tbb::blocked_range<size_t>& r) {
            // SlotScratch() answers only inside this pool's parts: the slot index below is the
            // thread's index in whichever arena it is in, which must be this one.
            const Threads* const outer = running_pool_;
            running_pool_ = this;
            for (size_t part = r.begin(); part != r.end(); ++part) run_part(part);
            running_pool_ = outer;
          },
          tbb::static_partitioner());
    });
  }

 private:
  int size_;
  size_t slot_floats_ = 0;
  struct FreeDeleter {
    void operator()(float* p) const;
  };
  std::unique_ptr<float, FreeDeleter> slot_scratch_;  // [size_ * slot_floats_], 64-byte aligned.
  static thread_local const Threads* running_pool_;  // The pool whose part this thread runs.
  // execute() is not const in oneTBB, but running work does not change the pool's observable
  // state, so ParallelFor stays const and callers can share a const Threads&.
  mutable tbb::task_arena arena_;
};

}  // namespace recur
