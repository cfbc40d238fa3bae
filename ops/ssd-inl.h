// Per-target code for ops/ssd.h.
//
// Every product in the chunked scan has the shape out[r, :] = beta out[r, :] + sum_k l(r, k) v_k,
// a row of P (or s) values built from scalar weights times contiguous rows, so one register-tiled
// helper (RowCombine) vectorises all of them over the head dimension P without horizontal sums:
// the state is kept transposed ([N, P]) in scratch while a head's chunks are scanned.

#if defined(RECUR_OPS_SSD_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef RECUR_OPS_SSD_INL_H_
#undef RECUR_OPS_SSD_INL_H_
#else
#define RECUR_OPS_SSD_INL_H_
#endif

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "hwy/highway.h"
#include "ops/activation-inl.h"
#include "ops/elementwise-inl.h"
#include "ops/ssd.h"

HWY_BEFORE_NAMESPACE();
namespace recur::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Scratch regions start on 64-byte boundaries.
inline constexpr size_t SsdRound16(size_t n) { return (n + 15) / 16 * 16; }

template <class D>
HWY_INLINE float SsdReduceSum(D d, hn::Vec<D> v) {
  return hn::GetLane(hn::SumOfLanes(d, v));
}

// Loads `count` floats (count <= lanes) at p; reads nothing past p + count.
template <class D>
HWY_INLINE hn::Vec<D> SsdLoad(D d, const float* HWY_RESTRICT p, size_t count) {
  return count == hn::Lanes(d) ? hn::LoadU(d, p) : LoadTail(d, p, count);
}

template <class D>
HWY_INLINE void SsdStore(D d, hn::Vec<D> v, float* HWY_RESTRICT p, size_t count) {
  if (count == hn::Lanes(d)) {
    hn::StoreU(v, d, p);
  } else {
    SafeBlendedStore(v, hn::FirstN(d, count), d, p);
  }
}

// Output of one tile row: out = beta * out + rscale * acc (out is not read when beta == 0).
template <class D>
HWY_INLINE void SsdFinish(D d, hn::Vec<D> acc, float rscale, float beta, float* HWY_RESTRICT out,
                          size_t count) {
  hn::Vec<D> v = hn::Mul(acc, hn::Set(d, rscale));
  if (beta != 0.0f) v = hn::MulAdd(hn::Set(d, beta), SsdLoad(d, out, count), v);
  SsdStore(d, v, out, count);
}

// Widest RowCombine tile, in vectors: 4 rows x 4 vectors = 16 accumulators + 4 row vectors + a
// broadcast fit the 32 registers of AVX-512 (and NEON/SVE); with 16 registers (SSE4, AVX2) 4 x 2
// = 8 accumulators + 2 + 1 leave room for the compiler. Wider tiles load each broadcast weight
// once for more FMAs: per k a 4 x 4 tile issues 16 FMAs for 8 loads, a 4 x 2 tile 8 for 6.
#if (HWY_ARCH_X86 && HWY_TARGET > HWY_AVX3) || HWY_TARGET == HWY_SCALAR || HWY_TARGET == HWY_EMU128
inline constexpr size_t kSsdMaxTileVecs = 2;
#else
inline constexpr size_t kSsdMaxTileVecs = 4;
#endif

