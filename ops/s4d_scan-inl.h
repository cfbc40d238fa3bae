// Per-target code for ops/s4d_scan.h: one vector of channels at a time, modes in the inner loop
// with the output accumulated in a register; a channel vector's state rows (2 x modes vectors)
// stay in L1 from one sample to the next.

#if defined(RECUR_OPS_S4D_SCAN_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef RECUR_OPS_S4D_SCAN_INL_H_
#undef RECUR_OPS_S4D_SCAN_INL_H_
#else
#define RECUR_OPS_S4D_SCAN_INL_H_
#endif

#include <algorithm>
#include <cstddef>

#include "hwy/highway.h"
#include "ops/elementwise-inl.h"
#include "ops/s4d_scan.h"

HWY_BEFORE_NAMESPACE();
namespace recur::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <class D>
HWY_INLINE hn::Vec<D> S4dLoad(D d, const float* HWY_RESTRICT p, size_t count) {
  return count == hn::Lanes(d) ? hn::LoadU(d, p) : LoadTail(d, p, count);
}

inline HWY_NOINLINE void S4dScanChunk(const S4dParams& p, float* HWY_RESTRICT x_re,
                                      float* HWY_RESTRICT x_im,
                                      const float* HWY_RESTRICT u /*[T, u_stride]*/,
                                      size_t u_stride, size_t T,
                                      float* HWY_RESTRICT y /*[T, y_stride]*/, size_t y_stride) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  const size_t L = hn::Lanes(d);
  const size_t H = p.h;
  for (size_t c = 0; c < H; c += L) {
    const size_t cnt = std::min(L, H - c);
    const auto mask = hn::FirstN(d, cnt);
    for (size_t t = 0; t < T; ++t) {
      const V x = u != nullptr ? S4dLoad(d, u + t * u_stride + c, cnt) : hn::Zero(d);
      V acc = hn::Zero(d);
      for (size_t m = 0; m < p.modes; ++m) {
        const size_t i = m * H + c;
        const V ar = S4dLoad(d, p.a_re + i, cnt), ai = S4dLoad(d, p.a_im + i, cnt);
        const V xr = S4dLoad(d, x_re + i, cnt), xi = S4dLoad(d, x_im + i, cnt);
        const V nr =
            hn::MulAdd(S4dLoad(d, p.b_re + i, cnt), x, hn::NegMulAdd(ai, xi, hn::Mul(ar, xr)));
        const V ni =
            hn::MulAdd(S4dLoad(d, p.b_im + i, cnt), x, hn::MulAdd(ai, xr, hn::Mul(ar, xi)));
        SafeBlendedStore(nr, mask, d, x_re + i);
        SafeBlendedStore(ni, mask, d, x_im + i);
        acc = hn::NegMulAdd(S4dLoad(d, p.c_im + i, cnt), ni,
                            hn::MulAdd(S4dLoad(d, p.c_re + i, cnt), nr, acc));
      }
      if (y != nullptr) SafeBlendedStore(acc, mask, d, y + t * y_stride + c);
    }
  }
}

}  // namespace recur::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // RECUR_OPS_S4D_SCAN_INL_H_
