#include "ops/reference/selective_scan.h"

#include <algorithm>
#include <cmath>

namespace recur::ops::ref {

void SelectiveScanStep(float* state, const float* x, const float* dt, const float* A,
                       const float* B, const float* C, const float* D, size_t d_state,
                       size_t c_begin, size_t c_end, float* y) {
  for (size_t c = c_begin; c < c_end; ++c) {
    const double xc = x[c], dtc = dt[c];
    float* h = state + c * d_state;
    const float* a = A + c * d_state;
    double acc = 0.0;
    for (size_t n = 0; n < d_state; ++n) {
      const double hn = std::exp(std::min(dtc * a[n], 0.0)) * h[n] + dtc * B[n] * xc;
      h[n] = static_cast<float>(hn);
      acc += hn * C[n];
    }
    if (D != nullptr) acc += static_cast<double>(D[c]) * xc;
    y[c] = static_cast<float>(acc);
  }
}

void SelectiveScanChunk(float* state, const float* x, size_t x_stride, const float* dt,
                        size_t dt_stride, size_t T, const float* A, const float* B, const float* C,
                        size_t bc_stride, const float* D, size_t d_state, size_t c_begin,
                        size_t c_end, float* y, size_t y_stride) {
  for (size_t t = 0; t < T; ++t) {
    SelectiveScanStep(state, x + t * x_stride, dt + t * dt_stride, A, B + t * bc_stride,
                      C + t * bc_stride, D, d_state, c_begin, c_end, y + t * y_stride);
  }
}

}  // namespace recur::ops::ref
