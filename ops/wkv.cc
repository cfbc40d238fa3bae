// Dispatch wrappers for ops/wkv.h; the per-target code is in ops/wkv-inl.h.
#include "ops/wkv.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/wkv.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "ops/wkv-inl.h"

#if HWY_ONCE
namespace recur::ops {

HWY_EXPORT(Wkv5Step);
HWY_EXPORT(Wkv7Step);

void Wkv5Step(float* state, const float* r, const float* k, const float* v, const float* w,
              const float* u, size_t head_size, size_t h_begin, size_t h_end, float* y) {
  if (h_begin >= h_end || head_size == 0) return;
  HWY_DYNAMIC_DISPATCH(Wkv5Step)(state, r, k, v, w, u, head_size, h_begin, h_end, y);
}

void Wkv7Step(float* state, const float* r, const float* w, const float* k, const float* v,
              const float* a, const float* b, size_t head_size, size_t h_begin, size_t h_end,
              float* y) {
  if (h_begin >= h_end || head_size == 0) return;
  HWY_DYNAMIC_DISPATCH(Wkv7Step)(state, r, w, k, v, a, b, head_size, h_begin, h_end, y);
}

}  // namespace recur::ops
#endif  // HWY_ONCE
