#include "formats/native_spec.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "formats/convert.h"
#include "tests/test_util.h"

namespace recur {
namespace {

using testing::Contains;

namespace fs = std::filesystem;

// The spec make_demo_model writes (the format's reference example), with every optional key.
const char* kFullSpec = R"({
  "format": "recur-spec",
  "version": 1,
  "architecture": "mamba1",
  "_comment": "keys starting with an underscore are ignored",
  "d_model": 64,
  "input": {"kind": "tokens", "vocab_size": 256},
  "output": {"kind": "logits"},
  "tie_embeddings": true,
  "final_norm": {"kind": "rmsnorm", "eps": 1e-6},
  "layers": [
    {"kind": "mamba1", "d_inner": 128, "d_state": 16, "d_conv": 4, "dt_rank": 4},
    {"kind": "mamba1", "d_inner": 128, "d_state": 16, "d_conv": 4, "dt_rank": 4,
     "conv_bias": false, "proj_bias": true, "norm": "layernorm", "residual": true},
    {"kind": "mlp", "d_ff": 256, "activation": "gelu"}
  ],
  "tokenizer": {"kind": "bytes", "eos_id": 0},
  "metadata": {"description": "random-weight demo model"},
  "weights": "model.safetensors"
})";

// Parses `text` as if it were /specs/spec.json and returns the error message ("" when it parses).
std::string ErrorOf(const std::string& text) {
  auto spec = ParseNativeSpec(text, "/specs/spec.json");
  return spec.ok() ? std::string() : spec.status().message();
}

// kFullSpec with `from` replaced by `to` (which must occur).
std::string Edited(const std::string& from, const std::string& to) {
  std::string s = kFullSpec;
  const size_t at = s.find(from);
  REQUIRE_MESSAGE(at != std::string::npos, from);
  return s.replace(at, from.size(), to);
}

TEST_CASE("native spec: a full spec parses into the model") {
  auto spec = ParseNativeSpec(kFullSpec, "/specs/spec.json");
  REQUIRE_MESSAGE(spec.ok(), spec.status().message());
  const fb::ModelT& m = spec->model;
  CHECK(m.architecture == "mamba1");
  CHECK(m.d_model == 64);
  CHECK(m.input_kind == fb::InputKind::Tokens);
  CHECK(m.vocab_size == 256);
  CHECK(m.output_kind == fb::OutputKind::Logits);
  CHECK(m.output_size == 256);
  CHECK(m.tie_embeddings);
  CHECK(m.final_norm == fb::NormKind::RMSNorm);
  CHECK(m.final_norm_eps == doctest::Approx(1e-6));
  CHECK(m.format_version >= 1);
  REQUIRE(m.layers.size() == 3);
  const fb::Mamba1SpecT* l0 = m.layers[0]->block.AsMamba1Spec();
  REQUIRE(l0 != nullptr);
  CHECK(l0->d_inner == 128);
  CHECK(l0->d_state == 16);
  CHECK(l0->d_conv == 4);
  CHECK(l0->dt_rank == 4);
  CHECK(l0->conv_bias);
  CHECK(!l0->proj_bias);
  CHECK(m.layers[0]->norm == fb::NormKind::RMSNorm);
  const fb::Mamba1SpecT* l1 = m.layers[1]->block.AsMamba1Spec();
  REQUIRE(l1 != nullptr);
  CHECK(!l1->conv_bias);
  CHECK(l1->proj_bias);
  CHECK(m.layers[1]->norm == fb::NormKind::LayerNorm);
  const fb::MlpSpecT* l2 = m.layers[2]->block.AsMlpSpec();
  REQUIRE(l2 != nullptr);
  CHECK(l2->d_ff == 256);
  CHECK(l2->activation == fb::Activation::GELU);
  CHECK(!l2->glu);
  CHECK(!l2->bias);
  REQUIRE(m.tokenizer != nullptr);
  CHECK(m.tokenizer->kind == fb::TokenizerKind::Bytes);
  CHECK(m.tokenizer->eos_id == 0);
  CHECK(m.tokenizer->bos_id == -1);
  REQUIRE(m.metadata.size() == 1);
  CHECK(m.metadata[0]->key == "description");
  CHECK(fs::path(spec->weights) == fs::path("/specs/model.safetensors"));

  // The canonical tensors follow from it.
  auto expected = ExpectedTensorsOf(m);
  REQUIRE(expected.ok());
  CHECK(expected->front().name == "embed.weight");
  CHECK(expected->back().name == "norm_f.weight");  // Tied: no head.weight.
}