// A kR x kV tile of RowCombine: rows [0, kR) of lhs/out (already offset), kV vectors of columns
// starting at rhs/out (already offset); the last vector holds `count` valid lanes (all when
// kFull; a partial vector only comes with kV == 1).
template <size_t kR, size_t kV, bool kFull, class D>
HWY_INLINE void SsdTile(D d, size_t K, const float* HWY_RESTRICT lhs, size_t lhs_row, size_t lhs_k,
                        const float* HWY_RESTRICT rhs, size_t rhs_stride, size_t count,
                        const float* HWY_RESTRICT rscale, float beta, float* HWY_RESTRICT out,
                        size_t out_stride) {
  static_assert(kR == 1 || kR == 4, "tiles are 1 or 4 rows");
  static_assert(kV == 1 || kV == 2 || kV == 4, "tiles are 1, 2 or 4 vectors wide");
  static_assert(kFull || kV == 1, "only one-vector tiles are partial");
  using V = hn::Vec<D>;
  const size_t N = hn::Lanes(d);
  // Named accumulators rather than an array: sizeless SVE vectors cannot live in arrays.
  V a00 = hn::Zero(d), a01 = hn::Zero(d), a02 = hn::Zero(d), a03 = hn::Zero(d);
  V a10 = hn::Zero(d), a11 = hn::Zero(d), a12 = hn::Zero(d), a13 = hn::Zero(d);
  V a20 = hn::Zero(d), a21 = hn::Zero(d), a22 = hn::Zero(d), a23 = hn::Zero(d);
  V a30 = hn::Zero(d), a31 = hn::Zero(d), a32 = hn::Zero(d), a33 = hn::Zero(d);
  for (size_t k = 0; k < K; ++k) {
    const float* HWY_RESTRICT r = rhs + k * rhs_stride;
    const V r0 = kFull ? hn::LoadU(d, r) : LoadTail(d, r, count);
    const V r1 = kV >= 2 ? hn::LoadU(d, r + N) : r0;
    const V r2 = kV == 4 ? hn::LoadU(d, r + 2 * N) : r0;
    const V r3 = kV == 4 ? hn::LoadU(d, r + 3 * N) : r0;
    const float* HWY_RESTRICT l = lhs + k * lhs_k;
    const auto row = [&](const V lv, V& c0, V& c1, V& c2, V& c3) {
      c0 = hn::MulAdd(lv, r0, c0);
      if constexpr (kV >= 2) c1 = hn::MulAdd(lv, r1, c1);
      if constexpr (kV == 4) {
        c2 = hn::MulAdd(lv, r2, c2);
        c3 = hn::MulAdd(lv, r3, c3);
      }
    };
    row(hn::Set(d, l[0]), a00, a01, a02, a03);
    if constexpr (kR == 4) {
      row(hn::Set(d, l[lhs_row]), a10, a11, a12, a13);
      row(hn::Set(d, l[2 * lhs_row]), a20, a21, a22, a23);
      row(hn::Set(d, l[3 * lhs_row]), a30, a31, a32, a33);
    }
  }
  const auto finish_row = [&](size_t i, V c0, V c1, V c2, V c3) {
    const float rs = rscale != nullptr ? rscale[i] : 1.0f;
    float* HWY_RESTRICT o = out + i * out_stride;
    SsdFinish(d, c0, rs, beta, o, kFull ? N : count);
    if constexpr (kV >= 2) SsdFinish(d, c1, rs, beta, o + N, N);
    if constexpr (kV == 4) {
      SsdFinish(d, c2, rs, beta, o + 2 * N, N);
      SsdFinish(d, c3, rs, beta, o + 3 * N, N);
    }
  };
  finish_row(0, a00, a01, a02, a03);
  if constexpr (kR == 4) {
    finish_row(1, a10, a11, a12, a13);
    finish_row(2, a20, a21, a22, a23);
    finish_row(3, a30, a31, a32, a33);
  }
}

template <size_t kR, class D>
HWY_INLINE void SsdRowTiles(D d, size_t K, size_t W, const float* HWY_RESTRICT lhs, size_t lhs_row,
                            size_t lhs_k, const float* HWY_RESTRICT rhs, size_t rhs_stride,
                            const float* HWY_RESTRICT rscale, float beta, float* HWY_RESTRICT out,
                            size_t out_stride) {
  const size_t N = hn::Lanes(d);
  size_t c = 0;
  if constexpr (kSsdMaxTileVecs >= 4) {
    for (; c + 4 * N <= W; c += 4 * N) {
      SsdTile<kR, 4, true>(d, K, lhs, lhs_row, lhs_k, rhs + c, rhs_stride, N, rscale, beta, out + c,
                           out_stride);
    }
  }
  for (; c + 2 * N <= W; c += 2 * N) {
    SsdTile<kR, 2, true>(d, K, lhs, lhs_row, lhs_k, rhs + c, rhs_stride, N, rscale, beta, out + c,
                         out_stride);
  }
  for (; c + N <= W; c += N) {
    SsdTile<kR, 1, true>(d, K, lhs, lhs_row, lhs_k, rhs + c, rhs_stride, N, rscale, beta, out + c,
                         out_stride);
  }
  if (c < W) {
    SsdTile<kR, 1, false>(d, K, lhs, lhs_row, lhs_k, rhs + c, rhs_stride, W - c, rscale, beta,
                          out + c, out_stride);
  }
}

