// Per-target matrix-vector kernels behind ops/matvec.h.
//
// Decode-time matvec is bound by memory bandwidth: every weight is read once and used once. The
// kernels therefore aim to keep W one ascending stream with enough cache misses in flight and the
// core's work per byte small: rows are read one after the other (x stays in L1), with software
// prefetch ahead of the hardware prefetchers where it measured faster, each row has two
// independent accumulators so FMA latency never limits an in-cache matrix, and the horizontal
// sums of 8 rows happen together.
//
// Included once per Highway target (toggle guard below); other per-target code may call
// MatVecImpl directly without a second dispatch.

// No #pragma once: this header is re-included for every target.
#if defined(RECUR_OPS_MATVEC_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef RECUR_OPS_MATVEC_INL_H_
#undef RECUR_OPS_MATVEC_INL_H_
#else
#define RECUR_OPS_MATVEC_INL_H_
#endif

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "hwy/cache_control.h"
#include "hwy/highway.h"
#include "ops/convert-inl.h"
#include "ops/convert.h"
#include "ops/matvec.h"
#include "ops/types.h"

HWY_BEFORE_NAMESPACE();
namespace recur::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Rows computed per call of a row kernel: the kernels read them one after the other and keep one
// accumulator per row, whose lanes are summed together at the end (SumRowsOfLanes), so 8 rows
// share one reduction. On targets with 16 vector registers the idle rows' accumulators may
// live on the stack: each is written once per row, which costs little.
inline constexpr size_t kMatVecRows = 8;

// How W is read. A decode step is a sequence of matvecs over matrices far larger than the caches,
// so the kernels are bound by how fast one core streams W from DRAM. Rows are contiguous, so
// reading them one after the other makes W a single ascending stream, the pattern the hardware
// prefetchers and DRAM serve best; on top, each step of the f16, bf16 and q8_0 kernels prefetches
// the line kStreamAheadBytes further on (into later rows near a row's end; f32 rows do better
// without it, see F32Weights). Reading a group of 4-8 rows side by side (one x load shared by the
// rows) instead makes 4-8 streams a row apart; on Zen 5, with the read
// bandwidth probed around each run, that measured 0.70-0.77 of it for 768 x 3072 f16, bf16 and
// q8_0, against 0.85-0.93 read row by row, and rwkv7-0.1b decode went from 0.84-0.88 to
// 0.89-0.92 (f32) and from 0.69-0.74 to 0.83-0.91 (q8_0) of the read bandwidth. Without the
// software prefetch a single row stream measured 0.81 instead of 0.93 (q8_0); 3-24 KiB ahead
// measured alike for q8_0, and 2 KiB worse than 4-8 KiB for f32 and f16 (docs/kernels.md).
inline constexpr size_t kStreamAheadBytes = 8192;

// Prefetches the cache lines covering `bytes` bytes that a row stream at p will read `distance`
// bytes from now. Prefetches past the end of W are harmless: they never fault.
HWY_INLINE void PrefetchAhead(const void* p, size_t bytes, size_t distance) {
  // Integer arithmetic: the address may lie past the end of W, where pointer arithmetic is
  // undefined even though the prefetch itself is not.
  const uintptr_t ahead = reinterpret_cast<uintptr_t>(p) + distance;
  for (size_t b = 0; b < bytes; b += 64) {
    hwy::Prefetch(reinterpret_cast<const uint8_t*>(ahead + b));
  }
}

// How each dense weight type is loaded as f32 vectors, and whether its rows take the software
// prefetch when one core streams W alone (kPrefetchAlone; MatVecSource::kMemory). f32 does not:
// one f32 line is four FMAs, so the core issues loads as fast as the hardware prefetchers bring
// lines in, and prefetching as well only disturbs them. On Zen 5, one core streaming f32 rows of
// 768 or 3072 columns measured 40-41 GB/s without it (the bandwidth probe's rate) and 37-39 GB/s
// with it (every line or one in 2, 8 or 64; 4 or 8 KiB ahead; into L1 or L2); rwkv7-0.1b f32
// decode went from 0.87-0.88 of the read bandwidth to 0.92-0.94 without it, mamba-130m f32 from
// 0.87 to 0.92 (interleaved runs). When the other cores stream too (kMemoryShared: a matvec split
// over threads) memory answers more slowly and the prefetch pays again: rwkv7-0.1b f32 on 2
// threads read 0.95 of the bandwidth with it and 0.88 without. f16 and bf16 convert each line to
// 32 lanes before the FMAs, and even alone measured 0.82-0.85 of the bandwidth without the
// prefetch against 0.87-0.92 with it (768 x 3072 and 65536 x 768).
struct F32Weights {
  using T = float;
  static constexpr bool kPrefetchAlone = false;
  template <class DF>
  static HWY_INLINE hn::Vec<DF> Load(DF df, const T* HWY_RESTRICT p) {
    return hn::LoadU(df, p);
  }
  template <class DF>
  static HWY_INLINE hn::Vec<DF> LoadTail(DF df, const T* HWY_RESTRICT p, size_t n) {
    return HWY_NAMESPACE::LoadTail(df, p, n);
  }
};

