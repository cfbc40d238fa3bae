// mamba2: the SSD mixer of Mamba-2 (MATH.md; mamba_ssm/modules/mamba2.py, Hugging Face
// Mamba2Mixer), with d_mlp = 0:
//   [z | xBC | dt] = in_proj(u)                     z: d_inner, xBC: conv_dim, dt: n_heads
//   xBC = SiLU(causal depthwise conv1d(xBC))        conv_dim = d_inner + 2 n_groups d_state
//   [x | B | C] = xBC                               x: d_inner, B, C: n_groups d_state
//   dt = softplus(dt + dt_bias); A = -exp(A_log)
//   y = SSD(x, dt, A, B, C) + D x                   ops/ssd.h, per head of head_dim channels
//   y = RMSNorm(y * SiLU(z)) per group of d_inner / n_groups channels (norm_before_gate false;
//       RMSNorm(y) * SiLU(z) when true)
//   out = out_proj(y)
// The state of one layer is the conv window [d_conv - 1, conv_dim] (time-major, as ops/conv1d.h
// keeps it), then the SSM state [n_heads, head_dim, d_state] (mamba_ssm's ssm_state layout).
// Step runs the projections as matvecs and the SSD step kernel; Prefill runs them as matmuls and
// the chunked SSD with the spec's chunk_size.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "ops/activation.h"
#include "ops/conv1d.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/matvec.h"
#include "ops/norm.h"
#include "ops/ssd.h"
#include "runtime/blocks/batch_matvec.h"
#include "runtime/blocks/block.h"

namespace recur {
namespace {

// Rows per thread task for the projections: a multiple of every target's lane count, and large
// enough that a task streams at least a few KiB of weights.
constexpr size_t kRowGrain = 64;
// Tokens per thread task for the gated norm of a prefill chunk: each token is d_inner floats of
// work, so 16 tokens are at least a few thousand floats per task.
constexpr size_t kNormTokenGrain = 16;
// Floats of SSM state a one-token SSD task should update at least (64 KiB): a smaller job costs
// less than waking a worker.
constexpr size_t kStepStateGrain = 16384;
// At most this many concurrent SSD scan tasks per prefill: each needs its own scratch (a
// transposed head state plus a block of intra-chunk weights), so the count bounds the scratch;
// 64 tasks leave every realistic core count busy.
constexpr size_t kMaxScanTasks = 64;

constexpr size_t Align16(size_t n) { return (n + 15) / 16 * 16; }

struct Dims {
  size_t d_model, d_inner, d_state, d_conv, n_heads, head_dim, n_groups, chunk;
  size_t conv_dim;  // d_inner + 2 n_groups d_state: the channels of xBC.
  size_t proj_dim;  // 2 d_inner + 2 n_groups d_state + n_heads: in_proj's rows [z, xBC, dt].

  explicit Dims(const fb::Model& model, const fb::Mamba2Spec& spec)
      : d_model(static_cast<size_t>(std::max(model.d_model(), 0))),
        d_inner(static_cast<size_t>(std::max(spec.d_inner(), 0))),
        d_state(static_cast<size_t>(std::max(spec.d_state(), 0))),
        d_conv(static_cast<size_t>(std::max(spec.d_conv(), 0))),
        n_heads(static_cast<size_t>(std::max(spec.n_heads(), 0))),
        head_dim(static_cast<size_t>(std::max(spec.head_dim(), 0))),
        n_groups(static_cast<size_t>(std::max(spec.n_groups(), 1))),
        chunk(static_cast<size_t>(std::max(spec.chunk_size(), 1))),
        conv_dim(d_inner + 2 * n_groups * d_state),
        proj_dim(2 * d_inner + 2 * n_groups * d_state + n_heads) {}

