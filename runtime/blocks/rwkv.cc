// rwkv: one whole RWKV block (versions 4, 5.x, 6 and 7; BlinkDL's RWKV_in_150_lines.py,
// RWKV_v5_demo.py, RWKV_v6_demo.py, rwkv_v7_numpy.py; docs/rwkv.md). The layer's own norm is none:
// the block receives the residual stream x itself and returns
//   att = time_mix(ln1(x)),  x1 = x + att,  out = att + channel_mix(ln2(x1)),
// so that the runtime's x += out leaves x1 + channel_mix(ln2(x1)), both residual sub-layers of
// the official block. Keeping both in one layer keeps the two token shifts and the WKV state in
// one state slice, and lets RWKV-7's v_first pass between layers with nothing else in between.
//
// State of one layer (floats): [att shift: C][ffn shift: C][WKV], where WKV is, for v4, aa, bb and
// pp [3 C] (per-channel numerator, denominator and max exponent) and, for v5 and later, the
// per-head matrices [H, N, N] (ops/wkv.h). All zero at the start of a stream, as in the official
// code, except v4's pp, which starts at -1e30 there: the block reads pp as -1e30 while bb is 0,
// which it is only before the first token (bb >= 1 after it, see Wkv4Token).
//
// RWKV-7's value residual: the first rwkv7 layer (lora_v == 0) writes its values v_first into the
// first T x C floats of the scratch arena, which the session shares between all layers; later
// rwkv7 layers read them there. MakeRwkv refuses a layer that reads v_first unless every layer
// between it and the producer is rwkv7 (which never write that region).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "ops/activation.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/matvec.h"
#include "ops/norm.h"
#include "ops/wkv.h"
#include "runtime/blocks/block.h"

namespace recur {
namespace {

constexpr size_t AlignFloats(size_t n) { return (n + 15) / 16 * 16; }

// Where each intermediate of a chunk of T tokens lives in the scratch arena (floats). v_first is
// first so that every rwkv7 layer finds it at the same place.
struct ScratchLayout {
  size_t v_first = 0;  // [T, C] (v7 only)
  size_t xn = 0;       // ln1(x) [T, C]
  size_t mix = 0;      // 6 token-shift mixes [6][T, C]
  size_t r = 0, k = 0, v = 0, g = 0, w = 0, a = 0, b = 0;  // [T, C] each
  size_t lora = 0;     // LoRA hidden [T, L]
  size_t gather = 0;   // one v6 mix's slice of it [T, D]
  size_t y = 0;        // [T, C]
  size_t x1 = 0;       // x + att [T, C]
  size_t xn2 = 0;      // ln2(x1) [T, C]
  size_t fk = 0, fr = 0, fo = 0;  // channel mix [T, C]
  size_t fh = 0;       // [T, F]
  size_t total = 0;
};

struct Dims {
  size_t C = 0, H = 0, N = 0, F = 0;
  int version = 4, minor = 0;
  size_t lora_mix = 0, lora_decay = 0, lora_a = 0, lora_v = 0, lora_g = 0;

  Dims(const fb::Model& model, const fb::RwkvSpec& s)
      : C(static_cast<size_t>(model.d_model())),
        H(static_cast<size_t>(std::max(s.n_heads(), 0))),
        N(static_cast<size_t>(std::max(s.head_size(), 0))),
        F(static_cast<size_t>(std::max(s.d_ffn(), 0))),
        version(s.version()),
        minor(s.minor()),
        lora_mix(static_cast<size_t>(std::max(s.lora_mix(), 0))),
        lora_decay(static_cast<size_t>(std::max(s.lora_decay(), 0))),
        lora_a(static_cast<size_t>(std::max(s.lora_a(), 0))),
        lora_v(static_cast<size_t>(std::max(s.lora_v(), 0))),
        lora_g(static_cast<size_t>(std::max(s.lora_g(), 0))) {}

