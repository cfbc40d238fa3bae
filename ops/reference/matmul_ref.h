// Scalar reference twin of ops/matmul.h: the definition the blocked kernel is tested against.
#pragma once

#include <cstddef>

#include "ops/types.h"

namespace recur::ops::ref {

// Y[t, r] = X[t, :] . W[r, :] + bias[r] for t < T and r in [row_begin, row_end), accumulated in
// double. w: [rows, cols], X: [T, cols], bias: [rows] or null, Y: [T, rows] (only columns
// [row_begin, row_end) written). Each token is one ref::MatVec (so q8_0 weights take X through
// int16 as there).
void MatMul(const WeightView& w, const float* X, size_t T, const float* bias, float* Y,
            size_t row_begin, size_t row_end);

}  // namespace recur::ops::ref
