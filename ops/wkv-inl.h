// Per-target code for ops/wkv.h.
//  - RWKV-5/6: a vector of value channels j is the unit: y[j..] stays in a register while the
//    head's N key rows stream past (one multiply-add for the state, two for y per row), so there
//    is no horizontal reduction at all.
//  - RWKV-7: a state row i is the unit (it is contracted with a and r along j): one pass computes
//    sa = S[i,:] . a, a second updates the row and accumulates S[i,:] . r; two reductions per row.
// rwkv.cpp's v7 kernel walks the same rows one float at a time.

#if defined(RECUR_OPS_WKV_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef RECUR_OPS_WKV_INL_H_
#undef RECUR_OPS_WKV_INL_H_
#else
#define RECUR_OPS_WKV_INL_H_
#endif

#include <cstddef>

#include "hwy/highway.h"
#include "ops/elementwise-inl.h"
#include "ops/wkv.h"

HWY_BEFORE_NAMESPACE();
namespace recur::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// One head of RWKV-5/6, value channels [j, j + count) (count <= lanes; the tail lanes load as
// zero, so their y and state stay zero and are never stored).
template <class D>
HWY_INLINE void Wkv5Columns(D d, float* HWY_RESTRICT s, const float* HWY_RESTRICT r,
                            const float* HWY_RESTRICT k, const float* HWY_RESTRICT v,
                            const float* HWY_RESTRICT w, const float* HWY_RESTRICT u, size_t n,
                            size_t j, size_t count, float* HWY_RESTRICT y) {
  using V = hn::Vec<D>;
  const size_t N = hn::Lanes(d);
  const bool full = count == N;
  const V vv = full ? hn::LoadU(d, v + j) : LoadTail(d, v + j, count);
  V acc = hn::Zero(d);
  for (size_t i = 0; i < n; ++i) {
    float* row = s + i * n + j;
    const V sv = full ? hn::LoadU(d, row) : LoadTail(d, row, count);
    const V kv = hn::Mul(hn::Set(d, k[i]), vv);
    // y += r_i * (u_i k_i v + S_i), in the reference's order: u * (k v) + S, then times r.
    acc = hn::MulAdd(hn::Set(d, r[i]), hn::MulAdd(hn::Set(d, u[i]), kv, sv), acc);
    const V snew = hn::MulAdd(hn::Set(d, w[i]), sv, kv);
    if (full) {
      hn::StoreU(snew, d, row);
    } else {
      SafeBlendedStore(snew, hn::FirstN(d, count), d, row);
    }
  }
  if (full) {
    hn::StoreU(acc, d, y + j);
  } else {
    SafeBlendedStore(acc, hn::FirstN(d, count), d, y + j);
  }
}

void Wkv5Step(float* state, const float* r, const float* k, const float* v, const float* w,
              const float* u, size_t head_size, size_t h_begin, size_t h_end, float* y) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const size_t n = head_size;
  for (size_t h = h_begin; h < h_end; ++h) {
    const size_t c = h * n;
    float* s = state + h * n * n;
    size_t j = 0;
    for (; j + N <= n; j += N) Wkv5Columns(d, s, r + c, k + c, v + c, w + c, u + c, n, j, N, y + c);
    if (j < n) Wkv5Columns(d, s, r + c, k + c, v + c, w + c, u + c, n, j, n - j, y + c);
  }
}

void Wkv7Step(float* state, const float* r, const float* w, const float* k, const float* v,
              const float* a, const float* b, size_t head_size, size_t h_begin, size_t h_end,
              float* y) {
  using V = hn::Vec<hn::ScalableTag<float>>;
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const size_t n = head_size;
  for (size_t h = h_begin; h < h_end; ++h) {
    const size_t c = h * n;
    float* s = state + h * n * n;
    for (size_t i = 0; i < n; ++i) {
      float* row = s + i * n;
      // sa = S[i, :] . a (the old row).
      V sa_acc = hn::Zero(d);
      size_t j = 0;
      for (; j + N <= n; j += N) {
        sa_acc = hn::MulAdd(hn::LoadU(d, row + j), hn::LoadU(d, a + c + j), sa_acc);
      }
      if (j < n) {
        sa_acc = hn::MulAdd(LoadTail(d, row + j, n - j), LoadTail(d, a + c + j, n - j), sa_acc);
      }
      const V sa = hn::Set(d, hn::GetLane(hn::SumOfLanes(d, sa_acc)));
      const V vi = hn::Set(d, v[c + i]);
      V y_acc = hn::Zero(d);
      j = 0;
      for (; j + N <= n; j += N) {
        V sv = hn::Mul(hn::LoadU(d, row + j), hn::LoadU(d, w + c + j));
        sv = hn::MulAdd(sa, hn::LoadU(d, b + c + j), sv);
        sv = hn::MulAdd(vi, hn::LoadU(d, k + c + j), sv);
        hn::StoreU(sv, d, row + j);
        y_acc = hn::MulAdd(sv, hn::LoadU(d, r + c + j), y_acc);
      }
      if (j < n) {
        const size_t m = n - j;
        V sv = hn::Mul(LoadTail(d, row + j, m), LoadTail(d, w + c + j, m));
        sv = hn::MulAdd(sa, LoadTail(d, b + c + j, m), sv);
        sv = hn::MulAdd(vi, LoadTail(d, k + c + j, m), sv);
        SafeBlendedStore(sv, hn::FirstN(d, m), d, row + j);
        y_acc = hn::MulAdd(sv, LoadTail(d, r + c + j, m), y_acc);
      }
      y[c + i] = hn::GetLane(hn::SumOfLanes(d, y_acc));
    }
  }
}

}  // namespace recur::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard
