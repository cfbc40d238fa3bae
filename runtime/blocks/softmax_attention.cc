// softmax_attention: causal softmax attention (MHA, GQA, MQA) with optional RoPE, run as an RNN
// with online softmax (MATH.md, "Attention as an RNN"; docs/attention.md):
//   q = Wq x [heads, hd];  k, v = Wk x, Wv x [kv_heads, hd];  q, k = RoPE(q, pos), RoPE(k, pos)
//   o_h = softmax_j(q_h . k_{j,g} / sqrt(hd)) v_{j,g} over the keys j the mode keeps, with
//   g = h / (heads / kv_heads);  out = Wo o.
// The scores of a query are consumed a block of keys at a time by the online softmax (running
// max m, sum z, weighted sum y), so no [context]-sized score row is ever held.
// Three modes, one set of weights; the state of a layer starts with a 64-byte header holding the
// number of tokens seen (the position):
//   kv_cache:  rows [max_context, 2 kv_dim] of (k, v) per token: exact; the state grows by
//              2 kv_heads hd floats per token. The allocation is made once for max_context tokens
//              but only the filled rows are ever touched, so resident memory grows with the
//              context. A full cache refuses further tokens (Room()).
//   window W:  a ring of W rows: each query sees the last W tokens (itself included); constant
//              memory. Equal to kv_cache while t <= W.
//   recompute: rows [max_context, d_model] of the layer's inputs only; every step recomputes
//              the keys and values of all earlier tokens from them (time ~ t d_model kv_dim per
//              step). This is the per-layer form of the O(1)-space construction; true O(1) space
//              beyond the token ids would keep only the ids and recompute every layer's inputs
//              from the layer below as well (time ~ t^(layers + 1)), which needs the whole stack
//              rather than one block.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include "ops/linear_attention.h"
#include "ops/matmul.h"
#include "ops/matvec.h"
#include "ops/rope.h"
#include "ops/softmax.h"
#include "runtime/blocks/block.h"

namespace recur {
namespace {

constexpr size_t kHeaderFloats = 16;
// Keys per online-softmax update: the block's scores stay in L1 and the rescale of y happens once
// per block instead of once per key.
constexpr size_t kKeyBlock = 64;

constexpr size_t AlignFloats(size_t n) { return (n + 15) / 16 * 16; }

enum class Mode { kKvCache, kWindow, kRecompute };

struct Dims {
  size_t d_model = 0, heads = 0, kv_heads = 0, hd = 0, q_dim = 0, kv_dim = 0, group = 1;
  size_t window = 0, cap = 0;  // cap: rows the state holds (max_context, or the window).
  Mode mode = Mode::kKvCache;
  bool rope = false, interleaved = false;

  Dims(const fb::Model& model, const fb::SoftmaxAttentionSpec& s) {
    d_model = static_cast<size_t>(std::max(model.d_model(), 0));
    heads = static_cast<size_t>(std::max(s.n_heads(), 1));
    kv_heads = static_cast<size_t>(std::max(s.n_kv_heads(), 1));
    hd = static_cast<size_t>(std::max(s.head_dim(), 0));
    q_dim = heads * hd;
    kv_dim = kv_heads * hd;
    group = std::max<size_t>(heads / kv_heads, 1);
    const std::string m = s.mode() ? s.mode()->str() : "kv_cache";
    mode = m == "window" ? Mode::kWindow : m == "recompute" ? Mode::kRecompute : Mode::kKvCache;
    window = static_cast<size_t>(std::max(s.window(), 0));
    cap = mode == Mode::kWindow ? window : static_cast<size_t>(std::max<int64_t>(s.max_context(), 0));
    const std::string r = s.rope() ? s.rope()->str() : "none";
    rope = r == "interleaved" || r == "half";
    interleaved = r == "interleaved";
  }

  size_t RowFloats() const { return mode == Mode::kRecompute ? d_model : 2 * kv_dim; }
  size_t StateFloats() const { return kHeaderFloats + cap * RowFloats(); }
};

struct Layout {
  size_t q = 0, k = 0, v = 0, o = 0, s = 0, m = 0, z = 0, rope = 0, total = 0;

