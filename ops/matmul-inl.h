// Per-target matrix-matrix kernels behind ops/matmul.h.
//
// Y = X W^T is computed GotoBLAS-style. For each panel of PanelRows() rows of W and each slice of
// kSliceCols columns, the panel is converted to f32 and packed once into scratch, transposed into
// micro-panels of nr = kMatMulVecs * Lanes rows: micro-panel j holds
// packed[k][0:nr] = W[n0 + j*nr + 0:nr, k0 + k], so one k step of the micro-kernel loads
// kMatMulVecs contiguous vectors of weights. The micro-kernel keeps a kMatMulMr x nr tile of Y in
// registers: per k it loads kMatMulVecs weight vectors, broadcasts kMatMulMr entries of X, and
// issues kMatMulMr * kMatMulVecs independent FMAs. The packed panel (<= 512 KiB) stays in L2
// while all T tokens stream past it; the kMatMulMr x kSliceCols block of X stays in L1 across the
// micro-panels of a panel. Packing converts 8 (or 4) rows at a time into L1 and transposes 8x8
// blocks in registers, prefetching the rows it will pack next, so that even T = 64 spends little
// time outside the micro-kernel.
//
// Included once per Highway target (toggle guard below).

// No #pragma once: this header is re-included for every target.
#if defined(RECUR_OPS_MATMUL_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef RECUR_OPS_MATMUL_INL_H_
#undef RECUR_OPS_MATMUL_INL_H_
#else
#define RECUR_OPS_MATMUL_INL_H_
#endif

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "hwy/cache_control.h"
#include "hwy/highway.h"
#include "ops/convert-inl.h"
#include "ops/convert.h"
#include "ops/matvec-inl.h"
#include "ops/types.h"

// Target-independent blocking shared with ops/matmul.cc (which sizes the scratch from it).
#ifndef RECUR_OPS_MATMUL_BLOCKING_
#define RECUR_OPS_MATMUL_BLOCKING_
namespace recur::ops::matmul_detail {
// Columns of W (the k dimension) packed per slice: 256 f32 = 1 KiB per packed row, so the kMr x
// kSliceCols block of X (8 KiB for 8 tokens) stays in L1 while micro-panels stream past it.
// Must be a multiple of kQ8Block so q8_0 blocks never straddle slices. 128 and 512 (with 240
// panel rows) measured within 3% at T = 512; 256 was best at T = 64.
inline constexpr size_t kSliceCols = 256;
// Upper bound on the rows of W packed per panel on any target: 512 x 256 f32 = 512 KiB, half of
// a Zen 4/5 L2 (1 MiB), leaving room for the X rows and Y tiles streaming through. It must be at
// least one micro-panel (kMatMulVecs vectors) wide on every target: 48 rows on AVX-512.
inline constexpr size_t kMaxPanelRows = 512;
// Extra floats so that the panel can start on a 64-byte boundary inside any float buffer.
inline constexpr size_t kScratchAlignFloats = 16;
}  // namespace recur::ops::matmul_detail
#endif

HWY_BEFORE_NAMESPACE();
namespace recur::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_ARCH_X86 && HWY_TARGET > HWY_AVX3
// 16 vector registers (SSE4, AVX2): the classic 6 x 2-vector tile, 12 accumulators + 2 weight
// vectors + 1 broadcast = 15 registers, 8 loads per 12 FMAs.
inline constexpr size_t kMatMulMr = 6;
inline constexpr size_t kMatMulVecs = 2;
#elif HWY_TARGET == HWY_SCALAR || HWY_TARGET == HWY_EMU128
// Emulated vectors live in memory anyway; a small tile keeps code size down.
inline constexpr size_t kMatMulMr = 4;
inline constexpr size_t kMatMulVecs = 2;
#else
// 32 vector registers (AVX-512, NEON, SVE): 8 tokens x 3 vectors = 24 accumulators + 3 weight
// vectors + 1 broadcast = 28 registers; 11 loads per 24 FMAs keeps both FMA pipes busy on
// Zen 4/5 (2 FMAs and up to 3 loads per cycle), and 8 divides the usual prefill chunk sizes.
// 6 x 4 and 12 x 2 tiles measured 2-8% slower at T = 512.
inline constexpr size_t kMatMulMr = 8;
inline constexpr size_t kMatMulVecs = 3;
#endif

// ------------------------------------------------------------------ packing