struct F16Weights {
  using T = uint16_t;
  static constexpr bool kPrefetchAlone = true;
  template <class DF>
  static HWY_INLINE hn::Vec<DF> Load(DF df, const T* HWY_RESTRICT p) {
    return LoadF16AsF32(df, p);
  }
  template <class DF>
  static HWY_INLINE hn::Vec<DF> LoadTail(DF df, const T* HWY_RESTRICT p, size_t n) {
    return LoadTailF16AsF32(df, p, n);
  }
};

struct BF16Weights {
  using T = uint16_t;
  static constexpr bool kPrefetchAlone = true;
  template <class DF>
  static HWY_INLINE hn::Vec<DF> Load(DF df, const T* HWY_RESTRICT p) {
    return LoadBF16AsF32(df, p);
  }
  template <class DF>
  static HWY_INLINE hn::Vec<DF> LoadTail(DF df, const T* HWY_RESTRICT p, size_t n) {
    return LoadTailBF16AsF32(df, p, n);
  }
};

// Folds pairs of vectors (even lanes plus odd lanes) until every row occupies one lane: kCount
// vectors in which each row spans kPerRow lanes become kCount / 2 with kPerRow / 2, and a last
// vector folds onto itself. Row order is kept: vector i then holds rows i * (N / kPerRow)...
template <size_t kCount, size_t kPerRow, class DF>
HWY_INLINE void FoldRows(DF df, hn::Vec<DF>* HWY_RESTRICT acc) {
#if HWY_TARGET == HWY_SCALAR
  (void)df;
  (void)acc;  // One lane: nothing to fold.
#else
  if constexpr (kCount > 1 && kPerRow > 1) {
    for (size_t i = 0; i < kCount / 2; ++i) {
      acc[i] = hn::Add(hn::ConcatEven(df, acc[2 * i + 1], acc[2 * i]),
                       hn::ConcatOdd(df, acc[2 * i + 1], acc[2 * i]));
    }
    FoldRows<kCount / 2, kPerRow / 2>(df, acc);
  } else if constexpr (kPerRow > 1) {
    acc[0] = hn::Add(hn::ConcatEven(df, acc[0], acc[0]), hn::ConcatOdd(df, acc[0], acc[0]));
    FoldRows<1, kPerRow / 2>(df, acc);
  }
#endif
}

// out[r] = the sum of acc[r]'s lanes for r < kRows (a power of two); acc is overwritten. A
// SumOfLanes per row spends a shuffle and an add per halving and a move out per row; folding
// pairs of rows into one vector shares those shuffles between the rows: for 8 rows of 16
// lanes, 24 instructions instead of about 80. On rows only a few blocks long (RWKV-7's 768 x 64
// LoRA matrices) the reduction took as long as the products: with this, 768 x 64 q8_0 from L3
// went from 12 to 19 GB/s, 768 x 32 from 7 to 10. (The dense kernels' rows are long; for
// them it measured no better than SumOfLanes per row.) The matvec targets have vectors of a
// fixed size (SVE compiles the NEON code), so MaxLanes is the lane count.
//
// Every row's lanes are added in the same tree (adjacent pairs, then adjacent pairs of those...)
// whatever kRows is, a single row included, so a row's sum does not depend on which rows it was
// grouped with: MatVec gives the same bits for any row range and either MatVecSource, which
// batched decoding relies on.
template <size_t kRows, class DF>
HWY_INLINE void SumRowsOfLanes(DF df, hn::Vec<DF>* HWY_RESTRICT acc, float* HWY_RESTRICT out) {
  constexpr size_t N = hn::MaxLanes(df);
  if constexpr (N == 1) {
    for (size_t r = 0; r < kRows; ++r) out[r] = hn::GetLane(acc[r]);
  } else {
    FoldRows<kRows, N>(df, acc);
    if constexpr (N >= kRows) {  // One vector, the rows in its first lanes.
      HWY_ALIGN float lanes[N];
      hn::Store(acc[0], df, lanes);
      for (size_t r = 0; r < kRows; ++r) out[r] = lanes[r];
    } else {  // kRows / N vectors of N rows each.
      for (size_t i = 0; i < kRows / N; ++i) hn::StoreU(acc[i], df, out + i * N);
    }
  }
}

// out[r] = W[r, :] . x for kRows consecutive rows of a dense weight matrix, read one row after
// the other, kStreamAheadBytes ahead prefetched if kPrefetch. w: [kRows, cols] at row stride
// cols, x: [cols] (from L1: reloaded per row), out: [kRows].
template <size_t kRows, class Weights, bool kPrefetch, class DF>
HWY_INLINE void DotRowsDense(DF df, const typename Weights::T* HWY_RESTRICT w, size_t cols,
                             const float* HWY_RESTRICT x, float* HWY_RESTRICT out) {
  using V = hn::Vec<DF>;
  using T = typename Weights::T;
  const size_t N = hn::Lanes(df);
  V acc[kRows];
  for (size_t r = 0; r < kRows; ++r) {
    const T* HWY_RESTRICT row = w + r * cols;
    // Two accumulators per row: the FMA latency is not on the critical path.
    V acc0 = hn::Zero(df);
    V acc1 = hn::Zero(df);
    size_t i = 0;
    if (cols >= 2 * N) {
      for (; i <= cols - 2 * N; i += 2 * N) {
        if constexpr (kPrefetch) {
          PrefetchAhead(row + i, 2 * N * sizeof(T), kStreamAheadBytes);  // Past W: harmless.
        }
        acc0 = hn::MulAdd(Weights::Load(df, row + i), hn::LoadU(df, x + i), acc0);
        acc1 = hn::MulAdd(Weights::Load(df, row + i + N), hn::LoadU(df, x + i + N), acc1);
      }
    }
    if (i + N <= cols) {
      acc0 = hn::MulAdd(Weights::Load(df, row + i), hn::LoadU(df, x + i), acc0);
      i += N;
    }
    if (i < cols) {
      const size_t n = cols - i;
      acc1 = hn::MulAdd(Weights::LoadTail(df, row + i, n), LoadTail(df, x + i, n), acc1);
    }
    acc[r] = hn::Add(acc0, acc1);
  }
  SumRowsOfLanes<kRows>(df, acc, out);
}

