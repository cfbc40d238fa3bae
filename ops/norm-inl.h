// Per-target code for ops/norm.h.

#if defined(RECUR_OPS_NORM_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef RECUR_OPS_NORM_INL_H_
#undef RECUR_OPS_NORM_INL_H_
#else
#define RECUR_OPS_NORM_INL_H_
#endif

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "hwy/highway.h"
#include "ops/activation-inl.h"
#include "ops/elementwise-inl.h"

HWY_BEFORE_NAMESPACE();
namespace recur::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// 1 / sqrt(sum_sq / n + eps), formed in double and rounded once.
HWY_INLINE float ReciprocalRms(double sum_sq, size_t n, float eps) {
  return static_cast<float>(1.0 / std::sqrt(sum_sq / static_cast<double>(n) + eps));
}

// out = (x * rstd) * w, or x * rstd when w is null.
template <class D>
HWY_INLINE void ScaleRow(D d, const float* x /*[n]*/, float rstd, const float* HWY_RESTRICT w,
                         float* out /*[n]*/, size_t n) {
  if (w != nullptr) {
    Map2(d, x, w, out, n, [rstd](auto d2, auto vx, auto vw) HWY_ATTR {
      return hn::Mul(hn::Mul(vx, hn::Set(d2, rstd)), vw);
    });
  } else {
    Map1(d, x, out, n,
         [rstd](auto d2, auto vx) HWY_ATTR { return hn::Mul(vx, hn::Set(d2, rstd)); });
  }
}

template <class D>
HWY_INLINE void RMSNormRow(D d, const float* x /*[n]*/, const float* HWY_RESTRICT w /*[n]*/,
                           float eps, float* out /*[n]*/, size_t n) {
  if (n == 0) return;
  const float rstd = ReciprocalRms(CompensatedSum(d, x, n, SquareOp()), n, eps);
  ScaleRow(d, x, rstd, w, out, n);
}

template <class D>
HWY_INLINE void LayerNormRow(D d, const float* x /*[n]*/, const float* HWY_RESTRICT w /*[n]*/,
                             const float* HWY_RESTRICT b /*[n]*/, float eps, float* out /*[n]*/,
                             size_t n) {
  if (n == 0) return;
  const double inv_n = 1.0 / static_cast<double>(n);
  const float mean = static_cast<float>(CompensatedSum(d, x, n, IdentityOp()) * inv_n);
  const auto centred_square = [mean](auto d2, auto v) HWY_ATTR {
    const auto c = hn::Sub(v, hn::Set(d2, mean));
    return hn::Mul(c, c);
  };
  const double var = CompensatedSum(d, x, n, centred_square) * inv_n;
  const float rstd = static_cast<float>(1.0 / std::sqrt(var + eps));
  if (w != nullptr && b != nullptr) {
    Map3(d, x, w, b, out, n, [mean, rstd](auto d2, auto vx, auto vw, auto vb) HWY_ATTR {
      const auto xhat = hn::Mul(hn::Sub(vx, hn::Set(d2, mean)), hn::Set(d2, rstd));
      return hn::MulAdd(xhat, vw, vb);
    });
  } else if (w != nullptr) {
    Map2(d, x, w, out, n, [mean, rstd](auto d2, auto vx, auto vw) HWY_ATTR {
      return hn::Mul(hn::Mul(hn::Sub(vx, hn::Set(d2, mean)), hn::Set(d2, rstd)), vw);
    });
  } else if (b != nullptr) {
    Map2(d, x, b, out, n, [mean, rstd](auto d2, auto vx, auto vb) HWY_ATTR {
      return hn::Add(hn::Mul(hn::Sub(vx, hn::Set(d2, mean)), hn::Set(d2, rstd)), vb);
    });
  } else {
    Map1(d, x, out, n, [mean, rstd](auto d2, auto vx) HWY_ATTR {
      return hn::Mul(hn::Sub(vx, hn::Set(d2, mean)), hn::Set(d2, rstd));
    });
  }
}

// out = y * SiLU(z) and returns sum(out^2) (compensated), in one pass. out may equal y or z.
template <class D>
HWY_INLINE double GateAndSumSquares(D d, const float* y /*[n]*/, const float* z /*[n]*/,
                                    float* out /*[n]*/, size_t n) {
  using V = hn::Vec<D>;
  const size_t N = hn::Lanes(d);
  V s = hn::Zero(d), c = hn::Zero(d);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const V g = hn::Mul(hn::LoadU(d, y + i), SiLUV(d, hn::LoadU(d, z + i)));
    hn::StoreU(g, d, out + i);
    KahanAdd(hn::Mul(g, g), s, c);
  }
  if (i < n) {
    const auto m = hn::FirstN(d, n - i);
    // Masked-off lanes load 0, so g is 0 there and adds nothing.
    const V g = hn::Mul(LoadTail(d, y + i, n - i), SiLUV(d, LoadTail(d, z + i, n - i)));
    SafeBlendedStore(g, m, d, out + i);
    KahanAdd(hn::Mul(g, g), s, c);
  }
  return LanesSumCompensated(d, s, c);
}

