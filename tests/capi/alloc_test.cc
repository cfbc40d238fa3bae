// capi_alloc_test MODEL.recur: after a warm-up, stepping a token (C API and C++ API), a batch of
// streams, and saving / loading state into caller buffers perform no heap allocation.
// Every allocation route of this process is counted: operator new (all forms) and the C
// allocator (malloc, calloc, realloc, aligned_alloc, posix_memalign, memalign), the latter by
// wrapping glibc's __libc_* entry points. Runs with one thread, so all work is on this thread.
// The model (tests/capi/test_models.h) has one layer of each constant-state block kind
// (mamba1, mlp, mamba2).
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "runtime/recur.h"
#include "runtime/recur.hpp"

namespace {
std::atomic<long> g_allocs{0};
std::atomic<bool> g_counting{false};
void Count() {
  if (g_counting.load(std::memory_order_relaxed)) g_allocs.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void __libc_free(void*);

void* malloc(size_t n) {
  Count();
  return __libc_malloc(n);
}
void* calloc(size_t n, size_t s) {
  Count();
  return __libc_calloc(n, s);
}
void* realloc(void* p, size_t n) {
  Count();
  return __libc_realloc(p, n);
}
void free(void* p) { __libc_free(p); }
void* aligned_alloc(size_t a, size_t n) {
  Count();
  return __libc_memalign(a, n);
}
void* memalign(size_t a, size_t n) {
  Count();
  return __libc_memalign(a, n);
}
int posix_memalign(void** out, size_t a, size_t n) {
  Count();
  void* p = __libc_memalign(a, n);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}
}  // extern "C"

// operator new routes through malloc in libstdc++, but a replacement here makes the count
// independent of that.
void* operator new(size_t n) {
  void* p = malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void* operator new[](size_t n) { return operator new(n); }
void* operator new(size_t n, std::align_val_t a) {
  void* p = aligned_alloc(static_cast<size_t>(a), (n + static_cast<size_t>(a) - 1) /
                                                      static_cast<size_t>(a) *
                                                      static_cast<size_t>(a));
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void* operator new[](size_t n, std::align_val_t a) { return operator new(n, a); }
void operator delete(void* p) noexcept { free(p); }
void operator delete[](void* p) noexcept { free(p); }
void operator delete(void* p, size_t) noexcept { free(p); }
void operator delete[](void* p, size_t) noexcept { free(p); }
void operator delete(void* p, std::align_val_t) noexcept { free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { free(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { free(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { free(p); }

namespace {

int failures = 0;

void Expect(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s (%s)\n", what, recur_last_error());
    ++failures;
  }
}

// Runs fn with allocations counted; reports and checks that there were none.
template <class F>
void NoAllocs(const char* what, F&& fn) {
  g_allocs = 0;
  g_counting = true;
  fn();
  g_counting = false;
  const long n = g_allocs.load();
  std::printf("%-58s %ld heap allocations\n", what, n);
  if (n != 0) {
    std::fprintf(stderr, "FAILED: %s allocated %ld times\n", what, n);
    ++failures;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL.recur\n", argv[0]);
    return 2;
  }
  // Check that the counter sees allocations at all (a test that cannot fail is no test).
  g_allocs = 0;
  g_counting = true;
  std::vector<int>* probe = new std::vector<int>(100);
  void* c_probe = std::malloc(16);
  g_counting = false;
  delete probe;
  std::free(c_probe);
  Expect(g_allocs.load() >= 3, "the allocation counter sees new and malloc");

  recur_model_params params = recur_model_default_params();
  params.n_threads = 1;
  recur_model* model = nullptr;
  Expect(recur_model_load(argv[1], &params, &model) == RECUR_OK, "load");
  if (model == nullptr) return 1;
  constexpr size_t kStreams = 8;
  std::vector<recur_session*> sessions(kStreams, nullptr);
  for (recur_session*& s : sessions) Expect(recur_session_create(model, &s) == RECUR_OK, "create");
  Expect(recur_session_reserve_batch(sessions[0], kStreams) == RECUR_OK, "reserve");
  std::vector<int32_t> tokens(kStreams);
  std::vector<const float*> logits(kStreams);
  std::vector<unsigned char> state(recur_session_state_size(sessions[0]));
  const int32_t prompt[5] = {10, 20, 30, 40, 50};

  // Warm-up: first calls may size thread-local kernel scratch (MatMul's packed panel).
  for (int i = 0; i < 2; ++i) {
    for (size_t s = 0; s < kStreams; ++s) tokens[s] = static_cast<int32_t>(s + i);
    Expect(recur_step_batch(sessions.data(), tokens.data(), kStreams, logits.data()) == RECUR_OK,
           "warm-up batch");
    Expect(recur_session_step_token(sessions[1], 7, &logits[0]) == RECUR_OK, "warm-up step");
    Expect(recur_session_prefill_tokens(sessions[2], prompt, 5, &logits[0]) == RECUR_OK,
           "warm-up prefill");
  }

  NoAllocs("C API: 100 x recur_session_step_token", [&] {
    for (int i = 0; i < 100; ++i) {
      Expect(recur_session_step_token(sessions[1], i % 256, &logits[0]) == RECUR_OK, "step");
    }
  });
  NoAllocs("C API: 20 x recur_step_batch of 8 streams", [&] {
    for (int i = 0; i < 20; ++i) {
      for (size_t s = 0; s < kStreams; ++s) tokens[s] = static_cast<int32_t>((s * 31 + i) % 256);
      Expect(recur_step_batch(sessions.data(), tokens.data(), kStreams, logits.data()) == RECUR_OK,
             "batch");
    }
  });
  NoAllocs("C API: 20 x recur_step_batch of 3 streams (below capacity)", [&] {
    for (int i = 0; i < 20; ++i) {
      Expect(recur_step_batch(sessions.data(), tokens.data(), 3, logits.data()) == RECUR_OK,
             "batch of 3");
    }
  });
  NoAllocs("C API: 10 x recur_session_prefill_tokens of 5 tokens", [&] {
    for (int i = 0; i < 10; ++i) {
      Expect(recur_session_prefill_tokens(sessions[2], prompt, 5, &logits[0]) == RECUR_OK,
             "prefill");
    }
  });
  NoAllocs("C API: state save + load into caller buffers", [&] {
    Expect(recur_session_state_save(sessions[1], state.data(), state.size()) == RECUR_OK, "save");
    Expect(recur_session_state_load(sessions[3], state.data(), state.size()) == RECUR_OK, "load");
  });

  // The C++ API's step, on its own model object.
  auto cpp_model = recur::Model::Load(argv[1], recur::ModelParams{.n_threads = 1});
  Expect(cpp_model.ok(), "C++ load");
  if (cpp_model.ok()) {
    auto session = recur::Session::Create(*cpp_model);
    Expect(session.ok(), "C++ session");
    if (session.ok()) {
      const float* l = nullptr;
      Expect((*session)->StepToken(1, &l).ok(), "C++ warm-up");
      NoAllocs("C++ API: 100 x Session::StepToken", [&] {
        for (int i = 0; i < 100; ++i) Expect((*session)->StepToken(i % 256, &l).ok(), "C++ step");
      });
    }
  }

  for (recur_session* s : sessions) recur_session_free(s);
  recur_model_free(model);
  std::printf(failures == 0 ? "alloc test: ok\n" : "alloc test: FAILED\n");
  return failures == 0 ? 0 : 1;
}
