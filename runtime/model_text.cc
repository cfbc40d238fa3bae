// The model's tokenizer, streaming detokenisation, and sampling, for the C++ API.
#include <algorithm>
#include <string>
#include <vector>

#include "formats/recur_file.h"
#include "formats/tokenizer.h"
#include "ops/sampling.h"
#include "runtime/recur.hpp"

namespace recur {

Status Model::Tokenize(std::string_view text, std::vector<int32_t>* ids) const {
  if (ids == nullptr) return InvalidArgument("Tokenize: null output");
  if (tokenizer_ == nullptr) return NotFound(info_.path + ": the model has no tokenizer");
  return tokenizer_->Encode(text, ids);
}

std::string Model::TokenBytes(int32_t id) const {
  if (tokenizer_ == nullptr || id < 0 || id >= tokenizer_->vocab_size()) return "";
  return std::string(tokenizer_->TokenBytes(id));
}

int32_t Model::eos_id() const { return tokenizer_ ? tokenizer_->eos_id() : -1; }

struct TextStream::Impl {
  explicit Impl(const Tokenizer* t) : decoder(t ? std::make_unique<TokenStreamDecoder>(*t) : nullptr) {}
  std::unique_ptr<TokenStreamDecoder> decoder;
};

TextStream::TextStream(const Model& model) : impl_(std::make_unique<Impl>(model.tokenizer_.get())) {}
TextStream::~TextStream() = default;

std::string TextStream::Next(int32_t id) {
  return impl_->decoder ? impl_->decoder->Next(id) : "[" + std::to_string(id) + "]";
}

std::string TextStream::Flush() { return impl_->decoder ? impl_->decoder->Flush() : ""; }

struct Sampler::Impl {
  Impl(size_t vocab, const SamplerParams& p)
      : scratch(vocab), idx(vocab), counts(vocab, 0.0f), weights(vocab, 1.0f), rng(p.seed) {
    params.temperature = p.temperature;
    params.top_k = p.top_k;
    params.top_p = p.top_p;
    params.seed = p.seed;
    params.presence_penalty = p.presence_penalty;
    params.frequency_penalty = p.frequency_penalty;
    params.penalty_decay = p.penalty_decay;
  }
  std::vector<float> scratch;
  std::vector<int32_t> idx;
  std::vector<float> counts;   // Decayed draw counts, for the repetition penalties.
  std::vector<float> weights;  // What one draw of each token adds to its count.
  ops::Rng rng;
  ops::SamplerParams params;
};

Sampler::Sampler(size_t vocab_size, const SamplerParams& params)
    : impl_(std::make_unique<Impl>(vocab_size, params)) {}

Sampler::Sampler(const Model& model, const SamplerParams& params)
    : impl_(std::make_unique<Impl>(static_cast<size_t>(std::max(model.info().vocab_size, 0)),
                                   params)) {
  // As RWKV's chat does: text needs spaces, newlines and digits over and over, so drawing them
  // does not count against them. Not in a byte vocabulary, where every token is one character:
  // there the space is just the most common letter, and a model stuck on spaces (the tiny RWKV
  // models do get stuck) must be pushed off them like off any other token.
  if (impl_->weights.size() <= 256) return;
  for (size_t id = 0; id < impl_->weights.size(); ++id) {
    const std::string bytes = model.TokenBytes(static_cast<int32_t>(id));
    const bool spacing = !bytes.empty() && std::all_of(bytes.begin(), bytes.end(), [](char c) {
      return c == ' ' || c == '\t' || c == '\n' || c == '\r' || (c >= '0' && c <= '9');
    });
    if (spacing) impl_->weights[id] = 0.0f;
  }
}

Sampler::~Sampler() = default;

int32_t Sampler::Sample(const float* logits) {
  Impl& s = *impl_;
  const size_t n = s.scratch.size();
  const int32_t token =
      ops::Sample(logits, n, s.params, s.rng, s.scratch.data(), s.idx.data(), s.counts.data());
  if (s.params.presence_penalty != 0.0f || s.params.frequency_penalty != 0.0f) {
    const float weight = token >= 0 && static_cast<size_t>(token) < n ? s.weights[token] : 0.0f;
    ops::RecordToken(s.counts.data(), n, token, s.params.penalty_decay, weight);
  }
  return token;
}

void Sampler::ResetPenalties() {
  std::fill(impl_->counts.begin(), impl_->counts.end(), 0.0f);
}

}  // namespace recur
