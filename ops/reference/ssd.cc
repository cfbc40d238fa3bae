#include "ops/reference/ssd.h"

#include <cmath>
#include <vector>

namespace recur::ops::ref {
namespace {

// Token t of head h: S = exp(dt A) S + dt x B^T; y = S C + D x, all in double.
// S: [P, N] of this head.
void StepHead(const SsdDims& dims, const SsdInputs& in, size_t t, size_t h, double* S, float* y) {
  const size_t P = dims.head_dim, N = dims.d_state;
  const size_t g = h / (dims.n_heads / dims.n_groups);
  const float* x = in.x + t * in.x_stride + h * P;
  const float* B = in.B + t * in.bc_stride + g * N;
  const float* C = in.C + t * in.bc_stride + g * N;
  const double dt = in.dt[t * in.dt_stride + h];
  const double decay = std::exp(dt * static_cast<double>(in.A[h]));
  const double skip = in.D != nullptr ? in.D[h] : 0.0;
  for (size_t p = 0; p < P; ++p) {
    double acc = 0.0;
    for (size_t n = 0; n < N; ++n) {
      double& s = S[p * N + n];
      s = decay * s + dt * static_cast<double>(x[p]) * static_cast<double>(B[n]);
      acc += s * static_cast<double>(C[n]);
    }
    y[p] = static_cast<float>(acc + skip * static_cast<double>(x[p]));
  }
}

}  // namespace

void SsdStep(const SsdDims& dims, const SsdInputs& in, float* state, float* y, size_t head_begin,
             size_t head_end) {
  const size_t PN = dims.head_dim * dims.d_state;
  std::vector<double> S(PN);
  for (size_t h = head_begin; h < head_end; ++h) {
    for (size_t i = 0; i < PN; ++i) S[i] = state[h * PN + i];
    StepHead(dims, in, 0, h, S.data(), y + h * dims.head_dim);
    for (size_t i = 0; i < PN; ++i) state[h * PN + i] = static_cast<float>(S[i]);
  }
}

void SsdScan(const SsdDims& dims, const SsdInputs& in, size_t T, float* state, float* y,
             size_t y_stride) {
  const size_t PN = dims.head_dim * dims.d_state;
  std::vector<double> S(PN);
  for (size_t h = 0; h < dims.n_heads; ++h) {
    for (size_t i = 0; i < PN; ++i) S[i] = state[h * PN + i];
    for (size_t t = 0; t < T; ++t)
      StepHead(dims, in, t, h, S.data(), y + t * y_stride + h * dims.head_dim);
    for (size_t i = 0; i < PN; ++i) state[h * PN + i] = static_cast<float>(S[i]);
  }
}

}  // namespace recur::ops::ref
