// Causal depthwise conv1d over channels (Mamba's short convolution), with optional bias and fused
// SiLU, in a one-token Step form and a T-token Chunk (prefill) form that agree bit for bit
// (Highway-dispatched; scalar twins in ops/reference/conv1d.h).
//
// For channel c with taps w[c, 0..K-1] (PyTorch's depthwise Conv1d weight [C, 1, K] squeezed, run
// with padding K-1 and the output cut to the first T steps):
//   y_t[c] = bias[c] + sum_{k<K} w[c, k] * x_{t-(K-1)+k}[c],   then SiLU if asked,
// so w[c, K-1] multiplies the current input, and inputs before the stream started are zero.
//
// State layout: time-major [K-1, C], chosen so that every access in both forms is a contiguous
// vector of channels: state[j * C + c] is channel c's input from K-1-j tokens ago (j = 0 the
// oldest, j = K-2 the previous token). A fresh stream's state is all zeros. (PyTorch and the HF
// cache keep [C, K-1] / [C, K] channel-major; transpose when importing a saved state.)
//
// Both forms accumulate bias, then tap 0 (oldest) ... tap K-1 (current) with one multiply-add per
// tap in that order, so a chunk of T tokens gives exactly the outputs and the final state of T
// single steps, and a chunk split anywhere gives exactly the same as the whole chunk.
#pragma once

#include <cstddef>

namespace recur::ops {

// Widest kernel the SIMD code handles: it transposes the K taps of one vector of channels into a
// stack buffer of kMaxConvWidth vectors. Mamba-1/2 use K = 4; 16 leaves room for other short convs.
inline constexpr size_t kMaxConvWidth = 16;

// Floats of state one stream needs: (width - 1) * channels.
inline constexpr size_t Conv1dStateSize(size_t channels, size_t width) {
  return width > 0 ? (width - 1) * channels : 0;
}

// One token: out = conv(state, x), then state slides by one (x becomes its newest row).
// Requires 1 <= width <= kMaxConvWidth. out may equal x.
// state: [width-1, channels]; x, out: [channels]; w: [channels, width]; bias: [channels] or null.
void Conv1dStep(float* state, const float* x, const float* w, const float* bias, size_t channels,
                size_t width, bool silu, float* out);

// T tokens at once (prefill): y[t] = conv over (state, x[0..t]); afterwards state holds the last
// width-1 inputs (from x, or still partly from the old state when T < width-1). Strides are in
// floats (>= channels), so x and y can be column slices of wider matrices. y must not overlap x or
// state.  state: [width-1, channels]; x: [T, x_stride]; y: [T, y_stride]; w: [channels, width];
// bias: [channels] or null.
void Conv1dChunk(float* state, const float* x, size_t x_stride, size_t T, const float* w,
                 const float* bias, size_t channels, size_t width, bool silu, float* y,
                 size_t y_stride);

}  // namespace recur::ops
