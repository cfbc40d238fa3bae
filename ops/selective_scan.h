// Mamba-1's selective scan (state-spaces/mamba selective_scan_ref and Mamba.step; MATH.md), in a
// one-token Step form and a T-token Chunk (prefill) form that agree bit for bit
// (Highway-dispatched, vectorised over the state; scalar twins in ops/reference/selective_scan.h).
//
// For channel c with state row h[c, 0..d_state) and A = -exp(A_log) precomputed by the caller:
//   h[c, n] = exp(dt[c] * A[c, n]) * h[c, n] + (dt[c] * x[c]) * B[n]   (Bbar = dt B: Euler)
//   y[c]    = sum_n C[n] * h[c, n] + D[c] * x[c]
// where dt >= 0 (softplus applied by the caller), A <= 0, and B, C are shared by every channel of
// the token. The decay is computed as exp(min(dt A, 0)), so it never exceeds 1 whatever a caller
// passes (the reference twin does the same).
//
// Channels are independent, so every entry point takes a channel range [c_begin, c_end): threads
// each take a range of the same arrays (indices are absolute, not relative to c_begin) and touch
// nothing outside it.
//
// Both forms run the same per-(channel, token) code with the same operation order, so a chunk of
// T tokens leaves exactly the state and outputs of T single steps, and a chunk split anywhere
// leaves exactly what the whole chunk leaves. The exponential is Highway's (a few ulp), not libm's.
#pragma once

#include <cstddef>

namespace recur::ops {

// One token for channels [c_begin, c_end). y may be the very same pointer as x or dt (each y[c]
// is written after x[c] and dt[c] are read); D may be null (no skip term).
// state: [d_inner, d_state]; x, dt, D, y: [d_inner]; A: [d_inner, d_state]; B, C: [d_state].
void SelectiveScanStep(float* state, const float* x, const float* dt, const float* A,
                       const float* B, const float* C, const float* D, size_t d_state,
                       size_t c_begin, size_t c_end, float* y);

// T tokens for channels [c_begin, c_end), in time order for each channel. Strides are in floats
// (>= c_end for x, dt and y; >= d_state for B and C), so every operand can be a column slice of a
// wider matrix (B and C are slices of x_proj's output). y may be the very same pointer as x (with
// the same stride) or dt; D may be null.
// state: [d_inner, d_state]; x: [T, x_stride]; dt: [T, dt_stride]; A: [d_inner, d_state];
// B, C: [T, bc_stride]; D: [d_inner]; y: [T, y_stride].
void SelectiveScanChunk(float* state, const float* x, size_t x_stride, const float* dt,
                        size_t dt_stride, size_t T, const float* A, const float* B, const float* C,
                        size_t bc_stride, const float* D, size_t d_state, size_t c_begin,
                        size_t c_end, float* y, size_t y_stride);

}  // namespace recur::ops