  size_t LoraWidth() const {
    return std::max({5 * lora_mix, lora_decay, lora_a, lora_v, lora_g, size_t{1}});
  }
  size_t WkvFloats() const { return version == 4 ? 3 * C : H * N * N; }
};

ScratchLayout LayoutFor(const Dims& d, size_t T) {
  ScratchLayout l;
  size_t at = 0;
  const auto take = [&](size_t floats) {
    const size_t start = at;
    at += AlignFloats(floats);
    return start;
  };
  const size_t TC = T * d.C;
  l.v_first = take(d.version == 7 ? TC : 0);
  l.xn = take(TC);
  l.mix = take(6 * AlignFloats(TC));
  l.r = take(TC);
  l.k = take(TC);
  l.v = take(TC);
  l.g = take(TC);
  l.w = take(TC);
  l.a = take(TC);
  l.b = take(TC);
  l.lora = take(T * d.LoraWidth());
  l.gather = take(T * std::max<size_t>(d.lora_mix, 1));
  l.y = take(TC);
  l.x1 = take(TC);
  l.xn2 = take(TC);
  l.fk = take(TC);
  l.fr = take(TC);
  l.fo = take(TC);
  l.fh = take(T * d.F);
  l.total = at;
  return l;
}

// x[t, :] += v for T rows of C.
void AddToRows(float* x, size_t T, size_t C, const float* v) {
  for (size_t t = 0; t < T; ++t) {
    float* row = x + t * C;
    for (size_t c = 0; c < C; ++c) row[c] += v[c];
  }
}

// rows [row0, row0 + rows) of w as a matrix of their own.
ops::WeightView SubRows(const ops::WeightView& w, size_t row0, size_t rows) {
  ops::WeightView s = w;
  s.rows = rows;
  const auto* base = static_cast<const unsigned char*>(w.data);
  switch (w.type) {
    case ops::WeightType::kF32: s.data = base + row0 * w.cols * 4; break;
    case ops::WeightType::kF16:
    case ops::WeightType::kBF16: s.data = base + row0 * w.cols * 2; break;
    case ops::WeightType::kQ8_0: {
      s.data = base + row0 * w.cols;
      const size_t scale_bytes = w.scale_type == ops::ScaleType::kF32 ? 4 : 2;
      s.scales = static_cast<const unsigned char*>(w.scales) + row0 * (w.cols / 32) * scale_bytes;
      break;
    }
  }
  return s;
}

class RwkvBlock final : public Block {
 public:
  RwkvBlock(const fb::Model& model, const fb::RwkvSpec& spec, float ln_eps)
      : model_(model), spec_(spec), d_(model, spec), ln_eps_(ln_eps),
        gn_eps_(spec.group_norm_eps()) {}

