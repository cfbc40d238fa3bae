// Scalar twins of ops/hippo_scan.h (same layouts). Each update is computed in double from the
// stored f32 state and rounded once when stored, so tests measure the SIMD kernels' own error.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ops/hippo_scan.h"

namespace recur::ops::ref {

void HippoLegsChunk(float* state, size_t n, size_t d, const float* u, size_t u_stride, size_t T,
                    uint64_t k0, LegsMethod method);
void HippoDenseChunk(float* state, size_t n, size_t d, const float* Abar, const float* Bbar,
                     const float* u, size_t u_stride, size_t T);

}  // namespace recur::ops::ref
