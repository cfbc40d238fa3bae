// mamba1: the selective SSM mixer of Mamba-1 (MATH.md; state-spaces/mamba's Mamba.forward with
// selective_scan_ref, and Mamba.step):
//   (x, z) = in_proj(u);  x = SiLU(conv1d(x) + conv_bias);
//   (dt_low, B, C) = x_proj(x);  dt = softplus(dt_proj(dt_low) + dt_bias);
//   h = exp(dt A) h + dt B x;  y = C . h + D x;  out = out_proj(y * SiLU(z)).
// The state of one layer is the conv window [d_conv - 1, d_inner] (time-major, as ops/conv1d.h
// keeps it), then the SSM state [d_inner, d_state].
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "ops/activation.h"
#include "ops/conv1d.h"
#include "ops/matmul.h"
#include "ops/matvec.h"
#include "ops/selective_scan.h"
#include "runtime/blocks/batch_matvec.h"
#include "runtime/blocks/block.h"

namespace recur {
namespace {

// Rows per thread task for the projections: a multiple of every target's lane count, and enough
// rows that one task streams at least a few KiB of weights.
constexpr size_t kRowGrain = 64;
// Channels per thread task for the fused dt_proj + softplus + scan + gate pass: a multiple of the
// lanes and of the scan's channel block (16), and about a microsecond of work per token at
// d_state 16, well above what waking a worker costs.
constexpr size_t kChannelGrain = 32;

constexpr size_t AlignFloats(size_t n) { return (n + 15) / 16 * 16; }

// Where each intermediate lives in the scratch arena, in floats, for a chunk of `tokens` tokens.
// PlanMamba1 sizes the arena from this same layout, so the two cannot disagree. Every region
// starts on a 64-byte boundary.
struct ScratchLayout {
  size_t xz = 0;      // in_proj output [tokens, 2 d_inner]: x in columns [0, d_inner), z after.
  size_t xc = 0;      // conv output, then y in place [tokens, d_inner].
  size_t xdbl = 0;    // x_proj output [tokens, dt_rank + 2 d_state]: dt_low, B, C.
  size_t dt_low = 0;  // dt_low gathered into contiguous rows [tokens, dt_rank] (prefill's MatMul).
  size_t dt = 0;      // [tokens, d_inner].
  size_t total = 0;
};

ScratchLayout LayoutFor(const fb::Mamba1Spec& spec, size_t tokens) {
  const size_t d_inner = static_cast<size_t>(spec.d_inner());
  const size_t xdbl_cols =
      static_cast<size_t>(spec.dt_rank()) + 2 * static_cast<size_t>(spec.d_state());
  ScratchLayout l;
  size_t at = 0;
  const auto take = [&](size_t floats) {
    const size_t start = at;
    at += AlignFloats(floats);
    return start;
  };
  l.xz = take(tokens * 2 * d_inner);
  l.xc = take(tokens * d_inner);
  l.xdbl = take(tokens * xdbl_cols);
  l.dt_low = take(tokens * static_cast<size_t>(spec.dt_rank()));
  l.dt = take(tokens * d_inner);
  l.total = at;
  return l;
}

class Mamba1Block final : public Block {
 public:
  Mamba1Block(const fb::Model& model, const fb::Mamba1Spec& spec)
      : model_(model),
        spec_(spec),
        d_model_(static_cast<size_t>(model.d_model())),
        d_inner_(static_cast<size_t>(spec.d_inner())),
        d_state_(static_cast<size_t>(spec.d_state())),
        d_conv_(static_cast<size_t>(spec.d_conv())),
        dt_rank_(static_cast<size_t>(spec.dt_rank())) {}

