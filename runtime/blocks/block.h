// What the runtime knows about each block kind. A block kind lives in one file,
// runtime/blocks/<kind>.cc: its plan (state and scratch bytes), and, where this build runs it,
// a Block with Step (one token) and Prefill (a chunk), which must leave identical state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>

#include "formats/recur_file.h"
#include "formats/recur_generated.h"
#include "formats/status.h"
#include "ops/matvec.h"
#include "ops/types.h"
#include "runtime/threads.h"

namespace recur {

struct LayerPlan {
  size_t state_bytes = 0;    // Per stream: what must be carried from one token to the next.
  size_t scratch_bytes = 0;  // Working memory for a chunk of `tokens` tokens.
  // KV-cache attention: the state is allocated once for the block's maximum context
  // (state_bytes) and fills by bytes_per_token with every token; Block::StateBytesInUse says how
  // much is filled now.
  bool state_grows = false;
  size_t bytes_per_token = 0;  // When state_grows.
  bool known = true;         // False for block kinds this build cannot plan yet.
};

// The plan of a layer for a chunk of `tokens` tokens (1 for a step).
LayerPlan PlanLayer(const fb::Model& model, const fb::Layer& layer, size_t tokens);
// "d_inner=128 d_state=16 d_conv=4 dt_rank=4": a layer's dimensions for `recur inspect`.
std::string DescribeLayer(const fb::Layer& layer);

// Each block file defines its plan function.
LayerPlan PlanMlp(const fb::Model& model, const fb::MlpSpec& spec, size_t tokens);
LayerPlan PlanPool(const fb::Model& model, const fb::PoolSpec& spec, size_t tokens);
LayerPlan PlanMamba1(const fb::Model& model, const fb::Mamba1Spec& spec, size_t tokens);
LayerPlan PlanMamba2(const fb::Model& model, const fb::Mamba2Spec& spec, size_t tokens);
LayerPlan PlanLinearAttention(const fb::Model& model, const fb::LinearAttentionSpec& spec,
                              size_t tokens);
LayerPlan PlanSoftmaxAttention(const fb::Model& model, const fb::SoftmaxAttentionSpec& spec,
                               size_t tokens);
LayerPlan PlanRwkv(const fb::Model& model, const fb::RwkvSpec& spec, size_t tokens);
LayerPlan PlanHippo(const fb::Model& model, const fb::HippoSpec& spec, size_t tokens);
LayerPlan PlanS4d(const fb::Model& model, const fb::S4dSpec& spec, size_t tokens);

// A runnable layer mixer. Inputs are already normalised; the caller adds outputs to the residual
// stream. State is this layer's slice of the session's state block (zero at the start of a
// stream); scratch holds at least Plan(tokens).scratch_bytes. Neither method allocates.
// The session passes one scratch arena to every layer in turn (and one batch arena to every
// StepBatch), so a block may leave data there for later layers of its own kind: RWKV-7's v_first
// (runtime/blocks/rwkv.cc) relies on this.
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

  // Tokens this layer's state can still take; the default says there is no limit. A block whose
  // state holds a fixed number of tokens (a KV cache of max_context rows) returns what is left,
  // and the session refuses a call that would not fit before any layer runs, so Step and Prefill
  // never write past the state.
  virtual size_t Room(const float* state) const {
    (void)state;
    return std::numeric_limits<size_t>::max();
  }
  // Bytes of the state in use now: all of it for constant-size states, the filled part of a KV
  // cache (for benchmarks and `state_bytes_in_use`).
  virtual size_t StateBytesInUse(const float* state) const {
    (void)state;
    return Plan(1).state_bytes;
  }
  // Bytes at the start of the state that resetting must zero (default: all). A block whose state
  // header says how much of the rest is valid returns less, so that a reset neither costs nor
  // makes resident a large allocation that is mostly unused.
  virtual size_t ResetBytes() const { return Plan(1).state_bytes; }

  // Batched decoding: n independent streams advance one token each. x, out: [n, d_model] rows;
  // states[i]: stream i's state slice for this layer; scratch: at least BatchScratchBytes(n),
  // planned once by the caller, never per call (so BatchScratchBytes must not decrease with n: a
  // workspace sized for n serves smaller batches). Like Step, StepBatch must not allocate.
  // The defaults run Step on each stream in turn, in Step's own scratch, so a block kind works in
  // batches with no code of its own; blocks with weight matrices override both so that each
  // weight is read from memory once for all n streams (runtime/blocks/batch_matvec.h, which keeps
  // the results bit-identical to Step) and only the per-stream recurrences loop.
  virtual size_t BatchScratchBytes(size_t n) const { return Plan(1).scratch_bytes; }
  virtual void StepBatch(const float* x, size_t n, size_t d_model, float* out,
                         float* const* states, float* scratch, const Threads& threads) const {
    for (size_t i = 0; i < n; ++i) {
      Step(x + i * d_model, out + i * d_model, states[i], scratch, threads);
    }
  }
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
Result<std::unique_ptr<Block>> MakePool(const LayerContext& ctx);
Result<std::unique_ptr<Block>> MakeMamba1(const LayerContext& ctx);
Result<std::unique_ptr<Block>> MakeMamba2(const LayerContext& ctx);
Result<std::unique_ptr<Block>> MakeLinearAttention(const LayerContext& ctx);
Result<std::unique_ptr<Block>> MakeSoftmaxAttention(const LayerContext& ctx);
Result<std::unique_ptr<Block>> MakeRwkv(const LayerContext& ctx);
Result<std::unique_ptr<Block>> MakeHippo(const LayerContext& ctx);
Result<std::unique_ptr<Block>> MakeS4d(const LayerContext& ctx);

// How a decode step's matvec split over `threads` finds W: streaming from memory to this core
// alone (one thread) or to every core at once, where the kernels prefetch more (ops/matvec.h).
inline ops::MatVecSource StreamSource(const Threads& threads) {
  return threads.size() > 1 ? ops::MatVecSource::kMemoryShared : ops::MatVecSource::kMemory;
}

// out[t] = w in[t] (+ bias) for the T rows of `in`, split over the threads by rows of w: one
// matvec per row range when T == 1 (a decode step), else a matmul (prefill).
void ProjectRows(const ops::WeightView& w, const float* in, size_t T, const float* bias,
                 float* out, const Threads& threads);

// The stream position some blocks keep at the start of their state (attention: RoPE angles,
// the KV cache's length).
inline int64_t StatePosition(const float* state) {
  int64_t p;
  std::memcpy(&p, state, sizeof(p));
  return p;
}
inline void SetStatePosition(float* state, int64_t p) { std::memcpy(state, &p, sizeof(p)); }

// A weight view over a tensor of the file (any float matrix dtype).
ops::WeightView WeightViewOf(const TensorView& t);

}  // namespace recur
