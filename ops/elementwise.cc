// Dispatch wrappers for ops/elementwise.h; the per-target code is in ops/elementwise-inl.h.
#include "ops/elementwise.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/elementwise.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "ops/elementwise-inl.h"

#if HWY_ONCE
namespace recur::ops {

HWY_EXPORT(Add);
HWY_EXPORT(Mul);
HWY_EXPORT(Scale);
HWY_EXPORT(AddScaled);
HWY_EXPORT(Dot);
HWY_EXPORT(Sum);
HWY_EXPORT(MaxValue);

void Add(const float* a, const float* b, float* out, size_t n) {
  HWY_DYNAMIC_DISPATCH(Add)(a, b, out, n);
}
void Mul(const float* a, const float* b, float* out, size_t n) {
  HWY_DYNAMIC_DISPATCH(Mul)(a, b, out, n);
}
void Scale(const float* x, float s, float* out, size_t n) {
  HWY_DYNAMIC_DISPATCH(Scale)(x, s, out, n);
}
void AddScaled(const float* x, float s, float* y, size_t n) {
  HWY_DYNAMIC_DISPATCH(AddScaled)(x, s, y, n);
}
float Dot(const float* a, const float* b, size_t n) { return HWY_DYNAMIC_DISPATCH(Dot)(a, b, n); }
float Sum(const float* x, size_t n) { return HWY_DYNAMIC_DISPATCH(Sum)(x, n); }
float MaxValue(const float* x, size_t n) { return HWY_DYNAMIC_DISPATCH(MaxValue)(x, n); }

}  // namespace recur::ops
#endif  // HWY_ONCE
