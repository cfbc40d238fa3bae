// What the runtime knows about each block kind. A block kind lives in one file,
// runtime/blocks/<kind>.cc: its plan (state and scratch bytes), and, where this build runs it,
// a Block with Step (one token) and Prefill (a chunk), which must leave identical state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "formats/recur_file.h"
#include "formats/recur_generated.h"
#include "formats/status.h"
#include "ops/types.h"
#include "runtime/threads.h"

namespace recur {

struct LayerPlan {
  size_t state_bytes = 0;    // Per stream: what must be carried from one token to the next.
  size_t scratch_bytes = 0;  // Working memory for a chunk of `tokens` tokens.
  bool state_grows = false;  // KV-cache attention: state_bytes is per token of context.
  bool known = true;         // False for block kinds this build cannot plan yet.
};

// The plan of a layer for a chunk of `tokens` tokens (1 for a step).
LayerPlan PlanLayer(const fb::Model& model, const fb::Layer& layer, size_t tokens);
// "d_inner=128 d_state=16 d_conv=4 dt_rank=4": a layer's dimensions for `recur inspect`.
std::string DescribeLayer(const fb::Layer& layer);

// Each block file defines its plan function.
LayerPlan PlanMlp(const fb::Model& model, const fb::MlpSpec& spec, size_t tokens);
LayerPlan PlanMamba1(const fb::Model& model, const fb::Mamba1Spec& spec, size_t tokens);
LayerPlan PlanMamba2(const fb::Model& model, const fb::Mamba2Spec& spec, size_t tokens);

// A runnable layer mixer. Inputs are already normalised; the caller adds outputs to the residual
// stream. State is this layer's slice of the session's state block (zero at the start of a
// stream); scratch holds at least Plan(tokens).scratch_bytes. Neither method allocates.
class Block {
 public:
  virtual ~Block() = default;
  virtual LayerPlan Plan(size_t tokens) const = 0;
  // x, out: [d_model].
  virtual void Step(const float* x, float* out, float* state, float* scratch,
                    const Threads& threads) const = 0;
  // x, out: [tokens, d_model] row-major.
  virtual void Prefill(const float* x, size_t tokens, float* out, float* state, float* scratch,
                       const Threads& threads) const = 0;
};

// What a block factory sees: the file (for its tensors) and the layer.
struct LayerContext {
  const RecurFile& file;
  const fb::Model& model;
  const fb::Layer& layer;
  int index;
  // "layers.<index>.".
  std::string prefix;

  // The tensor `prefix + name` as a weight matrix view; the loader has already checked names,
  // shapes and dtypes against block_tensors, so a failure here is an internal error.
  Result<ops::WeightView> Matrix(const std::string& name) const;
  // The f32 vector `prefix + name`, or null when absent (optional tensors).
  const float* Vector(const std::string& name) const;
};

// The block for a layer, or Unsupported when this build cannot run its kind yet.
Result<std::unique_ptr<Block>> MakeBlock(const LayerContext& ctx);
Result<std::unique_ptr<Block>> MakeMlp(const LayerContext& ctx);
Result<std::unique_ptr<Block>> MakeMamba1(const LayerContext& ctx);
Result<std::unique_ptr<Block>> MakeMamba2(const LayerContext& ctx);

// A weight view over a tensor of the file (any float matrix dtype).
ops::WeightView WeightViewOf(const TensorView& t);

}  // namespace recur