  ops::SsdDims Ssd() const { return {n_heads, head_dim, d_state, n_groups}; }
  size_t ConvStateFloats() const { return ops::Conv1dStateSize(conv_dim, d_conv); }
  size_t SsmStateFloats() const { return n_heads * head_dim * d_state; }
  // Heads per SSD scan task: boundaries are multiples of this, so task i starts at head
  // i * ScanGrain() and its scratch slot is begin / ScanGrain().
  size_t ScanGrain() const {
    return std::max<size_t>(1, (n_heads + kMaxScanTasks - 1) / kMaxScanTasks);
  }
  size_t ScanTasks() const { return (n_heads + ScanGrain() - 1) / ScanGrain(); }
};

// Where each buffer of a chunk of T tokens lives in the scratch arena (offsets in floats, each on
// a 64-byte boundary). Step uses the same layout with T = 1 (and no SSD scratch).
struct Layout {
  size_t zxbcdt = 0;  // [T, proj_dim]: in_proj's output.
  size_t xbc = 0;     // [T, conv_dim]: conv1d + SiLU of the xBC columns.
  size_t dt = 0;      // [T, n_heads]: softplus(dt + dt_bias).
  size_t y = 0;       // [T, d_inner]: SSD output, then gated-normed in place.
  size_t gram = 0;    // [SsdGramFloats]: C B^T per group and chunk.
  size_t scan = 0;    // [ScanTasks, SsdScanScratchFloats]: one slot per concurrent scan task.
  size_t scan_slot = 0;
  size_t total = 0;

  Layout(const Dims& d, size_t T) {
    size_t at = 0;
    const auto take = [&at](size_t floats) {
      const size_t offset = at;
      at += Align16(floats);
      return offset;
    };
    zxbcdt = take(T * d.proj_dim);
    xbc = take(T * d.conv_dim);
    dt = take(T * d.n_heads);
    y = take(T * d.d_inner);
    gram = take(ops::SsdGramFloats(d.Ssd(), T, d.chunk));
    scan_slot = Align16(ops::SsdScanScratchFloats(d.Ssd(), T, d.chunk));
    scan = take(d.ScanTasks() * scan_slot);
    total = at;
  }
};

class Mamba2Block final : public Block {
 public:
  Mamba2Block(const fb::Model& model, const fb::Mamba2Spec& spec)
      : model_(model), spec_(spec), d_(model, spec) {}

  Status Init(const LayerContext& ctx) {
    if (d_.d_conv < 1 || d_.d_conv > ops::kMaxConvWidth) {
      return Unsupported(ctx.file.path() + ": layer " + std::to_string(ctx.index) +
                         ": mamba2 d_conv " + std::to_string(d_.d_conv) +
                         " is outside the conv kernel's range [1, " +
                         std::to_string(ops::kMaxConvWidth) + "]");
    }
    if (d_.n_heads == 0 || d_.n_heads % d_.n_groups != 0 ||
        d_.d_inner != d_.n_heads * d_.head_dim) {
      return Internal(ctx.file.path() + ": layer " + std::to_string(ctx.index) +
                      ": inconsistent mamba2 spec passed the loader's checks");
    }
    RECUR_ASSIGN_OR_RETURN(in_proj_, ctx.Matrix("mixer.in_proj.weight"));
    RECUR_ASSIGN_OR_RETURN(out_proj_, ctx.Matrix("mixer.out_proj.weight"));
    // Biases are read only when the spec declares them: only declared tensors are shape-checked.
    if (spec_.proj_bias()) {
      RECUR_ASSIGN_OR_RETURN(in_proj_bias_, Vector(ctx, "mixer.in_proj.bias", true));
      RECUR_ASSIGN_OR_RETURN(out_proj_bias_, Vector(ctx, "mixer.out_proj.bias", true));
    }
    RECUR_ASSIGN_OR_RETURN(conv_w_, Vector(ctx, "mixer.conv1d.weight", true));
    if (spec_.conv_bias()) {
      RECUR_ASSIGN_OR_RETURN(conv_b_, Vector(ctx, "mixer.conv1d.bias", true));
    }
    RECUR_ASSIGN_OR_RETURN(dt_bias_, Vector(ctx, "mixer.dt_bias", true));
    RECUR_ASSIGN_OR_RETURN(skip_, Vector(ctx, "mixer.D", true));
    RECUR_ASSIGN_OR_RETURN(norm_w_, Vector(ctx, "mixer.norm.weight", true));
    RECUR_ASSIGN_OR_RETURN(const float* a_log, Vector(ctx, "mixer.A_log", true));
    // A = -exp(A_log), once at load, in f32 as mamba_ssm computes it.
    a_.resize(d_.n_heads);
    for (size_t h = 0; h < d_.n_heads; ++h) a_[h] = -std::exp(a_log[h]);
    return Status::Ok();
  }

