#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "ops/convert.h"
#include "ops/elementwise.h"
#include "ops/matvec.h"
#include "ops/norm.h"
#include "runtime/blocks/batch_matvec.h"
#include "runtime/model_runtime.h"

namespace recur {
namespace {

// Rows per thread task for the head matvec: a multiple of every target's lane count, and enough
// rows that one task streams tens of KiB of weights.
constexpr size_t kHeadRowGrain = 256;

constexpr size_t AlignFloats(size_t n) { return (n + 15) / 16 * 16; }

// out[t] = norm(x[t]) for `tokens` rows of width n.
void ApplyNorm(const NormWeights& norm, const float* x, float* out, size_t tokens, size_t n) {
  switch (norm.kind) {
    case fb::NormKind::RMSNorm:
      ops::RMSNormRows(x, n, norm.weight, norm.eps, out, n, tokens, n);
      break;
    case fb::NormKind::LayerNorm:
      ops::LayerNormRows(x, n, norm.weight, norm.bias, norm.eps, out, n, tokens, n);
      break;
    case fb::NormKind::None:
      std::memcpy(out, x, tokens * n * sizeof(float));
      break;
  }
}

}  // namespace

Session::~Session() {
  std::free(arena_);
  std::free(batch_arena_);
}

Result<std::unique_ptr<Session>> Session::Create(std::shared_ptr<const Model> model) {
  if (model == nullptr) return InvalidArgument("Session::Create: null model");
  if (!model->runnable().ok()) return model->runnable();
  const Model::Runtime& rt = *model->rt_;
  const fb::Model& m = model->file_->model();
  const size_t out_size = m.output_kind() == fb::OutputKind::Logits ? m.vocab_size() : m.output_size();
  const size_t rows = AlignFloats(rt.chunk * rt.d_model);
  const size_t floats = rt.state_floats + 3 * rows + AlignFloats(out_size) + rt.scratch_floats;
  // One allocation per session, made here, so that steps never allocate.
  void* arena = std::aligned_alloc(64, std::max<size_t>(floats, 16) * sizeof(float));
  if (arena == nullptr) {
    return Status(StatusCode::kOutOfMemory,
                  "cannot allocate " + std::to_string(floats * 4) + " bytes for a session");
  }
  // Saved state carries the model's fingerprint; hashing it here keeps that work out of the
  // first save or load.
  (void)model->fingerprint();
  std::unique_ptr<Session> s(new Session());
  s->model_ = std::move(model);
  s->arena_ = arena;
  float* p = static_cast<float*>(arena);
  s->state_ = p;
  s->state_floats_ = rt.state_floats;
  p += rt.state_floats;
  s->resid_ = p, p += rows;
  s->normed_ = p, p += rows;
  s->mixed_ = p, p += rows;
  s->out_ = p, p += AlignFloats(out_size);
  s->scratch_ = p;
  s->Reset();
  return s;
}

void Session::Reset() {
  // Each layer zeroes what its block needs zeroed: a KV cache only its header (its length), so a
  // cache allocated for a long context stays untouched, and not resident, until it fills.
  for (const Model::Runtime::Layer& layer : model_->rt_->layers) {
    std::memset(state_ + layer.state_offset, 0, layer.block->ResetBytes());
  }
  position_ = 0;
}

size_t Session::state_bytes_in_use() const {
  size_t bytes = 0;
  for (const Model::Runtime::Layer& layer : model_->rt_->layers) {
    bytes += layer.block->StateBytesInUse(state_ + layer.state_offset);
  }
  return bytes;
}

Status Session::CheckRoom(size_t tokens, const char* call) const {
  const auto& layers = model_->rt_->layers;
  for (size_t i = 0; i < layers.size(); ++i) {
    const size_t room = layers[i].block->Room(state_ + layers[i].state_offset);
    if (room < tokens) {
      return Status(StatusCode::kOutOfMemory,
                    std::string(call) + ": layer " + std::to_string(i) + "'s state has room for " +
                        std::to_string(room) + " more token(s), this call needs " +
                        std::to_string(tokens) +
                        " (its KV cache is full at max_context; Reset the session, or convert "
                        "the model with a larger max_context or a window)");
    }
  }
  return Status::Ok();
}

size_t Session::state_bytes() const { return state_floats_ * sizeof(float); }

Status Session::CheckTokenModel(const char* call) const {
  const fb::Model& m = model_->file_->model();
  if (m.input_kind() != fb::InputKind::Tokens) {
    return InvalidArgument(std::string(call) + ": this model takes feature frames, not tokens");
  }
  if (m.output_kind() != fb::OutputKind::Logits) {
    return InvalidArgument(std::string(call) +
                           ": this model outputs features, not logits; use StepFrame");
  }
  return Status::Ok();
}

Status Session::CheckToken(int32_t token) const {
  const int32_t vocab = model_->info().vocab_size;
  if (token < 0 || token >= vocab) {
    return InvalidArgument("token id " + std::to_string(token) + " is outside the vocabulary [0, " +
                           std::to_string(vocab) + ")");
  }
  return Status::Ok();
}

void Session::RunLayers(size_t tokens, bool step) {
  const Model::Runtime& rt = *model_->rt_;
  const size_t d = rt.d_model;
  for (const Model::Runtime::Layer& layer : rt.layers) {
    ApplyNorm(layer.norm, resid_, normed_, tokens, d);
    float* state = state_ + layer.state_offset;
    if (step) {
      layer.block->Step(normed_, mixed_, state, scratch_, rt.threads);
    } else {
      layer.block->Prefill(normed_, tokens, mixed_, state, scratch_, rt.threads);
    }
    if (layer.residual) {
      ops::Add(resid_, mixed_, resid_, tokens * d);
    } else {
      std::memcpy(resid_, mixed_, tokens * d * sizeof(float));
    }
  }
  ApplyNorm(rt.final_norm, resid_, normed_, tokens, d);
}

void Session::Head(const float* normed, float* out) const {
  const Model::Runtime& rt = *model_->rt_;
  rt.threads.ParallelFor(rt.head.rows, kHeadRowGrain, [&](size_t begin, size_t end) {
    ops::MatVec(rt.head, normed, rt.head_bias, out, begin, end, StreamSource(rt.threads));
  });
}

Status Session::StepToken(int32_t token, const float** logits) {
  if (logits == nullptr) return InvalidArgument("StepToken: null logits pointer");
  RECUR_RETURN_IF_ERROR(CheckTokenModel("StepToken"));
  RECUR_RETURN_IF_ERROR(CheckToken(token));
  RECUR_RETURN_IF_ERROR(CheckRoom(1, "StepToken"));
  const Model::Runtime& rt = *model_->rt_;
  ops::DequantizeRow(rt.embed, static_cast<size_t>(token), resid_);
  RunLayers(1, /*step=*/true);
  Head(normed_, out_);
  ++position_;
  *logits = out_;
  return Status::Ok();
}

Status Session::PrefillTokens(const int32_t* tokens, size_t n, const float** last_logits,
                              float* all_logits) {
  if (tokens == nullptr && n > 0) return InvalidArgument("PrefillTokens: null tokens");
  RECUR_RETURN_IF_ERROR(CheckTokenModel("PrefillTokens"));
  for (size_t i = 0; i < n; ++i) {
    Status s = CheckToken(tokens[i]);
    if (!s.ok()) return s.Prepend("PrefillTokens: position " + std::to_string(i) + ": ");
  }
  RECUR_RETURN_IF_ERROR(CheckRoom(n, "PrefillTokens"));
  const Model::Runtime& rt = *model_->rt_;
  const size_t d = rt.d_model, vocab = rt.head.rows;
  for (size_t begin = 0; begin < n; begin += rt.chunk) {
    const size_t t = std::min(rt.chunk, n - begin);
    for (size_t i = 0; i < t; ++i) {
      ops::DequantizeRow(rt.embed, static_cast<size_t>(tokens[begin + i]), resid_ + i * d);
    }
    RunLayers(t, /*step=*/false);
    if (all_logits != nullptr) {
      for (size_t i = 0; i < t; ++i) Head(normed_ + i * d, all_logits + (begin + i) * vocab);
    }
    if (begin + t == n && last_logits != nullptr) Head(normed_ + (t - 1) * d, out_);
    position_ += static_cast<int64_t>(t);
  }
  if (last_logits != nullptr) *last_logits = n > 0 ? out_ : nullptr;
  return Status::Ok();
}

Status Session::StepFrame(const float* in, const float** out) {
  if (in == nullptr || out == nullptr) return InvalidArgument("StepFrame: null pointer");
  if (model_->file_->model().input_kind() != fb::InputKind::Frames) {
    return InvalidArgument("StepFrame: this model takes tokens, not feature frames");
  }
  RECUR_RETURN_IF_ERROR(CheckRoom(1, "StepFrame"));
  const Model::Runtime& rt = *model_->rt_;
  ops::MatVec(rt.input_proj, in, rt.input_bias, resid_, 0, rt.input_proj.rows);
  RunLayers(1, /*step=*/true);
  Head(normed_, out_);
  ++position_;
  *out = out_;
  return Status::Ok();
}

// ---- Batched decoding.

namespace {

// Where each buffer of a batch workspace for `cap` streams lives, in bytes from its start.
struct BatchLayout {
  size_t resid = 0, normed = 0, mixed = 0, out = 0, scratch = 0, states = 0, total = 0;

