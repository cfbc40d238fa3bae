// Dispatch wrappers for ops/conv1d.h; the per-target code is in ops/conv1d-inl.h.
#include "ops/conv1d.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/conv1d.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "ops/conv1d-inl.h"

#if HWY_ONCE
namespace recur::ops {

HWY_EXPORT(Conv1dStep);
HWY_EXPORT(Conv1dChunk);

void Conv1dStep(float* state, const float* x, const float* w, const float* bias, size_t channels,
                size_t width, bool silu, float* out) {
  HWY_DASSERT(width >= 1 && width <= kMaxConvWidth);
  HWY_DYNAMIC_DISPATCH(Conv1dStep)(state, x, w, bias, channels, width, silu, out);
}

void Conv1dChunk(float* state, const float* x, size_t x_stride, size_t T, const float* w,
                 const float* bias, size_t channels, size_t width, bool silu, float* y,
                 size_t y_stride) {
  HWY_DASSERT(width >= 1 && width <= kMaxConvWidth);
  HWY_DYNAMIC_DISPATCH(Conv1dChunk)
  (state, x, x_stride, T, w, bias, channels, width, silu, y, y_stride);
}

}  // namespace recur::ops
#endif  // HWY_ONCE