TEST_CASE("native spec: defaults, minimal spec, every block kind, repeat") {
  const char* spec_text = R"({
    "d_model": 32,
    "input": {"kind": "frames", "size": 80},
    "output": {"kind": "features", "size": 10},
    "final_norm": "none",
    "layers": [
      {"kind": "mamba2", "d_inner": 64, "d_state": 16, "d_conv": 4, "n_heads": 4, "head_dim": 16,
       "n_groups": 2, "chunk_size": 32, "norm_before_gate": true, "norm_eps": 1e-6},
      {"kind": "rwkv", "version": 7, "n_heads": 1, "head_size": 32, "d_ffn": 128},
      {"kind": "rwkv", "version": 4, "d_ffn": 128},
      {"kind": "hippo", "measure": "legt", "n": 64, "d_input": 1, "dt": 0.01, "theta": 1.0,
       "method": "zoh"},
      {"kind": "s4d", "d_state": 64, "init": "inv", "activation": "GELU-Tanh"},
      {"kind": "linear_attention", "n_heads": 2, "head_dim": 16, "feature_map": "elu1",
       "normalise": true, "decay": "gate", "rope": "half", "output_gate": true,
       "head_norm": true},
      {"kind": "softmax_attention", "n_heads": 4, "n_kv_heads": 2, "head_dim": 8,
       "mode": "window", "window": 128, "rope": "interleaved", "rope_base": 500000},
      {"kind": "glu", "d_ff": 96, "activation": "silu", "bias": true, "norm": "none",
       "residual": false, "repeat": 3}
    ],
    "weights": "/abs/w.safetensors"
  })";
  auto spec = ParseNativeSpec(spec_text, "rel/spec.json");
  REQUIRE_MESSAGE(spec.ok(), spec.status().message());
  const fb::ModelT& m = spec->model;
  CHECK(m.architecture == "spec");
  CHECK(m.input_kind == fb::InputKind::Frames);
  CHECK(m.input_size == 80);
  CHECK(m.output_kind == fb::OutputKind::Features);
  CHECK(m.output_size == 10);
  CHECK(m.final_norm == fb::NormKind::None);
  CHECK(spec->weights == "/abs/w.safetensors");
  REQUIRE(m.layers.size() == 10);

  const auto* mamba2 = m.layers[0]->block.AsMamba2Spec();
  REQUIRE(mamba2 != nullptr);
  CHECK(mamba2->n_groups == 2);
  CHECK(mamba2->chunk_size == 32);
  CHECK(mamba2->norm_before_gate);
  CHECK(mamba2->conv_bias);
  const auto* rwkv7 = m.layers[1]->block.AsRwkvSpec();
  REQUIRE(rwkv7 != nullptr);
  CHECK(rwkv7->version == 7);
  CHECK(rwkv7->group_norm_eps == doctest::Approx(1e-5));
  const auto* rwkv4 = m.layers[2]->block.AsRwkvSpec();
  REQUIRE(rwkv4 != nullptr);
  CHECK(rwkv4->n_heads == 0);
  const auto* hippo = m.layers[3]->block.AsHippoSpec();
  REQUIRE(hippo != nullptr);
  CHECK(hippo->measure == "legt");
  CHECK(hippo->method == "zoh");
  CHECK(hippo->dt == doctest::Approx(0.01));
  const auto* s4d = m.layers[4]->block.AsS4dSpec();
  REQUIRE(s4d != nullptr);
  CHECK(s4d->init == "inv");
  CHECK(s4d->discretisation == "zoh");
  CHECK(s4d->activation == fb::Activation::GELUTanh);
  CHECK(s4d->glu);
  const auto* la = m.layers[5]->block.AsLinearAttentionSpec();
  REQUIRE(la != nullptr);
  CHECK(la->feature_map == "elu1");
  CHECK(la->decay == "gate");
  CHECK(la->rope_base == doctest::Approx(10000));
  const auto* sa = m.layers[6]->block.AsSoftmaxAttentionSpec();
  REQUIRE(sa != nullptr);
  CHECK(sa->n_kv_heads == 2);
  CHECK(sa->mode == "window");
  CHECK(sa->window == 128);
  CHECK(sa->rope_base == doctest::Approx(500000));
  for (int i = 7; i < 10; ++i) {
    const auto* glu = m.layers[i]->block.AsMlpSpec();
    REQUIRE(glu != nullptr);
    CHECK(glu->glu);
    CHECK(glu->bias);
    CHECK(glu->activation == fb::Activation::SiLU);
    CHECK(m.layers[i]->norm == fb::NormKind::None);
    CHECK(!m.layers[i]->residual);
  }
  CHECK(fs::path(ParseNativeSpec(kFullSpec, "rel/spec.json")->weights) ==
        fs::path("rel/model.safetensors"));
}