  BatchLayout(size_t cap, size_t d_model, size_t out_size, size_t scratch_floats) {
    size_t at = 0;
    const auto take = [&at](size_t bytes) {
      const size_t offset = at;
      at += (bytes + 63) / 64 * 64;
      return offset;
    };
    resid = take(cap * d_model * sizeof(float));   // [cap, d_model]
    normed = take(cap * d_model * sizeof(float));  // [cap, d_model]
    mixed = take(cap * d_model * sizeof(float));   // [cap, d_model]
    out = take(cap * out_size * sizeof(float));    // [cap, vocab]: the head's MatMul output.
    scratch = take(scratch_floats * sizeof(float));
    states = take(cap * sizeof(float*));           // One layer's state pointers, per stream.
    total = at;
  }
};

}  // namespace

Status Session::ReserveBatch(size_t n) {
  if (n <= batch_capacity_) return Status::Ok();
  const Model::Runtime& rt = *model_->rt_;
  size_t scratch_bytes = 0;
  for (const Model::Runtime::Layer& layer : rt.layers) {
    scratch_bytes = std::max(scratch_bytes, layer.block->BatchScratchBytes(n));
  }
  const size_t scratch_floats = AlignFloats((scratch_bytes + 3) / 4);
  const BatchLayout l(n, rt.d_model, rt.head.rows, scratch_floats);
  void* arena = std::aligned_alloc(64, std::max<size_t>(l.total, 64));
  if (arena == nullptr) {
    return Status(StatusCode::kOutOfMemory, "cannot allocate " + std::to_string(l.total) +
                                                " bytes for a batch of " + std::to_string(n));
  }
  std::free(batch_arena_);
  batch_arena_ = arena;
  batch_capacity_ = n;
  batch_scratch_floats_ = scratch_floats;
  return Status::Ok();
}

Status Session::StepBatch(Session* const* sessions, const int32_t* tokens, size_t n,
                          const float** logits) {
  if (sessions == nullptr || tokens == nullptr || logits == nullptr) {
    return InvalidArgument("StepBatch: null sessions, tokens or logits array");
  }
  if (n == 0) return Status::Ok();
  for (size_t i = 0; i < n; ++i) {
    if (sessions[i] == nullptr) {
      return InvalidArgument("StepBatch: session " + std::to_string(i) + " is null");
    }
    if (sessions[i]->model_ != sessions[0]->model_) {
      return InvalidArgument("StepBatch: session " + std::to_string(i) +
                             " runs another model than session 0 (a batch shares one model)");
    }
  }
  Session& lead = *sessions[0];
  RECUR_RETURN_IF_ERROR(lead.CheckTokenModel("StepBatch"));
  for (size_t i = 0; i < n; ++i) {
    Status s = lead.CheckToken(tokens[i]);
    if (!s.ok()) return s.Prepend("StepBatch: stream " + std::to_string(i) + ": ");
  }
  for (size_t i = 0; i < n; ++i) {
    Status s = sessions[i]->CheckRoom(1, "StepBatch");
    if (!s.ok()) return s.Prepend("stream " + std::to_string(i) + ": ");
  }
  // A session twice in one batch would advance twice on one state at once.
  Status repeated = Status::Ok();
  size_t marked = 0;
  for (; marked < n; ++marked) {
    if (sessions[marked]->in_batch_) {
      repeated = InvalidArgument("StepBatch: session " + std::to_string(marked) +
                                 " appears twice in the batch");
      break;
    }
    sessions[marked]->in_batch_ = true;
  }
  for (size_t i = 0; i < marked; ++i) sessions[i]->in_batch_ = false;
  RECUR_RETURN_IF_ERROR(repeated);
  // One stream: the single-token path (matvec) is both exact and faster.
  if (n == 1) return lead.StepToken(tokens[0], &logits[0]);
  RECUR_RETURN_IF_ERROR(lead.ReserveBatch(n));

  const Model::Runtime& rt = *lead.model_->rt_;
  const size_t d = rt.d_model, vocab = rt.head.rows;
  const BatchLayout l(lead.batch_capacity_, d, vocab, lead.batch_scratch_floats_);
  auto* base = static_cast<char*>(lead.batch_arena_);
  float* resid = reinterpret_cast<float*>(base + l.resid);
  float* normed = reinterpret_cast<float*>(base + l.normed);
  float* mixed = reinterpret_cast<float*>(base + l.mixed);
  float* out = reinterpret_cast<float*>(base + l.out);
  float* scratch = reinterpret_cast<float*>(base + l.scratch);
  float** states = reinterpret_cast<float**>(base + l.states);

  for (size_t i = 0; i < n; ++i) {
    ops::DequantizeRow(rt.embed, static_cast<size_t>(tokens[i]), resid + i * d);
  }
  for (const Model::Runtime::Layer& layer : rt.layers) {
    ApplyNorm(layer.norm, resid, normed, n, d);
    for (size_t i = 0; i < n; ++i) states[i] = sessions[i]->state_ + layer.state_offset;
    layer.block->StepBatch(normed, n, d, mixed, states, scratch, rt.threads);
    if (layer.residual) {
      ops::Add(resid, mixed, resid, n * d);
    } else {
      std::memcpy(resid, mixed, n * d * sizeof(float));
    }
  }
  ApplyNorm(rt.final_norm, resid, normed, n, d);
  // The head (often the largest matrix) is read once for all n, as the blocks' projections are.
  rt.threads.ParallelFor(vocab, kHeadRowGrain, [&](size_t begin, size_t end) {
    BatchMatVec(rt.head, normed, d, n, rt.head_bias, out, vocab, begin, end);
  });
  for (size_t i = 0; i < n; ++i) {
    Session& s = *sessions[i];
    std::memcpy(s.out_, out + i * vocab, vocab * sizeof(float));
    ++s.position_;
    logits[i] = s.out_;
  }
  return Status::Ok();
}

}  // namespace recur