  Status Init(const LayerContext& ctx) {
    if (d_conv_ < 1 || d_conv_ > ops::kMaxConvWidth) {
      return Unsupported(ctx.file.path() + ": layer " + std::to_string(ctx.index) +
                         ": mamba1 d_conv " + std::to_string(d_conv_) +
                         " is outside the conv kernel's supported widths [1, " +
                         std::to_string(ops::kMaxConvWidth) + "]");
    }
    RECUR_ASSIGN_OR_RETURN(in_proj_, ctx.Matrix("mixer.in_proj.weight"));
    RECUR_ASSIGN_OR_RETURN(x_proj_, ctx.Matrix("mixer.x_proj.weight"));
    RECUR_ASSIGN_OR_RETURN(dt_proj_, ctx.Matrix("mixer.dt_proj.weight"));
    RECUR_ASSIGN_OR_RETURN(out_proj_, ctx.Matrix("mixer.out_proj.weight"));
    RECUR_ASSIGN_OR_RETURN(conv_w_, F32Vector(ctx, "mixer.conv1d.weight", &conv_w_owned_));
    RECUR_ASSIGN_OR_RETURN(dt_bias_, F32Vector(ctx, "mixer.dt_proj.bias", &dt_bias_owned_));
    RECUR_ASSIGN_OR_RETURN(d_skip_, F32Vector(ctx, "mixer.D", &d_skip_owned_));
    if (spec_.conv_bias()) {
      RECUR_ASSIGN_OR_RETURN(conv_b_, F32Vector(ctx, "mixer.conv1d.bias", &conv_b_owned_));
    }
    if (spec_.proj_bias()) {
      RECUR_ASSIGN_OR_RETURN(in_bias_, F32Vector(ctx, "mixer.in_proj.bias", &in_bias_owned_));
      RECUR_ASSIGN_OR_RETURN(out_bias_, F32Vector(ctx, "mixer.out_proj.bias", &out_bias_owned_));
    }
    // A = -exp(A_log), once at load, in f32 as the reference does (A_log.float().exp()).
    std::vector<float> a_log_owned;
    RECUR_ASSIGN_OR_RETURN(const float* a_log, F32Vector(ctx, "mixer.A_log", &a_log_owned));
    a_.resize(d_inner_ * d_state_);
    for (size_t i = 0; i < a_.size(); ++i) a_[i] = -std::exp(a_log[i]);
    return Status::Ok();
  }

  LayerPlan Plan(size_t tokens) const override { return PlanMamba1(model_, spec_, tokens); }

  // x, out: [d_model].
  void Step(const float* x, float* out, float* state, float* scratch,
            const Threads& threads) const override {
    const ScratchLayout l = LayoutFor(spec_, 1);
    float* xz = scratch + l.xz;                                          // [2 d_inner]
    float* xc = scratch + l.xc;                                          // [d_inner]
    float* xdbl = scratch + l.xdbl;                                      // [dt_rank + 2 d_state]
    float* dt = scratch + l.dt;                                          // [d_inner]
    float* conv_state = state;                                           // [d_conv-1, d_inner]
    float* ssm_state = state + ops::Conv1dStateSize(d_inner_, d_conv_);  // [d_inner, d_state]

    threads.ParallelFor(2 * d_inner_, kRowGrain, [&](size_t begin, size_t end) {
      ops::MatVec(in_proj_, x, in_bias_, xz, begin, end, StreamSource(threads));
    });
    ops::Conv1dStep(conv_state, xz, conv_w_, conv_b_, d_inner_, d_conv_, /*silu=*/true, xc);
    threads.ParallelFor(x_proj_.rows, kRowGrain, [&](size_t begin, size_t end) {
      ops::MatVec(x_proj_, xc, nullptr, xdbl, begin, end, StreamSource(threads));
    });
    const float* b = xdbl + dt_rank_;
    const float* c = b + d_state_;
    const float* z = xz + d_inner_;
    // Each thread runs its channels through dt, the scan and the gate without waiting for the
    // others: every step after dt_proj reads only its own channels (and the shared B, C).
    threads.ParallelFor(d_inner_, kChannelGrain, [&](size_t begin, size_t end) {
      ops::MatVec(dt_proj_, xdbl, dt_bias_, dt, begin, end, StreamSource(threads));
      ops::SoftplusInPlace(dt + begin, end - begin);
      ops::SelectiveScanStep(ssm_state, xc, dt, a_.data(), b, c, d_skip_, d_state_, begin, end, xc);
      ops::MulSiLU(xc + begin, z + begin, xc + begin, end - begin);
    });
    threads.ParallelFor(d_model_, kRowGrain, [&](size_t begin, size_t end) {
      ops::MatVec(out_proj_, xc, out_bias_, out, begin, end, StreamSource(threads));
    });
  }

