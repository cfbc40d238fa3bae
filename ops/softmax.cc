// Dispatch wrappers for ops/softmax.h; the per-target code is in ops/softmax-inl.h.
#include "ops/softmax.h"

#include <algorithm>
#include <limits>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/softmax.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "ops/softmax-inl.h"

#if HWY_ONCE
namespace recur::ops {

HWY_EXPORT(Softmax);
HWY_EXPORT(LogSoftmax);
HWY_EXPORT(OnlineSoftmaxUpdate);
HWY_EXPORT(OnlineSoftmaxUpdateBlock);
HWY_EXPORT(OnlineSoftmaxMerge);
HWY_EXPORT(OnlineSoftmaxOutput);

void Softmax(float* x, size_t n) { HWY_DYNAMIC_DISPATCH(Softmax)(x, n); }
void LogSoftmax(float* x, size_t n) { HWY_DYNAMIC_DISPATCH(LogSoftmax)(x, n); }

void OnlineSoftmaxReset(float* m, float* z, float* y, size_t d) {
  *m = -std::numeric_limits<float>::infinity();
  *z = 0.0f;
  std::fill(y, y + d, 0.0f);
}

void OnlineSoftmaxUpdate(float* m, float* z, float* y, float s, const float* v, size_t d) {
  HWY_DYNAMIC_DISPATCH(OnlineSoftmaxUpdate)(m, z, y, s, v, d);
}

void OnlineSoftmaxUpdateBlock(float* m, float* z, float* y, const float* s, const float* v,
                              size_t v_stride, size_t k, size_t d) {
  HWY_DYNAMIC_DISPATCH(OnlineSoftmaxUpdateBlock)(m, z, y, s, v, v_stride, k, d);
}

void OnlineSoftmaxMerge(float* m1, float* z1, float* y1, float m2, float z2, const float* y2,
                        size_t d) {
  HWY_DYNAMIC_DISPATCH(OnlineSoftmaxMerge)(m1, z1, y1, m2, z2, y2, d);
}

void OnlineSoftmaxOutput(float z, const float* y, float* out, size_t d) {
  HWY_DYNAMIC_DISPATCH(OnlineSoftmaxOutput)(z, y, out, d);
}

}  // namespace recur::ops
#endif  // HWY_ONCE