  Status Init(const LayerContext& ctx) {
    const size_t C = d_.C;
    auto vec = [&](const std::string& name, const float** out) -> Status {
      *out = ctx.Vector(name);
      if (*out == nullptr) {
        return Internal(ctx.file.path() + ": f32 tensor '" + ctx.prefix + name + "' vanished");
      }
      return Status::Ok();
    };
    RECUR_RETURN_IF_ERROR(vec("ln1.weight", &ln1_w_));
    RECUR_RETURN_IF_ERROR(vec("ln1.bias", &ln1_b_));
    RECUR_RETURN_IF_ERROR(vec("ln2.weight", &ln2_w_));
    RECUR_RETURN_IF_ERROR(vec("ln2.bias", &ln2_b_));
    RECUR_ASSIGN_OR_RETURN(wr_, ctx.Matrix("att.receptance.weight"));
    RECUR_ASSIGN_OR_RETURN(wk_, ctx.Matrix("att.key.weight"));
    RECUR_ASSIGN_OR_RETURN(wv_, ctx.Matrix("att.value.weight"));
    RECUR_ASSIGN_OR_RETURN(wo_, ctx.Matrix("att.output.weight"));
    RECUR_ASSIGN_OR_RETURN(fkey_, ctx.Matrix("ffn.key.weight"));
    RECUR_ASSIGN_OR_RETURN(fvalue_, ctx.Matrix("ffn.value.weight"));
    if (d_.version != 7) {
      RECUR_ASSIGN_OR_RETURN(freceptance_, ctx.Matrix("ffn.receptance.weight"));
    }
    if (d_.version >= 5) {
      RECUR_RETURN_IF_ERROR(vec("att.ln_x.weight", &lnx_w_));
      RECUR_RETURN_IF_ERROR(vec("att.ln_x.bias", &lnx_b_));
    }
    decay_.assign(C, 0.0f);
    bonus_.assign(C, 0.0f);
    const float* p = nullptr;
    if (d_.version == 4 || d_.version == 5) {
      // v4 and v5 share the plain token-shift mixes (v6 interpolates them, v7 renames them).
      RECUR_RETURN_IF_ERROR(vec("att.time_mix_k", &mix_[0]));
      RECUR_RETURN_IF_ERROR(vec("att.time_mix_v", &mix_[1]));
      RECUR_RETURN_IF_ERROR(vec("att.time_mix_r", &mix_[2]));
      RECUR_RETURN_IF_ERROR(vec("ffn.time_mix_k", &fmix_k_));
      RECUR_RETURN_IF_ERROR(vec("ffn.time_mix_r", &fmix_r_));
    }
    switch (d_.version) {
      case 4:
        RECUR_RETURN_IF_ERROR(vec("att.time_decay", &p));
        // RWKV_in_150_lines: time_decay = -exp(w), the log of the per-step decay.
        for (size_t c = 0; c < C; ++c) decay_[c] = static_cast<float>(-std::exp(double{p[c]}));
        RECUR_RETURN_IF_ERROR(vec("att.time_first", &p));
        bonus_.assign(p, p + C);
        break;
      case 5: {
        // exp(-exp(w)) per key channel; v5.0/5.1 keep one decay and one bonus exp(u) per head.
        RECUR_RETURN_IF_ERROR(vec("att.time_decay", &p));
        const bool per_head = d_.minor < 2;
        for (size_t c = 0; c < C; ++c) {
          const double w = p[per_head ? c / d_.N : c];
          decay_[c] = static_cast<float>(std::exp(-std::exp(w)));
        }
        if (per_head) {
          RECUR_RETURN_IF_ERROR(vec("att.time_first", &p));
          for (size_t c = 0; c < C; ++c) {
            bonus_[c] = static_cast<float>(std::exp(double{p[c / d_.N]}));
          }
        } else {
          RECUR_RETURN_IF_ERROR(vec("att.time_faaaa", &p));
          bonus_.assign(p, p + C);
          RECUR_RETURN_IF_ERROR(vec("att.time_mix_g", &mix_[3]));
          RECUR_ASSIGN_OR_RETURN(wg_, ctx.Matrix("att.gate.weight"));
        }
        break;
      }
      case 6: {
        RECUR_RETURN_IF_ERROR(vec("att.time_maa_x", &maa_x_));
        const char* parts[5] = {"att.time_maa_w", "att.time_maa_k", "att.time_maa_v",
                                "att.time_maa_r", "att.time_maa_g"};
        for (int j = 0; j < 5; ++j) RECUR_RETURN_IF_ERROR(vec(parts[j], &mix_[j]));
        RECUR_ASSIGN_OR_RETURN(maa_w1_, ctx.Matrix("att.time_maa_w1"));
        RECUR_ASSIGN_OR_RETURN(const ops::WeightView w2, ctx.Matrix("att.time_maa_w2"));
        for (size_t j = 0; j < 5; ++j) maa_w2_[j] = SubRows(w2, j * C, C);
        RECUR_RETURN_IF_ERROR(vec("att.time_decay", &w0_));
        RECUR_ASSIGN_OR_RETURN(w1_, ctx.Matrix("att.time_decay_w1"));
        RECUR_ASSIGN_OR_RETURN(w2_, ctx.Matrix("att.time_decay_w2"));
        RECUR_RETURN_IF_ERROR(vec("att.time_faaaa", &p));
        bonus_.assign(p, p + C);
        RECUR_ASSIGN_OR_RETURN(wg_, ctx.Matrix("att.gate.weight"));
        RECUR_RETURN_IF_ERROR(vec("ffn.time_maa_k", &fmix_k_));
        RECUR_RETURN_IF_ERROR(vec("ffn.time_maa_r", &fmix_r_));
        break;
      }
      case 7: {
        const char* parts[6] = {"att.x_r", "att.x_w", "att.x_k", "att.x_v", "att.x_a", "att.x_g"};
        for (int j = 0; j < 6; ++j) RECUR_RETURN_IF_ERROR(vec(parts[j], &mix_[j]));
        RECUR_RETURN_IF_ERROR(vec("att.w0", &w0_));
        RECUR_ASSIGN_OR_RETURN(w1_, ctx.Matrix("att.w1"));
        RECUR_ASSIGN_OR_RETURN(w2_, ctx.Matrix("att.w2"));
        RECUR_RETURN_IF_ERROR(vec("att.a0", &a0_));
        RECUR_ASSIGN_OR_RETURN(a1_, ctx.Matrix("att.a1"));
        RECUR_ASSIGN_OR_RETURN(a2_, ctx.Matrix("att.a2"));
        if (d_.lora_v > 0) {
          RECUR_RETURN_IF_ERROR(vec("att.v0", &v0_));
          RECUR_ASSIGN_OR_RETURN(v1_, ctx.Matrix("att.v1"));
          RECUR_ASSIGN_OR_RETURN(v2_, ctx.Matrix("att.v2"));
        }
        RECUR_ASSIGN_OR_RETURN(g1_, ctx.Matrix("att.g1"));
        RECUR_ASSIGN_OR_RETURN(g2_, ctx.Matrix("att.g2"));
        RECUR_RETURN_IF_ERROR(vec("att.k_k", &k_k_));
        RECUR_RETURN_IF_ERROR(vec("att.k_a", &k_a_));
        RECUR_RETURN_IF_ERROR(vec("att.r_k", &r_k_));
        RECUR_RETURN_IF_ERROR(vec("ffn.x_k", &fmix_k_));
        break;
      }
      default:
        return Unsupported(ctx.file.path() + ": layer " + std::to_string(ctx.index) +
                           ": RWKV version " + std::to_string(d_.version));
    }
    return Status::Ok();
  }

