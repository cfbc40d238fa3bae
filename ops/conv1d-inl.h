// Per-target code for ops/conv1d.h. Channels are processed one vector at a time; the taps of that
// vector of channels are transposed once into a stack buffer (one vector per tap) and reused for
// every token of a chunk.

#if defined(RECUR_OPS_CONV1D_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef RECUR_OPS_CONV1D_INL_H_
#undef RECUR_OPS_CONV1D_INL_H_
#else
#define RECUR_OPS_CONV1D_INL_H_
#endif

#include <algorithm>
#include <cstddef>

#include "hwy/highway.h"
#include "ops/activation-inl.h"
#include "ops/conv1d.h"
#include "ops/elementwise-inl.h"

HWY_BEFORE_NAMESPACE();
namespace recur::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Loads `count` channels starting at p: a full vector, or a tail that reads nothing past p + count.
template <class D>
HWY_INLINE hn::Vec<D> LoadChannels(D d, const float* HWY_RESTRICT p, size_t count) {
  return count == hn::Lanes(d) ? hn::LoadU(d, p) : LoadTail(d, p, count);
}

template <class D>
HWY_INLINE void StoreChannels(D d, hn::Vec<D> v, float* HWY_RESTRICT p, size_t count) {
  if (count == hn::Lanes(d)) {
    hn::StoreU(v, d, p);
  } else {
    SafeBlendedStore(v, hn::FirstN(d, count), d, p);
  }
}

// wt[k * N + i] = w[(c + i) * K + k] for i < count (zero beyond): tap k of channels c.. as one
// vector. Full vectors with K = 2, 3, 4 (Mamba uses 4) de-interleave with LoadInterleavedK (K
// loads plus shuffles); other widths gather (about 3x slower on Zen 4, still small next to the
// projections around the conv); the tail is transposed element by element.
template <class D>
HWY_INLINE void TransposeTaps(D d, const float* HWY_RESTRICT w /*[C, K]*/, size_t c, size_t count,
                              size_t K, float* HWY_RESTRICT wt /*[K, N]*/) {
  const size_t N = hn::Lanes(d);
  using V = hn::Vec<D>;
  if (count == N && K == 4) {
    V w0, w1, w2, w3;
    hn::LoadInterleaved4(d, w + c * 4, w0, w1, w2, w3);
    hn::Store(w0, d, wt);
    hn::Store(w1, d, wt + N);
    hn::Store(w2, d, wt + 2 * N);
    hn::Store(w3, d, wt + 3 * N);
  } else if (count == N && K == 3) {
    V w0, w1, w2;
    hn::LoadInterleaved3(d, w + c * 3, w0, w1, w2);
    hn::Store(w0, d, wt);
    hn::Store(w1, d, wt + N);
    hn::Store(w2, d, wt + 2 * N);
  } else if (count == N && K == 2) {
    V w0, w1;
    hn::LoadInterleaved2(d, w + c * 2, w0, w1);
    hn::Store(w0, d, wt);
    hn::Store(w1, d, wt + N);
  } else if (count == N) {
    const hn::RebindToSigned<D> di;
    const auto index = hn::Mul(hn::Iota(di, 0), hn::Set(di, static_cast<int32_t>(K)));
    for (size_t k = 0; k < K; ++k) {
      hn::Store(hn::GatherIndex(d, w + c * K + k, index), d, wt + k * N);
    }
  } else {
    for (size_t k = 0; k < K; ++k) {
      for (size_t i = 0; i < N; ++i) wt[k * N + i] = i < count ? w[(c + i) * K + k] : 0.0f;
    }
  }
}

template <class D>
HWY_INLINE hn::Vec<D> MaybeSiLU(D d, hn::Vec<D> v, bool silu) {
  return silu ? SiLUV(d, v) : v;
}

// ------------------------------ Exported kernels (one dispatch per call)
// `inline` lets several .cc files include this header; HWY_NOINLINE keeps one body per target.

