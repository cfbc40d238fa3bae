// Dispatch wrappers for ops/rope.h; the per-target code is in ops/rope-inl.h.
#include "ops/rope.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/rope.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "ops/rope-inl.h"

#if HWY_ONCE
#include <cmath>

namespace recur::ops {

HWY_EXPORT(ApplyRope);

void RopeAngles(double position, size_t head_dim, float base, float* cos, float* sin) {
  const size_t half = head_dim / 2;
  for (size_t i = 0; i < half; ++i) {
    const double theta =
        std::pow(static_cast<double>(base), -2.0 * static_cast<double>(i) / head_dim);
    const double angle = position * theta;
    cos[i] = static_cast<float>(std::cos(angle));
    sin[i] = static_cast<float>(std::sin(angle));
  }
}

void ApplyRope(float* x, size_t n_heads, size_t head_dim, const float* cos, const float* sin,
               bool interleaved) {
  if (n_heads == 0 || head_dim < 2) return;
  HWY_DYNAMIC_DISPATCH(ApplyRope)(x, n_heads, head_dim, cos, sin, interleaved);
}

}  // namespace recur::ops
#endif  // HWY_ONCE