  LayerPlan Plan(size_t tokens) const override { return PlanRwkv(model_, spec_, tokens); }

  void Step(const float* x, float* out, float* state, float* scratch,
            const Threads& threads) const override {
    const ScratchLayout l = LayoutFor(d_, 1);
    Run(x, 1, out, Rows{&state, false}, scratch + l.v_first, scratch, l, threads);
  }

  void Prefill(const float* x, size_t tokens, float* out, float* state, float* scratch,
               const Threads& threads) const override {
    if (tokens == 0) return;
    const ScratchLayout l = LayoutFor(d_, tokens);
    Run(x, tokens, out, Rows{&state, false}, scratch + l.v_first, scratch, l, threads);
  }

  // n streams, one token each, run as the n rows of a chunk whose rows each have their own
  // state: every projection is one MatMul over the n rows (each weight read once), and only the
  // token shifts and the WKV recurrences are per stream. v_first is [n, C] as in a chunk.
  size_t BatchScratchBytes(size_t n) const override {
    return LayoutFor(d_, std::max<size_t>(n, 1)).total * sizeof(float);
  }

  void StepBatch(const float* x, size_t n, size_t d_model, float* out, float* const* states,
                 float* scratch, const Threads& threads) const override {
    if (n == 0) return;
    const ScratchLayout l = LayoutFor(d_, n);
    Run(x, n, out, Rows{states, true}, scratch + l.v_first, scratch, l, threads);
  }

 private:
  // Where each row's state lives: rows are consecutive tokens of one stream (states[0]), or, in
  // a batch, row t is the next token of stream t (states[t]).
  struct Rows {
    float* const* states;
    bool batch;

    float* State(size_t t) const { return batch ? states[t] : states[0]; }
    // The previous token's input for row t: the carried shift (at `offset` in the state) for
    // a stream's first row, else the row before.
    const float* Prev(const float* rows, size_t offset, size_t t, size_t C) const {
      return batch || t == 0 ? State(t) + offset : rows + (t - 1) * C;
    }
    // Carries each stream's last row into its shift.
    void Shift(const float* rows, size_t offset, size_t T, size_t C) const {
      if (batch) {
        for (size_t t = 0; t < T; ++t) std::memcpy(states[t] + offset, rows + t * C, C * 4);
      } else {
        std::memcpy(states[0] + offset, rows + (T - 1) * C, C * sizeof(float));
      }
    }
  };