  Layout(const Dims& d, size_t tokens) {
    size_t at = 0;
    const auto take = [&](size_t floats) {
      const size_t start = at;
      at += AlignFloats(floats);
      return start;
    };
    const size_t T = std::max<size_t>(tokens, 1);
    // Recompute holds a block of recomputed keys and values instead of the chunk's own.
    const size_t kv_rows = d.mode == Mode::kRecompute ? std::max(T, kKeyBlock) : T;
    q = take(T * d.q_dim);
    k = take(kv_rows * d.kv_dim);
    v = take(kv_rows * d.kv_dim);
    o = take(T * d.q_dim);            // y of each (token, head), then the output.
    s = take(T * d.heads * kKeyBlock);  // One score block per (token, head).
    m = take(T * d.heads);
    z = take(T * d.heads);
    rope = take(d.rope ? d.hd : 0);
    total = at;
  }
};

class SoftmaxAttentionBlock final : public Block {
 public:
  SoftmaxAttentionBlock(const fb::Model& model, const fb::SoftmaxAttentionSpec& spec)
      : model_(model), spec_(spec), d_(model, spec), scale_(1.0f / std::sqrt(static_cast<float>(d_.hd))) {}

  Status Init(const LayerContext& ctx) {
    const std::string where =
        ctx.file.path() + ": layer " + std::to_string(ctx.index) + " (softmax_attention): ";
    if (d_.cap == 0) {
      return InvalidArgument(where + (d_.mode == Mode::kWindow ? "window" : "max_context") +
                             " must be positive");
    }
    RECUR_ASSIGN_OR_RETURN(wq_, ctx.Matrix("attn.q.weight"));
    RECUR_ASSIGN_OR_RETURN(wk_, ctx.Matrix("attn.k.weight"));
    RECUR_ASSIGN_OR_RETURN(wv_, ctx.Matrix("attn.v.weight"));
    RECUR_ASSIGN_OR_RETURN(wo_, ctx.Matrix("attn.o.weight"));
    return Status::Ok();
  }

  LayerPlan Plan(size_t tokens) const override {
    return PlanSoftmaxAttention(model_, spec_, tokens);
  }

  size_t Room(const float* state) const override {
    if (d_.mode == Mode::kWindow) return std::numeric_limits<size_t>::max();
    const int64_t pos = StatePosition(state);
    return pos >= static_cast<int64_t>(d_.cap) ? 0 : d_.cap - static_cast<size_t>(pos);
  }

  size_t StateBytesInUse(const float* state) const override {
    const size_t pos = static_cast<size_t>(std::max<int64_t>(StatePosition(state), 0));
    return (kHeaderFloats + std::min(pos, d_.cap) * d_.RowFloats()) * sizeof(float);
  }

  size_t ResetBytes() const override { return kHeaderFloats * sizeof(float); }

  void Step(const float* x, float* out, float* state, float* scratch,
            const Threads& threads) const override {
    Prefill(x, 1, out, state, scratch, threads);
  }

