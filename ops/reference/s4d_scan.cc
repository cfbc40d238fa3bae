#include "ops/reference/s4d_scan.h"

namespace recur::ops::ref {

void S4dScanChunk(const S4dParams& p, float* x_re, float* x_im, const float* u, size_t u_stride,
                  size_t T, float* y, size_t y_stride) {
  for (size_t t = 0; t < T; ++t) {
    for (size_t c = 0; c < p.h; ++c) {
      const double x = u != nullptr ? u[t * u_stride + c] : 0.0;
      double acc = 0.0;
      for (size_t m = 0; m < p.modes; ++m) {
        const size_t i = m * p.h + c;
        const double xr = x_re[i], xi = x_im[i];
        const double nr = p.a_re[i] * xr - static_cast<double>(p.a_im[i]) * xi + p.b_re[i] * x;
        const double ni = p.a_re[i] * xi + static_cast<double>(p.a_im[i]) * xr + p.b_im[i] * x;
        x_re[i] = static_cast<float>(nr);
        x_im[i] = static_cast<float>(ni);
        acc += p.c_re[i] * nr - static_cast<double>(p.c_im[i]) * ni;
      }
      if (y != nullptr) y[t * y_stride + c] = static_cast<float>(acc);
    }
  }
}

}  // namespace recur::ops::ref