  LayerPlan Plan(size_t tokens) const override { return PlanMamba2(model_, spec_, tokens); }

  void Step(const float* x, float* out, float* state, float* scratch,
            const Threads& threads) const override {
    const Layout lay(d_, 1);
    float* zxbcdt = scratch + lay.zxbcdt;  // [proj_dim]
    float* xbc = scratch + lay.xbc;        // [conv_dim]
    float* dt = scratch + lay.dt;          // [n_heads]
    float* y = scratch + lay.y;            // [d_inner]
    threads.ParallelFor(d_.proj_dim, kRowGrain, [&](size_t begin, size_t end) {
      ops::MatVec(in_proj_, x, in_proj_bias_, zxbcdt, begin, end, StreamSource(threads));
    });
    ComputeDt(zxbcdt, 1, dt);
    ops::Conv1dStep(state, zxbcdt + d_.d_inner, conv_w_, conv_b_, d_.conv_dim, d_.d_conv,
                    /*silu=*/true, xbc);
    float* ssm = state + d_.ConvStateFloats();
    const ops::SsdInputs in = Inputs(xbc, dt);
    const size_t grain = std::max<size_t>(1, kStepStateGrain / (d_.head_dim * d_.d_state));
    threads.ParallelFor(d_.n_heads, grain, [&](size_t begin, size_t end) {
      ops::SsdStep(d_.Ssd(), in, ssm, y, begin, end);
    });
    ops::GatedRMSNorm(y, zxbcdt, norm_w_, d_.d_inner / d_.n_groups, spec_.norm_eps(),
                      spec_.norm_before_gate(), y, d_.d_inner);
    threads.ParallelFor(d_.d_model, kRowGrain, [&](size_t begin, size_t end) {
      ops::MatVec(out_proj_, y, out_proj_bias_, out, begin, end, StreamSource(threads));
    });
  }

  void Prefill(const float* x, size_t tokens, float* out, float* state, float* scratch,
               const Threads& threads) const override {
    if (tokens == 0) return;
    const size_t T = tokens;
    const Layout lay(d_, T);
    float* zxbcdt = scratch + lay.zxbcdt;  // [T, proj_dim]
    float* xbc = scratch + lay.xbc;        // [T, conv_dim]
    float* dt = scratch + lay.dt;          // [T, n_heads]
    float* y = scratch + lay.y;            // [T, d_inner]
    float* gram = scratch + lay.gram;
    float* scan = scratch + lay.scan;
    threads.ParallelFor(d_.proj_dim, kRowGrain, [&](size_t begin, size_t end) {
      ops::MatMul(in_proj_, x, T, in_proj_bias_, zxbcdt, begin, end, threads.SlotScratch());
    });
    ComputeDt(zxbcdt, T, dt);
    // The conv is a few multiply-adds per channel and token, far below the projections; its
    // state rows span all channels, so it runs as one call.
    ops::Conv1dChunk(state, zxbcdt + d_.d_inner, d_.proj_dim, T, conv_w_, conv_b_, d_.conv_dim,
                     d_.d_conv, /*silu=*/true, xbc, d_.conv_dim);
    float* ssm = state + d_.ConvStateFloats();
    const ops::SsdDims dims = d_.Ssd();
    const ops::SsdInputs in = Inputs(xbc, dt);
    threads.ParallelFor(ops::SsdGramItems(dims, T, d_.chunk), 1, [&](size_t begin, size_t end) {
      ops::SsdChunkGram(dims, in, T, d_.chunk, begin, end, gram);
    });
    const size_t scan_grain = d_.ScanGrain();
    threads.ParallelFor(d_.n_heads, scan_grain, [&](size_t begin, size_t end) {
      ops::SsdChunkScan(dims, in, T, d_.chunk, gram, ssm, y, d_.d_inner, begin, end,
                        scan + begin / scan_grain * lay.scan_slot);
    });
    threads.ParallelFor(T, kNormTokenGrain, [&](size_t begin, size_t end) {
      ops::GatedRMSNormRows(y + begin * d_.d_inner, d_.d_inner, zxbcdt + begin * d_.proj_dim,
                            d_.proj_dim, norm_w_, d_.d_inner / d_.n_groups, spec_.norm_eps(),
                            spec_.norm_before_gate(), y + begin * d_.d_inner, d_.d_inner,
                            end - begin, d_.d_inner);
    });
    threads.ParallelFor(d_.d_model, kRowGrain, [&](size_t begin, size_t end) {
      ops::MatMul(out_proj_, y, T, out_proj_bias_, out, begin, end, threads.SlotScratch());
    });
  }

