// Dispatch wrappers for ops/norm.h; the per-target code is in ops/norm-inl.h. The single-row
// functions are the row-batched kernels with one row.
#include "ops/norm.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/norm.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "ops/norm-inl.h"

#if HWY_ONCE
namespace recur::ops {

HWY_EXPORT(RMSNormRows);
HWY_EXPORT(LayerNormRows);
HWY_EXPORT(GroupNormRows);
HWY_EXPORT(GatedRMSNormRows);

void RMSNorm(const float* x, const float* weight, float eps, float* out, size_t n) {
  HWY_DYNAMIC_DISPATCH(RMSNormRows)(x, n, weight, eps, out, n, 1, n);
}

void RMSNormRows(const float* x, size_t x_stride, const float* weight, float eps, float* out,
                 size_t out_stride, size_t rows, size_t n) {
  HWY_DYNAMIC_DISPATCH(RMSNormRows)(x, x_stride, weight, eps, out, out_stride, rows, n);
}

void LayerNorm(const float* x, const float* weight, const float* bias, float eps, float* out,
               size_t n) {
  HWY_DYNAMIC_DISPATCH(LayerNormRows)(x, n, weight, bias, eps, out, n, 1, n);
}

void LayerNormRows(const float* x, size_t x_stride, const float* weight, const float* bias,
                   float eps, float* out, size_t out_stride, size_t rows, size_t n) {
  HWY_DYNAMIC_DISPATCH(LayerNormRows)(x, x_stride, weight, bias, eps, out, out_stride, rows, n);
}

void GroupNorm(const float* x, size_t groups, size_t group_size, const float* weight,
               const float* bias, float eps, float* out) {
  const size_t n = groups * group_size;
  HWY_DYNAMIC_DISPATCH(GroupNormRows)(x, n, groups, group_size, weight, bias, eps, out, n, 1);
}

void GroupNormRows(const float* x, size_t x_stride, size_t groups, size_t group_size,
                   const float* weight, const float* bias, float eps, float* out, size_t out_stride,
                   size_t rows) {
  HWY_DYNAMIC_DISPATCH(GroupNormRows)
  (x, x_stride, groups, group_size, weight, bias, eps, out, out_stride, rows);
}

void GatedRMSNorm(const float* y, const float* z, const float* weight, size_t group_size, float eps,
                  bool norm_before_gate, float* out, size_t n) {
  HWY_DYNAMIC_DISPATCH(GatedRMSNormRows)
  (y, n, z, n, weight, group_size, eps, norm_before_gate, out, n, 1, n);
}

void GatedRMSNormRows(const float* y, size_t y_stride, const float* z, size_t z_stride,
                      const float* weight, size_t group_size, float eps, bool norm_before_gate,
                      float* out, size_t out_stride, size_t rows, size_t n) {
  HWY_DYNAMIC_DISPATCH(GatedRMSNormRows)
  (y, y_stride, z, z_stride, weight, group_size, eps, norm_before_gate, out, out_stride, rows, n);
}

}  // namespace recur::ops
#endif  // HWY_ONCE
