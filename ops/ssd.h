// Mamba-2's state space duality (SSD) scan (MATH.md, Mamba-2), in a one-token Step form and a
// chunked prefill form (Highway-dispatched; scalar twins in ops/reference/ssd.h).
//
// Per head h (of H) with scalar A_h < 0, state S_h: [P, N] (P = head_dim, N = d_state), and per
// token t the inputs x_t: [P], dt_t > 0 (already softplus'ed), B_t, C_t: [N] of the head's group:
//   a_t = exp(dt_t A_h)
//   S_t = a_t S_{t-1} + (dt_t x_t) B_t^T
//   y_t = S_t C_t + D_h x_t
// Heads [g H/G, (g+1) H/G) share group g's B and C (G = n_groups divides H).
//
// The chunked form cuts T tokens into chunks of L (the last one may be shorter) and computes,
// per chunk and head, with cum_t = sum_{r<=t} a'_r (a'_r = dt_r A_h, the log decay) and the
// segment sums seg[t, s] = sum_{s<r<=t} a'_r:
//   y_t = exp(cum_t) C_t . S_prev                              (state carried into the chunk)
//       + sum_{s<=t} (C_t . B_s) exp(seg[t, s]) dt_s x_s       (inside the chunk)
//       + D_h x_t
//   S_next = exp(cum_{l-1}) S_prev + sum_s exp(seg[l-1, s]) dt_s x_s B_s^T
// seg is accumulated directly over the masked terms (seg[t, s] = seg[t-1, s] + a'_t), never as
// the difference cum_t - cum_s, which loses all precision once |cum| is large (MATH.md).
// The C_t . B_s "Gram" matrices depend only on the group, so they are computed once per group and
// chunk (SsdChunkGram) and shared by the group's heads (SsdChunkScan).
//
// State layout: [H, P, N] (head, head_dim, d_state), as mamba_ssm's ssm_state; zero for a fresh
// stream. Chunked and step forms agree to rounding (not bit for bit).
#pragma once

#include <cstddef>

namespace recur::ops {

// Rows of the intra-chunk weight matrix SsdChunkScan builds at a time (part of its scratch):
// enough to amortise its register tiles over many rows, small enough that the block stays in L1
// for chunks of up to 256 tokens.
inline constexpr size_t kSsdRowBlock = 16;

// Sizes of one SSD layer.
struct SsdDims {
  size_t n_heads = 0;   // H
  size_t head_dim = 0;  // P
  size_t d_state = 0;   // N
  size_t n_groups = 1;  // G, divides H.
};

// Where a layer's per-token inputs are. Row t of each is at base + t * stride (strides in floats),
// so all of them can be column slices of one wider matrix (the conv output and in_proj output).
struct SsdInputs {
  const float* x = nullptr;  // [T, x_stride]: head h's P values at x + t * x_stride + h * P.
  size_t x_stride = 0;
  const float* dt = nullptr;  // [T, dt_stride]: head h's step (> 0) at dt + t * dt_stride + h.
  size_t dt_stride = 0;
  const float* B = nullptr;  // [T, bc_stride]: group g's N values at B + t * bc_stride + g * N.
  const float* C = nullptr;  // [T, bc_stride], as B.
  size_t bc_stride = 0;
  const float* A = nullptr;  // [H]: the (negative) continuous-time decay per head.
  const float* D = nullptr;  // [H] or null (no skip connection).
};

// One token for heads [head_begin, head_end) (strides unused). Other heads' state and y are
// untouched, so threads may each take a head range.
// state: [H, P, N]; y: [H * P].
void SsdStep(const SsdDims& dims, const SsdInputs& in, float* state, float* y, size_t head_begin,
             size_t head_end);

// Tokens per chunk actually used for T tokens: min(chunk, T) (at least 1).
size_t SsdChunkLength(size_t T, size_t chunk);
// Number of (group, chunk) items of SsdChunkGram: G * ceil(T / SsdChunkLength(T, chunk)).
size_t SsdGramItems(const SsdDims& dims, size_t T, size_t chunk);
// Floats of the Gram buffer: SsdGramItems * L * L with L = SsdChunkLength(T, chunk).
size_t SsdGramFloats(const SsdDims& dims, size_t T, size_t chunk);

// Gram matrices for items [item_begin, item_end): item i = g * n_chunks + c holds
// gram[i][t][s] = C_{cL+t} . B_{cL+s} of group g for s <= t (entries above the diagonal are not
// written). Items are independent, so threads may each take a range.
// gram: [G * n_chunks, L, L].
void SsdChunkGram(const SsdDims& dims, const SsdInputs& in, size_t T, size_t chunk,
                  size_t item_begin, size_t item_end, float* gram);

// Floats of scratch one SsdChunkScan call needs, whatever its head range.
size_t SsdScanScratchFloats(const SsdDims& dims, size_t T, size_t chunk);

// T tokens in chunks of `chunk` for heads [head_begin, head_end), reading the Gram matrices that
// SsdChunkGram wrote for the same inputs, T and chunk; updates those heads' state as T steps
// would. Other heads' state and y columns are untouched, so threads may each take a head range
// (each with its own scratch). y must not overlap the inputs.
// gram: [SsdGramFloats]; state: [H, P, N]; y: [T, y_stride] (head h at y + t * y_stride + h * P);
// scratch: [SsdScanScratchFloats].
void SsdChunkScan(const SsdDims& dims, const SsdInputs& in, size_t T, size_t chunk,
                  const float* gram, float* state, float* y, size_t y_stride, size_t head_begin,
                  size_t head_end, float* scratch);

// Both phases on the calling thread (tests, small models).
// scratch: [SsdPrefillScratchFloats].
size_t SsdPrefillScratchFloats(const SsdDims& dims, size_t T, size_t chunk);
void SsdPrefill(const SsdDims& dims, const SsdInputs& in, size_t T, size_t chunk, float* state,
                float* y, size_t y_stride, float* scratch);

}  // namespace recur::ops
