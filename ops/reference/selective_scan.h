// Scalar twins of ops/selective_scan.h (same layouts and channel ranges). Each (channel, token)
// update is computed in double from the stored f32 state and rounded once when stored, so tests
// measure the SIMD kernels' own error.
#pragma once

#include <cstddef>

namespace recur::ops::ref {

// state: [d_inner, d_state]; x, dt, D, y: [d_inner]; A: [d_inner, d_state]; B, C: [d_state].
// D may be null; y may equal x or dt.
void SelectiveScanStep(float* state, const float* x, const float* dt, const float* A,
                       const float* B, const float* C, const float* D, size_t d_state,
                       size_t c_begin, size_t c_end, float* y);

// T reference steps. x: [T, x_stride]; dt: [T, dt_stride]; B, C: [T, bc_stride]; y: [T, y_stride].
void SelectiveScanChunk(float* state, const float* x, size_t x_stride, const float* dt,
                        size_t dt_stride, size_t T, const float* A, const float* B, const float* C,
                        size_t bc_stride, const float* D, size_t d_state, size_t c_begin,
                        size_t c_end, float* y, size_t y_stride);

}  // namespace recur::ops::ref