TEST_CASE("native spec: each kind of mistake names its JSON path") {
  // Wrong values.
  CHECK(Contains(ErrorOf(Edited(R"("d_ff": 256)", R"("d_ff": 0)")),
                 "layers[2].d_ff: expected a positive integer, got 0"));
  CHECK(Contains(ErrorOf(Edited(R"("d_ff": 256)", R"("d_ff": "big")")),
                 "layers[2].d_ff: expected a positive integer"));
  CHECK(Contains(ErrorOf(Edited(R"("d_model": 64)", R"("d_model": 64.5)")),
                 "d_model: expected a positive integer, got 64.5"));
  CHECK(Contains(ErrorOf(Edited(R"("d_model": 64)", R"("d_model": 4294967296)")),
                 "d_model: expected a positive integer"));
  CHECK(Contains(ErrorOf(Edited(R"("tie_embeddings": true)", R"("tie_embeddings": 1)")),
                 "tie_embeddings: expected true or false, got 1"));
  CHECK(Contains(ErrorOf(Edited(R"("eps": 1e-6)", R"("eps": -1)")),
                 "final_norm.eps: expected a non-negative number"));
  // Missing values.
  CHECK(Contains(ErrorOf(Edited(R"("d_model": 64,)", "")), "d_model: missing"));
  CHECK(Contains(ErrorOf(Edited(R"(, "dt_rank": 4})", "}")),
                 "layers[0].dt_rank: missing; expected a positive integer"));
  CHECK(Contains(ErrorOf(Edited(R"("input": {"kind": "tokens", "vocab_size": 256},)", "")),
                 "input: missing"));
  // Unknown keys (typo protection), with a suggestion.
  std::string e = ErrorOf(Edited(R"("d_model": 64)", R"("d_modle": 64, "d_model": 64)"));
  CHECK(Contains(e, "d_modle: unknown key (did you mean 'd_model'?)"));
  e = ErrorOf(Edited(R"("d_state": 16, "d_conv": 4, "dt_rank": 4})",
                     R"("d_state": 16, "d_stat": 16, "d_conv": 4, "dt_rank": 4})"));
  CHECK(Contains(e, "layers[0].d_stat: unknown key (did you mean 'd_state'?)"));
  CHECK(Contains(ErrorOf(Edited(R"("kind": "logits")", R"("kind": "logits", "sise": 3)")),
                 "output.sise: unknown key"));
  // Unknown block kinds and architectures list what is supported.
  e = ErrorOf(Edited(R"("kind": "mlp")", R"("kind": "mamba3")"));
  CHECK(Contains(e, "layers[2].kind: unknown value 'mamba3'"));
  CHECK(Contains(e, "mamba1, mamba2"));
  CHECK(Contains(e, "softmax_attention"));
  e = ErrorOf(Edited(R"("architecture": "mamba1")", R"("architecture": "transformerxl")"));
  CHECK(Contains(e, "architecture: unknown value 'transformerxl'"));
  CHECK(Contains(e, "spec"));
  CHECK(Contains(ErrorOf(Edited(R"("activation": "gelu")", R"("activation": "gleu")")),
                 "(did you mean 'gelu'?)"));
  CHECK(Contains(ErrorOf(Edited(R"("norm": "layernorm")", R"("norm": "batchnorm")")),
                 "layers[1].norm: unknown norm 'batchnorm'"));
  // Inconsistent values.
  CHECK(Contains(ErrorOf(Edited(R"("output": {"kind": "logits"})",
                                R"("output": {"kind": "logits", "vocab_size": 300})")),
                 "output.vocab_size: 300 differs from input.vocab_size (256)"));
  CHECK(Contains(ErrorOf(Edited(R"("input": {"kind": "tokens", "vocab_size": 256})",
                                R"("input": {"kind": "frames", "size": 40})")),
                 "output.vocab_size: missing"));
  CHECK(Contains(ErrorOf(Edited(R"({"kind": "mlp", "d_ff": 256, "activation": "gelu"})",
                                R"({"kind": "mamba2", "d_inner": 128, "d_state": 16, "d_conv": 4,
                         "n_heads": 8, "head_dim": 8})")),
                 "layers[2].d_inner: 128 must equal n_heads * head_dim = 8 * 8"));
  CHECK(Contains(ErrorOf(Edited(R"({"kind": "mlp", "d_ff": 256, "activation": "gelu"})",
                                R"({"kind": "softmax_attention", "n_heads": 4, "head_dim": 8,
                                    "mode": "window"})")),
                 "layers[2].window: missing"));
  CHECK(Contains(ErrorOf(Edited(R"({"kind": "mlp", "d_ff": 256, "activation": "gelu"})",
                                R"({"kind": "rwkv", "version": 8, "d_ffn": 4})")),
                 "layers[2].version: expected 4, 5, 6 or 7"));
  CHECK(Contains(ErrorOf(Edited(R"({"kind": "mlp", "d_ff": 256, "activation": "gelu"})",
                                R"({"kind": "glu", "d_ff": 256, "glu": false})")),
                 "layers[2].glu: must be true"));
  CHECK(
      Contains(ErrorOf(Edited(R"("activation": "gelu"})", R"("activation": "gelu", "repeat": 0})")),
               "layers[2].repeat: expected a positive integer"));
  // Structure.
  CHECK(Contains(ErrorOf(Edited(R"("layers": [)", R"("layerz": 1, "layers": [)")), "layerz"));
  CHECK(Contains(ErrorOf(R"({"d_model": 4, "input": {"kind": "tokens", "vocab_size": 4},
                             "layers": []})"),
                 "layers: expected a non-empty array"));
  CHECK(Contains(ErrorOf(Edited(R"({"kind": "mlp", "d_ff": 256, "activation": "gelu"})", "7")),
                 "layers[2]: expected an object"));
  CHECK(Contains(
      ErrorOf(Edited(R"("description": "random-weight demo model")", R"("description": 3)")),
      "metadata.description: expected a string"));
  CHECK(
      Contains(ErrorOf(Edited(R"("description": "random-weight demo model")", R"("dtype": "f16")")),
               "metadata.dtype: reserved"));
  CHECK(Contains(ErrorOf(Edited(R"("kind": "bytes")", R"("kind": "bpe")")), "tokenizer.kind"));
  CHECK(Contains(ErrorOf(Edited(R"("weights": "model.safetensors")", R"("weights": 5)")),
                 "weights: expected a string"));
  CHECK(Contains(ErrorOf(Edited(R"("format": "recur-spec")", R"("format": "other")")),
                 "format: expected \"recur-spec\""));
  auto newer = ParseNativeSpec(Edited(R"("version": 1)", R"("version": 2)"), "s.json");
  CHECK(newer.status().code() == StatusCode::kUnsupported);
  CHECK(Contains(newer.status().message(), "version"));
  CHECK(Contains(ErrorOf(Edited(R"("tie_embeddings": true)", R"("tie_embeddings": true,
                                "tie_embeddings": false)")),
                 "\"tie_embeddings\" appears twice"));
  // Not JSON, or the wrong kind of JSON.
  CHECK(Contains(ErrorOf("{\"d_model\": 64,"), "not valid JSON"));
  CHECK(Contains(ErrorOf("[1, 2]"), "top level"));
  CHECK(Contains(ErrorOf(R"({"architectures": ["MambaForCausalLM"], "model_type": "mamba"})"),
                 "Hugging Face config.json"));
  CHECK(Contains(ErrorOf(R"({"weight_map": {}})"), "safetensors index"));
  // Messages start with the spec's path.
  CHECK(ErrorOf(Edited(R"("d_ff": 256)", R"("d_ff": 0)")).rfind("/specs/spec.json: ", 0) == 0);
}

