// The HiPPO memory's per-sample update over d channels (Highway-dispatched, vectorised across
// channels; scalar twins in ops/reference/hippo_scan.h). The matrices come from ops/hippo.h.
//
// Layout: state [n, d], coefficient-major, so that one coefficient of consecutive channels is
// one vector; inputs u: [T, u_stride], channel i of sample t at u[t * u_stride + i].
//
// LegS (scale-invariant, c' = -(1/t) A c + (1/t) B u) uses the O(n) structure of A (MATH.md):
// with s_i = sqrt(2i+1) and S_i = sum_{k<=i} s_k c_k, (A_su c)_i = i c_i - s_i S_i, and
// (I - l A_su) z = v is a forward substitution. Sample index k (0-based, counted by the caller):
//   k = 0:    c = e_0 u                              (the projection of a constant)
//   euler:    c += (A_su c + B u) / k
//   backward: (I - A_su / k) c+ = c + B u / k
//   bilinear: (I - A_su / (2k)) c+ = (I + A_su / (2k)) c + B u / k
// Each costs ~6 multiply-adds per coefficient; a dense n x n update costs 2n.
//
// Time-invariant measures (LegT, LagT, FouT, or any (Abar, Bbar)) use the dense form
// c+ = Abar c + Bbar u.
#pragma once

#include <cstddef>
#include <cstdint>

namespace recur::ops {

enum class LegsMethod : int { kEuler = 0, kBackward = 1, kBilinear = 2 };

// Floats of scratch the kernels below need for n coefficients over d channels.
size_t HippoScanScratchFloats(size_t n, size_t d);

// T samples of the LegS memory; sample t has index k0 + t. state: [n, d] in place.
void HippoLegsChunk(float* state, size_t n, size_t d, const float* u, size_t u_stride, size_t T,
                    uint64_t k0, LegsMethod method, float* scratch);

// T samples of c+ = Abar c + Bbar u. state: [n, d]; Abar: [n, n]; Bbar: [n].
void HippoDenseChunk(float* state, size_t n, size_t d, const float* Abar, const float* Bbar,
                     const float* u, size_t u_stride, size_t T, float* scratch);

}  // namespace recur::ops
