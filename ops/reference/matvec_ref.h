// Scalar reference twin of ops/matvec.h: the definition the vectorised kernel is tested against.
#pragma once

#include <cstddef>

#include "ops/types.h"

namespace recur::ops::ref {

// y[r] = W[r, :] . x + bias[r] for r in [row_begin, row_end), accumulated in double. For q8_0
// weights and finite x, x is first quantized per block to int16 as the kernel does (see
// ops/matvec-inl.h); an x with inf or NaN is used as it is.
// w: [rows, cols], x: [cols], bias: [rows] or null, y: [rows] (only [row_begin, row_end) written).
void MatVec(const WeightView& w, const float* x, const float* bias, float* y, size_t row_begin,
            size_t row_end);

// The same product with x used as it is for every weight type (no int16 step for q8_0).
void MatVecF32X(const WeightView& w, const float* x, const float* bias, float* y, size_t row_begin,
                size_t row_end);

}  // namespace recur::ops::ref