// out[r, :W] = beta * out[r, :W] + rscale[r] * sum_{k<K} lhs[r lhs_row + k lhs_k] rhs[k, :W] for
// r < rows; rscale may be null (ones); out is not read when beta == 0.
// lhs: strided [rows, K]; rhs: [K, rhs_stride]; out: [rows, out_stride].
template <class D>
HWY_INLINE void RowCombine(D d, size_t rows, size_t K, size_t W, const float* HWY_RESTRICT lhs,
                           size_t lhs_row, size_t lhs_k, const float* HWY_RESTRICT rhs,
                           size_t rhs_stride, const float* HWY_RESTRICT rscale, float beta,
                           float* HWY_RESTRICT out, size_t out_stride) {
  size_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    SsdRowTiles<4>(d, K, W, lhs + r * lhs_row, lhs_row, lhs_k, rhs, rhs_stride,
                   rscale != nullptr ? rscale + r : nullptr, beta, out + r * out_stride,
                   out_stride);
  }
  for (; r < rows; ++r) {
    SsdRowTiles<1>(d, K, W, lhs + r * lhs_row, lhs_row, lhs_k, rhs, rhs_stride,
                   rscale != nullptr ? rscale + r : nullptr, beta, out + r * out_stride,
                   out_stride);
  }
}

// Returns a . b over n floats.
template <class D>
HWY_INLINE float SsdDot(D d, const float* HWY_RESTRICT a, const float* HWY_RESTRICT b, size_t n) {
  const size_t N = hn::Lanes(d);
  auto acc = hn::Zero(d);
  size_t i = 0;
  for (; i + N <= n; i += N) acc = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), acc);
  if (i < n) acc = hn::MulAdd(LoadTail(d, a + i, n - i), LoadTail(d, b + i, n - i), acc);
  return SsdReduceSum(d, acc);
}

// ------------------------------ Exported kernels (one dispatch per call)
// `inline` lets several .cc files include this header; HWY_NOINLINE keeps one body per target.

inline HWY_NOINLINE void SsdStep(const SsdDims& dims, const SsdInputs& in,
                                 float* HWY_RESTRICT state /*[H, P, N]*/,
                                 float* HWY_RESTRICT y /*[H * P]*/, size_t head_begin,
                                 size_t head_end) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const size_t P = dims.head_dim, NS = dims.d_state;
  const size_t heads_per_group = dims.n_heads / dims.n_groups;
  for (size_t h = head_begin; h < head_end; ++h) {
    const size_t g = h / heads_per_group;
    const float* HWY_RESTRICT Bg = in.B + g * NS;
    const float* HWY_RESTRICT Cg = in.C + g * NS;
    const float dt = in.dt[h];
    const auto decay = hn::Set(d, std::exp(dt * in.A[h]));
    const float skip = in.D != nullptr ? in.D[h] : 0.0f;
    const float* HWY_RESTRICT xh = in.x + h * P;
    for (size_t p = 0; p < P; ++p) {
      // One pass over the state row: decay, add dt x B, and dot with C while it is in registers.
      float* HWY_RESTRICT row = state + (h * P + p) * NS;
      const auto coef = hn::Set(d, dt * xh[p]);
      auto acc = hn::Zero(d);
      size_t n = 0;
      for (; n + N <= NS; n += N) {
        const auto s =
            hn::MulAdd(coef, hn::LoadU(d, Bg + n), hn::Mul(decay, hn::LoadU(d, row + n)));
        hn::StoreU(s, d, row + n);
        acc = hn::MulAdd(s, hn::LoadU(d, Cg + n), acc);
      }
      if (n < NS) {
        const size_t count = NS - n;
        const auto s = hn::MulAdd(coef, LoadTail(d, Bg + n, count),
                                  hn::Mul(decay, LoadTail(d, row + n, count)));
        SafeBlendedStore(s, hn::FirstN(d, count), d, row + n);
        acc = hn::MulAdd(s, LoadTail(d, Cg + n, count), acc);
      }
      y[h * P + p] = SsdReduceSum(d, acc) + skip * xh[p];
    }
  }
}

