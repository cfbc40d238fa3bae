// Tests formats/hf_mamba.h: both Mamba-1 config layouts map to the same mamba1 model shape with
// the right defaults ("auto" dt_rank, expand-derived d_inner, vocab padding), every canonical
// tensor gets its checkpoint name, a tokenizer.json comes along, and what cannot be represented
// is refused by name. (Running the converted fixture is tests/runtime/mamba1_test.cc.)
#include "formats/hf_mamba.h"

#include <doctest/doctest.h>

#include <fstream>
#include <string>

#include "tests/formats/hf_test_util.h"
#include "tests/test_util.h"

namespace recur {
namespace {

using testing::Contains;
using testing::Error;
using testing::WriteConfig;

using testing::TempDir;

const fb::Mamba1SpecT& Spec(const HfMapping& m, size_t layer) {
  REQUIRE(layer < m.model.layers.size());
  const fb::Mamba1SpecT* s = m.model.layers[layer]->block.AsMamba1Spec();
  REQUIRE(s != nullptr);
  return *s;
}

TEST_CASE("hf_mamba: MambaForCausalLM config with defaults, auto dt_rank, biases, untied head") {
  TempDir dir;
  const HfConfig config = WriteConfig(dir, R"({
    "architectures": ["MambaForCausalLM"], "model_type": "mamba",
    "hidden_size": 40, "num_hidden_layers": 3, "vocab_size": 77,
    "time_step_rank": "auto", "use_bias": true, "tie_word_embeddings": false,
    "layer_norm_epsilon": 1e-6})");
  auto mapping = MapHfMamba(config);
  REQUIRE_MESSAGE(mapping.ok(), mapping.status().message());
  const fb::ModelT& m = mapping->model;
  CHECK(m.architecture == "mamba1");
  CHECK(m.d_model == 40);
  CHECK(m.vocab_size == 77);
  CHECK(m.output_size == 77);
  CHECK(!m.tie_embeddings);
  CHECK(m.final_norm == fb::NormKind::RMSNorm);
  CHECK(m.final_norm_eps == doctest::Approx(1e-6));
  REQUIRE(m.layers.size() == 3);
  const fb::Mamba1SpecT& s = Spec(*mapping, 2);
  CHECK(s.d_inner == 80);  // expand 2 (default) * 40.
  CHECK(s.d_state == 16);
  CHECK(s.d_conv == 4);
  CHECK(s.dt_rank == 3);  // ceil(40 / 16).
  CHECK(s.conv_bias);
  CHECK(s.proj_bias);
  CHECK(m.layers[2]->norm == fb::NormKind::RMSNorm);
  CHECK(m.layers[2]->norm_eps == doctest::Approx(1e-6));
  CHECK(m.tokenizer == nullptr);