  // x, out: [tokens, d_model].
  void Prefill(const float* x, size_t tokens, float* out, float* state, float* scratch,
               const Threads& threads) const override {
    if (tokens == 0) return;
    const size_t T = tokens;
    const size_t xdbl_cols = x_proj_.rows;  // dt_rank + 2 d_state
    const ScratchLayout l = LayoutFor(spec_, T);
    float* xz = scratch + l.xz;                                          // [T, 2 d_inner]
    float* xc = scratch + l.xc;                                          // [T, d_inner]
    float* xdbl = scratch + l.xdbl;                                      // [T, dt_rank + 2 d_state]
    float* dt_low = scratch + l.dt_low;                                  // [T, dt_rank]
    float* dt = scratch + l.dt;                                          // [T, d_inner]
    float* conv_state = state;                                           // [d_conv-1, d_inner]
    float* ssm_state = state + ops::Conv1dStateSize(d_inner_, d_conv_);  // [d_inner, d_state]

    threads.ParallelFor(2 * d_inner_, kRowGrain, [&](size_t begin, size_t end) {
      ops::MatMul(in_proj_, x, T, in_bias_, xz, begin, end, threads.SlotScratch());
    });
    ops::Conv1dChunk(conv_state, xz, 2 * d_inner_, T, conv_w_, conv_b_, d_inner_, d_conv_,
                     /*silu=*/true, xc, d_inner_);
    threads.ParallelFor(xdbl_cols, kRowGrain, [&](size_t begin, size_t end) {
      ops::MatMul(x_proj_, xc, T, nullptr, xdbl, begin, end, threads.SlotScratch());
    });
    // MatMul reads its input as contiguous rows, so dt_low is gathered out of x_proj's output.
    for (size_t t = 0; t < T; ++t) {
      std::memcpy(dt_low + t * dt_rank_, xdbl + t * xdbl_cols, dt_rank_ * sizeof(float));
    }
    const float* b = xdbl + dt_rank_;
    const float* c = b + d_state_;
    threads.ParallelFor(d_inner_, kChannelGrain, [&](size_t begin, size_t end) {
      const size_t n = end - begin;
      ops::MatMul(dt_proj_, dt_low, T, dt_bias_, dt, begin, end, threads.SlotScratch());
      for (size_t t = 0; t < T; ++t) ops::SoftplusInPlace(dt + t * d_inner_ + begin, n);
      ops::SelectiveScanChunk(ssm_state, xc, d_inner_, dt, d_inner_, T, a_.data(), b, c, xdbl_cols,
                              d_skip_, d_state_, begin, end, xc, d_inner_);
      for (size_t t = 0; t < T; ++t) {
        float* y = xc + t * d_inner_ + begin;
        ops::MulSiLU(y, xz + t * 2 * d_inner_ + d_inner_ + begin, y, n);
      }
    });
    threads.ParallelFor(d_model_, kRowGrain, [&](size_t begin, size_t end) {
      ops::MatMul(out_proj_, xc, T, out_bias_, out, begin, end, threads.SlotScratch());
    });
  }

  size_t BatchScratchBytes(size_t n) const override {
    return LayoutFor(spec_, std::max<size_t>(n, 1)).total * sizeof(float);
  }

  // n streams, one token each (x, out: [n, d_model]): every projection multiplies all n vectors
  // by each block of weights while it is in cache (BatchMatVec), so each weight is read from
  // memory once for all n; the conv and the selective scan run per stream on its own state with
  // Step's kernels. Every stream's result is bit-identical to its Step.
  void StepBatch(const float* x, size_t n, size_t d_model, float* out, float* const* states,
                 float* scratch, const Threads& threads) const override {
    if (n == 0) return;
    const size_t xdbl_cols = x_proj_.rows;  // dt_rank + 2 d_state
    const ScratchLayout l = LayoutFor(spec_, n);
    float* xz = scratch + l.xz;      // [n, 2 d_inner]
    float* xc = scratch + l.xc;      // [n, d_inner]: conv output, then y in place.
    float* xdbl = scratch + l.xdbl;  // [n, dt_rank + 2 d_state]
    float* dt = scratch + l.dt;      // [n, d_inner]
    const size_t conv_floats = ops::Conv1dStateSize(d_inner_, d_conv_);

    threads.ParallelFor(2 * d_inner_, kRowGrain, [&](size_t begin, size_t end) {
      BatchMatVec(in_proj_, x, d_model_, n, in_bias_, xz, 2 * d_inner_, begin, end);
    });
    for (size_t i = 0; i < n; ++i) {
      ops::Conv1dStep(states[i], xz + i * 2 * d_inner_, conv_w_, conv_b_, d_inner_, d_conv_,
                      /*silu=*/true, xc + i * d_inner_);
    }
    threads.ParallelFor(xdbl_cols, kRowGrain, [&](size_t begin, size_t end) {
      BatchMatVec(x_proj_, xc, d_inner_, n, nullptr, xdbl, xdbl_cols, begin, end);
    });
    threads.ParallelFor(d_inner_, kChannelGrain, [&](size_t begin, size_t end) {
      const size_t m = end - begin;
      // dt_proj reads the dt_low columns at the start of each stream's x_proj row.
      BatchMatVec(dt_proj_, xdbl, xdbl_cols, n, dt_bias_, dt, d_inner_, begin, end);
      for (size_t i = 0; i < n; ++i) {
        float* xc_i = xc + i * d_inner_;
        float* dt_i = dt + i * d_inner_;
        const float* b = xdbl + i * xdbl_cols + dt_rank_;
        const float* c = b + d_state_;
        ops::SoftplusInPlace(dt_i + begin, m);
        ops::SelectiveScanStep(states[i] + conv_floats, xc_i, dt_i, a_.data(), b, c, d_skip_,
                               d_state_, begin, end, xc_i);
        ops::MulSiLU(xc_i + begin, xz + i * 2 * d_inner_ + d_inner_ + begin, xc_i + begin, m);
      }
    });
    threads.ParallelFor(d_model_, kRowGrain, [&](size_t begin, size_t end) {
      BatchMatVec(out_proj_, xc, d_inner_, n, out_bias_, out, d_model_, begin, end);
    });
  }

