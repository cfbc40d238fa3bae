// Per-target code for ops/linear_attention.h. Every loop runs along the contiguous last
// dimension (dv for the state rows, K for dot products) a vector at a time; tails go through
// LoadTail and blended stores, so nothing is read or written past a row.

#if defined(RECUR_OPS_LINEAR_ATTENTION_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef RECUR_OPS_LINEAR_ATTENTION_INL_H_
#undef RECUR_OPS_LINEAR_ATTENTION_INL_H_
#else
#define RECUR_OPS_LINEAR_ATTENTION_INL_H_
#endif

#include <cstddef>

#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"
#include "ops/elementwise-inl.h"
#include "ops/linear_attention.h"

HWY_BEFORE_NAMESPACE();
namespace recur::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// One pass over the state: each row is decayed, gets k_j v added, is stored, and is accumulated
// into out with weight q_j, so the state (dk x dv floats, 16 KiB at 64 x 64) is read and written
// once per token.
HWY_NOINLINE void LinearAttentionStep(float* HWY_RESTRICT S, const float* HWY_RESTRICT q,
                                      const float* HWY_RESTRICT k, const float* HWY_RESTRICT v,
                                      const float* HWY_RESTRICT decay, float decay_scalar,
                                      size_t dk, size_t dv, float* HWY_RESTRICT out) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  const size_t N = hn::Lanes(d);
  size_t c = 0;
  // Columns a vector at a time, all rows per vector: the output vector stays in a register.
  for (; c < dv; c += N) {
    const size_t n = dv - c < N ? dv - c : N;
    const bool full = n == N;
    const V vv = full ? hn::LoadU(d, v + c) : LoadTail(d, v + c, n);
    V acc = hn::Zero(d);
    for (size_t j = 0; j < dk; ++j) {
      float* row = S + j * dv + c;
      const V a = hn::Set(d, decay != nullptr ? decay[j] : decay_scalar);
      const V s = full ? hn::LoadU(d, row) : LoadTail(d, row, n);
      const V s2 = hn::MulAdd(a, s, hn::Mul(hn::Set(d, k[j]), vv));
      if (full) {
        hn::StoreU(s2, d, row);
      } else {
        SafeBlendedStore(s2, hn::FirstN(d, n), d, row);
      }
      acc = hn::MulAdd(hn::Set(d, q[j]), s2, acc);
    }
    if (full) {
      hn::StoreU(acc, d, out + c);
    } else {
      SafeBlendedStore(acc, hn::FirstN(d, n), d, out + c);
    }
  }
}

// c[i, :] += sum_k A(i, k) b[k, :] for i < M, four rows of c at a time so each b row loaded
// serves four. A(i, k) is a[i * a_stride + k], or a[k * a_stride + i] when kTransposedA.
template <bool kTransposedA>
HWY_INLINE void MulAccRows(const float* HWY_RESTRICT a, size_t a_stride,
                           const float* HWY_RESTRICT b, size_t b_stride, float* HWY_RESTRICT c,
                           size_t c_stride, size_t M, size_t K, size_t N) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  const size_t L = hn::Lanes(d);
  // Steps through a between consecutive i and consecutive k.
  const size_t step_i = kTransposedA ? 1 : a_stride;
  const size_t step_k = kTransposedA ? a_stride : 1;
  for (size_t col = 0; col < N; col += L) {
    const size_t n = N - col < L ? N - col : L;
    const bool full = n == L;
    const auto load = [&](const float* p) { return full ? hn::LoadU(d, p) : LoadTail(d, p, n); };
    const auto store = [&](V x, float* p) {
      if (full) {
        hn::StoreU(x, d, p);
      } else {
        SafeBlendedStore(x, hn::FirstN(d, n), d, p);
      }
    };
    size_t i = 0;
    for (; i + 4 <= M; i += 4) {
      float* c0 = c + i * c_stride + col;
      V acc0 = load(c0), acc1 = load(c0 + c_stride), acc2 = load(c0 + 2 * c_stride),
        acc3 = load(c0 + 3 * c_stride);
      for (size_t k = 0; k < K; ++k) {
        const V bk = load(b + k * b_stride + col);
        const float* aik = a + i * step_i + k * step_k;
        acc0 = hn::MulAdd(hn::Set(d, aik[0]), bk, acc0);
        acc1 = hn::MulAdd(hn::Set(d, aik[step_i]), bk, acc1);
        acc2 = hn::MulAdd(hn::Set(d, aik[2 * step_i]), bk, acc2);
        acc3 = hn::MulAdd(hn::Set(d, aik[3 * step_i]), bk, acc3);
      }
      store(acc0, c0);
      store(acc1, c0 + c_stride);
      store(acc2, c0 + 2 * c_stride);
      store(acc3, c0 + 3 * c_stride);
    }
    for (; i < M; ++i) {
      float* ci = c + i * c_stride + col;
      V acc = load(ci);
      for (size_t k = 0; k < K; ++k) {
        const V bk = load(b + k * b_stride + col);
        acc = hn::MulAdd(hn::Set(d, a[i * step_i + k * step_k]), bk, acc);
      }
      store(acc, ci);
    }
  }
}