// Converts row `row` of W, columns [k0, k0 + kc), to f32. out: [kc].
HWY_INLINE void ConvertRowSlice(const ops::WeightView& w, size_t row, size_t k0, size_t kc,
                                float* HWY_RESTRICT out) {
  const size_t offset = row * w.cols + k0;
  switch (w.type) {
    case ops::WeightType::kF32:
      std::memcpy(out, static_cast<const float*>(w.data) + offset, kc * sizeof(float));
      return;
    case ops::WeightType::kF16:
      F16ToF32RowImpl(static_cast<const uint16_t*>(w.data) + offset, out, kc);
      return;
    case ops::WeightType::kBF16:
      BF16ToF32RowImpl(static_cast<const uint16_t*>(w.data) + offset, out, kc);
      return;
    case ops::WeightType::kQ8_0: {
      // k0 and kc are multiples of kQ8Block, so the slice holds whole blocks.
      HWY_ALIGN float scales[ops::matmul_detail::kSliceCols / ops::kQ8Block];
      const size_t blocks = kc / ops::kQ8Block;
      const size_t first_block = offset / ops::kQ8Block;
      for (size_t b = 0; b < blocks; ++b) scales[b] = ops::Q8Scale(w, first_block + b);
      DequantizeQ8RowImpl(static_cast<const int8_t*>(w.data) + offset, scales, kc, out);
      return;
    }
  }
}

// Transposes the Lanes(d) x Lanes(d) block v in place (v[i] lane j <-> v[j] lane i), for 4 or 8
// lanes: 32-bit then 64-bit interleaves within 128-bit blocks, then (8 lanes) a swap of
// 128-bit halves. 24 shuffles per 64 floats for 8 lanes instead of 64 scalar moves.
#if HWY_TARGET != HWY_SCALAR
template <class D>
HWY_INLINE void TransposeSquare(D d, hn::Vec<D>* HWY_RESTRICT v) {
  const hn::Repartition<uint64_t, D> d64;
  constexpr size_t kL = hn::MaxLanes(D());
  static_assert(kL == 4 || kL == 8, "TransposeSquare handles 4 or 8 lanes");
  hn::Vec<D> u[kL];
  for (size_t i = 0; i < kL; i += 4) {
    const auto t0 = hn::BitCast(d64, hn::InterleaveLower(d, v[i + 0], v[i + 1]));
    const auto t1 = hn::BitCast(d64, hn::InterleaveUpper(d, v[i + 0], v[i + 1]));
    const auto t2 = hn::BitCast(d64, hn::InterleaveLower(d, v[i + 2], v[i + 3]));
    const auto t3 = hn::BitCast(d64, hn::InterleaveUpper(d, v[i + 2], v[i + 3]));
    // Within each 128-bit block, u[i + m] now holds column m (of that block) of rows i..i+3.
    u[i + 0] = hn::BitCast(d, hn::InterleaveLower(d64, t0, t2));
    u[i + 1] = hn::BitCast(d, hn::InterleaveUpper(d64, t0, t2));
    u[i + 2] = hn::BitCast(d, hn::InterleaveLower(d64, t1, t3));
    u[i + 3] = hn::BitCast(d, hn::InterleaveUpper(d64, t1, t3));
  }
  if constexpr (kL == 4) {
    for (size_t i = 0; i < 4; ++i) v[i] = u[i];
  } else {
    // Columns 0-3 of rows 0-7 are the lower halves of u[0..3] (rows 0-3) and u[4..7] (rows
    // 4-7); columns 4-7 are the upper halves.
    for (size_t m = 0; m < 4; ++m) {
      v[m] = hn::ConcatLowerLower(d, u[m + 4], u[m]);
      v[m + 4] = hn::ConcatUpperUpper(d, u[m + 4], u[m]);
    }
  }
}
#endif  // HWY_TARGET != HWY_SCALAR

// Rows ahead of the one being packed whose slice is prefetched. Packing reads W in slices of
// kSliceCols columns from hundreds of rows, too short a run per row for the hardware
// prefetchers, so packing a matrix streamed from DRAM was latency-bound (8-12 GB/s) without it.
// 16 rows is about the DRAM latency's worth of packing work.
inline constexpr size_t kPackPrefetchRows = 16;

