#include <cstdlib>
#include <cstring>

#include "ops/convert.h"
#include "ops/elementwise.h"
#include "ops/matvec.h"
#include "ops/norm.h"
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

Session::~Session() { std::free(arena_); }

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
  std::memset(state_, 0, state_floats_ * sizeof(float));
  position_ = 0;
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
    ops::MatVec(rt.head, normed, rt.head_bias, out, begin, end);
  });
}

Status Session::StepToken(int32_t token, const float** logits) {
  if (logits == nullptr) return InvalidArgument("StepToken: null logits pointer");
  RECUR_RETURN_IF_ERROR(CheckTokenModel("StepToken"));
  RECUR_RETURN_IF_ERROR(CheckToken(token));
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
  const Model::Runtime& rt = *model_->rt_;
  ops::MatVec(rt.input_proj, in, rt.input_bias, resid_, 0, rt.input_proj.rows);
  RunLayers(1, /*step=*/true);
  Head(normed_, out_);
  ++position_;
  *out = out_;
  return Status::Ok();
}

}  // namespace recur