inline HWY_NOINLINE void SsdChunkGram(const SsdDims& dims, const SsdInputs& in, size_t T,
                                      size_t chunk, size_t item_begin, size_t item_end,
                                      float* HWY_RESTRICT gram /*[G * n_chunks, L, L]*/) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  const size_t N = hn::Lanes(d);
  const size_t NS = dims.d_state;
  const size_t L = SsdChunkLength(T, chunk);
  const size_t n_chunks = (T + L - 1) / L;
  for (size_t item = item_begin; item < item_end; ++item) {
    const size_t g = item / n_chunks, c = item % n_chunks;
    const size_t t0 = c * L, l = std::min(L, T - t0);
    const float* HWY_RESTRICT B0 = in.B + t0 * in.bc_stride + g * NS;
    const float* HWY_RESTRICT C0 = in.C + t0 * in.bc_stride + g * NS;
    float* HWY_RESTRICT out = gram + item * L * L;
    for (size_t t = 0; t < l; ++t) {
      const float* HWY_RESTRICT ct = C0 + t * in.bc_stride;
      float* HWY_RESTRICT row = out + t * L;
      size_t s = 0;
      // Four columns at a time share each load of C_t.
      for (; s + 4 <= t + 1; s += 4) {
        const float* HWY_RESTRICT b0 = B0 + s * in.bc_stride;
        const float* HWY_RESTRICT b1 = b0 + in.bc_stride;
        const float* HWY_RESTRICT b2 = b1 + in.bc_stride;
        const float* HWY_RESTRICT b3 = b2 + in.bc_stride;
        V s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
        size_t n = 0;
        for (; n + N <= NS; n += N) {
          const V cv = hn::LoadU(d, ct + n);
          s0 = hn::MulAdd(cv, hn::LoadU(d, b0 + n), s0);
          s1 = hn::MulAdd(cv, hn::LoadU(d, b1 + n), s1);
          s2 = hn::MulAdd(cv, hn::LoadU(d, b2 + n), s2);
          s3 = hn::MulAdd(cv, hn::LoadU(d, b3 + n), s3);
        }
        if (n < NS) {
          const size_t count = NS - n;
          const V cv = LoadTail(d, ct + n, count);
          s0 = hn::MulAdd(cv, LoadTail(d, b0 + n, count), s0);
          s1 = hn::MulAdd(cv, LoadTail(d, b1 + n, count), s1);
          s2 = hn::MulAdd(cv, LoadTail(d, b2 + n, count), s2);
          s3 = hn::MulAdd(cv, LoadTail(d, b3 + n, count), s3);
        }
        row[s] = SsdReduceSum(d, s0);
        row[s + 1] = SsdReduceSum(d, s1);
        row[s + 2] = SsdReduceSum(d, s2);
        row[s + 3] = SsdReduceSum(d, s3);
      }
      for (; s <= t; ++s) row[s] = SsdDot(d, ct, B0 + s * in.bc_stride, NS);
    }
  }
}

