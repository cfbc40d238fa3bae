// Per-target code for ops/activation.h. The vector functions (ExpV, SigmoidV, SiLUV, SoftplusV,
// ...) are meant for other kernels' -inl.h code too: include this header there.

#if defined(RECUR_OPS_ACTIVATION_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef RECUR_OPS_ACTIVATION_INL_H_
#undef RECUR_OPS_ACTIVATION_INL_H_
#else
#define RECUR_OPS_ACTIVATION_INL_H_
#endif

#include <cstddef>
#include <limits>

#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"
#include "ops/activation.h"
#include "ops/elementwise-inl.h"

HWY_BEFORE_NAMESPACE();
namespace recur::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// exp(x) over the whole float range. hn::Exp is valid on [-FLT_MAX, 104] and returns 0 for NaN;
// above 104 its exponent arithmetic wraps, so larger inputs are sent to +inf and NaN is passed
// through explicitly.
template <class D, class V>
HWY_INLINE V ExpV(D d, V x) {
  // Any x above this overflows f32 exp (ln(FLT_MAX) = 88.72); 104 is where hn::Exp stops being
  // valid, so everything above it is forced to +inf.
  const V kMaxValidArg = hn::Set(d, 104.0f);
  const V y = hn::Exp(d, x);
  const V big = hn::IfThenElse(hn::Gt(x, kMaxValidArg),
                               hn::Set(d, std::numeric_limits<float>::infinity()), y);
  return hn::IfThenElse(hn::IsNaN(x), x, big);
}

// sigmoid(x) from e = exp(-|x|) in (0, 1]: 1 / (1 + e) for x >= 0, e / (1 + e) for x < 0, so
// neither tail overflows or loses relative precision (until e goes subnormal below -87).
template <class D, class V>
HWY_INLINE V SigmoidV(D d, V x) {
  const V e = ExpV(d, hn::Neg(hn::Abs(x)));
  const V r = hn::Div(hn::Set(d, 1.0f), hn::Add(hn::Set(d, 1.0f), e));
  return hn::IfThenElse(hn::Lt(x, hn::Zero(d)), hn::Mul(e, r), r);
}

template <class D, class V>
HWY_INLINE V SiLUV(D d, V x) {
  return hn::Mul(x, SigmoidV(d, x));
}

// log1p(exp(x)), or x above the threshold (where hn::Log1p(inf) would give NaN anyway).
template <class D, class V>
HWY_INLINE V SoftplusV(D d, V x) {
  const V soft = hn::Log1p(d, ExpV(d, x));
  return hn::IfThenElse(hn::Gt(x, hn::Set(d, kSoftplusThreshold)), x, soft);
}

template <class D, class V>
HWY_INLINE V TanhV(D d, V x) {
  return hn::Tanh(d, x);
}

template <class D, class V>
HWY_INLINE V EluV(D d, V x) {
  return hn::IfThenElse(hn::Gt(x, hn::Zero(d)), x, hn::Expm1(d, x));
}

template <class D, class V>
HWY_INLINE V ReluV(D d, V x) {
  return hn::IfThenZeroElse(hn::Lt(x, hn::Zero(d)), x);
}

// x * sigmoid(2 sqrt(2/pi) (x + 0.044715 x^3)) == 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
template <class D, class V>
HWY_INLINE V GeluTanhV(D d, V x) {
  const V kC1 = hn::Set(d, 1.5957691216057308f);   // 2 * sqrt(2 / pi).
  const V kC3 = hn::Set(d, 0.07135481627159416f);  // 2 * sqrt(2 / pi) * 0.044715.
  const V inner = hn::Mul(x, hn::MulAdd(kC3, hn::Mul(x, x), kC1));
  return hn::Mul(x, SigmoidV(d, inner));
}

// erf(x) as an odd rational function p(x) / q(x) on [-4, 4] (the coefficients of Eigen's and XLA's
// f32 erf; outside [-4, 4] erf rounds to +-1 in f32). Absolute error below 4e-7 over the range.
template <class D, class V>
HWY_INLINE V ErfV(D d, V x) {
  const V xc = hn::Min(hn::Max(x, hn::Set(d, -4.0f)), hn::Set(d, 4.0f));
  const V x2 = hn::Mul(xc, xc);
  V p = hn::MulAdd(x2, hn::Set(d, -2.72614225801306e-10f), hn::Set(d, 2.77068142495902e-08f));
  p = hn::MulAdd(x2, p, hn::Set(d, -2.10102402082508e-06f));
  p = hn::MulAdd(x2, p, hn::Set(d, -5.69250639462346e-05f));
  p = hn::MulAdd(x2, p, hn::Set(d, -7.34990630326855e-04f));
  p = hn::MulAdd(x2, p, hn::Set(d, -2.95459980854025e-03f));
  p = hn::MulAdd(x2, p, hn::Set(d, -1.60960333262415e-02f));
  p = hn::Mul(xc, p);
  V q = hn::MulAdd(x2, hn::Set(d, -1.45660718464996e-05f), hn::Set(d, -2.13374055278905e-04f));
  q = hn::MulAdd(x2, q, hn::Set(d, -1.68282697438203e-03f));
  q = hn::MulAdd(x2, q, hn::Set(d, -7.37332916720468e-03f));
  q = hn::MulAdd(x2, q, hn::Set(d, -1.42647390514189e-02f));
  return hn::Div(p, q);
}

template <class D, class V>
HWY_INLINE V GeluErfV(D d, V x) {
  const V kInvSqrt2 = hn::Set(d, 0.70710678118654752f);
  const V half_x = hn::Mul(hn::Set(d, 0.5f), x);
  return hn::MulAdd(half_x, ErfV(d, hn::Mul(x, kInvSqrt2)), half_x);
}

// ------------------------------ Exported kernels (one dispatch per call)
// `inline` lets several .cc files include this header; HWY_NOINLINE keeps one body per target.

#define RECUR_OPS_DEFINE_UNARY(NAME, VFUNC)                             \
  inline HWY_NOINLINE void NAME(const float* x, float* out, size_t n) { \
    Map1(hn::ScalableTag<float>(), x, out, n,                           \
         [](auto d, auto v) HWY_ATTR { return VFUNC(d, v); });          \
  }

RECUR_OPS_DEFINE_UNARY(Exp, ExpV)
RECUR_OPS_DEFINE_UNARY(Sigmoid, SigmoidV)
RECUR_OPS_DEFINE_UNARY(SiLU, SiLUV)
RECUR_OPS_DEFINE_UNARY(Softplus, SoftplusV)
RECUR_OPS_DEFINE_UNARY(Tanh, TanhV)
RECUR_OPS_DEFINE_UNARY(Elu, EluV)
RECUR_OPS_DEFINE_UNARY(Relu, ReluV)
RECUR_OPS_DEFINE_UNARY(GeluTanh, GeluTanhV)
RECUR_OPS_DEFINE_UNARY(GeluErf, GeluErfV)

#undef RECUR_OPS_DEFINE_UNARY

inline HWY_NOINLINE void MulSiLU(const float* a, const float* gate, float* out, size_t n) {
  Map2(hn::ScalableTag<float>(), a, gate, out, n,
       [](auto d, auto va, auto vg) HWY_ATTR { return hn::Mul(va, SiLUV(d, vg)); });
}

}  // namespace recur::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // RECUR_OPS_ACTIVATION_INL_H_
