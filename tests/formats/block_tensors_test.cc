#include "formats/block_tensors.h"

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "flatbuffers/flatbuffers.h"

namespace recur {
namespace {

using Shape = std::vector<int64_t>;

// Packs `model` into a flatbuffer and lists its tensors through the table API (as the loader
// does with a mapped file).
Result<std::vector<ExpectedTensor>> ListOf(const fb::ModelT& model) {
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(fb::Model::Pack(fbb, &model), fb::ModelIdentifier());
  flatbuffers::Verifier verifier(fbb.GetBufferPointer(), fbb.GetSize());
  REQUIRE(fb::VerifyModelBuffer(verifier));
  return ExpectedTensors(*fb::GetModel(fbb.GetBufferPointer()));
}

std::map<std::string, ExpectedTensor> ByName(const std::vector<ExpectedTensor>& list) {
  std::map<std::string, ExpectedTensor> m;
  for (const ExpectedTensor& t : list) {
    CHECK_MESSAGE(m.count(t.name) == 0, "duplicate " << t.name);
    m[t.name] = t;
  }
  return m;
}

std::vector<std::string> Names(const std::vector<ExpectedTensor>& list) {
  std::vector<std::string> names;
  for (const ExpectedTensor& t : list) names.push_back(t.name);
  return names;
}

fb::ModelT TokenModel(int d_model = 64, int vocab = 1000) {
  fb::ModelT m;
  m.architecture = "spec";
  m.d_model = d_model;
  m.vocab_size = vocab;
  m.output_size = vocab;
  return m;
}

template <typename Spec>
void AddLayer(fb::ModelT& m, Spec spec, fb::NormKind norm = fb::NormKind::RMSNorm) {
  auto layer = std::make_unique<fb::LayerT>();
  layer->block.Set(std::move(spec));
  layer->norm = norm;
  m.layers.push_back(std::move(layer));
}

fb::Mamba1SpecT TinyMamba1() {
  fb::Mamba1SpecT s;
  s.d_inner = 128;
  s.d_state = 16;
  s.d_conv = 4;
  s.dt_rank = 4;
  return s;
}

fb::Mamba2SpecT TinyMamba2() {
  fb::Mamba2SpecT s;
  s.d_inner = 128;
  s.d_state = 16;
  s.d_conv = 4;
  s.n_heads = 8;
  s.head_dim = 16;
  s.n_groups = 1;
  s.chunk_size = 32;
  return s;
}

TEST_CASE("block tensors: mamba1-tiny's layout (tied embeddings)") {
  fb::ModelT m = TokenModel();
  m.tie_embeddings = true;
  AddLayer(m, TinyMamba1());
  AddLayer(m, TinyMamba1());
  auto list = ListOf(m);
  REQUIRE(list.ok());
  // Globals first, then layers in order, then the final norm; tied: no head.weight.
  const std::vector<std::string> expected_names = {
      "embed.weight",
      "layers.0.norm.weight",
      "layers.0.mixer.in_proj.weight",
      "layers.0.mixer.conv1d.weight",
      "layers.0.mixer.conv1d.bias",
      "layers.0.mixer.x_proj.weight",
      "layers.0.mixer.dt_proj.weight",
      "layers.0.mixer.dt_proj.bias",
      "layers.0.mixer.A_log",
      "layers.0.mixer.D",
      "layers.0.mixer.out_proj.weight",
      "layers.1.norm.weight",
      "layers.1.mixer.in_proj.weight",
      "layers.1.mixer.conv1d.weight",
      "layers.1.mixer.conv1d.bias",
      "layers.1.mixer.x_proj.weight",
      "layers.1.mixer.dt_proj.weight",
      "layers.1.mixer.dt_proj.bias",
      "layers.1.mixer.A_log",
      "layers.1.mixer.D",
      "layers.1.mixer.out_proj.weight",
      "norm_f.weight",
  };
  CHECK(Names(*list) == expected_names);
  auto by = ByName(*list);
  CHECK(by["embed.weight"].shape == Shape{1000, 64});
  CHECK(by["embed.weight"].matrix);
  CHECK(by["layers.0.mixer.in_proj.weight"].shape == Shape{256, 64});
  CHECK(by["layers.0.mixer.in_proj.weight"].matrix);
  CHECK(by["layers.0.mixer.conv1d.weight"].shape == Shape{128, 4});
  CHECK(!by["layers.0.mixer.conv1d.weight"].matrix);
  CHECK(by["layers.0.mixer.x_proj.weight"].shape == Shape{36, 128});
  CHECK(by["layers.0.mixer.dt_proj.weight"].shape == Shape{128, 4});
  CHECK(by["layers.0.mixer.A_log"].shape == Shape{128, 16});
  CHECK(!by["layers.0.mixer.A_log"].matrix);
  CHECK(by["layers.0.mixer.D"].shape == Shape{128});
  CHECK(by["layers.1.mixer.out_proj.weight"].shape == Shape{64, 128});
  CHECK(by["norm_f.weight"].shape == Shape{64});
  for (const ExpectedTensor& t : *list) CHECK(!t.optional);

  // Biases follow the spec's flags.
  fb::ModelT m2 = TokenModel();
  fb::Mamba1SpecT s = TinyMamba1();
  s.conv_bias = false;
  s.proj_bias = true;
  AddLayer(m2, s);
  auto list2 = ListOf(m2);
  REQUIRE(list2.ok());
  auto by2 = ByName(*list2);
  CHECK(by2.count("layers.0.mixer.conv1d.bias") == 0);
  CHECK(by2["layers.0.mixer.in_proj.bias"].shape == Shape{256});
  CHECK(by2["layers.0.mixer.out_proj.bias"].shape == Shape{64});
  CHECK(by2["head.weight"].shape == Shape{1000, 64});  // Untied.
  CHECK(by2["head.weight"].matrix);
}

TEST_CASE("block tensors: mamba2-tiny's layout") {
  fb::ModelT m = TokenModel();
  m.tie_embeddings = true;
  AddLayer(m, TinyMamba2());
  auto list = ListOf(m);
  REQUIRE(list.ok());
  auto by = ByName(*list);
  CHECK(list->size() == 1 + 1 + 8 + 1);
  // [z, x, B, C, dt] = 2 * 128 + 2 * 1 * 16 + 8 = 296 rows; the conv runs over [x, B, C] = 160.
  CHECK(by["layers.0.mixer.in_proj.weight"].shape == Shape{296, 64});
  CHECK(by["layers.0.mixer.conv1d.weight"].shape == Shape{160, 4});
  CHECK(by["layers.0.mixer.conv1d.bias"].shape == Shape{160});
  CHECK(by["layers.0.mixer.dt_bias"].shape == Shape{8});
  CHECK(by["layers.0.mixer.A_log"].shape == Shape{8});
  CHECK(by["layers.0.mixer.D"].shape == Shape{8});
  CHECK(by["layers.0.mixer.norm.weight"].shape == Shape{128});
  CHECK(by["layers.0.mixer.out_proj.weight"].shape == Shape{64, 128});
  CHECK(by["layers.0.mixer.out_proj.weight"].matrix);

  fb::Mamba2SpecT groups = TinyMamba2();
  groups.n_groups = 2;
  fb::ModelT m2 = TokenModel();
  AddLayer(m2, groups);
  auto by2 = ByName(ListOf(m2).value());
  CHECK(by2["layers.0.mixer.in_proj.weight"].shape == Shape{2 * 128 + 2 * 2 * 16 + 8, 64});
  CHECK(by2["layers.0.mixer.conv1d.weight"].shape == Shape{128 + 2 * 2 * 16, 4});
}

TEST_CASE("block tensors: mlp, glu and biases; norms") {
  fb::ModelT m = TokenModel(8, 16);
  fb::MlpSpecT plain;
  plain.d_ff = 32;
  AddLayer(m, plain, fb::NormKind::LayerNorm);
  fb::MlpSpecT gated;
  gated.d_ff = 24;
  gated.glu = true;
  gated.bias = true;
  AddLayer(m, gated, fb::NormKind::None);
  m.final_norm = fb::NormKind::LayerNorm;
  auto list = ListOf(m);
  REQUIRE(list.ok());
  const std::vector<std::string> expected_names = {
      "embed.weight",
      "layers.0.norm.weight",
      "layers.0.norm.bias",
      "layers.0.mlp.up.weight",
      "layers.0.mlp.down.weight",
      "layers.1.mlp.up.weight",
      "layers.1.mlp.up.bias",
      "layers.1.mlp.gate.weight",
      "layers.1.mlp.gate.bias",
      "layers.1.mlp.down.weight",
      "layers.1.mlp.down.bias",
      "norm_f.weight",
      "norm_f.bias",
      "head.weight",
  };
  CHECK(Names(*list) == expected_names);
  auto by = ByName(*list);
  CHECK(by["layers.0.mlp.up.weight"].shape == Shape{32, 8});
  CHECK(by["layers.0.mlp.down.weight"].shape == Shape{8, 32});
  CHECK(by["layers.1.mlp.gate.weight"].shape == Shape{24, 8});
  CHECK(by["layers.1.mlp.gate.weight"].matrix);
  CHECK(by["layers.1.mlp.up.bias"].shape == Shape{24});
  CHECK(!by["layers.1.mlp.up.bias"].matrix);
  CHECK(by["layers.1.mlp.down.bias"].shape == Shape{8});
  CHECK(by["norm_f.bias"].shape == Shape{8});
}

TEST_CASE("block tensors: frames in, features out, no final norm") {
  fb::ModelT m;
  m.architecture = "spec";
  m.d_model = 16;
  m.input_kind = fb::InputKind::Frames;
  m.input_size = 40;
  m.output_kind = fb::OutputKind::Features;
  m.output_size = 10;
  m.final_norm = fb::NormKind::None;
  fb::MlpSpecT mlp;
  mlp.d_ff = 32;
  AddLayer(m, mlp);
  auto list = ListOf(m);
  REQUIRE(list.ok());
  auto by = ByName(*list);
  CHECK(by["input_proj.weight"].shape == Shape{16, 40});
  CHECK(by["input_proj.weight"].matrix);
  CHECK(by["input_proj.bias"].shape == Shape{16});
  CHECK(by["output_proj.weight"].shape == Shape{10, 16});
  CHECK(by["output_proj.bias"].shape == Shape{10});
  CHECK(by.count("embed.weight") == 0);
  CHECK(by.count("norm_f.weight") == 0);
  CHECK(by.count("head.weight") == 0);
  CHECK(list->front().name == "input_proj.weight");
}

TEST_CASE("block tensors: inconsistent specs and unsupported kinds give named errors") {
  auto error_of = [](const fb::ModelT& m) {
    auto list = ListOf(m);
    return list.ok() ? std::string() : list.status().message();
  };
  {
    fb::ModelT m = TokenModel();
    m.d_model = 0;
    CHECK(error_of(m).find("d_model must be positive") != std::string::npos);
  }
  {
    fb::ModelT m = TokenModel();
    m.vocab_size = 0;
    CHECK(error_of(m).find("vocab_size") != std::string::npos);
  }
  {
    fb::ModelT m = TokenModel();
    fb::MlpSpecT mlp;
    mlp.d_ff = 8;
    AddLayer(m, mlp);
    fb::Mamba2SpecT bad = TinyMamba2();
    bad.head_dim = 8;
    AddLayer(m, bad);
    const std::string e = error_of(m);
    CHECK(e.find("layer 1 (mamba2): d_inner (128) must equal n_heads * head_dim (8 * 8)") !=
          std::string::npos);
  }
  {
    fb::ModelT m = TokenModel();
    fb::Mamba2SpecT bad = TinyMamba2();
    bad.n_groups = 3;
    AddLayer(m, bad);
    CHECK(error_of(m).find("layer 0 (mamba2): n_heads (8) must be a multiple of n_groups (3)") !=
          std::string::npos);
  }
  {
    fb::ModelT m = TokenModel();
    fb::Mamba1SpecT bad = TinyMamba1();
    bad.dt_rank = 0;
    AddLayer(m, bad);
    CHECK(error_of(m).find("layer 0 (mamba1): dt_rank must be positive, not 0") !=
          std::string::npos);
  }
  {
    fb::ModelT m = TokenModel();
    fb::MlpSpecT mlp;
    mlp.d_ff = -3;
    AddLayer(m, mlp);
    CHECK(error_of(m).find("layer 0 (mlp): d_ff must be positive, not -3") != std::string::npos);
  }
  {
    fb::ModelT m = TokenModel();
    AddLayer(m, TinyMamba1());
    fb::RwkvSpecT rwkv;
    rwkv.version = 7;
    AddLayer(m, rwkv);
    // An rwkv layer normalises inside the block (ln1, ln2), so the layer norm must be none.
    auto list = ListOf(m);
    CHECK(list.status().code() == StatusCode::kInvalidArgument);
    CHECK(list.status().message() ==
          "layer 1 (rwkv): an rwkv layer applies its own ln1 and ln2; the layer norm must be none");
  }
  for (fb::BlockSpec kind :
       {fb::BlockSpec::LinearAttentionSpec, fb::BlockSpec::SoftmaxAttentionSpec}) {
    fb::ModelT m = TokenModel();
    switch (kind) {
      case fb::BlockSpec::HippoSpec:
        AddLayer(m, fb::HippoSpecT{});
        break;
      case fb::BlockSpec::S4dSpec:
        AddLayer(m, fb::S4dSpecT{});
        break;
      case fb::BlockSpec::LinearAttentionSpec:
        AddLayer(m, fb::LinearAttentionSpecT{});
        break;
      default:
        AddLayer(m, fb::SoftmaxAttentionSpecT{});
        break;
    }
    // The attention kinds are supported now (docs/attention.md): an empty spec is inconsistent.
    auto list = ListOf(m);
    CHECK(list.status().code() == StatusCode::kInvalidArgument);
    CHECK(list.status().message() == std::string("layer 0 (") + BlockKindName(kind) +
                                         "): n_heads must be positive, not 0");
  }
  {
    fb::ModelT m;
    m.architecture = "spec";
    m.d_model = 8;
    m.input_kind = fb::InputKind::Frames;
    m.input_size = 4;
    m.vocab_size = 10;
    m.tie_embeddings = true;
    CHECK(error_of(m).find("tie_embeddings needs tokens input") != std::string::npos);
  }
  {
    fb::ModelT m = TokenModel();
    m.output_size = 7;
    CHECK(error_of(m).find("must equal vocab_size") != std::string::npos);
  }
  {
    fb::ModelT m = TokenModel();
    m.output_kind = fb::OutputKind::Features;
    m.output_size = 0;
    CHECK(error_of(m).find("features output needs a positive output_size") != std::string::npos);
  }
}

TEST_CASE("block tensors: block kind names") {
  CHECK(std::string(BlockKindName(fb::BlockSpec::Mamba1Spec)) == "mamba1");
  CHECK(std::string(BlockKindName(fb::BlockSpec::Mamba2Spec)) == "mamba2");
  CHECK(std::string(BlockKindName(fb::BlockSpec::RwkvSpec)) == "rwkv");
  CHECK(std::string(BlockKindName(fb::BlockSpec::HippoSpec)) == "hippo");
  CHECK(std::string(BlockKindName(fb::BlockSpec::S4dSpec)) == "s4d");
  CHECK(std::string(BlockKindName(fb::BlockSpec::LinearAttentionSpec)) == "linear_attention");
  CHECK(std::string(BlockKindName(fb::BlockSpec::SoftmaxAttentionSpec)) == "softmax_attention");
  CHECK(std::string(BlockKindName(fb::BlockSpec::MlpSpec)) == "mlp");
  CHECK(std::string(BlockKindName(fb::BlockSpec::NONE)) == "none");
}

}  // namespace
}  // namespace recur