// c[i, :] += sum_k a[i, k] b[k, :].
HWY_NOINLINE void MatMulAcc(const float* HWY_RESTRICT a, size_t a_stride,
                            const float* HWY_RESTRICT b, size_t b_stride, float* HWY_RESTRICT c,
                            size_t c_stride, size_t M, size_t K, size_t N) {
  MulAccRows<false>(a, a_stride, b, b_stride, c, c_stride, M, K, N);
}

// c[m, :] += sum_k a[k, m] b[k, :]: MatMulAcc with a read down its columns.
HWY_NOINLINE void MatTMulAcc(const float* HWY_RESTRICT a, size_t a_stride,
                             const float* HWY_RESTRICT b, size_t b_stride, float* HWY_RESTRICT c,
                             size_t c_stride, size_t K, size_t M, size_t N) {
  MulAccRows<true>(a, a_stride, b, b_stride, c, c_stride, M, K, N);
}

template <class D>
HWY_INLINE float DotRow(D d, const float* HWY_RESTRICT x, const float* HWY_RESTRICT y, size_t K) {
  using V = hn::Vec<D>;
  const size_t L = hn::Lanes(d);
  V acc = hn::Zero(d);
  size_t k = 0;
  for (; k + L <= K; k += L) acc = hn::MulAdd(hn::LoadU(d, x + k), hn::LoadU(d, y + k), acc);
  if (k < K) acc = hn::MulAdd(LoadTail(d, x + k, K - k), LoadTail(d, y + k, K - k), acc);
  return hn::GetLane(hn::SumOfLanes(d, acc));
}

HWY_NOINLINE void Scores(const float* HWY_RESTRICT a, size_t a_stride,
                         const float* HWY_RESTRICT b, size_t b_stride, size_t M, size_t N,
                         size_t K, float scale, bool causal, size_t offset,
                         float* HWY_RESTRICT out, size_t out_stride) {
  const hn::ScalableTag<float> d;
  for (size_t i = 0; i < M; ++i) {
    const size_t end = causal ? (i + offset + 1 < N ? i + offset + 1 : N) : N;
    float* row = out + i * out_stride;
    for (size_t s = 0; s < end; ++s) row[s] = scale * DotRow(d, a + i * a_stride, b + s * b_stride, K);
    for (size_t s = end; s < N; ++s) row[s] = 0.0f;
  }
}

HWY_NOINLINE void GatedScores(const float* HWY_RESTRICT a, size_t a_stride,
                              const float* HWY_RESTRICT b, size_t b_stride,
                              const float* HWY_RESTRICT lg, size_t lg_stride, size_t C, size_t K,
                              float* HWY_RESTRICT out, size_t out_stride) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  const size_t L = hn::Lanes(d);
  for (size_t i = 0; i < C; ++i) {
    const float* ai = a + i * a_stride;
    const float* li = lg + i * lg_stride;
    float* row = out + i * out_stride;
    for (size_t s = 0; s <= i; ++s) {
      const float* bs = b + s * b_stride;
      const float* ls = lg + s * lg_stride;
      V acc = hn::Zero(d);
      size_t k = 0;
      // exp(min(x, 0)): the exponent is <= 0 mathematically; the min keeps rounding from ever
      // taking Exp above 1.
      for (; k + L <= K; k += L) {
        const V e = hn::Exp(d, hn::Min(hn::Sub(hn::LoadU(d, li + k), hn::LoadU(d, ls + k)),
                                       hn::Zero(d)));
        acc = hn::MulAdd(hn::Mul(hn::LoadU(d, ai + k), hn::LoadU(d, bs + k)), e, acc);
      }
      if (k < K) {
        const size_t n = K - k;
        const V e = hn::Exp(
            d, hn::Min(hn::Sub(LoadTail(d, li + k, n), LoadTail(d, ls + k, n)), hn::Zero(d)));
        acc = hn::MulAdd(hn::Mul(LoadTail(d, ai + k, n), LoadTail(d, bs + k, n)), e, acc);
      }
      row[s] = hn::GetLane(hn::SumOfLanes(d, acc));
    }
    for (size_t s = i + 1; s < C; ++s) row[s] = 0.0f;
  }
}

}  // namespace recur::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // RECUR_OPS_LINEAR_ATTENTION_INL_H_