// Rows read side by side by the kernels for W in cache (MatVecSource::kCache): four rows share
// each load of x, and 8 accumulators plus temporaries fit even AVX2's 16 registers.
inline constexpr size_t kCachedRows = 4;

// DotRowsDense for W in cache: the same sums, bit for bit (each row accumulates in the same order
// and SumRowsOfLanes reduces every row with the same tree), from kRows rows read side by
// side, so that one load of x serves them all. With W in L2 this reads f16/bf16 at 118 GB/s on
// Zen 5 where row by row reads 90 (the x loads bound a cached matvec). Batched decoding reads W
// this way: each block of rows from L2, where the caller prefetched it, then from L1 for the
// other vectors. The next group of rows is prefetched (into L1) at the rate this one is
// read: without it, mamba-130m batches of 8 and 16 streams decoded 15-20% slower.
template <size_t kRows, class Weights, class DF>
HWY_INLINE void DotRowsDenseCached(DF df, const typename Weights::T* HWY_RESTRICT w, size_t cols,
                                   const float* HWY_RESTRICT x, float* HWY_RESTRICT out) {
  using V = hn::Vec<DF>;
  const size_t N = hn::Lanes(df);
  V acc0[kRows];
  V acc1[kRows];
  for (size_t r = 0; r < kRows; ++r) {
    acc0[r] = hn::Zero(df);
    acc1[r] = hn::Zero(df);
  }
  using T = typename Weights::T;
  const size_t group_bytes = kRows * cols * sizeof(T);
  size_t i = 0;
  if (cols >= 2 * N) {
    for (; i <= cols - 2 * N; i += 2 * N) {
      PrefetchAhead(w, kRows * 2 * N * sizeof(T), group_bytes + i * kRows * sizeof(T));
      const V x0 = hn::LoadU(df, x + i);
      const V x1 = hn::LoadU(df, x + i + N);
      for (size_t r = 0; r < kRows; ++r) {
        acc0[r] = hn::MulAdd(Weights::Load(df, w + r * cols + i), x0, acc0[r]);
        acc1[r] = hn::MulAdd(Weights::Load(df, w + r * cols + i + N), x1, acc1[r]);
      }
    }
  }
  if (i + N <= cols) {
    const V x0 = hn::LoadU(df, x + i);
    for (size_t r = 0; r < kRows; ++r) {
      acc0[r] = hn::MulAdd(Weights::Load(df, w + r * cols + i), x0, acc0[r]);
    }
    i += N;
  }
  if (i < cols) {
    const size_t n = cols - i;
    const V x0 = LoadTail(df, x + i, n);
    for (size_t r = 0; r < kRows; ++r) {
      acc1[r] = hn::MulAdd(Weights::LoadTail(df, w + r * cols + i, n), x0, acc1[r]);
    }
  }
  for (size_t r = 0; r < kRows; ++r) acc0[r] = hn::Add(acc0[r], acc1[r]);
  SumRowsOfLanes<kRows>(df, acc0, out);
}

// Writes y[r] = sums[i] + bias[r] for the kRows rows starting at r.
// sums: [kRows], bias: [rows] or null, y: [rows].
template <size_t kRows>
HWY_INLINE void StoreRows(const float* HWY_RESTRICT sums, const float* HWY_RESTRICT bias, size_t r,
                          float* HWY_RESTRICT y) {
  for (size_t i = 0; i < kRows; ++i) y[r + i] = sums[i] + (bias != nullptr ? bias[r + i] : 0.0f);
}

// w: [rows, cols] dense, x: [cols], bias: [rows] or null, y: [rows]. cached: W is in cache
// (MatVecSource::kCache). kPrefetch: rows read one after the other take the software prefetch.
template <class Weights, bool kPrefetch>
HWY_NOINLINE void MatVecDense(const ops::WeightView& w, const float* HWY_RESTRICT x,
                              const float* HWY_RESTRICT bias, float* HWY_RESTRICT y,
                              size_t row_begin, size_t row_end, bool cached) {
  const hn::ScalableTag<float> df;
  const auto* data = static_cast<const typename Weights::T*>(w.data);
  const size_t cols = w.cols;
  float sums[kMatVecRows];
  size_t r = row_begin;
  if (cached) {
    for (; r + kCachedRows <= row_end; r += kCachedRows) {
      DotRowsDenseCached<kCachedRows, Weights>(df, data + r * cols, cols, x, sums);
      StoreRows<kCachedRows>(sums, bias, r, y);
    }
  }
  for (; r + kMatVecRows <= row_end; r += kMatVecRows) {
    DotRowsDense<kMatVecRows, Weights, kPrefetch>(df, data + r * cols, cols, x, sums);
    StoreRows<kMatVecRows>(sums, bias, r, y);
  }
  if (kMatVecRows > 4 && r + 4 <= row_end) {
    DotRowsDense<4, Weights, kPrefetch>(df, data + r * cols, cols, x, sums);
    StoreRows<4>(sums, bias, r, y);
    r += 4;
  }
  for (; r < row_end; ++r) {
    DotRowsDense<1, Weights, kPrefetch>(df, data + r * cols, cols, x, sums);
    StoreRows<1>(sums, bias, r, y);
  }
}

