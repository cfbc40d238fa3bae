// Per-target code for ops/rope.h. The half-split layout keeps both members of every pair in
// contiguous runs (x[i] and x[i + d/2]), so it rotates a vector of pairs at a time. The
// interleaved layout's pairs are adjacent lanes; Highway 1.0.3 has no pair swap on every target
// (Shuffle2301 is missing on SCALAR and works per 128-bit block elsewhere), and RoPE costs
// O(heads x head_dim) per token, nothing next to the projections, so it stays a scalar loop with
// the same operation order as the vector path.

#if defined(RECUR_OPS_ROPE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef RECUR_OPS_ROPE_INL_H_
#undef RECUR_OPS_ROPE_INL_H_
#else
#define RECUR_OPS_ROPE_INL_H_
#endif

#include <cstddef>

#include "hwy/highway.h"
#include "ops/elementwise-inl.h"
#include "ops/rope.h"

HWY_BEFORE_NAMESPACE();
namespace recur::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

HWY_NOINLINE void ApplyRope(float* HWY_RESTRICT x, size_t n_heads, size_t head_dim,
                            const float* HWY_RESTRICT cos, const float* HWY_RESTRICT sin,
                            bool interleaved) {
  const size_t half = head_dim / 2;
  if (interleaved) {
    for (size_t h = 0; h < n_heads; ++h) {
      float* xh = x + h * head_dim;
      for (size_t i = 0; i < half; ++i) {
        const float a = xh[2 * i], b = xh[2 * i + 1];
        xh[2 * i] = a * cos[i] - b * sin[i];
        xh[2 * i + 1] = b * cos[i] + a * sin[i];
      }
    }
    return;
  }
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  const size_t L = hn::Lanes(d);
  for (size_t h = 0; h < n_heads; ++h) {
    float* xa = x + h * head_dim;
    float* xb = xa + half;
    for (size_t i = 0; i < half; i += L) {
      const size_t n = half - i < L ? half - i : L;
      const bool full = n == L;
      const V a = full ? hn::LoadU(d, xa + i) : LoadTail(d, xa + i, n);
      const V b = full ? hn::LoadU(d, xb + i) : LoadTail(d, xb + i, n);
      const V c = full ? hn::LoadU(d, cos + i) : LoadTail(d, cos + i, n);
      const V s = full ? hn::LoadU(d, sin + i) : LoadTail(d, sin + i, n);
      // a c - b s and b c + a s, without fused multiply-adds, as the interleaved loop computes
      // them.
      const V ra = hn::Sub(hn::Mul(a, c), hn::Mul(b, s));
      const V rb = hn::Add(hn::Mul(b, c), hn::Mul(a, s));
      if (full) {
        hn::StoreU(ra, d, xa + i);
        hn::StoreU(rb, d, xb + i);
      } else {
        SafeBlendedStore(ra, hn::FirstN(d, n), d, xa + i);
        SafeBlendedStore(rb, hn::FirstN(d, n), d, xb + i);
      }
    }
  }
}

}  // namespace recur::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // RECUR_OPS_ROPE_INL_H_
