// Tests formats/hf_mamba2.h: both Mamba-2 config layouts map to a mamba2 model with the right
// sizes and defaults, every canonical tensor gets its checkpoint name, a tokenizer.json comes
// along, and what the mamba2 block cannot represent is refused by name. (Running the converted
// fixture is tests/runtime/mamba2_test.cc.)
#include "formats/hf_mamba2.h"

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

const fb::Mamba2SpecT& Spec(const HfMapping& m, size_t layer) {
  REQUIRE(layer < m.model.layers.size());
  const fb::Mamba2SpecT* s = m.model.layers[layer]->block.AsMamba2Spec();
  REQUIRE(s != nullptr);
  return *s;
}

TEST_CASE("hf_mamba2: Mamba2ForCausalLM config, as the fixture writes it") {
  TempDir dir;
  const HfConfig config = WriteConfig(dir, R"({
    "architectures": ["Mamba2ForCausalLM"], "model_type": "mamba2",
    "hidden_size": 64, "num_hidden_layers": 2, "vocab_size": 1000, "state_size": 16,
    "expand": 2, "head_dim": 16, "num_heads": 8, "n_groups": 1, "conv_kernel": 4,
    "chunk_size": 32, "use_bias": false, "use_conv_bias": true, "layer_norm_epsilon": 1e-6,
    "rms_norm": true, "tie_word_embeddings": true, "norm_before_gate": true,
    "time_step_limit": [0.0, 1e300]})");
  auto mapping = MapMamba2Hf(config);
  REQUIRE_MESSAGE(mapping.ok(), mapping.status().message());
  const fb::ModelT& m = mapping->model;
  CHECK(m.architecture == "mamba2");
  CHECK(m.d_model == 64);
  CHECK(m.vocab_size == 1000);
  CHECK(m.output_size == 1000);
  CHECK(m.tie_embeddings);
  CHECK(m.final_norm == fb::NormKind::RMSNorm);
  CHECK(m.final_norm_eps == doctest::Approx(1e-6));
  REQUIRE(m.layers.size() == 2);
  CHECK(m.layers[1]->norm == fb::NormKind::RMSNorm);
  CHECK(m.layers[1]->norm_eps == doctest::Approx(1e-6));
  const fb::Mamba2SpecT& s = Spec(*mapping, 1);
  CHECK(s.d_inner == 128);
  CHECK(s.d_state == 16);
  CHECK(s.d_conv == 4);
  CHECK(s.n_heads == 8);
  CHECK(s.head_dim == 16);
  CHECK(s.n_groups == 1);
  CHECK(s.chunk_size == 32);
  CHECK(s.conv_bias);
  CHECK(!s.proj_bias);
  // transformers' Mamba2Mixer gates before the norm whatever config.json says.
  CHECK(!s.norm_before_gate);
  CHECK(s.norm_eps == doctest::Approx(1e-6));
  const auto& names = mapping->source_names;
  CHECK(names.at("embed.weight") == "backbone.embeddings.weight");
  CHECK(names.at("norm_f.weight") == "backbone.norm_f.weight");
  CHECK(names.at("head.weight") == "lm_head.weight");
  CHECK(names.at("layers.1.norm.weight") == "backbone.layers.1.norm.weight");
  CHECK(names.at("layers.1.mixer.A_log") == "backbone.layers.1.mixer.A_log");
  CHECK(names.at("layers.0.mixer.in_proj.weight") == "backbone.layers.0.mixer.in_proj.weight");
  // Every canonical tensor of the model has a checkpoint name.
  auto expected = ExpectedTensorsOf(m);
  REQUIRE_MESSAGE(expected.ok(), expected.status().message());
  for (const ExpectedTensor& e : *expected) CHECK_MESSAGE(names.count(e.name) == 1, e.name);
  CHECK(m.tokenizer == nullptr);
}