// ------------------------------------------------------------------ q8_0

// Scales are widened to f32 on the stack this many blocks at a time, so rows of any length need
// no heap buffer: 32 blocks = 1024 columns, 1 KiB of stack for 8 rows.
inline constexpr size_t kQ8ScaleChunk = 32;

// Widens n <= kQ8ScaleChunk scales of row `row`, starting at block b0, into out: [n].
HWY_INLINE void WidenQ8Scales(const ops::WeightView& w, size_t row, size_t b0, size_t n,
                              float* HWY_RESTRICT out) {
  const size_t index = row * (w.cols / ops::kQ8Block) + b0;
  if (w.scale_type == ops::ScaleType::kF32) {
    std::memcpy(out, static_cast<const float*>(w.scales) + index, n * sizeof(float));
  } else {
    F16ToF32RowImpl(static_cast<const uint16_t*>(w.scales) + index, out, n);
  }
}

// ------------------------------------------------------------------ q8_0 x int16

// How far ahead the side-by-side q8_0 kernel (DotRowsQ8I16, for short rows) prefetches its quants,
// in bytes of its own reading order: at each step a group of rows reads the next line of each
// row, and the kernel prefetches, for each row, the line that row reads kQ8AheadBytes / rows
// later: further along the row or, near its end, in the same row of a later group. Every line
// gets the same lead whatever the row length. Walking the next group linearly instead gives a
// group's last rows almost no lead; rows of 64 columns (RWKV-7's LoRA matrices, 512-byte
// groups) got a few hundred bytes of lead. 6 KiB measured better than 3 or 12 KiB on Zen 5.
inline constexpr size_t kQ8AheadBytes = 6144;

// Widening int8 weights to f32 spends three instructions (widen, convert, FMA) per lane, and on
// Zen 4 that work does not hide behind the DRAM stream (MatVecQ8F32 below still does it, for
// inputs holding inf or NaN). Quantizing x as well lets the
// products stay integer: each 32-column block of x becomes int16 with its own
// scale (max |x| / 32767), a block of quants is widened to int16 in one instruction, and one
// multiply-add of int16 pairs (pmaddwd) yields the block's exact int32 partial sums, which are
// converted and scaled once per block. x's rounding error, <= 2^-16 of the block's largest |x|,
// is 1/256 of the int8 weights' own, so the result is as accurate as the f32 path for any use.
// ops/reference/matvec_ref.cc defines the same quantization. Half the instructions per byte:
// rwkv7-0.1b q8_0 decode went from 0.57-0.60 to 0.62-0.65 of the read bandwidth (interleaved
// A/B runs, Zen 4); what is left is memory access, not arithmetic (docs/kernels.md).

// Columns of x quantized at a time, on the stack: 16 KiB of int16 and 1 KiB of scales keep the
// kernel within small thread stacks; longer rows are done in column chunks.
inline constexpr size_t kQ8XChunkCols = 8192;
static_assert(kQ8XChunkCols / ops::kQ8Block % kQ8ScaleChunk == 0, "xs must hold whole chunks");

// Quantizes x: [n] (n % kQ8Block == 0) into xq: [n] int16 and xs: [n / kQ8Block] scales, with
// x[c] ~= xq[c] * xs[c / kQ8Block], and zeroes xs up to the next multiple of kQ8ScaleChunk (xs has
// room for that: [RoundUp(n / kQ8Block, kQ8ScaleChunk)]). Returns false, leaving xq and xs
// unspecified, when x holds an inf or NaN.
HWY_INLINE bool QuantizeXToI16(const float* HWY_RESTRICT x, size_t n, int16_t* HWY_RESTRICT xq,
                               float* HWY_RESTRICT xs) {
  const hn::CappedTag<float, ops::kQ8Block> df;
  const hn::Rebind<int16_t, decltype(df)> di16;
  using V = hn::Vec<decltype(df)>;
  const size_t N = hn::Lanes(df);
  // x * 0 is 0 for finite x and NaN otherwise; the sum says whether any element was not finite.
  V finite_probe = hn::Zero(df);
  for (size_t b = 0; b < n / ops::kQ8Block; ++b) {
    const float* xb = x + b * ops::kQ8Block;
    V max_abs = hn::Zero(df);
    for (size_t j = 0; j < ops::kQ8Block; j += N) {
      const V v = hn::LoadU(df, xb + j);
      finite_probe = hn::Add(finite_probe, hn::Mul(v, hn::Zero(df)));
      max_abs = hn::Max(max_abs, hn::Abs(v));
    }
    const float m = hn::GetLane(hn::MaxOfLanes(df, max_abs));
    const float inv = m > 0.0f ? 32767.0f / m : 0.0f;
    xs[b] = m / 32767.0f;
    const V vinv = hn::Set(df, inv);
    for (size_t j = 0; j < ops::kQ8Block; j += N) {
      const auto qi = hn::NearestInt(hn::Mul(hn::LoadU(df, xb + j), vinv));
      hn::StoreU(hn::DemoteTo(di16, qi), di16, xq + b * ops::kQ8Block + j);
    }
  }
  for (size_t b = n / ops::kQ8Block; b % kQ8ScaleChunk != 0; ++b) xs[b] = 0.0f;
  return hn::GetLane(hn::SumOfLanes(df, finite_probe)) == 0.0f;
}