template <class D>
HWY_INLINE void GatedRMSNormRow(D d, const float* y /*[n]*/, const float* z /*[n]*/,
                                const float* HWY_RESTRICT w /*[n]*/, size_t group_size, float eps,
                                bool norm_before_gate, float* out /*[n]*/, size_t n) {
  if (group_size == 0) group_size = n;
  for (size_t g0 = 0; g0 < n; g0 += group_size) {
    // A partial last group (n not a multiple of group_size, a caller error) stays in bounds.
    const size_t gs = std::min(group_size, n - g0);
    const float* ys = y + g0;
    const float* ws = w != nullptr ? w + g0 : nullptr;
    float* os = out + g0;
    if (z == nullptr) {
      RMSNormRow(d, ys, ws, eps, os, gs);
    } else if (!norm_before_gate) {
      const double sum_sq = GateAndSumSquares(d, ys, z + g0, os, gs);
      ScaleRow(d, os, ReciprocalRms(sum_sq, gs, eps), ws, os, gs);
    } else {
      const float rstd = ReciprocalRms(CompensatedSum(d, ys, gs, SquareOp()), gs, eps);
      if (ws != nullptr) {
        Map3(d, ys, z + g0, ws, os, gs, [rstd](auto d2, auto vy, auto vz, auto vw) HWY_ATTR {
          return hn::Mul(hn::Mul(hn::Mul(vy, hn::Set(d2, rstd)), vw), SiLUV(d2, vz));
        });
      } else {
        Map2(d, ys, z + g0, os, gs, [rstd](auto d2, auto vy, auto vz) HWY_ATTR {
          return hn::Mul(hn::Mul(vy, hn::Set(d2, rstd)), SiLUV(d2, vz));
        });
      }
    }
  }
}

// ------------------------------ Exported kernels (one dispatch per call)
// `inline` lets several .cc files include this header; HWY_NOINLINE keeps one body per target.

inline HWY_NOINLINE void RMSNormRows(const float* x /*[rows, x_stride]*/, size_t x_stride,
                                     const float* HWY_RESTRICT weight /*[n]*/, float eps,
                                     float* out /*[rows, out_stride]*/, size_t out_stride,
                                     size_t rows, size_t n) {
  const hn::ScalableTag<float> d;
  for (size_t r = 0; r < rows; ++r) {
    RMSNormRow(d, x + r * x_stride, weight, eps, out + r * out_stride, n);
  }
}

inline HWY_NOINLINE void LayerNormRows(const float* x /*[rows, x_stride]*/, size_t x_stride,
                                       const float* HWY_RESTRICT weight /*[n]*/,
                                       const float* HWY_RESTRICT bias /*[n]*/, float eps,
                                       float* out /*[rows, out_stride]*/, size_t out_stride,
                                       size_t rows, size_t n) {
  const hn::ScalableTag<float> d;
  for (size_t r = 0; r < rows; ++r) {
    LayerNormRow(d, x + r * x_stride, weight, bias, eps, out + r * out_stride, n);
  }
}

inline HWY_NOINLINE void GroupNormRows(const float* x /*[rows, x_stride]*/, size_t x_stride,
                                       size_t groups, size_t group_size,
                                       const float* HWY_RESTRICT weight /*[groups * group_size]*/,
                                       const float* HWY_RESTRICT bias /*[groups * group_size]*/,
                                       float eps, float* out /*[rows, out_stride]*/,
                                       size_t out_stride, size_t rows) {
  const hn::ScalableTag<float> d;
  for (size_t r = 0; r < rows; ++r) {
    for (size_t g = 0; g < groups; ++g) {
      const size_t c0 = g * group_size;
      LayerNormRow(d, x + r * x_stride + c0, weight != nullptr ? weight + c0 : nullptr,
                   bias != nullptr ? bias + c0 : nullptr, eps, out + r * out_stride + c0,
                   group_size);
    }
  }
}

inline HWY_NOINLINE void GatedRMSNormRows(const float* y /*[rows, y_stride]*/, size_t y_stride,
                                          const float* z /*[rows, z_stride]*/, size_t z_stride,
                                          const float* HWY_RESTRICT weight /*[n]*/,
                                          size_t group_size, float eps, bool norm_before_gate,
                                          float* out /*[rows, out_stride]*/, size_t out_stride,
                                          size_t rows, size_t n) {
  const hn::ScalableTag<float> d;
  for (size_t r = 0; r < rows; ++r) {
    GatedRMSNormRow(d, y + r * y_stride, z != nullptr ? z + r * z_stride : nullptr, weight,
                    group_size, eps, norm_before_gate, out + r * out_stride, n);
  }
}

}  // namespace recur::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // RECUR_OPS_NORM_INL_H_
