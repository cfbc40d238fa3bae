// linear_attention: multi-head linear attention as an RNN (MATH.md, "Attention as an RNN";
// docs/attention.md), covering plain linear attention, RetNet retention and GLA with one block:
//   q, k, v = Wq x, Wk x, Wv x           (per head h: [head_dim] each)
//   q, k    = phi(q), phi(k)             (identity, elu+1, relu, or exp(x - max x) per head)
//   qr, kr  = RoPE(q, pos), RoPE(k, pos) (optional; numerator only, as MATH.md says)
//   S_h     = diag(a_t) S_h + kr v^T     (state [head_dim, head_dim] per head)
//   num     = S_h^T qr;  with `normalise`: z_h = a_t * z_h + k,  o = num / (q . z_h + 1e-6)
//   o       = RMSNorm_h(o) * w (head_norm);  o *= SiLU(Wg x) (output_gate);  out = Wo o
// with the decay a_t: none (1), fixed (RetNet: g_h = 1 - 2^(-5-h) for every key dimension of head
// h), or gate (GLA: a per-head, per-key-dimension a_t = exp(logsigmoid(Wgk x + b) / tau), with
// tau = gate_normaliser (16 in GLA) and Wgk optionally low rank, Wgk2 Wgk1).
// Step runs the recurrence; Prefill runs the chunkwise form (chunk_size tokens at a time:
// intra-chunk masked attention with decay plus the inter-chunk state) and leaves the same state.
// The state of one layer: a 64-byte header (the position, for RoPE), S [heads, head_dim,
// head_dim], then z [heads, head_dim] when normalising.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "ops/activation.h"
#include "ops/linear_attention.h"
#include "ops/matmul.h"
#include "ops/matvec.h"
#include "ops/norm.h"
#include "ops/rope.h"
#include "runtime/blocks/block.h"

namespace recur {
namespace {

// Floats of the state header: the position (an int64) padded to 64 bytes.
constexpr size_t kHeaderFloats = 16;
// Added to the normaliser's denominator so that a query orthogonal to every key (possible with
// relu features) gives 0 instead of 0 / 0.
constexpr float kDenominatorEps = 1e-6f;

constexpr size_t AlignFloats(size_t n) { return (n + 15) / 16 * 16; }

enum class FeatureMap { kIdentity, kElu1, kRelu, kExp };
enum class Decay { kNone, kFixed, kGate };

struct Dims {
  size_t d_model = 0, heads = 0, hd = 0, hdk = 0, chunk = 0, gate_rank = 0;
  FeatureMap phi = FeatureMap::kIdentity;
  Decay decay = Decay::kNone;
  bool normalise = false, rope = false, interleaved = false, output_gate = false,
       head_norm = false;

  Dims(const fb::Model& model, const fb::LinearAttentionSpec& s) {
    d_model = static_cast<size_t>(std::max(model.d_model(), 0));
    heads = static_cast<size_t>(std::max(s.n_heads(), 0));
    hd = static_cast<size_t>(std::max(s.head_dim(), 0));
    hdk = heads * hd;
    chunk = static_cast<size_t>(std::max(s.chunk_size(), 1));
    gate_rank = static_cast<size_t>(std::max(s.gate_rank(), 0));
    const std::string fm = s.feature_map() ? s.feature_map()->str() : "identity";
    phi = fm == "elu1" ? FeatureMap::kElu1
          : fm == "relu" ? FeatureMap::kRelu
          : fm == "exp"  ? FeatureMap::kExp
                         : FeatureMap::kIdentity;
    const std::string dk = s.decay() ? s.decay()->str() : "none";
    decay = dk == "fixed" ? Decay::kFixed : dk == "gate" ? Decay::kGate : Decay::kNone;
    const std::string r = s.rope() ? s.rope()->str() : "none";
    rope = r == "interleaved" || r == "half";
    interleaved = r == "interleaved";
    normalise = s.normalise();
    output_gate = s.output_gate();
    head_norm = s.head_norm();
  }

  size_t StateFloats() const { return kHeaderFloats + heads * hd * hd + (normalise ? hdk : 0); }
};

// Where each intermediate lives in the scratch arena, in floats, for `tokens` tokens.
struct Layout {
  size_t q = 0, k = 0, v = 0, g = 0, lg = 0, low = 0, qn = 0, kn = 0, rope = 0, heads = 0;
  size_t per_head = 0;  // Chunk scratch of one head.
  // Offsets inside one head's chunk scratch.
  size_t h_qd = 0, h_kd = 0, h_a = 0, h_b = 0, h_den = 0, h_pow = 0;
  size_t total = 0;

