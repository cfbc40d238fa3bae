// Scalar twins of ops/norm.h: statistics and the output element in double, rounded once to float.
// Same conventions as ops/norm.h (null weight / bias allowed, z null means no gate).
#pragma once

#include <cstddef>

namespace recur::ops::ref {

// x, out: [n]; weight: [n] or null.
void RMSNorm(const float* x, const float* weight, float eps, float* out, size_t n);

// x, out: [n]; weight, bias: [n] or null.
void LayerNorm(const float* x, const float* weight, const float* bias, float eps, float* out,
               size_t n);

// x, out: [groups * group_size]; weight, bias: [groups * group_size] or null.
void GroupNorm(const float* x, size_t groups, size_t group_size, const float* weight,
               const float* bias, float eps, float* out);

// y, out: [n]; z: [n] or null; weight: [n] or null; n a multiple of group_size (0 means n).
void GatedRMSNorm(const float* y, const float* z, const float* weight, size_t group_size, float eps,
                  bool norm_before_gate, float* out, size_t n);

}  // namespace recur::ops::ref
