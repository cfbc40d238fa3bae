// Dispatch wrappers for ops/linear_attention.h; the per-target code is in
// ops/linear_attention-inl.h.
#include "ops/linear_attention.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/linear_attention.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "ops/linear_attention-inl.h"

#if HWY_ONCE
namespace recur::ops {

HWY_EXPORT(LinearAttentionStep);
HWY_EXPORT(MatMulAcc);
HWY_EXPORT(MatTMulAcc);
HWY_EXPORT(Scores);
HWY_EXPORT(GatedScores);

void LinearAttentionStep(float* S, const float* q, const float* k, const float* v,
                         const float* decay, float decay_scalar, size_t dk, size_t dv,
                         float* out) {
  if (dv == 0) return;
  HWY_DYNAMIC_DISPATCH(LinearAttentionStep)(S, q, k, v, decay, decay_scalar, dk, dv, out);
}

void MatMulAcc(const float* a, size_t a_stride, const float* b, size_t b_stride, float* c,
               size_t c_stride, size_t M, size_t K, size_t N) {
  if (M == 0 || N == 0) return;
  HWY_DYNAMIC_DISPATCH(MatMulAcc)(a, a_stride, b, b_stride, c, c_stride, M, K, N);
}

void MatTMulAcc(const float* a, size_t a_stride, const float* b, size_t b_stride, float* c,
                size_t c_stride, size_t K, size_t M, size_t N) {
  if (M == 0 || N == 0) return;
  HWY_DYNAMIC_DISPATCH(MatTMulAcc)(a, a_stride, b, b_stride, c, c_stride, K, M, N);
}

void Scores(const float* a, size_t a_stride, const float* b, size_t b_stride, size_t M, size_t N,
            size_t K, float scale, bool causal, size_t offset, float* out, size_t out_stride) {
  if (M == 0 || N == 0) return;
  HWY_DYNAMIC_DISPATCH(Scores)(a, a_stride, b, b_stride, M, N, K, scale, causal, offset, out,
                               out_stride);
}

void GatedScores(const float* a, size_t a_stride, const float* b, size_t b_stride,
                 const float* lg, size_t lg_stride, size_t C, size_t K, float* out,
                 size_t out_stride) {
  if (C == 0) return;
  HWY_DYNAMIC_DISPATCH(GatedScores)(a, a_stride, b, b_stride, lg, lg_stride, C, K, out,
                                    out_stride);
}

}  // namespace recur::ops
#endif  // HWY_ONCE
