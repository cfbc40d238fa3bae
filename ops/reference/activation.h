// Scalar twins of ops/activation.h, each computed in double with <cmath> and rounded once to
// float: close to the correctly rounded value, so tests measure the SIMD kernels' real error.
#pragma once

#include <cstddef>

namespace recur::ops::ref {

// x, out: [n]; out may equal x.
void Exp(const float* x, float* out, size_t n);
void Sigmoid(const float* x, float* out, size_t n);
void SiLU(const float* x, float* out, size_t n);
void Softplus(const float* x, float* out, size_t n);  // x > 20 ? x : log1p(exp(x))
void Tanh(const float* x, float* out, size_t n);
void Elu(const float* x, float* out, size_t n);
void Relu(const float* x, float* out, size_t n);
void GeluTanh(const float* x, float* out, size_t n);
void GeluErf(const float* x, float* out, size_t n);
// a, gate, out: [n]; out = a * SiLU(gate).
void MulSiLU(const float* a, const float* gate, float* out, size_t n);

// The per-element functions, for other references to build on.
float SigmoidScalar(float x);
float SiLUScalar(float x);
float SoftplusScalar(float x);

}  // namespace recur::ops::ref
