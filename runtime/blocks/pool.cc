// pool: the running mean of the layer's inputs over the stream so far, a sequence classifier's
// pooling in streaming form. With residual = false and an output projection after it, every
// step's output is the classifier's answer for the stream up to that step.
//
// State: the mean [d_model] and the step count (a uint64 in two floats). The update
// mean += (x - mean) / t keeps the mean itself, not a sum, so it neither overflows nor loses
// the new inputs' weight on long streams. Prefill runs the same update token by token, so the
// two leave identical state.
#include <cstring>

#include "runtime/blocks/block.h"

namespace recur {
namespace {

constexpr size_t kCountFloats = 2;

class PoolBlock final : public Block {
 public:
  PoolBlock(const fb::Model& model, const fb::PoolSpec& spec)
      : model_(model), spec_(spec), d_model_(static_cast<size_t>(model.d_model())) {}

  LayerPlan Plan(size_t tokens) const override { return PlanPool(model_, spec_, tokens); }

  void Step(const float* x, float* out, float* state, float* scratch,
            const Threads& threads) const override {
    float* mean = state;
    uint64_t count = 0;
    std::memcpy(&count, state + d_model_, sizeof(count));
    ++count;
    const float inv = 1.0f / static_cast<float>(count);
    for (size_t i = 0; i < d_model_; ++i) {
      mean[i] += (x[i] - mean[i]) * inv;
      out[i] = mean[i];
    }
    std::memcpy(state + d_model_, &count, sizeof(count));
  }

  void Prefill(const float* x, size_t tokens, float* out, float* state, float* scratch,
               const Threads& threads) const override {
    for (size_t t = 0; t < tokens; ++t) {
      Step(x + t * d_model_, out + t * d_model_, state, scratch, threads);
    }
  }

 private:
  const fb::Model& model_;
  const fb::PoolSpec& spec_;
  size_t d_model_;
};

}  // namespace

LayerPlan PlanPool(const fb::Model& model, const fb::PoolSpec& spec, size_t tokens) {
  LayerPlan plan;
  plan.state_bytes = (static_cast<size_t>(model.d_model()) + kCountFloats) * sizeof(float);
  return plan;
}

Result<std::unique_ptr<Block>> MakePool(const LayerContext& ctx) {
  return std::unique_ptr<Block>(new PoolBlock(ctx.model, *ctx.layer.block_as_PoolSpec()));
}

}  // namespace recur
