// The model's tokenizer, streaming detokenisation, and sampling, for the C++ API.
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
      : scratch(vocab), idx(vocab), rng(p.seed) {
    params.temperature = p.temperature;
    params.top_k = p.top_k;
    params.top_p = p.top_p;
    params.seed = p.seed;
  }
  std::vector<float> scratch;
  std::vector<int32_t> idx;
  ops::Rng rng;
  ops::SamplerParams params;
};

Sampler::Sampler(size_t vocab_size, const SamplerParams& params)
    : impl_(std::make_unique<Impl>(vocab_size, params)) {}
Sampler::~Sampler() = default;

int32_t Sampler::Sample(const float* logits) {
  return ops::Sample(logits, impl_->scratch.size(), impl_->params, impl_->rng,
                     impl_->scratch.data(), impl_->idx.data());
}

}  // namespace recur
