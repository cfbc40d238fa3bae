// Scalar twin of ops/embedding.h: bit-level f16 / bf16 decoding and q8_0 dequantisation.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ops/types.h"

namespace recur::ops::ref {

// out = table[row, :] as f32.  table: [vocab, d]; out: [d]
void GatherRow(const WeightView& table, size_t row, float* out);

// IEEE binary16 bits -> f32, exact (subnormals, infinities and NaN included).
float HalfBitsToFloat(uint16_t bits);
// bfloat16 bits -> f32, exact.
float BFloat16BitsToFloat(uint16_t bits);

}  // namespace recur::ops::ref