inline HWY_NOINLINE void Conv1dStep(float* HWY_RESTRICT state /*[width-1, channels]*/,
                                    const float* x /*[channels]*/,
                                    const float* HWY_RESTRICT w /*[channels, width]*/,
                                    const float* HWY_RESTRICT bias /*[channels]*/, size_t channels,
                                    size_t width, bool silu, float* out /*[channels]*/) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const size_t K = width;
  HWY_ALIGN float wt[kMaxConvWidth * kMaxFloatLanes];
  for (size_t c = 0; c < channels; c += N) {
    const size_t count = std::min(N, channels - c);
    TransposeTaps(d, w, c, count, K, wt);
    auto acc = bias != nullptr ? LoadChannels(d, bias + c, count) : hn::Zero(d);
    for (size_t j = 0; j + 1 < K; ++j) {
      acc = hn::MulAdd(hn::Load(d, wt + j * N), LoadChannels(d, state + j * channels + c, count),
                       acc);
    }
    const auto xv = LoadChannels(d, x + c, count);
    acc = hn::MulAdd(hn::Load(d, wt + (K - 1) * N), xv, acc);
    // Slide the window: row j takes row j + 1, the newest row takes x.
    for (size_t j = 0; j + 2 < K; ++j) {
      StoreChannels(d, LoadChannels(d, state + (j + 1) * channels + c, count),
                    state + j * channels + c, count);
    }
    if (K >= 2) StoreChannels(d, xv, state + (K - 2) * channels + c, count);
    StoreChannels(d, MaybeSiLU(d, acc, silu), out + c, count);
  }
}

inline HWY_NOINLINE void Conv1dChunk(float* HWY_RESTRICT state /*[width-1, channels]*/,
                                     const float* HWY_RESTRICT x /*[T, x_stride]*/, size_t x_stride,
                                     size_t T, const float* HWY_RESTRICT w /*[channels, width]*/,
                                     const float* HWY_RESTRICT bias /*[channels]*/, size_t channels,
                                     size_t width, bool silu,
                                     float* HWY_RESTRICT y /*[T, y_stride]*/, size_t y_stride) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const size_t K = width;
  HWY_ALIGN float wt[kMaxConvWidth * kMaxFloatLanes];
  // Row of input time i (i may be negative: then it is state row K - 1 + i).
  const auto input_row = [&](ptrdiff_t i) -> const float* {
    return i < 0 ? state + static_cast<size_t>(static_cast<ptrdiff_t>(K) - 1 + i) * channels
                 : x + static_cast<size_t>(i) * x_stride;
  };
  // Channel blocks outermost: the taps are transposed once per block and reused for all T tokens,
  // and the K rows a token reads were touched by the previous tokens, so they come from L1.
  for (size_t c = 0; c < channels; c += N) {
    const size_t count = std::min(N, channels - c);
    TransposeTaps(d, w, c, count, K, wt);
    const auto vbias = bias != nullptr ? LoadChannels(d, bias + c, count) : hn::Zero(d);
    for (size_t t = 0; t < T; ++t) {
      auto acc = vbias;
      for (size_t k = 0; k < K; ++k) {
        const ptrdiff_t i = static_cast<ptrdiff_t>(t + k) - static_cast<ptrdiff_t>(K - 1);
        acc = hn::MulAdd(hn::Load(d, wt + k * N), LoadChannels(d, input_row(i) + c, count), acc);
      }
      StoreChannels(d, MaybeSiLU(d, acc, silu), y + t * y_stride + c, count);
    }
    // New state row j is input time T - (K-1) + j. When that is still in the old state it is old
    // row T + j > j, not yet overwritten because rows are rewritten in increasing j.
    for (size_t j = 0; j + 1 < K; ++j) {
      const ptrdiff_t i = static_cast<ptrdiff_t>(T + j) - static_cast<ptrdiff_t>(K - 1);
      StoreChannels(d, LoadChannels(d, input_row(i) + c, count), state + j * channels + c, count);
    }
  }
}

}  // namespace recur::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // RECUR_OPS_CONV1D_INL_H_