// Prefetches the slice that packing will reach kPackPrefetchRows rows after row index `i`
// (0 <= i < nc) of the panel at rows [n0, n0 + nc), columns [k0, k0 + kc): a later row of this
// slice, or the start of the next slice of the same panel.
HWY_INLINE void PrefetchPackSlice(const ops::WeightView& w, size_t n0, size_t nc, size_t k0,
                                  size_t kc, size_t i) {
  if (kPackPrefetchRows == 0) return;
  size_t target = i + kPackPrefetchRows;
  size_t k = k0;
  if (target >= nc) {
    target -= nc;
    k += kc;
    if (k >= w.cols || target >= nc) return;
  }
  const size_t elem = w.type == ops::WeightType::kF32    ? 4
                      : w.type == ops::WeightType::kQ8_0 ? 1
                                                         : 2;
  const size_t n = n0 + target;
  const size_t count = w.cols - k < kc ? w.cols - k : kc;
  const uint8_t* p = static_cast<const uint8_t*>(w.data) + (n * w.cols + k) * elem;
  for (size_t b = 0; b < count * elem; b += 64) hwy::Prefetch(p + b);
  if (w.type == ops::WeightType::kQ8_0) {
    const size_t scale_bytes = w.scale_type == ops::ScaleType::kF16 ? 2 : 4;
    hwy::Prefetch(static_cast<const uint8_t*>(w.scales) +
                  (n * w.cols + k) / ops::kQ8Block * scale_bytes);
  }
}

// Packs rows [n0, n0 + nc) x columns [k0, k0 + kc) of W into micro-panels of nr rows:
// panel: [ceil(nc / nr), kc, nr], rows past nc zero-filled so the micro-kernel needs no row
// tail. Each weight is converted once, here: kL rows at a time are widened into f32 rows in L1
// (f32 rows are used in place), then transposed kL x kL at a time into the panel.
HWY_NOINLINE inline void PackPanel(const ops::WeightView& w, size_t n0, size_t nc, size_t k0,
                                   size_t kc, size_t nr, float* HWY_RESTRICT panel) {
  // 8 lanes (AVX2, AVX-512) or 4 (SSE4, NEON, EMU128); 1 on HWY_SCALAR, which copies.
  [[maybe_unused]] const hn::CappedTag<float, 8> d;
  constexpr size_t kL = hn::MaxLanes(hn::CappedTag<float, 8>());
  constexpr size_t kSlice = ops::matmul_detail::kSliceCols;
  HWY_ALIGN float rows_f32[kL][kSlice];
  const size_t micro_panels = (nc + nr - 1) / nr;
  for (size_t j = 0; j < micro_panels; ++j) {
    float* HWY_RESTRICT dst = panel + j * kc * nr;
    const size_t valid = nc - j * nr < nr ? nc - j * nr : nr;
    // nr is a multiple of kL on every target (kMatMulVecs whole vectors of >= kL lanes).
    for (size_t i0 = 0; i0 < nr; i0 += kL) {
      // src[l]: [kc] f32 values of row i0 + l of the micro-panel. f32 rows are read in place.
      const float* src[kL];
      for (size_t l = 0; l < kL; ++l) {
        const size_t n = n0 + j * nr + i0 + l;
        if (i0 + l >= valid) {
          std::memset(rows_f32[l], 0, kc * sizeof(float));
          src[l] = rows_f32[l];
          continue;
        }
        PrefetchPackSlice(w, n0, nc, k0, kc, j * nr + i0 + l);
        if (w.type == ops::WeightType::kF32) {
          src[l] = static_cast<const float*>(w.data) + n * w.cols + k0;
        } else {
          ConvertRowSlice(w, n, k0, kc, rows_f32[l]);
          src[l] = rows_f32[l];
        }
      }
      size_t k = 0;
#if HWY_TARGET != HWY_SCALAR
      for (; k + kL <= kc; k += kL) {
        hn::Vec<decltype(d)> v[kL];
        for (size_t l = 0; l < kL; ++l) v[l] = hn::LoadU(d, src[l] + k);
        TransposeSquare(d, v);
        for (size_t m = 0; m < kL; ++m) hn::StoreU(v[m], d, dst + (k + m) * nr + i0);
      }
#endif
      for (; k < kc; ++k) {
        for (size_t l = 0; l < kL; ++l) dst[k * nr + i0 + l] = src[l][k];
      }
    }
  }
}

// ------------------------------------------------------------------ micro-kernel

