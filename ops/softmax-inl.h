// Per-target code for ops/softmax.h.

#if defined(RECUR_OPS_SOFTMAX_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef RECUR_OPS_SOFTMAX_INL_H_
#undef RECUR_OPS_SOFTMAX_INL_H_
#else
#define RECUR_OPS_SOFTMAX_INL_H_
#endif

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include "hwy/highway.h"
#include "ops/activation-inl.h"
#include "ops/elementwise-inl.h"

HWY_BEFORE_NAMESPACE();
namespace recur::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Softmax and LogSoftmax share the max pass; the exp pass of Softmax stores exp(x - max) so the
// sum and the final scale read it back from L1/L2 instead of recomputing exp.
inline HWY_NOINLINE void Softmax(float* x /*[n]*/, size_t n) {
  if (n == 0) return;
  const hn::ScalableTag<float> d;
  const float max = MaxValueT(d, x, n);
  Map1(d, x, x, n,
       [max](auto d2, auto v) HWY_ATTR { return ExpV(d2, hn::Sub(v, hn::Set(d2, max))); });
  const float inv_sum = static_cast<float>(1.0 / CompensatedSum(d, x, n, IdentityOp()));
  Map1(d, x, x, n,
       [inv_sum](auto d2, auto v) HWY_ATTR { return hn::Mul(v, hn::Set(d2, inv_sum)); });
}

inline HWY_NOINLINE void LogSoftmax(float* x /*[n]*/, size_t n) {
  if (n == 0) return;
  const hn::ScalableTag<float> d;
  const float max = MaxValueT(d, x, n);
  const double sum = CompensatedSum(
      d, x, n, [max](auto d2, auto v) HWY_ATTR { return ExpV(d2, hn::Sub(v, hn::Set(d2, max))); });
  const float log_sum = static_cast<float>(std::log(sum));
  Map1(d, x, x, n, [max, log_sum](auto d2, auto v) HWY_ATTR {
    return hn::Sub(hn::Sub(v, hn::Set(d2, max)), hn::Set(d2, log_sum));
  });
}

// y = y * a + p * v (a, p scalars).
template <class D>
HWY_INLINE void ScaleAndAccumulate(D d, float* HWY_RESTRICT y, float a, float p,
                                   const float* HWY_RESTRICT v, size_t n) {
  Map2(d, y, v, y, n, [a, p](auto d2, auto vy, auto vv) HWY_ATTR {
    return hn::MulAdd(hn::Set(d2, p), vv, hn::Mul(vy, hn::Set(d2, a)));
  });
}

inline HWY_NOINLINE void OnlineSoftmaxUpdate(float* HWY_RESTRICT m, float* HWY_RESTRICT z,
                                             float* HWY_RESTRICT y /*[d]*/, float s,
                                             const float* HWY_RESTRICT v /*[d]*/, size_t d) {
  const hn::ScalableTag<float> df;
  if (s == -std::numeric_limits<float>::infinity()) return;  // A masked key adds nothing.
  if (*m == -std::numeric_limits<float>::infinity()) {
    // First key: avoids exp(-inf - -inf) = NaN and is exact.
    *m = s;
    *z = 1.0f;
    Map1(df, v, y, d, IdentityOp());
    return;
  }
  const float m_new = std::max(*m, s);
  const float a = std::exp(*m - m_new);
  const float p = std::exp(s - m_new);
  *m = m_new;
  *z = *z * a + p;
  ScaleAndAccumulate(df, y, a, p, v, d);
}

inline HWY_NOINLINE void OnlineSoftmaxUpdateBlock(float* HWY_RESTRICT m, float* HWY_RESTRICT z,
                                                  float* HWY_RESTRICT y /*[d]*/,
                                                  const float* HWY_RESTRICT s /*[k]*/,
                                                  const float* HWY_RESTRICT v /*[k, v_stride]*/,
                                                  size_t v_stride, size_t k, size_t d) {
  const hn::ScalableTag<float> df;
  if (k == 0) return;
  const float block_max = MaxValueT(df, s, k);
  if (block_max == -std::numeric_limits<float>::infinity()) return;  // Every key masked.
  const bool empty = *m == -std::numeric_limits<float>::infinity();
  const float m_new = empty ? block_max : std::max(*m, block_max);
  if (empty) {
    *z = 0.0f;
    Map1(df, y, y, d, [](auto d2, auto) HWY_ATTR { return hn::Zero(d2); });
  } else if (m_new != *m) {
    const float a = std::exp(*m - m_new);
    *z *= a;
    Map1(df, y, y, d, [a](auto d2, auto vy) HWY_ATTR { return hn::Mul(vy, hn::Set(d2, a)); });
  }
  *m = m_new;
  float z_acc = *z;
  for (size_t j = 0; j < k; ++j) {
    const float p = std::exp(s[j] - m_new);  // 0 for a masked key.
    if (p == 0.0f) continue;
    z_acc += p;
    AddScaledT(df, v + j * v_stride, p, y, d);
  }
  *z = z_acc;
}

inline HWY_NOINLINE void OnlineSoftmaxMerge(float* HWY_RESTRICT m1, float* HWY_RESTRICT z1,
                                            float* HWY_RESTRICT y1 /*[d]*/, float m2, float z2,
                                            const float* HWY_RESTRICT y2 /*[d]*/, size_t d) {
  const hn::ScalableTag<float> df;
  if (m2 == -std::numeric_limits<float>::infinity()) return;  // State 2 is empty.
  if (*m1 == -std::numeric_limits<float>::infinity()) {
    *m1 = m2;
    *z1 = z2;
    Map1(df, y2, y1, d, IdentityOp());
    return;
  }
  const float m = std::max(*m1, m2);
  const float a1 = std::exp(*m1 - m);
  const float a2 = std::exp(m2 - m);
  *m1 = m;
  *z1 = *z1 * a1 + z2 * a2;
  ScaleAndAccumulate(df, y1, a1, a2, y2, d);
}

inline HWY_NOINLINE void OnlineSoftmaxOutput(float z, const float* y /*[d]*/, float* out /*[d]*/,
                                             size_t d) {
  const hn::ScalableTag<float> df;
  const float inv_z = z > 0.0f ? 1.0f / z : 0.0f;
  Map1(df, y, out, d, [inv_z](auto d2, auto v) HWY_ATTR { return hn::Mul(v, hn::Set(d2, inv_z)); });
}

}  // namespace recur::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // RECUR_OPS_SOFTMAX_INL_H_