  Layout(const Dims& d, size_t tokens) {
    size_t at = 0;
    const auto take = [&](size_t floats) {
      const size_t start = at;
      at += AlignFloats(floats);
      return start;
    };
    const size_t C = std::min(d.chunk, std::max<size_t>(tokens, 1));
    q = take(tokens * d.hdk);
    k = take(tokens * d.hdk);
    v = take(tokens * d.hdk);  // Then the attention output, in place.
    g = take(d.output_gate ? tokens * d.hdk : 0);
    lg = take(d.decay == Decay::kGate ? tokens * d.hdk : 0);
    low = take(d.decay == Decay::kGate ? tokens * d.gate_rank : 0);
    qn = take(d.normalise ? tokens * d.hdk : 0);
    kn = take(d.normalise ? tokens * d.hdk : 0);
    rope = take(d.rope ? d.hd : 0);  // cos then sin, d.hd / 2 each.
    size_t h_at = 0;
    const auto take_h = [&](size_t floats) {
      const size_t start = h_at;
      h_at += AlignFloats(floats);
      return start;
    };
    h_qd = take_h(C * d.hd);
    h_kd = take_h(C * d.hd);
    h_a = take_h(C * C);
    h_b = take_h(d.decay == Decay::kGate ? C * d.hd : 0);
    h_den = take_h(d.normalise ? 2 * C : 0);
    h_pow = take_h(C + 1);
    per_head = h_at;
    // One head's chunk scratch per head, so heads run on threads independently.
    heads = take(d.heads * per_head);
    total = at;
  }
};

class LinearAttentionBlock final : public Block {
 public:
  LinearAttentionBlock(const fb::Model& model, const fb::LinearAttentionSpec& spec)
      : model_(model), spec_(spec), d_(model, spec) {}

  Status Init(const LayerContext& ctx) {
    const std::string where =
        ctx.file.path() + ": layer " + std::to_string(ctx.index) + " (linear_attention): ";
    if (d_.rope && d_.hd % 2 != 0) {
      return InvalidArgument(where + "RoPE needs an even head_dim, not " + std::to_string(d_.hd));
    }
    RECUR_ASSIGN_OR_RETURN(wq_, ctx.Matrix("attn.q.weight"));
    RECUR_ASSIGN_OR_RETURN(wk_, ctx.Matrix("attn.k.weight"));
    RECUR_ASSIGN_OR_RETURN(wv_, ctx.Matrix("attn.v.weight"));
    RECUR_ASSIGN_OR_RETURN(wo_, ctx.Matrix("attn.o.weight"));
    if (d_.output_gate) {
      RECUR_ASSIGN_OR_RETURN(wg_, ctx.Matrix("attn.g.weight"));
    }
    if (d_.decay == Decay::kGate) {
      if (d_.gate_rank > 0) {
        RECUR_ASSIGN_OR_RETURN(wgk1_, ctx.Matrix("attn.gk1.weight"));
        RECUR_ASSIGN_OR_RETURN(wgk_, ctx.Matrix("attn.gk2.weight"));
      } else {
        RECUR_ASSIGN_OR_RETURN(wgk_, ctx.Matrix("attn.gk.weight"));
      }
      gk_bias_ = ctx.Vector("attn.gk.bias");
      if (gk_bias_ == nullptr) return Internal(where + "attn.gk.bias is not f32");
      inv_tau_ = 1.0f / spec_.gate_normaliser();
    }
    if (d_.head_norm) {
      norm_w_ = ctx.Vector("attn.norm.weight");
      if (norm_w_ == nullptr) return Internal(where + "attn.norm.weight is not f32");
    }
    // RetNet's per-head decays, as log g_h (torchscale: log(1 - 2^(-5 - h))).
    log_g_.assign(d_.heads, 0.0f);
    if (d_.decay == Decay::kFixed) {
      for (size_t h = 0; h < d_.heads; ++h) {
        log_g_[h] = static_cast<float>(std::log1p(-std::exp2(-5.0 - static_cast<double>(h))));
      }
    }
    return Status::Ok();
  }

  LayerPlan Plan(size_t tokens) const override {
    return PlanLinearAttention(model_, spec_, tokens);
  }

