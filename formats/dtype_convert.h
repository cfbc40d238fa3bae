// Scalar conversion of tensor rows between floating-point types, and q8_0 (de)quantisation.
//
// These are the converter's numerics. formats/ knows nothing of ops/, so it carries its own small,
// portable scalar code: speed matters little here (conversion is bound by disk), exactness does.
// Narrowing rounds to nearest, ties to even, as IEEE 754 and PyTorch do; NaN stays NaN (quiet),
// infinities stay infinite, values beyond the target's range become infinities and subnormals
// are produced and read exactly.
#pragma once

#include <cstddef>
#include <cstdint>

#include "formats/dtype.h"
#include "formats/status.h"

namespace recur {

// IEEE binary16 and bfloat16 bit patterns <-> float.
uint16_t F32ToF16(float x);
float F16ToF32(uint16_t h);
uint16_t F32ToBF16(float x);
float BF16ToF32(uint16_t b);
// Direct from double, with a single rounding (going through float first could round twice).
uint16_t F64ToF16(double x);
uint16_t F64ToBF16(double x);
// Round-to-nearest-even double -> float (what a C++ cast does), spelled out for symmetry.
float F64ToF32(double x);

// True for f32, f16, bf16 and f64: the types ConvertRow reads and writes.
bool IsFloatDType(DType dtype);

// Converts `n` elements at `src` (of `src_dtype`) to `dst_dtype` at `dst`. Both must be float
// dtypes. Neither pointer needs any alignment (safetensors data often is not aligned), and the
// two ranges must not overlap unless they are the same pointer with the same dtype.
Status ConvertRow(DType src_dtype, const void* src, DType dst_dtype, void* dst, size_t n);

// q8_0 quantisation of `n` floats (`n` a multiple of `block_size`): for each block of
// `block_size` values, scale = max|x| / 127 stored as `scale_dtype` (f16 or f32), and
// q = round(x / scale) with the scale as stored, so that |x - q * scale| <= scale / 2 (a block
// whose f16 scale rounded down may clip its largest value by at most 127 * 2^-11 of a scale).
// A block of zeros gets scale 0 and zero quants. Non-finite inputs and scales beyond the scale
// type's range are errors, not silent infinities.
// quants: [n] int8; scales: [n / block_size] of scale_dtype. No alignment needed.
Status QuantizeQ8Row(const float* x, size_t n, int8_t* quants, DType scale_dtype, void* scales,
                     uint32_t block_size = kQ8BlockSize);
// The inverse: out[i] = quants[i] * scale of its block.
Status DequantizeQ8Row(const int8_t* quants, const void* scales, DType scale_dtype, size_t n,
                       float* out, uint32_t block_size = kQ8BlockSize);

}  // namespace recur
