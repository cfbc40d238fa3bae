// Element-wise activations over float vectors (Highway-dispatched).
//
// Each has an out-of-place form f(x, out, n) (out may be the very same pointer as x; partial
// overlap is not allowed) and an in-place form fInPlace(x, n). One dispatch per call covers the
// whole range. NaN inputs give NaN outputs, Relu's included.
// Scalar twins, computed in double, live in ops/reference/activation.h.
//
// Accuracy against the correctly rounded value (measured over the test ranges; the tests pin it):
// Exp, Sigmoid, SiLU, Softplus within a few ulp; Tanh, Elu within ~4-8 ulp (Highway's Expm1 is
// documented at 4 ulp); GeluErf within ~4e-7 * |x| absolute (a rational erf approximation).
#pragma once

#include <cstddef>

namespace recur::ops {

// Inputs above this are returned unchanged by Softplus, as torch.nn.functional.softplus does with
// its default threshold 20 (there log1p(exp(x)) and x differ by less than 2e-9, below f32 ulp).
inline constexpr float kSoftplusThreshold = 20.0f;

// exp(x): 0 below about -104 (subnormal from -87.3), +inf above about 88.72.  x, out: [n]
void Exp(const float* x, float* out, size_t n);
void ExpInPlace(float* x, size_t n);

// 1 / (1 + exp(-x)), computed from exp(-|x|) so that neither tail overflows.  x, out: [n]
void Sigmoid(const float* x, float* out, size_t n);
void SigmoidInPlace(float* x, size_t n);

// x * sigmoid(x) (a.k.a. swish).  x, out: [n]
void SiLU(const float* x, float* out, size_t n);
void SiLUInPlace(float* x, size_t n);

// x > kSoftplusThreshold ? x : log1p(exp(x)).  x, out: [n]
void Softplus(const float* x, float* out, size_t n);
void SoftplusInPlace(float* x, size_t n);

// tanh(x).  x, out: [n]
void Tanh(const float* x, float* out, size_t n);
void TanhInPlace(float* x, size_t n);

// ELU with alpha = 1: x > 0 ? x : expm1(x).  x, out: [n]
void Elu(const float* x, float* out, size_t n);
void EluInPlace(float* x, size_t n);

// x < 0 ? 0 : x (NaN passes through, as in torch.relu).  x, out: [n]
void Relu(const float* x, float* out, size_t n);
void ReluInPlace(float* x, size_t n);

// GELU, tanh approximation (torch approximate="tanh"):
// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), evaluated as x * sigmoid(2 sqrt(2/pi) (...)),
// which is the same function without the cancellation of 1 + tanh for negative x.  x, out: [n]
void GeluTanh(const float* x, float* out, size_t n);
void GeluTanhInPlace(float* x, size_t n);

// GELU, exact form (torch approximate="none"): 0.5 x (1 + erf(x / sqrt(2))).  x, out: [n]
void GeluErf(const float* x, float* out, size_t n);
void GeluErfInPlace(float* x, size_t n);

// out[i] = a[i] * SiLU(gate[i]) (the gating of Mamba's output and of GLU-style MLPs).
// out may equal a or gate.  a, gate, out: [n]
void MulSiLU(const float* a, const float* gate, float* out, size_t n);

}  // namespace recur::ops
