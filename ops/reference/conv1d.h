// Scalar twins of ops/conv1d.h (same state layout [K-1, C], time-major), accumulating each output
// in double and rounding once.
#pragma once

#include <cstddef>

namespace recur::ops::ref {

// state: [width-1, channels]; x, out: [channels]; w: [channels, width]; bias: [channels] or null.
void Conv1dStep(float* state, const float* x, const float* w, const float* bias, size_t channels,
                size_t width, bool silu, float* out);

// T reference steps. state: [width-1, channels]; x: [T, x_stride]; y: [T, y_stride].
void Conv1dChunk(float* state, const float* x, size_t x_stride, size_t T, const float* w,
                 const float* bias, size_t channels, size_t width, bool silu, float* y,
                 size_t y_stride);

}  // namespace recur::ops::ref
