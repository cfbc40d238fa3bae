// The S4D diagonal recurrence over h channels (Highway-dispatched, vectorised across channels;
// scalar twin in ops/reference/s4d_scan.h). Per channel and complex mode m:
//   x_m <- Abar_m x_m + Bbar_m u,   y = sum_m Re(C_m x_m)
// (C carries S4D's factor 2 for conjugate-pair modes; the block adds D u). Discretised
// parameters come from ops/hippo.h (S4dDiscretise), stored as f32 planes [modes, h].
#pragma once

#include <cstddef>

namespace recur::ops {

struct S4dParams {
  size_t modes = 0, h = 0;
  // Each [modes, h]: mode-major, so one mode of consecutive channels is one vector.
  const float* a_re = nullptr;
  const float* a_im = nullptr;
  const float* b_re = nullptr;
  const float* b_im = nullptr;
  const float* c_re = nullptr;
  const float* c_im = nullptr;
};

// T samples. x_re, x_im: [modes, h] state in place. u: [T, u_stride] (null: zero input);
// y: [T, y_stride] (null: state only).
void S4dScanChunk(const S4dParams& p, float* x_re, float* x_im, const float* u, size_t u_stride,
                  size_t T, float* y, size_t y_stride);

}  // namespace recur::ops