inline HWY_NOINLINE void SsdChunkScan(const SsdDims& dims, const SsdInputs& in, size_t T,
                                      size_t chunk, const float* HWY_RESTRICT gram,
                                      float* HWY_RESTRICT state /*[H, P, N]*/,
                                      float* HWY_RESTRICT y /*[T, y_stride]*/, size_t y_stride,
                                      size_t head_begin, size_t head_end,
                                      float* HWY_RESTRICT scratch) {
  const hn::ScalableTag<float> d;
  const size_t P = dims.head_dim, NS = dims.d_state;
  const size_t heads_per_group = dims.n_heads / dims.n_groups;
  const size_t L = SsdChunkLength(T, chunk);
  const size_t n_chunks = (T + L - 1) / L;
  // Scratch: the head's state transposed to [N, P], so that every product below runs along P;
  // a block of rows of the intra-chunk weights; the chunk's x rows scaled by their decay to the
  // chunk's end; per-token vectors of the chunk.
  float* HWY_RESTRICT st = scratch;                                 // [N, P]
  float* HWY_RESTRICT weights = st + SsdRound16(NS * P);            // [kSsdRowBlock, L]
  float* HWY_RESTRICT xw = weights + SsdRound16(kSsdRowBlock * L);  // [L, P]
  float* HWY_RESTRICT seg = xw + SsdRound16(L * P);                 // [L]
  float* HWY_RESTRICT dts = seg + SsdRound16(L);                    // [L]
  float* HWY_RESTRICT log_decay = dts + SsdRound16(L);              // [L]
  float* HWY_RESTRICT decay_in = log_decay + SsdRound16(L);         // [L]
  float* HWY_RESTRICT to_end = decay_in + SsdRound16(L);            // [L]

  for (size_t h = head_begin; h < head_end; ++h) {
    const size_t g = h / heads_per_group;
    const float A = in.A[h];
    const float skip = in.D != nullptr ? in.D[h] : 0.0f;
    float* HWY_RESTRICT S = state + h * P * NS;
    for (size_t p = 0; p < P; ++p) {
      for (size_t n = 0; n < NS; ++n) st[n * P + p] = S[p * NS + n];
    }
    for (size_t c = 0; c < n_chunks; ++c) {
      const size_t t0 = c * L, l = std::min(L, T - t0);
      const float* HWY_RESTRICT G = gram + (g * n_chunks + c) * L * L;
      const float* HWY_RESTRICT x0 = in.x + t0 * in.x_stride + h * P;
      const float* HWY_RESTRICT B0 = in.B + t0 * in.bc_stride + g * NS;
      const float* HWY_RESTRICT C0 = in.C + t0 * in.bc_stride + g * NS;
      float* HWY_RESTRICT y0 = y + t0 * y_stride + h * P;

      // decay_in[t] = exp(cum_t), cum_t = sum_{r<=t} dt_r A: how much of the carried state
      // survives to token t. A running sum, not a difference, so it is accurate.
      float cum = 0.0f;
      for (size_t s = 0; s < l; ++s) {
        dts[s] = in.dt[(t0 + s) * in.dt_stride + h];
        log_decay[s] = dts[s] * A;
        cum += log_decay[s];
        decay_in[s] = cum;
      }
      Map1(d, decay_in, decay_in, l, [](auto dd, auto v) { return ExpV(dd, v); });

      // 1. The carried state's contribution: y_t = exp(cum_t) C_t . S_prev.
      RowCombine(d, l, NS, P, C0, in.bc_stride, 1, st, P, decay_in, 0.0f, y0, y_stride);

      // 2. Inside the chunk: y_t += sum_{s<=t} (C_t . B_s) exp(seg[t, s]) dt_s x_s + D x_t, with
      // seg's row t grown from row t-1 by adding the new token's log decay to every earlier s.
      for (size_t tb = 0; tb < l; tb += kSsdRowBlock) {
        const size_t rows = std::min(kSsdRowBlock, l - tb);
        const size_t K = tb + rows;
        for (size_t i = 0; i < rows; ++i) {
          const size_t t = tb + i;
          const float at = log_decay[t];
          Map1(d, seg, seg, t, [at](auto dd, auto v) { return hn::Add(v, hn::Set(dd, at)); });
          seg[t] = 0.0f;
          float* HWY_RESTRICT row = weights + i * L;
          Map3(d, G + t * L, seg, dts, row, t + 1, [](auto dd, auto cb, auto sg, auto dt) {
            return hn::Mul(hn::Mul(cb, ExpV(dd, sg)), dt);
          });
          row[t] += skip;
          for (size_t s = t + 1; s < K; ++s) row[s] = 0.0f;
        }
        RowCombine(d, rows, K, P, weights, L, 1, x0, in.x_stride, nullptr, 1.0f, y0 + tb * y_stride,
                   y_stride);
      }

      // 3. The state after the chunk: S = exp(cum_{l-1}) S + sum_s exp(seg[l-1, s]) dt_s x_s B_s^T,
      // seg now holding row l-1. In the transposed layout, with xw_s = exp(seg[l-1, s]) dt_s x_s:
      // st[n, :] = exp(cum_{l-1}) st[n, :] + sum_s B_s[n] xw_s.
      Map2(d, seg, dts, to_end, l,
           [](auto dd, auto sg, auto dt) { return hn::Mul(ExpV(dd, sg), dt); });
      for (size_t s = 0; s < l; ++s) {
        const float ws = to_end[s];
        Map1(d, x0 + s * in.x_stride, xw + s * P, P,
             [ws](auto dd, auto v) { return hn::Mul(v, hn::Set(dd, ws)); });
      }
      RowCombine(d, NS, l, P, B0, 1, in.bc_stride, xw, P, nullptr, decay_in[l - 1], st, P);
    }
    for (size_t p = 0; p < P; ++p) {
      for (size_t n = 0; n < NS; ++n) S[p * NS + n] = st[n * P + p];
    }
  }
}

}  // namespace recur::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // RECUR_OPS_SSD_INL_H_