// Y tile += X tile . packed micro-panel, for kTokens tokens and kVecs vectors of W rows.
// x: [kTokens, kc] at row stride ldx, panel: [kc, kVecs * Lanes(df)],
// y: [kTokens, nr_valid] at row stride ldy. On the first slice (first == true) the tile is
// initialised from bias: [nr_valid] (or zero if null) instead of from y.
template <size_t kTokens, size_t kVecs, class DF>
HWY_INLINE void MicroKernel(DF df, const float* HWY_RESTRICT x, size_t ldx,
                            const float* HWY_RESTRICT panel, size_t kc, float* HWY_RESTRICT y,
                            size_t ldy, const float* HWY_RESTRICT bias, bool first,
                            size_t nr_valid) {
  using V = hn::Vec<DF>;
  const size_t N = hn::Lanes(df);
  const size_t nr = kVecs * N;
  V acc[kTokens][kVecs];
  for (size_t t = 0; t < kTokens; ++t) {
    for (size_t v = 0; v < kVecs; ++v) acc[t][v] = hn::Zero(df);
  }
  for (size_t k = 0; k < kc; ++k) {
    V wv[kVecs];
    for (size_t v = 0; v < kVecs; ++v) wv[v] = hn::Load(df, panel + k * nr + v * N);
    for (size_t t = 0; t < kTokens; ++t) {
      const V xb = hn::Set(df, x[t * ldx + k]);
      for (size_t v = 0; v < kVecs; ++v) acc[t][v] = hn::MulAdd(wv[v], xb, acc[t][v]);
    }
  }
  if (nr_valid == nr) {
    for (size_t t = 0; t < kTokens; ++t) {
      for (size_t v = 0; v < kVecs; ++v) {
        float* out = y + t * ldy + v * N;
        const V prev = first ? (bias != nullptr ? hn::LoadU(df, bias + v * N) : hn::Zero(df))
                             : hn::LoadU(df, out);
        hn::StoreU(hn::Add(acc[t][v], prev), df, out);
      }
    }
    return;
  }
  // Last micro-panel of a panel: only nr_valid columns of Y exist.
  for (size_t t = 0; t < kTokens; ++t) {
    for (size_t v = 0; v < kVecs; ++v) {
      if (v * N >= nr_valid) break;
      const size_t n = nr_valid - v * N < N ? nr_valid - v * N : N;
      float* out = y + t * ldy + v * N;
      V prev = hn::Zero(df);
      if (!first) {
        prev = LoadTail(df, out, n);
      } else if (bias != nullptr) {
        prev = LoadTail(df, bias + v * N, n);
      }
      StoreTail(df, hn::Add(acc[t][v], prev), out, n);
    }
  }
}

// Runs the micro-kernel for a tile of tokens < kMatMulMr tokens (the tail of T).
template <size_t kTokens, class DF>
HWY_INLINE void MicroKernelTail(DF df, size_t tokens, const float* HWY_RESTRICT x, size_t ldx,
                                const float* HWY_RESTRICT panel, size_t kc, float* HWY_RESTRICT y,
                                size_t ldy, const float* HWY_RESTRICT bias, bool first,
                                size_t nr_valid) {
  if constexpr (kTokens > 0) {
    if (tokens == kTokens) {
      MicroKernel<kTokens, kMatMulVecs>(df, x, ldx, panel, kc, y, ldy, bias, first, nr_valid);
    } else {
      MicroKernelTail<kTokens - 1>(df, tokens, x, ldx, panel, kc, y, ldy, bias, first, nr_valid);
    }
  }
}

// ------------------------------------------------------------------ driver

// Rows of W per packed panel on this target: the most whole micro-panels within
// kMaxPanelRows (ops/matmul.cc sizes the scratch for kMaxPanelRows on every target).
template <class DF>
HWY_INLINE size_t PanelRows(DF df) {
  const size_t nr = kMatMulVecs * hn::Lanes(df);
  const size_t rows = ops::matmul_detail::kMaxPanelRows / nr * nr;
  return rows != 0 ? rows : nr;
}