  size_t BatchScratchBytes(size_t n) const override {
    return Layout(d_, std::max<size_t>(n, 1)).total * sizeof(float);
  }

  // n streams, one token each (x, out: [n, d_model]): in_proj and out_proj multiply all n
  // vectors by each block of weights while it is in cache (BatchMatVec), so each weight is read
  // from memory once for all n; the conv, the SSD step and the gated norm run per stream on its
  // own state with Step's kernels. Every stream's result is bit-identical to its Step.
  void StepBatch(const float* x, size_t n, size_t d_model, float* out, float* const* states,
                 float* scratch, const Threads& threads) const override {
    if (n == 0) return;
    const Layout lay(d_, n);
    float* zxbcdt = scratch + lay.zxbcdt;  // [n, proj_dim]
    float* xbc = scratch + lay.xbc;        // [n, conv_dim]
    float* dt = scratch + lay.dt;          // [n, n_heads]
    float* y = scratch + lay.y;            // [n, d_inner]
    threads.ParallelFor(d_.proj_dim, kRowGrain, [&](size_t begin, size_t end) {
      BatchMatVec(in_proj_, x, d_.d_model, n, in_proj_bias_, zxbcdt, d_.proj_dim, begin, end);
    });
    for (size_t i = 0; i < n; ++i) {
      ComputeDt(zxbcdt + i * d_.proj_dim, 1, dt + i * d_.n_heads);
      ops::Conv1dStep(states[i], zxbcdt + i * d_.proj_dim + d_.d_inner, conv_w_, conv_b_,
                      d_.conv_dim, d_.d_conv, /*silu=*/true, xbc + i * d_.conv_dim);
    }
    const size_t conv_floats = d_.ConvStateFloats();
    const size_t grain = std::max<size_t>(1, kStepStateGrain / (d_.head_dim * d_.d_state));
    threads.ParallelFor(d_.n_heads, grain, [&](size_t begin, size_t end) {
      for (size_t i = 0; i < n; ++i) {
        const ops::SsdInputs in = Inputs(xbc + i * d_.conv_dim, dt + i * d_.n_heads);
        ops::SsdStep(d_.Ssd(), in, states[i] + conv_floats, y + i * d_.d_inner, begin, end);
      }
    });
    for (size_t i = 0; i < n; ++i) {
      float* y_i = y + i * d_.d_inner;
      ops::GatedRMSNorm(y_i, zxbcdt + i * d_.proj_dim, norm_w_, d_.d_inner / d_.n_groups,
                        spec_.norm_eps(), spec_.norm_before_gate(), y_i, d_.d_inner);
    }
    threads.ParallelFor(d_.d_model, kRowGrain, [&](size_t begin, size_t end) {
      BatchMatVec(out_proj_, y, d_.d_inner, n, out_proj_bias_, out, d_.d_model, begin, end);
    });
  }

