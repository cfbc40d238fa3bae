// mlp: a position-wise feed-forward block, down(act(up(x))) or, gated, down(act(gate(x)) * up(x)).
#include <algorithm>

#include "ops/activation.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/matvec.h"
#include "runtime/blocks/batch_matvec.h"
#include "runtime/blocks/block.h"

namespace recur {
namespace {

// Rows per thread task for matvec: a multiple of every target's lane count, and large enough
// that a task streams at least a few KiB of weights.
constexpr size_t kRowGrain = 64;

void Activate(fb::Activation act, float* x, size_t n) {
  switch (act) {
    case fb::Activation::SiLU: ops::SiLUInPlace(x, n); break;
    case fb::Activation::GELU: ops::GeluErfInPlace(x, n); break;
    case fb::Activation::GELUTanh: ops::GeluTanhInPlace(x, n); break;
    case fb::Activation::ReLU: ops::ReluInPlace(x, n); break;
    case fb::Activation::ReLUSquared:
      ops::ReluInPlace(x, n);
      ops::Mul(x, x, x, n);
      break;
    case fb::Activation::Identity: break;
  }
}

class MlpBlock final : public Block {
 public:
  MlpBlock(const fb::Model& model, const fb::MlpSpec& spec) : model_(model), spec_(spec) {}

  Status Init(const LayerContext& ctx) {
    RECUR_ASSIGN_OR_RETURN(up_, ctx.Matrix("mlp.up.weight"));
    RECUR_ASSIGN_OR_RETURN(down_, ctx.Matrix("mlp.down.weight"));
    if (spec_.glu()) {
      RECUR_ASSIGN_OR_RETURN(gate_, ctx.Matrix("mlp.gate.weight"));
    }
    // Biases are read only when the spec declares them: only declared tensors are shape-checked.
    if (spec_.bias()) {
      up_bias_ = ctx.Vector("mlp.up.bias");
      gate_bias_ = spec_.glu() ? ctx.Vector("mlp.gate.bias") : nullptr;
      down_bias_ = ctx.Vector("mlp.down.bias");
    }
    return Status::Ok();
  }

  LayerPlan Plan(size_t tokens) const override { return PlanMlp(model_, spec_, tokens); }

  void Step(const float* x, float* out, float* state, float* scratch,
            const Threads& threads) const override {
    const size_t d_ff = static_cast<size_t>(spec_.d_ff());
    float* h = scratch;          // [d_ff]
    float* g = scratch + d_ff;   // [d_ff] (glu only)
    threads.ParallelFor(d_ff, kRowGrain, [&](size_t begin, size_t end) {
      ops::MatVec(up_, x, up_bias_, h, begin, end, StreamSource(threads));
      if (spec_.glu()) ops::MatVec(gate_, x, gate_bias_, g, begin, end, StreamSource(threads));
    });
    Finish(h, g, 1);
    threads.ParallelFor(down_.rows, kRowGrain, [&](size_t begin, size_t end) {
      ops::MatVec(down_, h, down_bias_, out, begin, end, StreamSource(threads));
    });
  }

  void Prefill(const float* x, size_t tokens, float* out, float* state, float* scratch,
               const Threads& threads) const override {
    const size_t d_ff = static_cast<size_t>(spec_.d_ff());
    float* h = scratch;                    // [tokens, d_ff]
    float* g = scratch + tokens * d_ff;    // [tokens, d_ff] (glu only)
    threads.ParallelFor(d_ff, kRowGrain, [&](size_t begin, size_t end) {
      ops::MatMul(up_, x, tokens, up_bias_, h, begin, end, threads.SlotScratch());
      if (spec_.glu()) {
        ops::MatMul(gate_, x, tokens, gate_bias_, g, begin, end, threads.SlotScratch());
      }
    });
    Finish(h, g, tokens);
    threads.ParallelFor(down_.rows, kRowGrain, [&](size_t begin, size_t end) {
      ops::MatMul(down_, h, tokens, down_bias_, out, begin, end, threads.SlotScratch());
    });
  }

  // n streams' tokens: up, gate and down multiply all n vectors by each block of weights while
  // it is in cache (BatchMatVec), so each weight is read from memory once for all n; bit-identical
  // to n Steps.
  size_t BatchScratchBytes(size_t n) const override { return Plan(n).scratch_bytes; }
  void StepBatch(const float* x, size_t n, size_t d_model, float* out, float* const* states,
                 float* scratch, const Threads& threads) const override {
    const size_t d_ff = static_cast<size_t>(spec_.d_ff());
    float* h = scratch;              // [n, d_ff]
    float* g = scratch + n * d_ff;   // [n, d_ff] (glu only)
    threads.ParallelFor(d_ff, kRowGrain, [&](size_t begin, size_t end) {
      BatchMatVec(up_, x, d_model, n, up_bias_, h, d_ff, begin, end);
      if (spec_.glu()) BatchMatVec(gate_, x, d_model, n, gate_bias_, g, d_ff, begin, end);
    });
    for (size_t i = 0; i < n; ++i) Finish(h + i * d_ff, g + i * d_ff, 1);
    threads.ParallelFor(down_.rows, kRowGrain, [&](size_t begin, size_t end) {
      BatchMatVec(down_, h, d_ff, n, down_bias_, out, down_.rows, begin, end);
    });
  }

 private:
  // h = act(h), or act(g) * h when gated; h, g: [tokens, d_ff].
  void Finish(float* h, float* g, size_t tokens) const {
    const size_t n = tokens * static_cast<size_t>(spec_.d_ff());
    if (spec_.glu()) {
      Activate(spec_.activation(), g, n);
      ops::Mul(g, h, h, n);
    } else {
      Activate(spec_.activation(), h, n);
    }
  }

  const fb::Model& model_;
  const fb::MlpSpec& spec_;
  ops::WeightView up_, gate_, down_;
  const float* up_bias_ = nullptr;
  const float* gate_bias_ = nullptr;
  const float* down_bias_ = nullptr;
};

}  // namespace

LayerPlan PlanMlp(const fb::Model& model, const fb::MlpSpec& spec, size_t tokens) {
  LayerPlan plan;
  // No state: an mlp sees one position at a time. Scratch holds up (and gate) activations.
  const size_t hidden = static_cast<size_t>(spec.d_ff()) * (spec.glu() ? 2 : 1);
  plan.scratch_bytes = tokens * hidden * sizeof(float);
  return plan;
}

Result<std::unique_ptr<Block>> MakeMlp(const LayerContext& ctx) {
  auto block = std::make_unique<MlpBlock>(ctx.model, *ctx.layer.block_as_MlpSpec());
  RECUR_RETURN_IF_ERROR(block->Init(ctx));
  return std::unique_ptr<Block>(std::move(block));
}

}  // namespace recur