 private:
  // The vector `name` as f32: a view of the file when it is stored as f32, else (f64) a copy
  // decoded into *owned, which the block keeps alive.
  static Result<const float*> F32Vector(const LayerContext& ctx, const std::string& name,
                                        std::vector<float>* owned) {
    const TensorView* t = ctx.file.Find(ctx.prefix + name);
    if (t == nullptr) {
      return Internal(ctx.file.path() + ": tensor '" + ctx.prefix + name + "' vanished");
    }
    if (t->dtype == DType::kF32) return reinterpret_cast<const float*>(t->data);
    if (t->dtype == DType::kF64) {
      const auto* d = reinterpret_cast<const double*>(t->data);
      owned->resize(static_cast<size_t>(t->numel()));
      for (size_t i = 0; i < owned->size(); ++i) (*owned)[i] = static_cast<float>(d[i]);
      return static_cast<const float*>(owned->data());
    }
    return Internal(ctx.file.path() + ": tensor '" + ctx.prefix + name + "' is " +
                    std::string(DTypeName(t->dtype)) + ", not f32 or f64");
  }

  const fb::Model& model_;
  const fb::Mamba1Spec& spec_;
  const size_t d_model_, d_inner_, d_state_, d_conv_, dt_rank_;
  ops::WeightView in_proj_;          // [2 d_inner, d_model]
  ops::WeightView x_proj_;           // [dt_rank + 2 d_state, d_inner]
  ops::WeightView dt_proj_;          // [d_inner, dt_rank]
  ops::WeightView out_proj_;         // [d_model, d_inner]
  const float* conv_w_ = nullptr;    // [d_inner, d_conv]
  const float* conv_b_ = nullptr;    // [d_inner] or null
  const float* dt_bias_ = nullptr;   // [d_inner]
  const float* d_skip_ = nullptr;    // D: [d_inner]
  const float* in_bias_ = nullptr;   // [2 d_inner] or null
  const float* out_bias_ = nullptr;  // [d_model] or null
  std::vector<float> a_;             // A = -exp(A_log): [d_inner, d_state]
  // Decoded copies of vectors stored as f64 (empty when the file's f32 data is used in place).
  std::vector<float> conv_w_owned_, conv_b_owned_, dt_bias_owned_, d_skip_owned_, in_bias_owned_,
      out_bias_owned_;
};

}  // namespace

LayerPlan PlanMamba1(const fb::Model& model, const fb::Mamba1Spec& spec, size_t tokens) {
  LayerPlan plan;
  const size_t d_inner = spec.d_inner(), d_state = spec.d_state(), d_conv = spec.d_conv();
  plan.state_bytes = d_inner * (d_state + (d_conv > 0 ? d_conv - 1 : 0)) * sizeof(float);
  plan.scratch_bytes = LayoutFor(spec, tokens).total * sizeof(float);
  return plan;
}

Result<std::unique_ptr<Block>> MakeMamba1(const LayerContext& ctx) {
  auto block = std::make_unique<Mamba1Block>(ctx.model, *ctx.layer.block_as_Mamba1Spec());
  RECUR_RETURN_IF_ERROR(block->Init(ctx));
  return std::unique_ptr<Block>(std::move(block));
}

}  // namespace recur
