// Dispatch wrappers for ops/convert.h; the per-target code is in ops/convert-inl.h.
#include "ops/convert.h"

#include <algorithm>
#include <cmath>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/convert.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "ops/convert-inl.h"

// The exported entry points: one per target, each a thin call into the -inl.h code.
HWY_BEFORE_NAMESPACE();
namespace recur::HWY_NAMESPACE {

void F16ToF32RowTarget(const uint16_t* in, float* out, size_t n) { F16ToF32RowImpl(in, out, n); }
void BF16ToF32RowTarget(const uint16_t* in, float* out, size_t n) { BF16ToF32RowImpl(in, out, n); }
void DequantizeRowTarget(const ops::WeightView& w, size_t row, float* out) {
  DequantizeRowImpl(w, row, out);
}

}  // namespace recur::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
// The per-target functions live in recur::HWY_NAMESPACE; exporting from namespace recur keeps
// lookup away from recur::ops::HWY_NAMESPACE, which other ops -inl.h files define.
namespace recur {
HWY_EXPORT(F16ToF32RowTarget);
HWY_EXPORT(BF16ToF32RowTarget);
HWY_EXPORT(DequantizeRowTarget);
}  // namespace recur

namespace recur::ops {


float WeightAt(const WeightView& w, size_t r, size_t c) {
  const size_t i = r * w.cols + c;
  switch (w.type) {
    case WeightType::kF32:
      return static_cast<const float*>(w.data)[i];
    case WeightType::kF16:
      return F16ToF32(static_cast<const uint16_t*>(w.data)[i]);
    case WeightType::kBF16:
      return BF16ToF32(static_cast<const uint16_t*>(w.data)[i]);
    case WeightType::kQ8_0:
      return Q8Scale(w, i / kQ8Block) * static_cast<float>(static_cast<const int8_t*>(w.data)[i]);
  }
  return 0.0f;
}

void F16ToF32Row(const uint16_t* in, float* out, size_t n) {
  HWY_DYNAMIC_DISPATCH(F16ToF32RowTarget)(in, out, n);
}

void BF16ToF32Row(const uint16_t* in, float* out, size_t n) {
  HWY_DYNAMIC_DISPATCH(BF16ToF32RowTarget)(in, out, n);
}

// Narrowing is used by importers and tests, not by hot kernels, so it stays scalar: one
// rounding rule on every target (Highway's software f16 demotion on SSE4 rounds differently).
void F32ToF16Row(const float* in, uint16_t* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = F32ToF16(in[i]);
}

void F32ToBF16Row(const float* in, uint16_t* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = F32ToBF16(in[i]);
}

void DequantizeRow(const WeightView& w, size_t row, float* out) {
  HWY_DYNAMIC_DISPATCH(DequantizeRowTarget)(w, row, out);
}

void QuantizeRowQ8_0(const float* in, size_t n, int8_t* quants, void* scales,
                     ScaleType scale_type) {
  for (size_t b = 0; b < n / kQ8Block; ++b) {
    const float* block = in + b * kQ8Block;
    float amax = 0.0f;
    for (size_t i = 0; i < kQ8Block; ++i) amax = std::max(amax, std::fabs(block[i]));
    const float scale = amax / 127.0f;
    const float inv_scale = scale != 0.0f ? 1.0f / scale : 0.0f;
    for (size_t i = 0; i < kQ8Block; ++i) {
      quants[b * kQ8Block + i] = static_cast<int8_t>(std::lround(block[i] * inv_scale));
    }
    if (scale_type == ScaleType::kF16) {
      static_cast<uint16_t*>(scales)[b] = F32ToF16(scale);
    } else {
      static_cast<float*>(scales)[b] = scale;
    }
  }
}

}  // namespace recur::ops
#endif  // HWY_ONCE