  const auto& names = mapping->source_names;
  CHECK(names.at("embed.weight") == "backbone.embeddings.weight");
  CHECK(names.at("head.weight") == "lm_head.weight");
  CHECK(names.at("norm_f.weight") == "backbone.norm_f.weight");
  CHECK(names.at("layers.1.norm.weight") == "backbone.layers.1.norm.weight");
  CHECK(names.at("layers.2.mixer.A_log") == "backbone.layers.2.mixer.A_log");
  CHECK(names.at("layers.0.mixer.in_proj.bias") == "backbone.layers.0.mixer.in_proj.bias");
  CHECK(names.at("layers.0.mixer.conv1d.weight") == "backbone.layers.0.mixer.conv1d.weight");
  // Every canonical tensor has a name.
  auto expected = ExpectedTensorsOf(m);
  REQUIRE(expected.ok());
  for (const ExpectedTensor& e : *expected) CHECK(names.count(e.name) == 1);
}

TEST_CASE("hf_mamba: explicit sizes win over expand; bad values are named") {
  TempDir dir;
  auto mapping = MapHfMamba(WriteConfig(dir, R"({"hidden_size": 64, "num_hidden_layers": 1,
    "vocab_size": 10, "intermediate_size": 96, "expand": 2, "time_step_rank": 5,
    "state_size": 8, "conv_kernel": 3, "use_conv_bias": false})"));
  REQUIRE_MESSAGE(mapping.ok(), mapping.status().message());
  const fb::Mamba1SpecT& s = Spec(*mapping, 0);
  CHECK(s.d_inner == 96);
  CHECK(s.dt_rank == 5);
  CHECK(s.d_state == 8);
  CHECK(s.d_conv == 3);
  CHECK(!s.conv_bias);
  CHECK(mapping->model.tie_embeddings);  // tie_word_embeddings defaults to true.
  CHECK(mapping->source_names.count("head.weight") == 0);
  CHECK(mapping->source_names.count("layers.0.mixer.conv1d.bias") == 0);

  auto bad_rank = MapHfMamba(WriteConfig(dir, R"({"hidden_size": 64, "num_hidden_layers": 1,
    "vocab_size": 10, "time_step_rank": "big"})"));
  CHECK(
      Contains(bad_rank.status().message(), "\"time_step_rank\": expected an integer or \"auto\""));
  auto missing = MapHfMamba(WriteConfig(dir, R"({"hidden_size": 64, "vocab_size": 10})"));
  CHECK(Contains(missing.status().message(), "\"num_hidden_layers\": missing"));
  auto zero = MapHfMamba(WriteConfig(dir, R"({"hidden_size": 64, "num_hidden_layers": 1,
    "vocab_size": 10, "state_size": 0})"));
  CHECK(Contains(zero.status().message(), "\"state_size\": expected a positive integer"));
  auto gelu = MapHfMamba(WriteConfig(dir, R"({"hidden_size": 64, "num_hidden_layers": 1,
    "vocab_size": 10, "hidden_act": "gelu"})"));
  CHECK(gelu.status().code() == StatusCode::kUnsupported);
  CHECK(Contains(gelu.status().message(), "\"hidden_act\": \"gelu\""));
}

TEST_CASE("hf_mamba: state-spaces MambaConfig: ssm_cfg, vocab padding, LayerNorm, names") {
  TempDir dir;
  const HfConfig config = WriteConfig(dir, R"({"d_model": 768, "n_layer": 2,
    "vocab_size": 50277, "ssm_cfg": {"d_state": 8, "dt_rank": "auto", "bias": true},
    "rms_norm": false, "residual_in_fp32": true, "fused_add_norm": true,
    "pad_vocab_size_multiple": 8, "tie_embeddings": false})");
  CHECK(IsStateSpacesMambaConfig(config));
  auto mapping = MapStateSpacesMamba(config);
  REQUIRE_MESSAGE(mapping.ok(), mapping.status().message());
  const fb::ModelT& m = mapping->model;
  CHECK(m.vocab_size == 50280);  // Padded up to a multiple of 8, as MambaLMHeadModel does.
  CHECK(m.final_norm == fb::NormKind::LayerNorm);
  CHECK(m.layers[0]->norm == fb::NormKind::LayerNorm);
  const fb::Mamba1SpecT& s = Spec(*mapping, 1);
  CHECK(s.d_inner == 1536);
  CHECK(s.d_state == 8);
  CHECK(s.d_conv == 4);
  CHECK(s.dt_rank == 48);
  CHECK(s.proj_bias);
  const auto& names = mapping->source_names;
  CHECK(names.at("embed.weight") == "backbone.embedding.weight");
  CHECK(names.at("head.weight") == "lm_head.weight");
  CHECK(names.at("norm_f.bias") == "backbone.norm_f.bias");
  CHECK(names.at("layers.1.norm.bias") == "backbone.layers.1.norm.bias");
  CHECK(names.at("layers.1.mixer.out_proj.bias") == "backbone.layers.1.mixer.out_proj.bias");

  // Without ssm_cfg every field takes MambaConfig's default; a multiple of 8 is not padded.
  auto defaults =
      MapStateSpacesMamba(WriteConfig(dir, R"({"d_model": 64, "n_layer": 1, "vocab_size": 1000})"));
  REQUIRE_MESSAGE(defaults.ok(), defaults.status().message());
  CHECK(defaults->model.vocab_size == 1000);
  CHECK(defaults->model.tie_embeddings);
  CHECK(Spec(*defaults, 0).d_state == 16);
  CHECK(Spec(*defaults, 0).d_inner == 128);
  CHECK(Spec(*defaults, 0).dt_rank == 4);

