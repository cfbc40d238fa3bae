// Normalisations over float rows (Highway-dispatched): RMSNorm, LayerNorm, GroupNorm (per-group
// statistics, per-channel affine, as RWKV's ln_x uses) and Mamba-2's gated RMSNorm.
//
// Statistics are accumulated with Kahan-compensated f32 vector sums combined in double, and the
// reciprocal standard deviation is formed in double and rounded once, so a kernel's output is
// within a few ulp of the exact normalisation of its (f32) inputs whatever the row length.
// Scalar twins (double accumulation) live in ops/reference/norm.h.
//
// Conventions for every function here:
//  - weight / bias may be null (no scale / no shift).
//  - out may be the very same pointer as the input row(s) (in-place normalisation); partial
//    overlap is not allowed. weight and bias must not overlap out.
//  - *Rows forms normalise `rows` rows in one dispatch; strides are in floats (>= the row length),
//    so rows can be slices of a wider matrix (e.g. z inside Mamba's in_proj output).
//  - The output element is formed in f32 as ((x - mean) * rstd) * weight + bias (RMSNorm: no mean),
//    fused multiply-add for the last step where the target has FMA.
#pragma once

#include <cstddef>

namespace recur::ops {

// out = x / sqrt(mean(x^2) + eps) * weight.
// x, out: [n]; weight: [n] or null.
void RMSNorm(const float* x, const float* weight, float eps, float* out, size_t n);

// RMSNorm of each row. x: [rows, x_stride]; out: [rows, out_stride]; weight: [n] or null.
void RMSNormRows(const float* x, size_t x_stride, const float* weight, float eps, float* out,
                 size_t out_stride, size_t rows, size_t n);

// out = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias, var the biased (1/n) variance, computed
// in two passes (no E[x^2] - E[x]^2 cancellation).
// x, out: [n]; weight, bias: [n] or null.
void LayerNorm(const float* x, const float* weight, const float* bias, float eps, float* out,
               size_t n);

// LayerNorm of each row. x: [rows, x_stride]; out: [rows, out_stride]; weight, bias: [n] or null.
void LayerNormRows(const float* x, size_t x_stride, const float* weight, const float* bias,
                   float eps, float* out, size_t out_stride, size_t rows, size_t n);

// torch.nn.GroupNorm(groups, groups * group_size) on one token: channel c belongs to group
// c / group_size; each group is normalised with its own mean and variance, then the per-channel
// affine is applied.
// x, out: [groups * group_size]; weight, bias: [groups * group_size] or null.
void GroupNorm(const float* x, size_t groups, size_t group_size, const float* weight,
               const float* bias, float eps, float* out);

// GroupNorm of each row. x: [rows, x_stride]; out: [rows, out_stride];
// weight, bias: [groups * group_size] or null.
void GroupNormRows(const float* x, size_t x_stride, size_t groups, size_t group_size,
                   const float* weight, const float* bias, float eps, float* out, size_t out_stride,
                   size_t rows);

// Mamba-2's RMSNormGated (mamba_ssm.ops.triton.layernorm_gated, no bias), per group of
// group_size channels (group_size = d_ssm / n_groups; group_size == n means one group):
//   norm_before_gate == false (Mamba-2's setting): g = y * SiLU(z); out = g * rstd(g) * weight
//   norm_before_gate == true:                      out = y * rstd(y) * weight * SiLU(z)
// with rstd(v) = 1 / sqrt(mean over the group of v^2 + eps). z may be null (no gate: a grouped
// RMSNorm). n should be a multiple of group_size (a shorter last group is normalised on its own).
// out may equal y or z.
// y, out: [n]; z: [n] or null; weight: [n] or null.
void GatedRMSNorm(const float* y, const float* z, const float* weight, size_t group_size, float eps,
                  bool norm_before_gate, float* out, size_t n);

// GatedRMSNorm of each row. y: [rows, y_stride]; z: [rows, z_stride] or null;
// out: [rows, out_stride]; weight: [n] or null.
void GatedRMSNormRows(const float* y, size_t y_stride, const float* z, size_t z_stride,
                      const float* weight, size_t group_size, float eps, bool norm_before_gate,
                      float* out, size_t out_stride, size_t rows, size_t n);

}  // namespace recur::ops
