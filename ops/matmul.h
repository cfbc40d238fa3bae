// Matrix-matrix product for every weight type: prefill and chunked work (T tokens at once).
// Compute-bound: W is converted to f32 once per call into packed panels that stay in L2, and a
// register-blocked micro-kernel reuses each loaded weight vector across several tokens.
#pragma once

#include <cstddef>

#include "ops/types.h"

namespace recur::ops {

// Floats of scratch one MatMul call on a matrix with `cols` columns needs (a packed panel of
// W, converted to f32, plus room to align it). Independent of T and of the row range.
size_t MatMulScratchFloats(size_t cols);

// Y[t, r] = X[t, :] . W[r, :] + bias[r] for t < T and r in [row_begin, row_end), i.e.
// Y = X W^T (+ bias) restricted to columns [row_begin, row_end) of Y; other columns are untouched,
// so threads may each take a row range of W and share X and Y.
// w: [rows, cols] of any WeightType, X: [T, cols], bias: [rows] or null, Y: [T, rows],
// scratch: [MatMulScratchFloats(w.cols)] owned by the calling thread, or null to use a
// thread_local buffer (allocated on a thread's first call, reused afterwards).
// Each weight is read and converted exactly once per call. Requires row_end <= w.rows and, for
// q8_0, cols % kQ8Block == 0. Dispatches to the best Highway target once per call.
void MatMul(const WeightView& w, const float* X, size_t T, const float* bias, float* Y,
            size_t row_begin, size_t row_end, float* scratch);

}  // namespace recur::ops
