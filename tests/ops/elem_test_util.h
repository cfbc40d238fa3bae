// Helpers shared by the element-wise kernel tests: run a body once per compiled SIMD target, make
// (possibly misaligned) buffers with guard zones, and compare with tolerances.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "hwy/targets.h"

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace recur::ops::testing {

// Sizes around every x86 vector width (4, 8, 16 lanes: lanes - 1, lanes, lanes + 1), around the
// 2x and 4x unrolled loop steps, plus a large odd size whose tail is partial on every target.
inline const std::vector<size_t> kSizes = {0,  1,  2,  3,  4,  5,  7,  8,   9,   15,  16,
                                           17, 31, 32, 33, 63, 64, 65, 100, 257, 4099};

// Runs body(target_name) once per SIMD target compiled into the library and supported by this CPU
// (SCALAR, SSSE3, SSE4, AVX2, AVX3 here), restoring the normal dispatch afterwards even when the
// body throws (a failed REQUIRE).
template <class Body>
void ForEachTarget(Body body) {
  struct Reset {
    ~Reset() { hwy::SetSupportedTargetsForTest(0); }
  } reset;
  const std::vector<int64_t> targets = hwy::SupportedAndGeneratedTargets();
  REQUIRE(!targets.empty());
  for (int64_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    const std::string name = hwy::TargetName(target);
    INFO("target ", name);
    body(name);
  }
}

// A float buffer of n elements starting `offset` floats past a 64-byte boundary, followed by a
// guard zone that kernels must not touch.
class Buffer {
 public:
  static constexpr size_t kGuard = 32;  // More than one AVX-512 vector past the end.
  static constexpr float kGuardValue = -12345.678f;

  explicit Buffer(size_t n, size_t offset = 0) : n_(n), storage_(n + offset + kGuard + 16) {
    const uintptr_t base = reinterpret_cast<uintptr_t>(storage_.data());
    const size_t skip = ((64 - base % 64) % 64) / sizeof(float);
    data_ = storage_.data() + skip + offset;
    for (float& v : storage_) v = kGuardValue;
  }
  float* data() { return data_; }
  const float* data() const { return data_; }
  size_t size() const { return n_; }
  float& operator[](size_t i) { return data_[i]; }
  float operator[](size_t i) const { return data_[i]; }
  void Fill(float v) {
    for (size_t i = 0; i < n_; ++i) data_[i] = v;
  }
  void CopyFrom(const std::vector<float>& v) {
    if (n_ > 0) std::memcpy(data_, v.data(), n_ * sizeof(float));
  }
  std::vector<float> ToVector() const { return std::vector<float>(data_, data_ + n_); }
  // True when the guard zone after the last element is intact.
  bool GuardIntact() const {
    for (size_t i = 0; i < kGuard; ++i) {
      if (std::memcmp(&data_[n_ + i], &kGuardValue, sizeof(float)) != 0) return false;
    }
    return true;
  }

 private:
  size_t n_;
  std::vector<float> storage_;
  float* data_ = nullptr;
};

// n elements of T that end exactly where an inaccessible page begins, so a kernel that reads or
// writes even one element past the end crashes the test instead of passing by luck. (Linux only;
// elsewhere it is an ordinary heap buffer.)
template <class T>
class PageGuardedArray {
 public:
  explicit PageGuardedArray(size_t n) : n_(n) {
#if defined(__linux__)
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t data_pages = (n * sizeof(T) + page - 1) / page + 1;
    bytes_ = (data_pages + 1) * page;
    void* base = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(base != MAP_FAILED);
    base_ = static_cast<char*>(base);
    REQUIRE(mprotect(base_ + data_pages * page, page, PROT_NONE) == 0);
    data_ = reinterpret_cast<T*>(base_ + data_pages * page - n * sizeof(T));
#else
    heap_.resize(n + 1);
    data_ = heap_.data();
#endif
  }
  ~PageGuardedArray() {
#if defined(__linux__)
    munmap(base_, bytes_);
#endif
  }
  PageGuardedArray(const PageGuardedArray&) = delete;
  PageGuardedArray& operator=(const PageGuardedArray&) = delete;
  T* data() { return data_; }
  T& operator[](size_t i) { return data_[i]; }
  size_t size() const { return n_; }

 private:
  size_t n_;
  T* data_ = nullptr;
#if defined(__linux__)
  char* base_ = nullptr;
  size_t bytes_ = 0;
#else
  std::vector<T> heap_;
#endif
};

inline std::vector<float> RandomVector(size_t n, float lo, float hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Small integers: products and sums of a few thousand of them are exact in f32, so any kernel
// summing them in any order must match exactly.
inline std::vector<float> RandomIntegers(size_t n, int lo, int hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(dist(rng));
  return v;
}

// One f32 ulp at 1.0 is 2^-23; "k ulp relative" below means k * 2^-24 * |value| (half-ulp units
// of the value's binade, a slightly strict reading).
inline constexpr double kUlp = 1.0 / (1 << 24);

// Counts elements where got and want differ by more than tol(i) (NaN must match NaN, equal
// infinities match) and reports the first offender. Returns the count so a CHECK can assert 0.
template <class Tol>
size_t CountMismatches(const float* got, const float* want, size_t n, Tol tol,
                       const char* what = "") {
  size_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    const bool ok = (std::isnan(got[i]) && std::isnan(want[i])) || got[i] == want[i] ||
                    std::fabs(static_cast<double>(got[i]) - want[i]) <= tol(i);
    if (!ok && bad++ == 0) {
      MESSAGE(what, ": first mismatch at ", i, " of ", n, ": got ", got[i], " want ", want[i],
              " tol ", tol(i));
    }
  }
  return bad;
}

}  // namespace recur::ops::testing