  // Steps are one-token prefills: the same code path, so the two leave identical state.
  void Prefill(const float* x, size_t tokens, float* out, float* state, float* scratch,
               const Threads& threads) const override {
    if (tokens == 0) return;
    const size_t T = tokens;
    const Layout l(d_, T);
    const int64_t p0 = StatePosition(state);
    float* rows = state + kHeaderFloats;
    float* q = scratch + l.q;
    float* o = scratch + l.o;
    ProjectRows(wq_, x, T, nullptr, q, threads);
    if (d_.mode == Mode::kRecompute) {
      for (size_t t = 0; t < T; ++t) {
        std::memcpy(rows + (static_cast<size_t>(p0) + t) * d_.d_model, x + t * d_.d_model,
                    d_.d_model * sizeof(float));
      }
      RopeRows(q, T, d_.heads, p0, scratch + l.rope);
      Recompute(T, p0, l, scratch, rows, threads);
    } else {
      float* k = scratch + l.k;
      float* v = scratch + l.v;
      ProjectRows(wk_, x, T, nullptr, k, threads);
      ProjectRows(wv_, x, T, nullptr, v, threads);
      RopeRows(q, T, d_.heads, p0, scratch + l.rope);
      RopeRows(k, T, d_.kv_heads, p0, scratch + l.rope);
      if (d_.mode == Mode::kKvCache) {
        for (size_t t = 0; t < T; ++t) StoreRow(rows, static_cast<size_t>(p0) + t, k, v, t);
        threads.ParallelFor(T * d_.heads, 1, [&](size_t begin, size_t end) {
          for (size_t i = begin; i < end; ++i) {
            const size_t t = i / d_.heads, h = i % d_.heads;
            Query(l, scratch, t, h, rows, 0, static_cast<size_t>(p0) + t + 1);
          }
        });
      } else {
        // The ring: each token's row goes in before its query and may overwrite a key that only
        // earlier queries needed, so tokens go one at a time.
        for (size_t t = 0; t < T; ++t) {
          const size_t p = static_cast<size_t>(p0) + t;
          StoreRow(rows, p % d_.window, k, v, t);
          const size_t first = p + 1 > d_.window ? p + 1 - d_.window : 0;
          threads.ParallelFor(d_.heads, 1, [&](size_t begin, size_t end) {
            for (size_t h = begin; h < end; ++h) Query(l, scratch, t, h, rows, first, p + 1);
          });
        }
      }
    }
    SetStatePosition(state, p0 + static_cast<int64_t>(T));
    ProjectRows(wo_, o, T, nullptr, out, threads);
  }

 private:
  // RoPE on T rows of n_heads heads, row t at position p0 + t.
  void RopeRows(float* x, size_t T, size_t n_heads, int64_t p0, float* table) const {
    if (!d_.rope) return;
    float* cos = table;
    float* sin = table + d_.hd / 2;
    for (size_t t = 0; t < T; ++t) {
      ops::RopeAngles(static_cast<double>(p0 + static_cast<int64_t>(t)), d_.hd,
                      spec_.rope_base(), cos, sin);
      ops::ApplyRope(x + t * n_heads * d_.hd, n_heads, d_.hd, cos, sin, d_.interleaved);
    }
  }

  void StoreRow(float* rows, size_t slot, const float* k, const float* v, size_t t) const {
    float* row = rows + slot * 2 * d_.kv_dim;
    std::memcpy(row, k + t * d_.kv_dim, d_.kv_dim * sizeof(float));
    std::memcpy(row + d_.kv_dim, v + t * d_.kv_dim, d_.kv_dim * sizeof(float));
  }

  // Query (t, h) over the stored keys of absolute positions [first, last), ring-wrapped in
  // window mode; writes o[t, h].
  void Query(const Layout& l, float* scratch, size_t t, size_t h, const float* rows,
             size_t first, size_t last) const {
    const size_t i = t * d_.heads + h;
    float* m = scratch + l.m + i;
    float* z = scratch + l.z + i;
    float* y = scratch + l.o + t * d_.q_dim + h * d_.hd;
    ops::OnlineSoftmaxReset(m, z, y, d_.hd);
    const size_t g = h / d_.group;
    const size_t stride = 2 * d_.kv_dim;
    for (size_t j = first; j < last;) {
      size_t slot = j, n = std::min(kKeyBlock, last - j);
      if (d_.mode == Mode::kWindow) {
        slot = j % d_.window;
        n = std::min(n, d_.window - slot);  // Stop at the end of the ring.
      }
      const float* keys = rows + slot * stride + g * d_.hd;
      Update(l, scratch, t, h, keys, keys + d_.kv_dim, stride, n);
      j += n;
    }
    ops::OnlineSoftmaxOutput(*z, y, y, d_.hd);
  }

