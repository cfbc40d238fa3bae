// Scalar reference twin of ops/matvec.h: the definition the vectorised kernel is tested against.
#pragma once

#include <cstddef>

#include "ops/types.h"

namespace recur::ops::ref {

// y[r] = W[r, :] . x + bias[r] for r in [row_begin, row_end), accumulated in double.
// w: [rows, cols], x: [cols], bias: [rows] or null, y: [rows] (only [row_begin, row_end) written).
void MatVec(const WeightView& w, const float* x, const float* bias, float* y, size_t row_begin,
            size_t row_end);

}  // namespace recur::ops::ref