  // State offsets: att shift at 0, ffn shift at C, WKV at 2 C.
  void Run(const float* x, size_t T, float* out, const Rows& rows, float* v_first, float* s,
           const ScratchLayout& l, const Threads& threads) const {
    const size_t C = d_.C, TC = T * C;
    const size_t att_shift = 0, ffn_shift = C;
    float* xn = s + l.xn;
    float* mix[6];
    for (size_t j = 0; j < 6; ++j) mix[j] = s + l.mix + j * AlignFloats(TC);
    float* r = s + l.r;
    float* k = s + l.k;
    float* v = s + l.v;
    float* g = s + l.g;
    float* w = s + l.w;
    float* a = s + l.a;
    float* b = s + l.b;
    float* lora = s + l.lora;
    float* y = s + l.y;

    ops::LayerNormRows(x, C, ln1_w_, ln1_b_, ln_eps_, xn, C, T, C);

    // Token shift and the mixes.
    const int ver = d_.version;
    const size_t n_mix = ver == 4 ? 3 : ver == 5 ? (d_.minor == 2 ? 4 : 3) : ver == 6 ? 5 : 6;
    if (ver == 6) {
      // xxx = x + (prev - x) maa_x -> tanh(W1 xxx) [T, 5D] -> five W2_j parts.
      float* sx = y;  // free until the WKV output
      float* xxx = mix[5];
      for (size_t t = 0; t < T; ++t) {
        const float* xt = xn + t * C;
        const float* pt = rows.Prev(xn, att_shift, t, C);
        for (size_t c = 0; c < C; ++c) {
          sx[t * C + c] = pt[c] - xt[c];
          xxx[t * C + c] = xt[c] + sx[t * C + c] * maa_x_[c];
        }
      }
      const size_t D = d_.lora_mix;
      ProjectRows(maa_w1_, xxx, T, nullptr, lora, threads);
      ops::TanhInPlace(lora, T * 5 * D);
      float* gather = s + l.gather;
      for (size_t j = 0; j < 5; ++j) {
        for (size_t t = 0; t < T; ++t) {
          std::memcpy(gather + t * D, lora + t * 5 * D + j * D, D * sizeof(float));
        }
        ProjectRows(maa_w2_[j], gather, T, nullptr, mix[j], threads);
        for (size_t t = 0; t < T; ++t) {
          for (size_t c = 0; c < C; ++c) {
            const size_t i = t * C + c;
            mix[j][i] = xn[i] + sx[i] * (mix_[j][c] + mix[j][i]);
          }
        }
      }
    } else {
      for (size_t t = 0; t < T; ++t) {
        const float* xt = xn + t * C;
        const float* pt = rows.Prev(xn, att_shift, t, C);
        for (size_t j = 0; j < n_mix; ++j) {
          const float* m = mix_[j];
          float* o = mix[j] + t * C;
          if (ver == 7) {
            for (size_t c = 0; c < C; ++c) o[c] = xt[c] + m[c] * (pt[c] - xt[c]);
          } else {
            for (size_t c = 0; c < C; ++c) o[c] = xt[c] * m[c] + pt[c] * (1.0f - m[c]);
          }
        }
      }
    }
    rows.Shift(xn, att_shift, T, C);

    switch (ver) {
      case 4: TimeMix4(mix, T, r, k, v, y, rows, threads); break;
      case 5:
      case 6: TimeMix56(mix, T, r, k, v, g, w, lora, y, rows, threads); break;
      case 7: TimeMix7(mix, T, r, k, v, g, w, a, b, lora, y, rows, v_first, threads); break;
    }
    ProjectRows(wo_, y, T, nullptr, out, threads);  // out = att

    // Channel mix on x1 = x + att.
    float* x1 = s + l.x1;
    float* xn2 = s + l.xn2;
    float* fk = s + l.fk;
    float* fr = s + l.fr;
    float* fo = s + l.fo;
    float* fh = s + l.fh;
    ops::Add(x, out, x1, TC);
    ops::LayerNormRows(x1, C, ln2_w_, ln2_b_, ln_eps_, xn2, C, T, C);
    for (size_t t = 0; t < T; ++t) {
      const float* xt = xn2 + t * C;
      const float* pt = rows.Prev(xn2, ffn_shift, t, C);
      float* ok = fk + t * C;
      float* orr = fr + t * C;
      if (ver == 7) {
        for (size_t c = 0; c < C; ++c) ok[c] = xt[c] + fmix_k_[c] * (pt[c] - xt[c]);
      } else if (ver == 6) {
        for (size_t c = 0; c < C; ++c) {
          const float sx = pt[c] - xt[c];
          ok[c] = xt[c] + sx * fmix_k_[c];
          orr[c] = xt[c] + sx * fmix_r_[c];
        }
      } else {
        for (size_t c = 0; c < C; ++c) {
          ok[c] = xt[c] * fmix_k_[c] + pt[c] * (1.0f - fmix_k_[c]);
          orr[c] = xt[c] * fmix_r_[c] + pt[c] * (1.0f - fmix_r_[c]);
        }
      }
    }
    rows.Shift(xn2, ffn_shift, T, C);
    ProjectRows(fkey_, fk, T, nullptr, fh, threads);
    // relu(h)^2. A scalar max here compiled to a branch on the sign, mispredicted half the time:
    // 2% of a q8_0 rwkv7-0.1b decode step.
    ops::ReluInPlace(fh, T * d_.F);
    ops::Mul(fh, fh, fh, T * d_.F);
    ProjectRows(fvalue_, fh, T, nullptr, fo, threads);
    if (ver == 7) {
      ops::Add(out, fo, out, TC);
    } else {
      ProjectRows(freceptance_, fr, T, nullptr, fk, threads);  // fk is free again
      ops::SigmoidInPlace(fk, TC);
      for (size_t i = 0; i < TC; ++i) out[i] += fk[i] * fo[i];
    }
  }