TEST_CASE("hf_mamba2: transformers' defaults fill what config.json leaves out") {
  TempDir dir;
  const HfConfig config = WriteConfig(dir, R"({
    "architectures": ["Mamba2ForCausalLM"], "hidden_size": 256, "num_hidden_layers": 1,
    "vocab_size": 50, "use_bias": true})");
  auto mapping = MapMamba2Hf(config);
  REQUIRE_MESSAGE(mapping.ok(), mapping.status().message());
  const fb::Mamba2SpecT& s = Spec(*mapping, 0);
  CHECK(s.d_inner == 512);  // expand 2.
  CHECK(s.d_state == 128);  // state_size.
  CHECK(s.head_dim == 64);
  CHECK(s.n_heads == 8);  // d_inner / head_dim when num_heads is absent.
  CHECK(s.n_groups == 8);
  CHECK(s.chunk_size == 256);
  CHECK(s.proj_bias);
  CHECK(!mapping->model.tie_embeddings);  // Mamba2Config's tie_word_embeddings=False.
}

TEST_CASE("hf_mamba2: Python's Infinity in time_step_limit (as transformers saves it) is read") {
  TempDir dir;
  // What transformers writes for Mamba2Config's default time_step_limit, and a string that must
  // survive the rewrite of the bare words.
  const std::string text = R"({"architectures": ["Mamba2ForCausalLM"], "hidden_size": 64,
    "num_hidden_layers": 1, "vocab_size": 10, "head_dim": 16, "n_groups": 1,
    "_name_or_path": "Infinity \"NaN\"", "time_step_limit": [0.0, Infinity]})";
  std::ofstream(dir.File("config.json")) << text;
  // HfConfig's own parser is strict JSON, so the flat keys are handed over without the array;
  // the mapping reads the nested and array keys from the file itself.
  std::string flat = text;
  flat.replace(flat.find("Infinity]"), 8, "1e300");
  auto config = HfConfig::Parse(flat, dir.File("config.json"));
  REQUIRE_MESSAGE(config.ok(), config.status().message());
  auto mapping = MapMamba2Hf(*config);
  CHECK_MESSAGE(mapping.ok(), mapping.status().message());
}

TEST_CASE("hf_mamba2: what the mamba2 block cannot run is refused by name") {
  TempDir dir;
  const std::string base = R"("architectures": ["Mamba2ForCausalLM"], "hidden_size": 64,
    "num_hidden_layers": 1, "vocab_size": 10, "head_dim": 16, "n_groups": 1)";
  CHECK(Contains(Error(MapMamba2Hf(WriteConfig(dir, "{" + base + R"(, "num_heads": 5})"))),
                 "do not make d_inner"));
  CHECK(Contains(Error(MapMamba2Hf(WriteConfig(dir, "{" + base + R"(, "n_groups": 3})"))),
                 "n_groups 3 does not divide"));
  CHECK(Contains(
      Error(MapMamba2Hf(WriteConfig(dir, "{" + base + R"(, "time_step_limit": [0.0, 5.0]})"))),
      "time_step_limit"));
  CHECK(Contains(Error(MapMamba2Hf(WriteConfig(dir, "{" + base + R"(, "hidden_act": "gelu"})"))),
                 "hidden_act"));
  CHECK(Contains(Error(MapMamba2Hf(WriteConfig(dir, R"({"hidden_size": 64})"))),
                 "num_hidden_layers"));
}