TEST_CASE("native spec: loading from a file") {
  testing::TempDir temp;
  const fs::path dir = temp.path();
  const std::string path = (dir / "spec.json").string();
  {
    std::ofstream f(path);
    f << kFullSpec;
  }
  auto spec = LoadNativeSpec(path);
  REQUIRE_MESSAGE(spec.ok(), spec.status().message());
  CHECK(fs::path(spec->weights) == dir / "model.safetensors");
  auto missing = LoadNativeSpec((dir / "nope.json").string());
  CHECK(missing.status().code() == StatusCode::kNotFound);
  CHECK(Contains(missing.status().message(), "nope.json"));
  CHECK(NativeSpecBlockKinds().size() >= 8);
  CHECK(ReservedMetadataKeys().size() == 4);
}

}  // namespace
}  // namespace recur

namespace recur {
namespace {

TEST_CASE("native spec and config.json: absurdly deep nesting is refused, not a stack overflow") {
  // Dumping a value for an error message recurses; a 200k-deep array used to overflow the stack.
  const std::string deep = "{\"d_model\": " + std::string(200000, '[') + std::string(200000, ']') + "}";
  auto spec = ParseNativeSpec(deep, "/specs/deep.json");
  REQUIRE(!spec.ok());
  CHECK(spec.status().message().find("nested deeper") != std::string::npos);
  auto config = HfConfig::Parse(deep, "deep/config.json");
  REQUIRE(!config.ok());
  CHECK(config.status().message().find("nested deeper") != std::string::npos);
}

}  // namespace
}  // namespace recur