  // RWKV-4: per-channel WKV with a running max exponent (RWKV_in_150_lines.py).
  void TimeMix4(float* const* mix, size_t T, float* r, float* k, float* v, float* y,
                const Rows& rows, const Threads& threads) const {
    const size_t C = d_.C, TC = T * C;
    ProjectRows(wr_, mix[2], T, nullptr, r, threads);
    ProjectRows(wk_, mix[0], T, nullptr, k, threads);
    ProjectRows(wv_, mix[1], T, nullptr, v, threads);
    ops::SigmoidInPlace(r, TC);
    for (size_t t = 0; t < T; ++t) {
      float* aa = rows.State(t) + 2 * C;
      float* bb = aa + C;
      float* pp = aa + 2 * C;
      for (size_t c = 0; c < C; ++c) {
        const float kt = k[t * C + c], vt = v[t * C + c];
        // The official state starts with pp = -1e30; ours starts at zero, and bb is 0 only then.
        const float p = bb[c] == 0.0f ? -1e30f : pp[c];
        float ww = bonus_[c] + kt;
        float q = std::max(p, ww);
        float e1 = std::exp(p - q), e2 = std::exp(ww - q);
        const float num = e1 * aa[c] + e2 * vt;
        const float den = e1 * bb[c] + e2;
        y[t * C + c] = r[t * C + c] * (num / den);
        ww = p + decay_[c];
        q = std::max(ww, kt);
        e1 = std::exp(ww - q);
        e2 = std::exp(kt - q);
        aa[c] = e1 * aa[c] + e2 * vt;
        bb[c] = e1 * bb[c] + e2;
        pp[c] = q;
      }
    }
  }

  // RWKV-5.x and 6: matrix-valued state per head, GroupNorm, and (5.2, 6) a SiLU gate.
  void TimeMix56(float* const* mix, size_t T, float* r, float* k, float* v, float* g, float* w,
                 float* lora, float* y, const Rows& rows, const Threads& threads) const {
    const size_t C = d_.C, TC = T * C;
    const bool v6 = d_.version == 6;
    // Mix order: v5 k, v, r, g; v6 w, k, v, r, g.
    const size_t ik = v6 ? 1 : 0, iv = v6 ? 2 : 1, ir = v6 ? 3 : 2, ig = v6 ? 4 : 3;
    ProjectRows(wr_, mix[ir], T, nullptr, r, threads);
    ProjectRows(wk_, mix[ik], T, nullptr, k, threads);
    ProjectRows(wv_, mix[iv], T, nullptr, v, threads);
    const bool gated = v6 || d_.minor == 2;
    if (gated) {
      ProjectRows(wg_, mix[ig], T, nullptr, g, threads);
      ops::SiLUInPlace(g, TC);
    }
    if (v6) {
      // w = exp(-exp(time_decay + tanh(xw W1) W2)).
      ProjectRows(w1_, mix[0], T, nullptr, lora, threads);
      ops::TanhInPlace(lora, T * d_.lora_decay);
      ProjectRows(w2_, lora, T, nullptr, w, threads);
      AddToRows(w, T, C, w0_);
      ops::ExpInPlace(w, TC);
      for (size_t i = 0; i < TC; ++i) w[i] = -w[i];
      ops::ExpInPlace(w, TC);
    }
    for (size_t t = 0; t < T; ++t) {
      const float* wt = v6 ? w + t * C : decay_.data();
      float* yt = y + t * C;
      threads.ParallelFor(d_.H, 1, [&](size_t begin, size_t end) {
        ops::Wkv5Step(rows.State(t) + 2 * C, r + t * C, k + t * C, v + t * C, wt, bonus_.data(),
                      d_.N, begin, end, yt);
      });
    }
    ops::GroupNormRows(y, C, d_.H, d_.N, lnx_w_, lnx_b_, gn_eps_, y, C, T);
    if (gated) {
      for (size_t i = 0; i < TC; ++i) y[i] *= g[i];
    }
  }