TEST_CASE("hf_mamba2: state-spaces MambaLMHeadModel config with ssm_cfg.layer Mamba2") {
  TempDir dir;
  const HfConfig config = WriteConfig(dir, R"({
    "d_model": 96, "d_intermediate": 0, "n_layer": 3, "vocab_size": 50277,
    "ssm_cfg": {"layer": "Mamba2", "d_state": 32, "headdim": 48, "ngroups": 2,
                "chunk_size": 64, "norm_before_gate": true},
    "attn_layer_idx": [], "attn_cfg": {}, "rms_norm": false, "residual_in_fp32": true,
    "fused_add_norm": true, "pad_vocab_size_multiple": 16, "tie_embeddings": false})");
  CHECK(IsMamba2StateSpaces(config));
  auto mapping = MapMamba2StateSpaces(config);
  REQUIRE_MESSAGE(mapping.ok(), mapping.status().message());
  const fb::ModelT& m = mapping->model;
  CHECK(m.vocab_size == 50288);  // 50277 padded to a multiple of 16.
  CHECK(!m.tie_embeddings);
  CHECK(m.final_norm == fb::NormKind::LayerNorm);
  CHECK(m.layers[0]->norm == fb::NormKind::LayerNorm);
  const fb::Mamba2SpecT& s = Spec(*mapping, 2);
  CHECK(s.d_inner == 192);
  CHECK(s.d_state == 32);
  CHECK(s.d_conv == 4);
  CHECK(s.head_dim == 48);
  CHECK(s.n_heads == 4);
  CHECK(s.n_groups == 2);
  CHECK(s.chunk_size == 64);
  CHECK(s.norm_before_gate);  // mamba_ssm's Mamba2 does follow its norm_before_gate.
  CHECK(s.norm_eps == doctest::Approx(1e-5));
  const auto& names = mapping->source_names;
  CHECK(names.at("embed.weight") == "backbone.embedding.weight");
  CHECK(names.at("layers.2.norm.bias") == "backbone.layers.2.norm.bias");
  auto expected = ExpectedTensorsOf(m);
  REQUIRE_MESSAGE(expected.ok(), expected.status().message());
  for (const ExpectedTensor& e : *expected) CHECK_MESSAGE(names.count(e.name) == 1, e.name);
}

TEST_CASE("hf_mamba2: state-spaces configs the mamba2 block cannot run are refused") {
  TempDir dir;
  const auto with = [&](const std::string& top, const std::string& ssm) {
    return MapMamba2StateSpaces(
        WriteConfig(dir, R"({"d_model": 64, "n_layer": 1, "vocab_size": 10, )" + top +
                             R"("ssm_cfg": {"layer": "Mamba2", "headdim": 16)" + ssm + "}}"));
  };
  CHECK(Contains(Error(with(R"("d_intermediate": 128, )", "")), "d_intermediate"));
  CHECK(Contains(Error(with(R"("attn_layer_idx": [0], )", "")), "attn_layer_idx"));
  CHECK(Contains(Error(with("", R"(, "D_has_hdim": true)")), "D_has_hdim"));
  CHECK(Contains(Error(with("", R"(, "rmsnorm": false)")), "rmsnorm"));
  CHECK(Contains(Error(with("", R"(, "d_ssm": 64)")), "d_ssm"));
  CHECK(Contains(Error(with("", R"(, "dt_limit": [0.0, 0.1])")), "dt_limit"));
  CHECK(Contains(Error(with("", R"(, "headdim": 48)")), "headdim 48 does not divide"));
  const HfConfig mamba1 = WriteConfig(
      dir, R"({"d_model": 64, "n_layer": 1, "vocab_size": 10, "ssm_cfg": {"d_state": 16}})");
  CHECK(!IsMamba2StateSpaces(mamba1));
  CHECK(Contains(Error(MapMamba2StateSpaces(mamba1)), "not \"Mamba2\""));
}

TEST_CASE("hf_mamba2: a tokenizer.json beside config.json is imported, ids from config.json") {
  TempDir dir;
  std::ofstream(dir.File("tokenizer.json")) << R"({
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "<|endoftext|>": 3},
              "merges": ["a b"]},
    "added_tokens": [{"id": 3, "content": "<|endoftext|>", "special": true,
                      "lstrip": false, "rstrip": false, "single_word": false,
                      "normalized": false}],
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
    "decoder": {"type": "ByteLevel"}})";
  const HfConfig config = WriteConfig(dir, R"({
    "architectures": ["Mamba2ForCausalLM"], "hidden_size": 64, "num_hidden_layers": 1,
    "vocab_size": 8, "head_dim": 16, "n_groups": 1, "eos_token_id": 3, "bos_token_id": 3,
    "pad_token_id": 2})");
  auto mapping = MapMamba2Hf(config);
  REQUIRE_MESSAGE(mapping.ok(), mapping.status().message());
  REQUIRE(mapping->model.tokenizer != nullptr);
  CHECK(mapping->model.tokenizer->kind == fb::TokenizerKind::BPE);
  CHECK(mapping->model.tokenizer->eos_id == 3);
  CHECK(mapping->model.tokenizer->pad_id == 2);
}

}  // namespace
}  // namespace recur