  // Adds n keys (rows of `stride` floats) to the online state of query (t, h).
  void Update(const Layout& l, float* scratch, size_t t, size_t h, const float* keys,
              const float* values, size_t stride, size_t n) const {
    const size_t i = t * d_.heads + h;
    float* s = scratch + l.s + i * kKeyBlock;
    const float* qh = scratch + l.q + t * d_.q_dim + h * d_.hd;
    ops::Scores(qh, d_.hd, keys, stride, 1, n, d_.hd, scale_, /*causal=*/false, 0, s, n);
    ops::OnlineSoftmaxUpdateBlock(scratch + l.m + i, scratch + l.z + i,
                                  scratch + l.o + t * d_.q_dim + h * d_.hd, s, values, stride, n,
                                  d_.hd);
  }

  // Recompute mode: the keys and values of every stored input, a block at a time, each block fed
  // to every query of the chunk that may see it.
  void Recompute(size_t T, int64_t p0, const Layout& l, float* scratch, const float* inputs,
                 const Threads& threads) const {
    const size_t last = static_cast<size_t>(p0) + T;
    for (size_t i = 0; i < T * d_.heads; ++i) {
      ops::OnlineSoftmaxReset(scratch + l.m + i, scratch + l.z + i,
                              scratch + l.o + i * d_.hd, d_.hd);
    }
    const size_t block = std::max(T, kKeyBlock);
    float* k = scratch + l.k;
    float* v = scratch + l.v;
    for (size_t j0 = 0; j0 < last; j0 += block) {
      const size_t n = std::min(block, last - j0);
      ProjectRows(wk_, inputs + j0 * d_.d_model, n, nullptr, k, threads);
      ProjectRows(wv_, inputs + j0 * d_.d_model, n, nullptr, v, threads);
      RopeRows(k, n, d_.kv_heads, static_cast<int64_t>(j0), scratch + l.rope);
      threads.ParallelFor(T * d_.heads, 1, [&](size_t begin, size_t end) {
        for (size_t i = begin; i < end; ++i) {
          const size_t t = i / d_.heads, h = i % d_.heads;
          const size_t visible = static_cast<size_t>(p0) + t + 1;  // Keys [0, visible).
          if (visible <= j0) continue;
          const size_t count = std::min(n, visible - j0);
          const size_t g = h / d_.group;
          for (size_t b = 0; b < count; b += kKeyBlock) {
            const size_t nb = std::min(kKeyBlock, count - b);
            const float* keys = k + b * d_.kv_dim + g * d_.hd;
            Update(l, scratch, t, h, keys, v + b * d_.kv_dim + g * d_.hd, d_.kv_dim, nb);
          }
        }
      });
    }
    for (size_t i = 0; i < T * d_.heads; ++i) {
      float* y = scratch + l.o + i * d_.hd;
      ops::OnlineSoftmaxOutput(scratch[l.z + i], y, y, d_.hd);
    }
  }

  const fb::Model& model_;
  const fb::SoftmaxAttentionSpec& spec_;
  const Dims d_;
  const float scale_;
  ops::WeightView wq_, wk_, wv_, wo_;
};

}  // namespace

LayerPlan PlanSoftmaxAttention(const fb::Model& model, const fb::SoftmaxAttentionSpec& spec,
                               size_t tokens) {
  const Dims d(model, spec);
  LayerPlan plan;
  plan.state_bytes = d.StateFloats() * sizeof(float);
  plan.scratch_bytes = Layout(d, std::max<size_t>(tokens, 1)).total * sizeof(float);
  plan.state_grows = d.mode != Mode::kWindow;
  plan.bytes_per_token = plan.state_grows ? d.RowFloats() * sizeof(float) : 0;
  return plan;
}

Result<std::unique_ptr<Block>> MakeSoftmaxAttention(const LayerContext& ctx) {
  auto block = std::make_unique<SoftmaxAttentionBlock>(ctx.model,
                                                       *ctx.layer.block_as_SoftmaxAttentionSpec());
  RECUR_RETURN_IF_ERROR(block->Init(ctx));
  return std::unique_ptr<Block>(std::move(block));
}

}  // namespace recur