// The exact int32 dot product of one block of quants q: [kQ8Block] with int16 x (as vectors xv),
// converted to f32 lanes whose sum is the block's.
template <class D16>
HWY_INLINE hn::Vec<hn::Rebind<float, hn::RepartitionToWide<D16>>> Q8BlockDotI16(
    D16 d16, const int8_t* HWY_RESTRICT q, const hn::Vec<D16>* HWY_RESTRICT xv) {
  const hn::RepartitionToWide<D16> di32;
  const hn::Rebind<float, decltype(di32)> df;
  const hn::Rebind<int8_t, D16> di8;
  const size_t N16 = hn::Lanes(d16);
  auto sum0 = hn::Zero(di32);
  auto sum1 = hn::Zero(di32);
  for (size_t j = 0; j < ops::kQ8Block / N16; ++j) {
    const auto w16 = hn::PromoteTo(d16, hn::LoadU(di8, q + j * N16));
    sum0 = hn::ReorderWidenMulAccumulate(di32, w16, xv[j], sum0, sum1);
  }
  return hn::ConvertTo(df, hn::RearrangeToOddPlusEven(sum0, sum1));
}

// Prefetches the scales of rows [first, first + count) of W (those that exist). The scales live
// apart from the quants, and a miss on them stalls the start of a row: the row kernels fetch a
// later group's scales whole when a group starts.
HWY_INLINE void PrefetchQ8Scales(const ops::WeightView& w, size_t first, size_t count) {
  if (first >= w.rows) return;
  const size_t scale_bytes = w.scale_type == ops::ScaleType::kF16 ? 2 : 4;
  const size_t row_bytes = w.cols / ops::kQ8Block * scale_bytes;
  const size_t rows = w.rows - first < count ? w.rows - first : count;
  PrefetchAhead(static_cast<const uint8_t*>(w.scales) + first * row_bytes, rows * row_bytes, 0);
}

// out[i] = W's scale of block block_begin + b0 + i of row `row`, times xs[b0 + i] (x's block
// scale): one multiplier per block, for i < nb <= kQ8ScaleChunk. out: [kQ8ScaleChunk].
template <class DFS>
HWY_INLINE void StageQ8Scales(DFS dfs, const ops::WeightView& w, size_t row, size_t block_begin,
                              size_t b0, size_t nb, const float* HWY_RESTRICT xs,
                              float* HWY_RESTRICT out) {
  const size_t NS = hn::Lanes(dfs);
  const size_t row_scales = w.cols / ops::kQ8Block;
  const size_t scale_count = w.rows * row_scales;
  const size_t index = row * row_scales + block_begin + b0;
  const float* f32_scales = static_cast<const float*>(w.scales) + index;
  const uint16_t* f16_scales = static_cast<const uint16_t*>(w.scales) + index;
  const bool f32 = w.scale_type == ops::ScaleType::kF32;
  for (size_t i = 0; i < nb; i += NS) {
    // A whole vector of scales wherever W's scales go on that far (lanes past the row's blocks
    // are never used): a partial load goes through the stack, and in a profile of 768-column
    // matvecs a tenth of the time waited on that store. xs is padded likewise.
    const size_t m = index + i + NS <= scale_count ? NS : nb - i;
    const auto ws = m == NS ? (f32 ? hn::LoadU(dfs, f32_scales + i)
                                   : LoadF16AsF32(dfs, f16_scales + i))
                            : (f32 ? LoadTail(dfs, f32_scales + i, m)
                                   : LoadTailF16AsF32(dfs, f16_scales + i, m));
    hn::Store(hn::Mul(ws, hn::LoadU(dfs, xs + b0 + i)), dfs, out + i);
  }
}

