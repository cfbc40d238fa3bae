// Number-format conversions between the weight types of ops/types.h and f32.
//
// The scalar helpers are inline so that reference kernels, importers and tests can use them per
// element; the row helpers are vectorised with Highway and dispatch once per call. Widening
// (f16/bf16 -> f32) is exact; narrowing rounds to nearest, ties to even, as the hardware does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ops/types.h"

namespace recur::ops {

// ------------------------------------------------------------------ scalar helpers

inline uint32_t F32Bits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  return bits;
}

inline float F32FromBits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

// IEEE binary16 -> binary32, exact for every input (subnormals, infinities and NaNs included).
inline float F16ToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1Fu;
  const uint32_t mantissa = h & 0x3FFu;
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24 is exact in f32.
    const float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 0x1F) return F32FromBits(sign | 0x7F800000u | (mantissa << 13));
  return F32FromBits(sign | ((exponent + (127 - 15)) << 23) | (mantissa << 13));
}

// binary32 -> binary16 with round-to-nearest-even; overflow gives infinity, NaN stays NaN
// (canonical quiet NaN). This is F. Giesen's float_to_half_fast3_rtne.
inline uint16_t F32ToF16(float f) {
  uint32_t bits = F32Bits(f);
  const uint32_t sign = bits & 0x80000000u;
  bits ^= sign;
  uint32_t out;
  if (bits >= (127u + 16u) << 23) {
    // Beyond the largest finite half after rounding, infinity, or NaN.
    out = bits > 0x7F800000u ? 0x7E00u : 0x7C00u;
  } else if (bits < (113u << 23)) {
    // Subnormal or zero half: adding a magic number aligns the 10 mantissa bits at the bottom
    // and the f32 addition rounds to nearest even for us.
    const uint32_t kDenormMagic = ((127u - 15u) + (23u - 10u) + 1u) << 23;
    const float sum = F32FromBits(bits) + F32FromBits(kDenormMagic);
    out = F32Bits(sum) - kDenormMagic;
  } else {
    const uint32_t mantissa_odd = (bits >> 13) & 1u;
    bits += (static_cast<uint32_t>(15 - 127) << 23) + 0xFFFu;  // Rebias; round half down.
    bits += mantissa_odd;                                      // Ties go to the even mantissa.
    out = bits >> 13;
  }
  return static_cast<uint16_t>(out | (sign >> 16));
}

// bfloat16 is the top half of an f32: widening is a shift.
inline float BF16ToF32(uint16_t b) { return F32FromBits(static_cast<uint32_t>(b) << 16); }

// binary32 -> bfloat16 with round-to-nearest-even; NaN stays NaN (quiet bit set).
inline uint16_t F32ToBF16(float f) {
  const uint32_t bits = F32Bits(f);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  const uint32_t rounding = 0x7FFFu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

// The scale of q8_0 block `block` (index into scales [rows * cols / kQ8Block]) as f32.
inline float Q8Scale(const WeightView& w, size_t block) {
  if (w.scale_type == ScaleType::kF16) {
    return F16ToF32(static_cast<const uint16_t*>(w.scales)[block]);
  }
  return static_cast<const float*>(w.scales)[block];
}

// Element (r, c) of W as f32, for reference code and tests (slow: one switch per element).
float WeightAt(const WeightView& w, size_t r, size_t c);

// ------------------------------------------------------------------ row helpers (vectorised)

// in: [n] half bits, out: [n].
void F16ToF32Row(const uint16_t* in, float* out, size_t n);
// in: [n] bfloat16 bits, out: [n].
void BF16ToF32Row(const uint16_t* in, float* out, size_t n);
// in: [n], out: [n] half bits (round to nearest even).
void F32ToF16Row(const float* in, uint16_t* out, size_t n);
// in: [n], out: [n] bfloat16 bits (round to nearest even).
void F32ToBF16Row(const float* in, uint16_t* out, size_t n);

// Row `row` of W decoded to f32, for every weight type (a copy for kF32).
// w: [rows, cols], out: [w.cols]. Used by embedding gathers and by tests.
void DequantizeRow(const WeightView& w, size_t row, float* out);

// Quantises one row to q8_0 the way llama.cpp does: per block of kQ8Block, scale = max|x| / 127
// and quant = round(x / scale). Importers and tests use it.
// in: [n] with n a multiple of kQ8Block, quants: [n], scales: [n / kQ8Block] of scale_type.
void QuantizeRowQ8_0(const float* in, size_t n, int8_t* quants, void* scales, ScaleType scale_type);

}  // namespace recur::ops
