// Small random-weight models for the C API tests: one layer of each constant-state block kind this
// build runs (mamba1, mlp, mamba2), tokens in, logits out, a bytes tokenizer. Written with
// RecurWriter, as tests/runtime/session_test.cc does.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "formats/recur_writer.h"

namespace recur::testing {

struct TinyDims {
  int d_model = 64;
  int vocab = 256;  // The bytes tokenizer's 256 ids.
  int d_inner = 128, d_state = 16, d_conv = 4, dt_rank = 4;  // mamba1
  int d_ff = 96;                                             // mlp
  int m2_heads = 4, m2_head_dim = 32, m2_state = 16;         // mamba2 (d_inner 128)
};

// Writes the model to `path`; `seed` picks the weights (two seeds: same layout, other weights).
inline Status WriteMixedModel(const std::string& path, uint32_t seed, const TinyDims& d = {},
                            bool tokenizer = true) {
  std::mt19937 rng(seed);
  fb::ModelT m;
  m.architecture = "spec";
  m.d_model = d.d_model;
  m.vocab_size = d.vocab;
  m.output_size = d.vocab;
  m.tie_embeddings = false;
  m.final_norm = fb::NormKind::RMSNorm;
  {
    auto layer = std::make_unique<fb::LayerT>();
    fb::Mamba1SpecT s;
    s.d_inner = d.d_inner;
    s.d_state = d.d_state;
    s.d_conv = d.d_conv;
    s.dt_rank = d.dt_rank;
    layer->block.Set(std::move(s));
    layer->norm = fb::NormKind::RMSNorm;
    m.layers.push_back(std::move(layer));
  }
  {
    auto layer = std::make_unique<fb::LayerT>();
    fb::MlpSpecT s;
    s.d_ff = d.d_ff;
    s.glu = true;
    s.activation = fb::Activation::SiLU;
    layer->block.Set(std::move(s));
    layer->norm = fb::NormKind::RMSNorm;
    m.layers.push_back(std::move(layer));
  }
  {
    auto layer = std::make_unique<fb::LayerT>();
    fb::Mamba2SpecT s;
    s.d_inner = d.m2_heads * d.m2_head_dim;
    s.d_state = d.m2_state;
    s.d_conv = d.d_conv;
    s.n_heads = d.m2_heads;
    s.head_dim = d.m2_head_dim;
    s.n_groups = 1;
    s.chunk_size = 16;
    layer->block.Set(std::move(s));
    layer->norm = fb::NormKind::RMSNorm;
    m.layers.push_back(std::move(layer));
  }
  if (tokenizer) {
    m.tokenizer = std::make_unique<fb::TokenizerT>();
    m.tokenizer->kind = fb::TokenizerKind::Bytes;
  }
  RecurWriter writer(std::move(m));
  std::vector<std::vector<float>> storage;
  Status first_error = Status::Ok();
  auto add = [&](const std::string& name, std::vector<int64_t> shape, float scale, float offset) {
    size_t n = 1;
    for (int64_t x : shape) n *= static_cast<size_t>(x);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    storage.emplace_back(n);
    for (float& v : storage.back()) v = offset + scale * dist(rng);
    Status st = writer.AddTensorFromMemory(name, DType::kF32, shape, storage.back().data());
    if (!st.ok() && first_error.ok()) first_error = st;
  };
  const int64_t dm = d.d_model;
  add("embed.weight", {d.vocab, dm}, 1.0f, 0);
  add("head.weight", {d.vocab, dm}, 0.2f, 0);
  add("norm_f.weight", {dm}, 0.1f, 1.0f);
  // Layer 0: mamba1, weights drawn as in examples/make_demo_model.cc (scaled for a visible effect).
  add("layers.0.norm.weight", {dm}, 0.1f, 1.0f);
  add("layers.0.mixer.in_proj.weight", {2 * d.d_inner, dm}, 0.1f, 0);
  add("layers.0.mixer.conv1d.weight", {d.d_inner, d.d_conv}, 0.3f, 0);
  add("layers.0.mixer.conv1d.bias", {d.d_inner}, 0.1f, 0);
  add("layers.0.mixer.x_proj.weight", {d.dt_rank + 2 * d.d_state, d.d_inner}, 0.1f, 0);
  add("layers.0.mixer.dt_proj.weight", {d.d_inner, d.dt_rank}, 0.1f, 0);
  add("layers.0.mixer.dt_proj.bias", {d.d_inner}, 0.5f, -3.0f);
  add("layers.0.mixer.A_log", {d.d_inner, d.d_state}, 0.5f, 0.5f);
  add("layers.0.mixer.D", {d.d_inner}, 0.1f, 1.0f);
  add("layers.0.mixer.out_proj.weight", {dm, d.d_inner}, 0.1f, 0);
  // Layer 1: gated mlp.
  add("layers.1.norm.weight", {dm}, 0.1f, 1.0f);
  add("layers.1.mlp.up.weight", {d.d_ff, dm}, 0.1f, 0);
  add("layers.1.mlp.gate.weight", {d.d_ff, dm}, 0.1f, 0);
  add("layers.1.mlp.down.weight", {dm, d.d_ff}, 0.1f, 0);
  // Layer 2: mamba2.
  const int64_t m2_inner = d.m2_heads * d.m2_head_dim;
  const int64_t conv_dim = m2_inner + 2 * d.m2_state;
  const int64_t proj_dim = 2 * m2_inner + 2 * d.m2_state + d.m2_heads;
  add("layers.2.norm.weight", {dm}, 0.1f, 1.0f);
  add("layers.2.mixer.in_proj.weight", {proj_dim, dm}, 0.1f, 0);
  add("layers.2.mixer.conv1d.weight", {conv_dim, d.d_conv}, 0.3f, 0);
  add("layers.2.mixer.conv1d.bias", {conv_dim}, 0.1f, 0);
  add("layers.2.mixer.dt_bias", {d.m2_heads}, 0.5f, -2.0f);
  add("layers.2.mixer.A_log", {d.m2_heads}, 0.3f, 0.5f);
  add("layers.2.mixer.D", {d.m2_heads}, 0.1f, 1.0f);
  add("layers.2.mixer.norm.weight", {m2_inner}, 0.1f, 1.0f);
  add("layers.2.mixer.out_proj.weight", {dm, m2_inner}, 0.1f, 0);
  RECUR_RETURN_IF_ERROR(first_error);
  return writer.Write(path);
}

}  // namespace recur::testing