// For q8_0 weights the matvec takes x through int16 (QuantizeXToI16); the matmul rounds X the
// same way, so that a chunk and the same tokens one at a time compute the same products (they
// still differ where f32 summation order upstream moves an input across a rounding step). Writes
// x rounded: [tokens, kc] (kc % kQ8Block == 0) to out and returns true, or false (out
// unspecified) if x holds an inf or NaN, to use x as it is.
// x: [tokens, ldx].
HWY_INLINE bool RoundXThroughI16(const float* HWY_RESTRICT x, size_t ldx, size_t tokens, size_t kc,
                                 float* HWY_RESTRICT out) {
  HWY_ALIGN int16_t xq[ops::matmul_detail::kSliceCols];
  float xs[ops::matmul_detail::kSliceCols / ops::kQ8Block + kQ8ScaleChunk];
  for (size_t t = 0; t < tokens; ++t) {
    if (!QuantizeXToI16(x + t * ldx, kc, xq, xs)) return false;
    for (size_t c = 0; c < kc; ++c) {
      out[t * kc + c] = static_cast<float>(xq[c]) * xs[c / ops::kQ8Block];
    }
  }
  return true;
}

// w: [rows, cols], X: [T, cols], bias: [rows] or null, Y: [T, rows],
// scratch: [MatMulScratchFloats(cols)].
HWY_NOINLINE inline void MatMulImpl(const ops::WeightView& w, const float* HWY_RESTRICT X, size_t T,
                                    const float* HWY_RESTRICT bias, float* HWY_RESTRICT Y,
                                    size_t row_begin, size_t row_end, float* HWY_RESTRICT scratch) {
  const hn::ScalableTag<float> df;
  const size_t nr = kMatMulVecs * hn::Lanes(df);
  const size_t rows = w.rows;
  const size_t cols = w.cols;
  if (T == 0 || row_begin >= row_end) return;
  if (T == 1) {
    // One token is a matvec: it reads W once with no packing, which here would cost as much as
    // the arithmetic.
    MatVecImpl(w, X, bias, Y, row_begin, row_end);
    return;
  }
  if (cols == 0) {
    // No k slices at all: Y is just the bias.
    for (size_t t = 0; t < T; ++t) {
      for (size_t r = row_begin; r < row_end; ++r) {
        Y[t * rows + r] = bias != nullptr ? bias[r] : 0.0f;
      }
    }
    return;
  }
  // The panel starts on a 64-byte boundary so the micro-kernel's weight loads are aligned.
  const uintptr_t address = reinterpret_cast<uintptr_t>(scratch);
  float* HWY_RESTRICT panel = reinterpret_cast<float*>((address + 63) & ~uintptr_t{63});
  const size_t panel_rows = PanelRows(df);
  const bool round_x = w.type == ops::WeightType::kQ8_0;
  HWY_ALIGN float x_rounded[kMatMulMr * ops::matmul_detail::kSliceCols];
  for (size_t n0 = row_begin; n0 < row_end; n0 += panel_rows) {
    const size_t nc = row_end - n0 < panel_rows ? row_end - n0 : panel_rows;
    const size_t micro_panels = (nc + nr - 1) / nr;
    for (size_t k0 = 0; k0 < cols; k0 += ops::matmul_detail::kSliceCols) {
      const size_t kc =
          cols - k0 < ops::matmul_detail::kSliceCols ? cols - k0 : ops::matmul_detail::kSliceCols;
      const bool first = k0 == 0;
      PackPanel(w, n0, nc, k0, kc, nr, panel);
      for (size_t t0 = 0; t0 < T; t0 += kMatMulMr) {
        const size_t tokens = T - t0 < kMatMulMr ? T - t0 : kMatMulMr;
        const float* x = X + t0 * cols + k0;
        size_t ldx = cols;
        if (round_x && RoundXThroughI16(x, cols, tokens, kc, x_rounded)) {
          x = x_rounded;
          ldx = kc;
        }
        for (size_t j = 0; j < micro_panels; ++j) {
          const size_t n = n0 + j * nr;
          const size_t nr_valid = nc - j * nr < nr ? nc - j * nr : nr;
          const float* micro_panel = panel + j * kc * nr;
          float* y = Y + t0 * rows + n;
          const float* b = bias != nullptr ? bias + n : nullptr;
          if (tokens == kMatMulMr) {
            MicroKernel<kMatMulMr, kMatMulVecs>(df, x, ldx, micro_panel, kc, y, rows, b, first,
                                                nr_valid);
          } else {
            MicroKernelTail<kMatMulMr - 1>(df, tokens, x, ldx, micro_panel, kc, y, rows, b, first,
                                           nr_valid);
          }
        }
      }
    }
  }
}

}  // namespace recur::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // RECUR_OPS_MATMUL_INL_H_