  const HfConfig hf = WriteConfig(dir, R"({"architectures": ["MambaForCausalLM"],
    "model_type": "mamba", "hidden_size": 64, "num_hidden_layers": 1, "vocab_size": 10})");
  CHECK(!IsStateSpacesMambaConfig(hf));
}

TEST_CASE("hf_mamba: state-spaces configs this importer cannot represent are refused") {
  TempDir dir;
  auto mamba2 = MapStateSpacesMamba(WriteConfig(dir, R"({"d_model": 64, "n_layer": 1,
    "vocab_size": 16, "ssm_cfg": {"layer": "Mamba2"}})"));
  CHECK(mamba2.status().code() == StatusCode::kUnsupported);
  CHECK(Contains(mamba2.status().message(), "\"ssm_cfg\": \"layer\": \"Mamba2\""));
  auto mlp = MapStateSpacesMamba(WriteConfig(dir, R"({"d_model": 64, "n_layer": 1,
    "vocab_size": 16, "d_intermediate": 256})"));
  CHECK(mlp.status().code() == StatusCode::kUnsupported);
  CHECK(Contains(mlp.status().message(), "d_intermediate"));
  auto attn = MapStateSpacesMamba(WriteConfig(dir, R"({"d_model": 64, "n_layer": 2,
    "vocab_size": 16, "attn_layer_idx": [1]})"));
  CHECK(attn.status().code() == StatusCode::kUnsupported);
  CHECK(Contains(attn.status().message(), "attn_layer_idx"));
  auto empty_attn = MapStateSpacesMamba(WriteConfig(dir, R"({"d_model": 64, "n_layer": 2,
    "vocab_size": 16, "attn_layer_idx": [], "attn_cfg": {}})"));
  CHECK(empty_attn.ok());
  auto bad_cfg = MapStateSpacesMamba(WriteConfig(dir, R"({"d_model": 64, "n_layer": 1,
    "vocab_size": 16, "ssm_cfg": {"d_state": "many"}})"));
  CHECK(Contains(bad_cfg.status().message(), "\"ssm_cfg\": \"d_state\": expected an integer"));
}

TEST_CASE("hf_mamba: a tokenizer.json beside config.json is imported, ids from config.json") {
  TempDir dir;
  std::ofstream(dir.File("tokenizer.json")) << R"({
    "version": "1.0",
    "added_tokens": [{"id": 3, "content": "<|endoftext|>", "special": true, "normalized": false}],
    "normalizer": null,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
    "decoder": {"type": "ByteLevel"},
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}
  })";
  auto mapping = MapHfMamba(WriteConfig(dir, R"({"hidden_size": 32, "num_hidden_layers": 1,
    "vocab_size": 8, "pad_token_id": 2})"));
  REQUIRE_MESSAGE(mapping.ok(), mapping.status().message());
  REQUIRE(mapping->model.tokenizer != nullptr);
  CHECK(mapping->model.tokenizer->kind == fb::TokenizerKind::BPE);
  CHECK(mapping->model.tokenizer->pad_id == 2);
  CHECK(mapping->model.tokenizer->eos_id == 3);  // The tokenizer's own guess, kept.

  std::ofstream(dir.File("tokenizer.json")) << R"({"model": {"type": "WordPiece", "vocab": {}}})";
  auto refused = MapHfMamba(WriteConfig(dir, R"({"hidden_size": 32, "num_hidden_layers": 1,
    "vocab_size": 8})"));
  CHECK(!refused.ok());
  CHECK(Contains(refused.status().message(), "tokenizer"));
}

TEST_CASE("hf_mamba: the table entries") {
  const std::vector<HfArchitecture> table = MambaHfArchitectures();
  REQUIRE(table.size() == 2);
  CHECK(table[0].architecture == "MambaForCausalLM");
  CHECK(table[0].model_type == "mamba");
  CHECK(table[1].architecture == "MambaLMHeadModel");
}

}  // namespace
}  // namespace recur