  void Step(const float* x, float* out, float* state, float* scratch,
            const Threads& threads) const override {
    const Layout l(d_, 1);
    const int64_t pos = StatePosition(state);
    Project(x, 1, l, scratch, pos, threads);
    float* q = scratch + l.q;
    float* k = scratch + l.k;
    float* v = scratch + l.v;
    float* lg = scratch + l.lg;
    const size_t hd = d_.hd;
    float* S = state + kHeaderFloats;
    float* z = S + d_.heads * hd * hd;
    // Gate decays exp(lg) in place: the step kernel takes multipliers.
    if (d_.decay == Decay::kGate) ops::ExpInPlace(lg, d_.hdk);
    threads.ParallelFor(d_.heads, 1, [&](size_t begin, size_t end) {
      for (size_t h = begin; h < end; ++h) {
        const float* decay = d_.decay == Decay::kGate ? lg + h * hd : nullptr;
        const float a = d_.decay == Decay::kFixed ? std::exp(log_g_[h]) : 1.0f;
        float* o = scratch + l.heads + h * l.per_head + l.h_qd;  // [hd]
        ops::LinearAttentionStep(S + h * hd * hd, q + h * hd, k + h * hd, v + h * hd, decay, a,
                                 hd, hd, o);
        std::memcpy(v + h * hd, o, hd * sizeof(float));
        if (d_.normalise) {
          const float* qn = scratch + l.qn + h * hd;
          const float* kn = scratch + l.kn + h * hd;
          float* zh = z + h * hd;
          double den = 0.0;
          for (size_t j = 0; j < hd; ++j) {
            zh[j] = (decay ? decay[j] : a) * zh[j] + kn[j];
            den += static_cast<double>(qn[j]) * zh[j];
          }
          const float inv = 1.0f / (static_cast<float>(den) + kDenominatorEps);
          for (size_t j = 0; j < hd; ++j) v[h * hd + j] *= inv;
        }
      }
    });
    SetStatePosition(state, pos + 1);
    Finish(x, 1, l, scratch, out, threads);
  }

  void Prefill(const float* x, size_t tokens, float* out, float* state, float* scratch,
               const Threads& threads) const override {
    if (tokens == 0) return;
    const size_t T = tokens;
    const Layout l(d_, T);
    const int64_t pos = StatePosition(state);
    Project(x, T, l, scratch, pos, threads);
    for (size_t c0 = 0; c0 < T; c0 += d_.chunk) {
      const size_t C = std::min(d_.chunk, T - c0);
      threads.ParallelFor(d_.heads, 1, [&](size_t begin, size_t end) {
        for (size_t h = begin; h < end; ++h) {
          ChunkHead(h, c0, C, l, scratch, state, scratch + l.heads + h * l.per_head);
        }
      });
    }
    SetStatePosition(state, pos + static_cast<int64_t>(T));
    Finish(x, T, l, scratch, out, threads);
  }

 private:
  // Projections, feature map, the normaliser's unrotated copies, RoPE and the gate's log decays
  // for T tokens starting at position pos.
  void Project(const float* x, size_t T, const Layout& l, float* scratch, int64_t pos,
               const Threads& threads) const {
    float* q = scratch + l.q;
    float* k = scratch + l.k;
    ProjectRows(wq_, x, T, nullptr, q, threads);
    ProjectRows(wk_, x, T, nullptr, k, threads);
    ProjectRows(wv_, x, T, nullptr, scratch + l.v, threads);
    if (d_.output_gate) ProjectRows(wg_, x, T, nullptr, scratch + l.g, threads);
    if (d_.decay == Decay::kGate) {
      float* lg = scratch + l.lg;
      if (d_.gate_rank > 0) {
        ProjectRows(wgk1_, x, T, nullptr, scratch + l.low, threads);
        ProjectRows(wgk_, scratch + l.low, T, gk_bias_, lg, threads);
      } else {
        ProjectRows(wgk_, x, T, gk_bias_, lg, threads);
      }
      // logsigmoid(u) / tau = -softplus(-u) / tau.
      const size_t n = T * d_.hdk;
      for (size_t i = 0; i < n; ++i) lg[i] = -lg[i];
      ops::SoftplusInPlace(lg, n);
      for (size_t i = 0; i < n; ++i) lg[i] *= -inv_tau_;
    }
    FeatureMapRows(q, T * d_.heads);
    FeatureMapRows(k, T * d_.heads);
    if (d_.normalise) {
      std::memcpy(scratch + l.qn, q, T * d_.hdk * sizeof(float));
      std::memcpy(scratch + l.kn, k, T * d_.hdk * sizeof(float));
    }
    if (d_.rope) {
      float* cos = scratch + l.rope;
      float* sin = cos + d_.hd / 2;
      for (size_t t = 0; t < T; ++t) {
        ops::RopeAngles(static_cast<double>(pos + static_cast<int64_t>(t)), d_.hd,
                        spec_.rope_base(), cos, sin);
        ops::ApplyRope(q + t * d_.hdk, d_.heads, d_.hd, cos, sin, d_.interleaved);
        ops::ApplyRope(k + t * d_.hdk, d_.heads, d_.hd, cos, sin, d_.interleaved);
      }
    }
  }

