#include "ops/reference/conv1d.h"

#include <cmath>

namespace recur::ops::ref {

void Conv1dStep(float* state, const float* x, const float* w, const float* bias, size_t channels,
                size_t width, bool silu, float* out) {
  const size_t K = width;
  for (size_t c = 0; c < channels; ++c) {
    double acc = bias != nullptr ? bias[c] : 0.0;
    for (size_t k = 0; k + 1 < K; ++k)
      acc += static_cast<double>(w[c * K + k]) * state[k * channels + c];
    acc += static_cast<double>(w[c * K + K - 1]) * x[c];
    if (silu) acc = acc / (1.0 + std::exp(-acc));
    const float xc = x[c];  // Read before out[c] is written: out may equal x.
    for (size_t j = 0; j + 2 < K; ++j) state[j * channels + c] = state[(j + 1) * channels + c];
    if (K >= 2) state[(K - 2) * channels + c] = xc;
    out[c] = static_cast<float>(acc);
  }
}

void Conv1dChunk(float* state, const float* x, size_t x_stride, size_t T, const float* w,
                 const float* bias, size_t channels, size_t width, bool silu, float* y,
                 size_t y_stride) {
  for (size_t t = 0; t < T; ++t) {
    Conv1dStep(state, x + t * x_stride, w, bias, channels, width, silu, y + t * y_stride);
  }
}

}  // namespace recur::ops::ref