  // RWKV-7: the generalised delta rule (rwkv_v7_numpy.py).
  void TimeMix7(float* const* mix, size_t T, float* r, float* k, float* v, float* g, float* w,
                float* a, float* b, float* lora, float* y, const Rows& rows, float* v_first,
                const Threads& threads) const {
    const size_t C = d_.C, TC = T * C, H = d_.H, N = d_.N;
    // mix: r, w, k, v, a, g.
    ProjectRows(wr_, mix[0], T, nullptr, r, threads);
    // w = exp(-e^-0.5 sigmoid(w0 + tanh(xw W1) W2)).
    ProjectRows(w1_, mix[1], T, nullptr, lora, threads);
    ops::TanhInPlace(lora, T * d_.lora_decay);
    ProjectRows(w2_, lora, T, nullptr, w, threads);
    AddToRows(w, T, C, w0_);
    ops::SigmoidInPlace(w, TC);
    const float inv_sqrt_e = static_cast<float>(std::exp(-0.5));
    for (size_t i = 0; i < TC; ++i) w[i] *= -inv_sqrt_e;
    ops::ExpInPlace(w, TC);
    ProjectRows(wk_, mix[2], T, nullptr, k, threads);
    ProjectRows(wv_, mix[3], T, nullptr, v, threads);
    if (d_.lora_v == 0) {
      std::memcpy(v_first, v, TC * sizeof(float));
    } else {
      // v += (v_first - v) sigmoid(v0 + (xv V1) V2); g is free until the gate.
      ProjectRows(v1_, mix[3], T, nullptr, lora, threads);
      ProjectRows(v2_, lora, T, nullptr, g, threads);
      AddToRows(g, T, C, v0_);
      ops::SigmoidInPlace(g, TC);
      for (size_t i = 0; i < TC; ++i) v[i] += (v_first[i] - v[i]) * g[i];
    }
    // a = sigmoid(a0 + (xa A1) A2).
    ProjectRows(a1_, mix[4], T, nullptr, lora, threads);
    ProjectRows(a2_, lora, T, nullptr, a, threads);
    AddToRows(a, T, C, a0_);
    ops::SigmoidInPlace(a, TC);
    // g = sigmoid(xg G1) G2.
    ProjectRows(g1_, mix[5], T, nullptr, lora, threads);
    ops::SigmoidInPlace(lora, T * d_.lora_g);
    ProjectRows(g2_, lora, T, nullptr, g, threads);
    // kk = normalize(k k_k) per head (into b, then b = kk a and the kernel's a = -kk).
    for (size_t t = 0; t < T; ++t) {
      for (size_t h = 0; h < H; ++h) {
        const size_t c0 = t * C + h * N;
        double ss = 0.0;
        for (size_t j = 0; j < N; ++j) {
          const float kk = k[c0 + j] * k_k_[h * N + j];
          b[c0 + j] = kk;
          ss += static_cast<double>(kk) * kk;
        }
        const float inv = 1.0f / std::max(static_cast<float>(std::sqrt(ss)), 1e-12f);
        for (size_t j = 0; j < N; ++j) b[c0 + j] *= inv;
      }
    }
    for (size_t t = 0; t < T; ++t) {
      for (size_t c = 0; c < C; ++c) {
        const size_t i = t * C + c;
        k[i] += k[i] * (a[i] - 1.0f) * k_a_[c];
        const float kk = b[i];
        b[i] = kk * a[i];
        a[i] = -kk;
      }
    }
    for (size_t t = 0; t < T; ++t) {
      const size_t o = t * C;
      threads.ParallelFor(H, 1, [&](size_t begin, size_t end) {
        ops::Wkv7Step(rows.State(t) + 2 * C, r + o, w + o, k + o, v + o, a + o, b + o, N, begin,
                      end, y + o);
      });
    }
    ops::GroupNormRows(y, C, H, N, lnx_w_, lnx_b_, gn_eps_, y, C, T);
    // y += (sum over the head of r k r_k) v; then the gate.
    for (size_t t = 0; t < T; ++t) {
      for (size_t h = 0; h < H; ++h) {
        const size_t c0 = t * C + h * N;
        float dot = 0.0f;
        for (size_t j = 0; j < N; ++j) dot += r[c0 + j] * k[c0 + j] * r_k_[h * N + j];
        for (size_t j = 0; j < N; ++j) y[c0 + j] += dot * v[c0 + j];
      }
    }
    ops::Mul(y, g, y, TC);
  }