// out[r] = W[r, cols c_begin + (0..n)] . x for kRows consecutive q8_0 rows starting at `row`, from
// x quantized by QuantizeXToI16: xq: [n] int16, xs: [n / kQ8Block]; c_begin and n are multiples
// of kQ8Block. Two blocks (one cache line of quants per row) are done per step, each into its
// own accumulator; lines are prefetched kQ8AheadBytes ahead in the order the rows read them.
template <size_t kRows, class D16>
HWY_INLINE void DotRowsQ8I16(D16 d16, const ops::WeightView& w, size_t row, size_t c_begin,
                             size_t n, const int16_t* HWY_RESTRICT xq,
                             const float* HWY_RESTRICT xs, float* HWY_RESTRICT out) {
  const hn::RepartitionToWide<D16> di32;
  const hn::Rebind<float, decltype(di32)> df;
  const hn::CappedTag<float, kQ8ScaleChunk> dfs;
  using V = hn::Vec<decltype(df)>;
  using V16 = hn::Vec<D16>;
  const size_t N16 = hn::Lanes(d16);
  constexpr size_t kMaxVecs = ops::kQ8Block;  // Vectors per block, at most (1 lane each).
  const size_t vecs = ops::kQ8Block / N16;
  const size_t cols = w.cols;
  const size_t blocks = n / ops::kQ8Block;
  const int8_t* HWY_RESTRICT row0 = static_cast<const int8_t*>(w.data) + row * cols;
  const int8_t* HWY_RESTRICT q = row0 + c_begin;
  const size_t block_begin = c_begin / ops::kQ8Block;
  HWY_ALIGN float scales[kRows][kQ8ScaleChunk];
  V acc0[kRows];
  V acc1[kRows];
  for (size_t r = 0; r < kRows; ++r) {
    acc0[r] = hn::Zero(df);
    acc1[r] = hn::Zero(df);
  }
  // Each row reads one line per step; prefetch the line each row reads `lead` bytes of its own
  // stream from now: further along this row, or in a later group of rows.
  const size_t lead = HWY_MAX(size_t{64}, (kQ8AheadBytes / kRows + 63) / 64 * 64);
  size_t pf_groups = cols == 0 ? 0 : (c_begin + lead) / cols;
  size_t pf_col = cols == 0 ? 0 : (c_begin + lead) % cols;
  if (c_begin == 0) {
    // The scales of the group after the one the quants are prefetched from.
    PrefetchQ8Scales(w, row + (cols == 0 ? 1 : 1 + (lead + cols - 1) / cols) * kRows, kRows);
  }
  for (size_t b0 = 0; b0 < blocks; b0 += kQ8ScaleChunk) {
    const size_t nb = blocks - b0 < kQ8ScaleChunk ? blocks - b0 : kQ8ScaleChunk;
    for (size_t r = 0; r < kRows; ++r) {
      StageQ8Scales(dfs, w, row + r, block_begin, b0, nb, xs, scales[r]);
    }
    size_t b = 0;
    for (; b + 2 <= nb; b += 2) {
      const size_t c0 = (b0 + b) * ops::kQ8Block;
      V16 xv0[kMaxVecs];
      V16 xv1[kMaxVecs];
      for (size_t j = 0; j < vecs; ++j) {
        xv0[j] = hn::LoadU(d16, xq + c0 + j * N16);
        xv1[j] = hn::LoadU(d16, xq + c0 + ops::kQ8Block + j * N16);
      }
      for (size_t r = 0; r < kRows; ++r) {
        PrefetchAhead(row0, 1, (pf_groups * kRows + r) * cols + pf_col);  // Past W: harmless.
      }
      pf_col += 2 * ops::kQ8Block;
      if (pf_col >= cols) {
        pf_col -= cols;
        ++pf_groups;
      }
      for (size_t r = 0; r < kRows; ++r) {
        const int8_t* row_q = q + r * cols + c0;
        acc0[r] = hn::MulAdd(Q8BlockDotI16(d16, row_q, xv0), hn::Set(df, scales[r][b]), acc0[r]);
        acc1[r] = hn::MulAdd(Q8BlockDotI16(d16, row_q + ops::kQ8Block, xv1),
                             hn::Set(df, scales[r][b + 1]), acc1[r]);
      }
    }
    if (b < nb) {
      const size_t c0 = (b0 + b) * ops::kQ8Block;
      V16 xv0[kMaxVecs];
      for (size_t j = 0; j < vecs; ++j) xv0[j] = hn::LoadU(d16, xq + c0 + j * N16);
      for (size_t r = 0; r < kRows; ++r) {
        acc0[r] = hn::MulAdd(Q8BlockDotI16(d16, q + r * cols + c0, xv0),
                             hn::Set(df, scales[r][b]), acc0[r]);
      }
    }
  }
  for (size_t r = 0; r < kRows; ++r) acc0[r] = hn::Add(acc0[r], acc1[r]);
  SumRowsOfLanes<kRows>(df, acc0, out);
}