 private:
  // The f32 vector `name` of this layer: a view into the file, or (for an f64 tensor, which the
  // loader also accepts) a converted copy owned by the block. Absent: null, or an error when
  // required (the loader checked the names, so that is an internal error).
  Result<const float*> Vector(const LayerContext& ctx, const std::string& name, bool required) {
    const TensorView* t = ctx.file.Find(ctx.prefix + name);
    if (t == nullptr) {
      if (!required) return static_cast<const float*>(nullptr);
      return Internal(ctx.file.path() + ": tensor '" + ctx.prefix + name + "' vanished");
    }
    if (t->dtype == DType::kF32) return reinterpret_cast<const float*>(t->data);
    if (t->dtype != DType::kF64) {
      return Internal(ctx.file.path() + ": tensor '" + ctx.prefix + name + "' is " +
                      std::string(DTypeName(t->dtype)) + ", not f32 or f64");
    }
    const auto* src = reinterpret_cast<const double*>(t->data);
    owned_.emplace_back(src, src + t->numel());
    return static_cast<const float*>(owned_.back().data());
  }

  // dt[t, h] = softplus(zxbcdt[t, dt columns][h] + dt_bias[h]) for T tokens.
  void ComputeDt(const float* zxbcdt /*[T, proj_dim]*/, size_t T,
                 float* dt /*[T, n_heads]*/) const {
    const size_t dt_col = d_.d_inner + d_.conv_dim;
    for (size_t t = 0; t < T; ++t) {
      ops::Add(zxbcdt + t * d_.proj_dim + dt_col, dt_bias_, dt + t * d_.n_heads, d_.n_heads);
    }
    ops::SoftplusInPlace(dt, T * d_.n_heads);
  }

  // The SSD's view of the conv output xbc: [T, conv_dim] rows of [x | B | C], and dt: [T, n_heads].
  ops::SsdInputs Inputs(const float* xbc, const float* dt) const {
    ops::SsdInputs in;
    in.x = xbc;
    in.x_stride = d_.conv_dim;
    in.B = xbc + d_.d_inner;
    in.C = xbc + d_.d_inner + d_.n_groups * d_.d_state;
    in.bc_stride = d_.conv_dim;
    in.dt = dt;
    in.dt_stride = d_.n_heads;
    in.A = a_.data();
    in.D = skip_;
    return in;
  }

  const fb::Model& model_;
  const fb::Mamba2Spec& spec_;
  const Dims d_;
  ops::WeightView in_proj_, out_proj_;
  const float* in_proj_bias_ = nullptr;    // [proj_dim] or null
  const float* out_proj_bias_ = nullptr;   // [d_model] or null
  const float* conv_w_ = nullptr;          // [conv_dim, d_conv]
  const float* conv_b_ = nullptr;          // [conv_dim] or null
  const float* dt_bias_ = nullptr;         // [n_heads]
  const float* skip_ = nullptr;            // [n_heads]: D
  const float* norm_w_ = nullptr;          // [d_inner]
  std::vector<float> a_;                   // [n_heads]: A = -exp(A_log)
  std::vector<std::vector<float>> owned_;  // f32 copies of f64 parameters.
};

}  // namespace

LayerPlan PlanMamba2(const fb::Model& model, const fb::Mamba2Spec& spec, size_t tokens) {
  const Dims d(model, spec);
  LayerPlan plan;
  plan.state_bytes = (d.ConvStateFloats() + d.SsmStateFloats()) * sizeof(float);
  // A step uses the layout of a one-token chunk, which Layout(1) covers.
  plan.scratch_bytes = Layout(d, std::max<size_t>(tokens, 1)).total * sizeof(float);
  return plan;
}

Result<std::unique_ptr<Block>> MakeMamba2(const LayerContext& ctx) {
  auto block = std::make_unique<Mamba2Block>(ctx.model, *ctx.layer.block_as_Mamba2Spec());
  RECUR_RETURN_IF_ERROR(block->Init(ctx));
  return std::unique_ptr<Block>(std::move(block));
}

}  // namespace recur