  const fb::Model& model_;
  const fb::RwkvSpec& spec_;
  const Dims d_;
  const float ln_eps_, gn_eps_;
  const float *ln1_w_ = nullptr, *ln1_b_ = nullptr, *ln2_w_ = nullptr, *ln2_b_ = nullptr;
  const float *lnx_w_ = nullptr, *lnx_b_ = nullptr;
  const float* mix_[6] = {};  // Per-version token-shift mixes, in the order Run builds them.
  const float *fmix_k_ = nullptr, *fmix_r_ = nullptr;
  const float* maa_x_ = nullptr;
  const float *w0_ = nullptr, *a0_ = nullptr, *v0_ = nullptr;
  const float *k_k_ = nullptr, *k_a_ = nullptr, *r_k_ = nullptr;
  std::vector<float> decay_;  // v4: -exp(w); v5: exp(-exp(w)) per channel.
  std::vector<float> bonus_;  // v4: u; v5.1: exp(u); v5.2, v6: time_faaaa; per channel.
  ops::WeightView wr_, wk_, wv_, wo_, wg_;
  ops::WeightView maa_w1_, maa_w2_[5];
  ops::WeightView w1_, w2_, a1_, a2_, v1_, v2_, g1_, g2_;
  ops::WeightView fkey_, fvalue_, freceptance_;
};

}  // namespace

LayerPlan PlanRwkv(const fb::Model& model, const fb::RwkvSpec& spec, size_t tokens) {
  const Dims d(model, spec);
  LayerPlan plan;
  plan.state_bytes = (2 * d.C + d.WkvFloats()) * sizeof(float);
  plan.scratch_bytes = LayoutFor(d, std::max<size_t>(tokens, 1)).total * sizeof(float);
  return plan;
}

Result<std::unique_ptr<Block>> MakeRwkv(const LayerContext& ctx) {
  const fb::RwkvSpec& spec = *ctx.layer.block_as_RwkvSpec();
  const std::string where =
      ctx.file.path() + ": layer " + std::to_string(ctx.index) + " (rwkv" +
      std::to_string(spec.version()) + "): ";
  if (spec.version() == 7 && spec.lora_v() > 0) {
    // This layer reads v_first, which the nearest earlier rwkv7 layer with lora_v 0 leaves in the
    // shared scratch; any other block kind in between would overwrite it.
    const auto* layers = ctx.model.layers();
    bool found = false;
    for (int i = ctx.index - 1; i >= 0 && !found; --i) {
      const fb::Layer* l = layers->Get(static_cast<uint32_t>(i));
      const fb::RwkvSpec* s = l->block_as_RwkvSpec();
      if (s == nullptr || s->version() != 7) {
        return Unsupported(where + "reads v_first, but layer " + std::to_string(i) +
                           " between it and the layer that makes v_first is not rwkv7");
      }
      found = s->lora_v() == 0;
    }
    if (!found) {
      return InvalidArgument(where + "reads v_first (lora_v > 0) but no earlier rwkv7 layer "
                                     "makes it (lora_v 0)");
    }
  }
  auto block = std::make_unique<RwkvBlock>(ctx.model, spec, ctx.layer.norm_eps());
  RECUR_RETURN_IF_ERROR(block->Init(ctx));
  return std::unique_ptr<Block>(std::move(block));
}

}  // namespace recur
