// Dispatch wrappers for ops/selective_scan.h; the per-target code is in ops/selective_scan-inl.h.
#include "ops/selective_scan.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/selective_scan.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "ops/selective_scan-inl.h"

#if HWY_ONCE
namespace recur::ops {

HWY_EXPORT(SelectiveScanStep);
HWY_EXPORT(SelectiveScanChunk);

void SelectiveScanStep(float* state, const float* x, const float* dt, const float* A,
                       const float* B, const float* C, const float* D, size_t d_state,
                       size_t c_begin, size_t c_end, float* y) {
  if (c_begin >= c_end) return;
  HWY_DYNAMIC_DISPATCH(SelectiveScanStep)(state, x, dt, A, B, C, D, d_state, c_begin, c_end, y);
}

void SelectiveScanChunk(float* state, const float* x, size_t x_stride, const float* dt,
                        size_t dt_stride, size_t T, const float* A, const float* B, const float* C,
                        size_t bc_stride, const float* D, size_t d_state, size_t c_begin,
                        size_t c_end, float* y, size_t y_stride) {
  if (c_begin >= c_end || T == 0) return;
  HWY_DYNAMIC_DISPATCH(SelectiveScanChunk)
  (state, x, x_stride, dt, dt_stride, T, A, B, C, bc_stride, D, d_state, c_begin, c_end, y,
   y_stride);
}

}  // namespace recur::ops
#endif  // HWY_ONCE
