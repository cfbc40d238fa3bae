// Dispatch wrappers for ops/activation.h; the per-target code is in ops/activation-inl.h.
#include "ops/activation.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/activation.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "ops/activation-inl.h"

#if HWY_ONCE
namespace recur::ops {

// The in-place forms call the out-of-place kernel with out == x, which every kernel allows.
#define RECUR_OPS_EXPORT_UNARY(NAME)                                                         \
  HWY_EXPORT(NAME);                                                                          \
  void NAME(const float* x, float* out, size_t n) { HWY_DYNAMIC_DISPATCH(NAME)(x, out, n); } \
  void NAME##InPlace(float* x, size_t n) { HWY_DYNAMIC_DISPATCH(NAME)(x, x, n); }

RECUR_OPS_EXPORT_UNARY(Exp)
RECUR_OPS_EXPORT_UNARY(Sigmoid)
RECUR_OPS_EXPORT_UNARY(SiLU)
RECUR_OPS_EXPORT_UNARY(Softplus)
RECUR_OPS_EXPORT_UNARY(Tanh)
RECUR_OPS_EXPORT_UNARY(Elu)
RECUR_OPS_EXPORT_UNARY(Relu)
RECUR_OPS_EXPORT_UNARY(GeluTanh)
RECUR_OPS_EXPORT_UNARY(GeluErf)

#undef RECUR_OPS_EXPORT_UNARY

HWY_EXPORT(MulSiLU);
void MulSiLU(const float* a, const float* gate, float* out, size_t n) {
  HWY_DYNAMIC_DISPATCH(MulSiLU)(a, gate, out, n);
}

}  // namespace recur::ops
#endif  // HWY_ONCE
