#include "ops/reference/embedding.h"

#include <cmath>
#include <cstring>

namespace recur::ops::ref {

float HalfBitsToFloat(uint16_t bits) {
  const uint32_t sign = (bits >> 15) & 1;
  const uint32_t exponent = (bits >> 10) & 0x1F;
  const uint32_t mantissa = bits & 0x3FF;
  float magnitude;
  if (exponent == 0) {
    magnitude = std::ldexp(static_cast<float>(mantissa), -24);  // Subnormal (or zero).
  } else if (exponent == 31) {
    magnitude = mantissa == 0 ? INFINITY : NAN;
  } else {
    magnitude = std::ldexp(static_cast<float>(mantissa | 0x400), static_cast<int>(exponent) - 25);
  }
  return sign ? -magnitude : magnitude;
}

float BFloat16BitsToFloat(uint16_t bits) {
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &wide, sizeof(f));
  return f;
}

void GatherRow(const WeightView& table, size_t row, float* out) {
  const size_t cols = table.cols;
  for (size_t c = 0; c < cols; ++c) {
    const size_t i = row * cols + c;
    switch (table.type) {
      case WeightType::kF32:
        out[c] = static_cast<const float*>(table.data)[i];
        break;
      case WeightType::kF16:
        out[c] = HalfBitsToFloat(static_cast<const uint16_t*>(table.data)[i]);
        break;
      case WeightType::kBF16:
        out[c] = BFloat16BitsToFloat(static_cast<const uint16_t*>(table.data)[i]);
        break;
      case WeightType::kQ8_0: {
        const size_t block = i / kQ8Block;
        const float scale =
            table.scale_type == ScaleType::kF32
                ? static_cast<const float*>(table.scales)[block]
                : HalfBitsToFloat(static_cast<const uint16_t*>(table.scales)[block]);
        out[c] = scale * static_cast<float>(static_cast<const int8_t*>(table.data)[i]);
        break;
      }
    }
  }
}

}  // namespace recur::ops::ref