  // phi over `rows` head vectors of head_dim floats, in place.
  void FeatureMapRows(float* x, size_t rows) const {
    const size_t n = rows * d_.hd;
    switch (d_.phi) {
      case FeatureMap::kIdentity:
        break;
      case FeatureMap::kElu1:
        ops::EluInPlace(x, n);
        for (size_t i = 0; i < n; ++i) x[i] += 1.0f;
        break;
      case FeatureMap::kRelu:
        ops::ReluInPlace(x, n);
        break;
      case FeatureMap::kExp:
        for (size_t r = 0; r < rows; ++r) {
          float* row = x + r * d_.hd;
          const float m = *std::max_element(row, row + d_.hd);
          for (size_t j = 0; j < d_.hd; ++j) row[j] -= m;
          ops::ExpInPlace(row, d_.hd);
        }
        break;
    }
  }

  // Head h over the chunk's tokens [c0, c0 + C), in the chunkwise form: the output replaces the
  // chunk's v rows of this head (once all of them have been read), and S (and z) advance over the
  // chunk. hs: this head's chunk scratch.
  void ChunkHead(size_t h, size_t c0, size_t C, const Layout& l, float* scratch, float* state,
                 float* hs) const {
    const size_t hd = d_.hd, stride = d_.hdk;
    const float* q = scratch + l.q + c0 * stride + h * hd;
    const float* k = scratch + l.k + c0 * stride + h * hd;
    float* v = scratch + l.v + c0 * stride + h * hd;
    float* S = state + kHeaderFloats + h * hd * hd;
    float* z = state + kHeaderFloats + d_.heads * hd * hd + h * hd;
    float* qd = hs + l.h_qd;  // [C, hd]: q_i * e^{b_i}, later the output rows.
    float* kd = hs + l.h_kd;  // [C, hd]: k_s * e^{b_last - b_s}
    float* A = hs + l.h_a;    // [C, C]
    float* den = hs + l.h_den;  // [C] denominators, then [C] scratch.
    float* pw = hs + l.h_pow;   // [C + 1]: e^{n log g} for the fixed decay.
    const bool gate = d_.decay == Decay::kGate;
    const float lgh = d_.decay == Decay::kFixed ? log_g_[h] : 0.0f;

    // Cumulative log decays b (inclusive) for the gate; for the fixed decay b_i = (i + 1) log g.
    float* b = hs + l.h_b;  // [C, hd], gate only.
    if (gate) {
      const float* lg = scratch + l.lg + c0 * stride + h * hd;
      for (size_t j = 0; j < hd; ++j) b[j] = lg[j];
      for (size_t i = 1; i < C; ++i) {
        for (size_t j = 0; j < hd; ++j) b[i * hd + j] = b[(i - 1) * hd + j] + lg[i * stride + j];
      }
    } else {
      for (size_t n = 0; n <= C; ++n) pw[n] = std::exp(static_cast<float>(n) * lgh);
    }
    const float* b_last = b + (C - 1) * hd;
    const auto scale_rows = [&](const float* src, size_t src_stride, float* dst, bool query) {
      for (size_t i = 0; i < C; ++i) {
        for (size_t j = 0; j < hd; ++j) {
          const float e = gate ? std::exp(query ? b[i * hd + j] : b_last[j] - b[i * hd + j])
                               : (query ? pw[i + 1] : pw[C - 1 - i]);
          dst[i * hd + j] = src[i * src_stride + j] * e;
        }
      }
    };
    // Intra-chunk scores A[i, s] (s <= i) of a and b rows (stride `stride`).
    const auto scores = [&](const float* qa, const float* kb) {
      if (gate) {
        ops::GatedScores(qa, stride, kb, stride, b, hd, C, hd, A, C);
      } else {
        ops::Scores(qa, stride, kb, stride, C, C, hd, 1.0f, /*causal=*/true, 0, A, C);
        if (lgh != 0.0f) {
          for (size_t i = 0; i < C; ++i) {
            for (size_t s = 0; s <= i; ++s) A[i * C + s] *= pw[i - s];
          }
        }
      }
    };

    // Denominators first (they read z before its update): den_i = (qn_i e^{b_i}) . z0 +
    // sum_{s <= i} A_n[i, s].
    if (d_.normalise) {
      const float* qn = scratch + l.qn + c0 * stride + h * hd;
      const float* kn = scratch + l.kn + c0 * stride + h * hd;
      scores(qn, kn);
      scale_rows(qn, stride, qd, /*query=*/true);
      for (size_t i = 0; i < C; ++i) {
        double s = 0.0;
        for (size_t j = 0; j < hd; ++j) s += static_cast<double>(qd[i * hd + j]) * z[j];
        for (size_t t = 0; t <= i; ++t) s += A[i * C + t];
        den[i] = static_cast<float>(s);
      }
      scale_rows(kn, stride, kd, /*query=*/false);
      for (size_t j = 0; j < hd; ++j) {
        double s = static_cast<double>(gate ? std::exp(b_last[j]) : pw[C]) * z[j];
        for (size_t i = 0; i < C; ++i) s += kd[i * hd + j];
        z[j] = static_cast<float>(s);
      }
    }

    // Numerator: out_i = (q_i e^{b_i})^T S0 + sum_{s <= i} A[i, s] v_s, built in kd's buffer.
    scores(q, k);
    scale_rows(q, stride, qd, /*query=*/true);
    float* o = kd;  // [C, hd]
    std::memset(o, 0, C * hd * sizeof(float));
    ops::MatMulAcc(qd, hd, S, hd, o, hd, C, hd, hd);
    ops::MatMulAcc(A, C, v, stride, o, hd, C, C, hd);
    // State: S = diag(e^{b_last}) S0 + sum_s (k_s e^{b_last - b_s}) v_s^T.
    for (size_t j = 0; j < hd; ++j) {
      const float e = gate ? std::exp(b_last[j]) : pw[C];
      if (e != 1.0f) {
        for (size_t c = 0; c < hd; ++c) S[j * hd + c] *= e;
      }
    }
    scale_rows(k, stride, qd, /*query=*/false);
    ops::MatTMulAcc(qd, hd, v, stride, S, hd, C, hd, hd);
    // The output replaces v's rows only now that every v row of the chunk has been read.
    for (size_t i = 0; i < C; ++i) {
      float* row = v + i * stride;
      if (d_.normalise) {
        const float inv = 1.0f / (den[i] + kDenominatorEps);
        for (size_t j = 0; j < hd; ++j) row[j] = o[i * hd + j] * inv;
      } else {
        std::memcpy(row, o + i * hd, hd * sizeof(float));
      }
    }
  }