// out[r] = W[row + r, c_begin + (0..n)] . x for kRows consecutive q8_0 rows, read one row after
// the other (see kStreamAheadBytes), from x quantized by QuantizeXToI16 as for DotRowsQ8I16.
// Each row keeps two accumulators; the kRows sums are folded together at the end. With x in
// column chunks (rows longer than kQ8XChunkCols) the prefetch runs into the rest of the row,
// which a later chunk reads: wasted, not wrong.
template <size_t kRows, class D16>
HWY_INLINE void DotRowsQ8I16Seq(D16 d16, const ops::WeightView& w, size_t row, size_t c_begin,
                                size_t n, const int16_t* HWY_RESTRICT xq,
                                const float* HWY_RESTRICT xs, float* HWY_RESTRICT out) {
  const hn::RepartitionToWide<D16> di32;
  const hn::Rebind<float, decltype(di32)> df;
  const hn::CappedTag<float, kQ8ScaleChunk> dfs;
  using V = hn::Vec<decltype(df)>;
  using V16 = hn::Vec<D16>;
  const size_t N16 = hn::Lanes(d16);
  constexpr size_t kMaxVecs = ops::kQ8Block;  // Vectors per block, at most (1 lane each).
  const size_t vecs = ops::kQ8Block / N16;
  const size_t cols = w.cols;
  const size_t blocks = n / ops::kQ8Block;
  const size_t block_begin = c_begin / ops::kQ8Block;
  constexpr size_t lead = kStreamAheadBytes;
  if (c_begin == 0) {
    // The scales of the rows `lead` bytes ahead, whole, so that a row never waits on them.
    PrefetchQ8Scales(w, row + kRows + (cols == 0 ? 0 : lead / cols), kRows);
  }
  HWY_ALIGN float scales[kQ8ScaleChunk];
  V acc[kRows];
  for (size_t r = 0; r < kRows; ++r) {
    const int8_t* HWY_RESTRICT q = static_cast<const int8_t*>(w.data) + (row + r) * cols + c_begin;
    V acc0 = hn::Zero(df);
    V acc1 = hn::Zero(df);
    for (size_t b0 = 0; b0 < blocks; b0 += kQ8ScaleChunk) {
      const size_t nb = blocks - b0 < kQ8ScaleChunk ? blocks - b0 : kQ8ScaleChunk;
      StageQ8Scales(dfs, w, row + r, block_begin, b0, nb, xs, scales);
      size_t b = 0;
      for (; b + 2 <= nb; b += 2) {
        const size_t c0 = (b0 + b) * ops::kQ8Block;
        PrefetchAhead(q + c0, 1, lead);  // Past W: harmless.
        V16 xv0[kMaxVecs];
        V16 xv1[kMaxVecs];
        for (size_t j = 0; j < vecs; ++j) {
          xv0[j] = hn::LoadU(d16, xq + c0 + j * N16);
          xv1[j] = hn::LoadU(d16, xq + c0 + ops::kQ8Block + j * N16);
        }
        acc0 = hn::MulAdd(Q8BlockDotI16(d16, q + c0, xv0), hn::Set(df, scales[b]), acc0);
        acc1 = hn::MulAdd(Q8BlockDotI16(d16, q + c0 + ops::kQ8Block, xv1),
                          hn::Set(df, scales[b + 1]), acc1);
      }
      if (b < nb) {
        const size_t c0 = (b0 + b) * ops::kQ8Block;
        V16 xv0[kMaxVecs];
        for (size_t j = 0; j < vecs; ++j) xv0[j] = hn::LoadU(d16, xq + c0 + j * N16);
        acc0 = hn::MulAdd(Q8BlockDotI16(d16, q + c0, xv0), hn::Set(df, scales[b]), acc0);
      }
    }
    acc[r] = hn::Add(acc0, acc1);
  }
  SumRowsOfLanes<kRows>(df, acc, out);
}

// Rows of at least this many columns are read one after the other (DotRowsQ8I16Seq); shorter ones
// side by side (DotRowsQ8I16), where sharing the x loads and the scale set-up between rows
// matters more than the stream: 8 rows of 64-256 columns span only 512-2048 contiguous bytes
// anyway. Measured on Zen 5 from DRAM, side by side against row by row: 768 x 64 0.48 / 0.29
// of the read bandwidth, 768 x 128 0.75 / 0.53, 768 x 256 0.75 / 0.73, 768 x 768 0.77 / 0.87.
// Reading row by row reloads x for every row, which costs where W is in cache: the tiny RWKV
// models (64-256 wide) decoded 7% slower with 256-column rows read row by row.
inline constexpr size_t kQ8SequentialMinCols = 512;

#if HWY_ARCH_X86 && HWY_TARGET > HWY_AVX3
// Rows side by side in DotRowsQ8I16 (short rows). 16 vector registers: 4 rows x 2 accumulators
// + 4 x vectors + temporaries fill them.
inline constexpr size_t kQ8Rows = 4;
#else
// 32 vector registers: 8 rows. The widening makes q8_0 the most instruction-heavy type per
// byte, and 8 rows per shared x load measured 10% faster than 4 on Zen 4/5 (then for all rows;
// now short rows only).
inline constexpr size_t kQ8Rows = 8;
#endif

// w: [rows, cols] q8_0, x: [cols] holding an inf or NaN, bias: [rows] or null, y: [rows].
// The int16 path cannot carry non-finite inputs, so such an x takes int8 widened to f32 and
// multiplied by x as it is, and the inf or NaN reaches y. Rare (the input is already broken),
// so kept simple: one row at a time, no prefetching.
HWY_NOINLINE inline void MatVecQ8F32(const ops::WeightView& w, const float* HWY_RESTRICT x,
                                     const float* HWY_RESTRICT bias, float* HWY_RESTRICT y,
                                     size_t row_begin, size_t row_end) {
  const hn::CappedTag<float, ops::kQ8Block> df;
  const size_t N = hn::Lanes(df);
  const size_t cols = w.cols;
  for (size_t r = row_begin; r < row_end; ++r) {
    const int8_t* HWY_RESTRICT q = static_cast<const int8_t*>(w.data) + r * cols;
    auto acc = hn::Zero(df);
    for (size_t c0 = 0; c0 < cols; c0 += ops::kQ8Block) {
      float scale;
      WidenQ8Scales(w, r, c0 / ops::kQ8Block, 1, &scale);
      auto sum = hn::Zero(df);
      for (size_t j = 0; j < ops::kQ8Block; j += N) {
        sum = hn::MulAdd(LoadI8AsF32(df, q + c0 + j), hn::LoadU(df, x + c0 + j), sum);
      }
      acc = hn::MulAdd(sum, hn::Set(df, scale), acc);
    }
    y[r] = hn::GetLane(hn::SumOfLanes(df, acc)) + (bias != nullptr ? bias[r] : 0.0f);
  }
}

