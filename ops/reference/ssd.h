// Scalar twins of ops/ssd.h: the SSD recurrence one token at a time, in double precision.
// Same layouts and conventions as ops/ssd.h.
#pragma once

#include <cstddef>

#include "ops/ssd.h"

namespace recur::ops::ref {

// One token for heads [head_begin, head_end): the state is read, updated in double and rounded
// once to float. state: [H, P, N]; y: [H * P].
void SsdStep(const SsdDims& dims, const SsdInputs& in, float* state, float* y, size_t head_begin,
             size_t head_end);

// T sequential steps of every head with the state held in double throughout (rounded to float
// once at the end), so the result is the exact recurrence up to double rounding: what the
// chunked kernel is measured against. state: [H, P, N]; y: [T, y_stride].
void SsdScan(const SsdDims& dims, const SsdInputs& in, size_t T, float* state, float* y,
             size_t y_stride);

}  // namespace recur::ops::ref