  // Head norm, output gate and the output projection of the attention output in v's rows.
  void Finish(const float* x, size_t T, const Layout& l, float* scratch, float* out,
              const Threads& threads) const {
    float* y = scratch + l.v;
    if (d_.head_norm) {
      ops::RMSNormRows(y, d_.hd, norm_w_, spec_.norm_eps(), y, d_.hd, T * d_.heads, d_.hd);
    }
    if (d_.output_gate) {
      const float* g = scratch + l.g;
      ops::MulSiLU(y, g, y, T * d_.hdk);
    }
    ProjectRows(wo_, y, T, nullptr, out, threads);
  }

  const fb::Model& model_;
  const fb::LinearAttentionSpec& spec_;
  const Dims d_;
  ops::WeightView wq_, wk_, wv_, wo_, wg_, wgk_, wgk1_;
  const float* gk_bias_ = nullptr;  // [heads * head_dim]
  const float* norm_w_ = nullptr;   // [head_dim]
  float inv_tau_ = 1.0f / 16.0f;
  std::vector<float> log_g_;        // [heads]: log of the fixed decay (0 otherwise).
};

}  // namespace

LayerPlan PlanLinearAttention(const fb::Model& model, const fb::LinearAttentionSpec& spec,
                              size_t tokens) {
  const Dims d(model, spec);
  LayerPlan plan;
  plan.state_bytes = d.StateFloats() * sizeof(float);
  plan.scratch_bytes = Layout(d, std::max<size_t>(tokens, 1)).total * sizeof(float);
  return plan;
}

Result<std::unique_ptr<Block>> MakeLinearAttention(const LayerContext& ctx) {
  auto block = std::make_unique<LinearAttentionBlock>(ctx.model,
                                                      *ctx.layer.block_as_LinearAttentionSpec());
  RECUR_RETURN_IF_ERROR(block->Init(ctx));
  return std::unique_ptr<Block>(std::move(block));
}

}  // namespace recur
