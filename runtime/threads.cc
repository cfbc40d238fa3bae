#include "runtime/threads.h"

#include <tbb/info.h>

#include <cstdlib>

namespace recur {

namespace {

// The thread count to use: the request, or the cores in this process's affinity mask.
int ResolveThreads(int n_threads) {
  if (n_threads > 0) return n_threads;
  const int available = tbb::info::default_concurrency();
  return available > 0 ? available : 1;
}

}  // namespace

// One slot is reserved for the calling thread (task_arena's default), so `size()` threads work
// in total: the caller plus size() - 1 TBB workers.
Threads::Threads(int n_threads)
    : size_(ResolveThreads(n_threads)), arena_(ResolveThreads(n_threads)) {
  // Initialise now rather than lazily on the first ParallelFor, so that the first call from
  // several threads at once races on nothing and a token's latency excludes arena setup.
  arena_.initialize();
}

thread_local const Threads* Threads::running_pool_ = nullptr;

void Threads::FreeDeleter::operator()(float* p) const { std::free(p); }

bool Threads::ReserveSlotScratch(size_t floats) {
  slot_scratch_.reset();
  slot_floats_ = 0;
  if (size_ <= 1 || floats == 0) return true;  // One thread runs every part inline.
  // aligned_alloc and free, like the session arena: no operator new, so nothing here depends
  // on which operator new[] / delete[] pair a host application installs.
  const size_t bytes = (static_cast<size_t>(size_) * floats * sizeof(float) + 63) / 64 * 64;
  slot_scratch_.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
  if (!slot_scratch_) return false;
  slot_floats_ = floats;
  return true;
}

float* Threads::SlotScratch() const {
#ifdef RECUR_THREADS_TSAN
  return nullptr;  // Parts run on fresh std::threads there (see ParallelFor), not arena slots.
#else
  if (!slot_scratch_ || running_pool_ != this) return nullptr;
  const int slot = tbb::this_task_arena::current_thread_index();
  if (slot < 0 || slot >= size_) return nullptr;
  return slot_scratch_.get() + static_cast<size_t>(slot) * slot_floats_;
#endif
}

}  // namespace recur
