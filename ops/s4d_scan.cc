// Dispatch wrapper for ops/s4d_scan.h; the per-target code is in ops/s4d_scan-inl.h.
#include "ops/s4d_scan.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/s4d_scan.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "ops/s4d_scan-inl.h"

#if HWY_ONCE
namespace recur::ops {

HWY_EXPORT(S4dScanChunk);

void S4dScanChunk(const S4dParams& p, float* x_re, float* x_im, const float* u, size_t u_stride,
                  size_t T, float* y, size_t y_stride) {
  if (p.modes == 0 || p.h == 0 || T == 0) return;
  HWY_DYNAMIC_DISPATCH(S4dScanChunk)(p, x_re, x_im, u, u_stride, T, y, y_stride);
}

}  // namespace recur::ops
#endif  // HWY_ONCE
