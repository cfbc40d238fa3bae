// Scalar twins of ops/wkv.h (same layouts and head ranges). Each state element and output is
// computed in double from the stored f32 values and rounded once, so tests measure the SIMD
// kernels' own error.
#pragma once

#include <cstddef>

namespace recur::ops::ref {

void Wkv5Step(float* state, const float* r, const float* k, const float* v, const float* w,
              const float* u, size_t head_size, size_t h_begin, size_t h_end, float* y);

void Wkv7Step(float* state, const float* r, const float* w, const float* k, const float* v,
              const float* a, const float* b, size_t head_size, size_t h_begin, size_t h_end,
              float* y);

}  // namespace recur::ops::ref