// Writes (first chunk) or adds (later chunks) kRows sums, plus the bias once.
template <size_t kRows>
HWY_INLINE void StoreOrAddRows(const float* HWY_RESTRICT sums, const float* HWY_RESTRICT bias,
                               size_t r, bool first, float* HWY_RESTRICT y) {
  if (first) return StoreRows<kRows>(sums, bias, r, y);
  for (size_t i = 0; i < kRows; ++i) y[r + i] += sums[i];
}

// w: [rows, cols] q8_0, x: [cols], bias: [rows] or null, y: [rows]. cached: W is in cache
// (MatVecSource::kCache): rows side by side at any length. Both kernels accumulate each row in
// the same order and reduce it with the same tree, so the results are the same bits.
HWY_NOINLINE inline void MatVecQ8(const ops::WeightView& w, const float* HWY_RESTRICT x,
                                  const float* HWY_RESTRICT bias, float* HWY_RESTRICT y,
                                  size_t row_begin, size_t row_end, bool cached) {
  const hn::CappedTag<int16_t, ops::kQ8Block> d16;
  HWY_ALIGN int16_t xq[kQ8XChunkCols];
  float xs[kQ8XChunkCols / ops::kQ8Block];
  float sums[kQ8Rows > kMatVecRows ? kQ8Rows : kMatVecRows];
  const size_t cols = w.cols;
  for (size_t c = 0; c < cols || c == 0; c += kQ8XChunkCols) {
    const size_t n = cols - c < kQ8XChunkCols ? cols - c : kQ8XChunkCols;
    if (!QuantizeXToI16(x + c, n, xq, xs)) {
      return MatVecQ8F32(w, x, bias, y, row_begin, row_end);
    }
    const bool first = c == 0;
    size_t r = row_begin;
    if (!cached && cols >= kQ8SequentialMinCols) {
      for (; r + kMatVecRows <= row_end; r += kMatVecRows) {
        DotRowsQ8I16Seq<kMatVecRows>(d16, w, r, c, n, xq, xs, sums);
        StoreOrAddRows<kMatVecRows>(sums, bias, r, first, y);
      }
      if (kMatVecRows > 4 && r + 4 <= row_end) {
        DotRowsQ8I16Seq<4>(d16, w, r, c, n, xq, xs, sums);
        StoreOrAddRows<4>(sums, bias, r, first, y);
        r += 4;
      }
    }
    for (; r + kQ8Rows <= row_end; r += kQ8Rows) {
      DotRowsQ8I16<kQ8Rows>(d16, w, r, c, n, xq, xs, sums);
      StoreOrAddRows<kQ8Rows>(sums, bias, r, first, y);
    }
    if (kQ8Rows > 4 && r + 4 <= row_end) {
      DotRowsQ8I16<4>(d16, w, r, c, n, xq, xs, sums);
      StoreOrAddRows<4>(sums, bias, r, first, y);
      r += 4;
    }
    for (; r < row_end; ++r) {
      DotRowsQ8I16<1>(d16, w, r, c, n, xq, xs, sums);
      StoreOrAddRows<1>(sums, bias, r, first, y);
    }
    if (cols == 0) break;
  }
}

// ------------------------------------------------------------------ entry point

// MatVecDense for the reading order and prefetch that `source` calls for (see Weights).
template <class Weights>
HWY_INLINE void MatVecDenseFrom(const ops::WeightView& w, const float* HWY_RESTRICT x,
                                const float* HWY_RESTRICT bias, float* HWY_RESTRICT y,
                                size_t row_begin, size_t row_end, ops::MatVecSource source) {
  if (!Weights::kPrefetchAlone && source == ops::MatVecSource::kMemory) {
    return MatVecDense<Weights, false>(w, x, bias, y, row_begin, row_end, false);
  }
  MatVecDense<Weights, true>(w, x, bias, y, row_begin, row_end,
                             source == ops::MatVecSource::kCache);
}

// w: [rows, cols], x: [cols], bias: [rows] or null, y: [rows]; rows [row_begin, row_end).
inline void MatVecImpl(const ops::WeightView& w, const float* HWY_RESTRICT x,
                       const float* HWY_RESTRICT bias, float* HWY_RESTRICT y, size_t row_begin,
                       size_t row_end, ops::MatVecSource source = ops::MatVecSource::kMemory) {
  switch (w.type) {
    case ops::WeightType::kF32:
      return MatVecDenseFrom<F32Weights>(w, x, bias, y, row_begin, row_end, source);
    case ops::WeightType::kF16:
      return MatVecDenseFrom<F16Weights>(w, x, bias, y, row_begin, row_end, source);
    case ops::WeightType::kBF16:
      return MatVecDenseFrom<BF16Weights>(w, x, bias, y, row_begin, row_end, source);
    case ops::WeightType::kQ8_0:
      return MatVecQ8(w, x, bias, y, row_begin, row_end, source == ops::MatVecSource::kCache);
  }
}

}  // namespace recur::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // RECUR_OPS_MATVEC_INL_H_
