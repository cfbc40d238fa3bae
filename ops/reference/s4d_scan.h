// Scalar twin of ops/s4d_scan.h, in double from the stored f32 state, rounded once per store.
#pragma once

#include <cstddef>

#include "ops/s4d_scan.h"

namespace recur::ops::ref {

void S4dScanChunk(const S4dParams& p, float* x_re, float* x_im, const float* u, size_t u_stride,
                  size_t T, float* y, size_t y_stride);

}  // namespace recur::ops::ref
