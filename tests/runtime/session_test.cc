// Model loading and Session over an mlp model written in the test: logits against a scalar
// double-precision forward pass, step == prefill, and clear errors for bad calls.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <vector>

#include "formats/recur_writer.h"
#include "runtime/recur.hpp"
#include "tests/test_util.h"

namespace recur {
namespace {

constexpr int kVocab = 37, kDModel = 24, kFf = 40;

struct Weights {
  std::map<std::string, std::vector<float>> t;
  std::vector<float>& Add(const std::string& name, size_t n, std::mt19937& rng, float scale,
                          float offset = 0) {
    std::normal_distribution<float> dist(0, 1);
    auto& v = t[name];
    v.resize(n);
    for (float& x : v) x = offset + scale * dist(rng);
    return v;
  }
};

// Layer 0: RMSNorm + gated SiLU mlp with biases; layer 1: LayerNorm + GELU mlp; untied head.
std::string WriteModel(const testing::TempDir& dir, Weights& w) {
  std::mt19937 rng(3);
  fb::ModelT m;
  m.architecture = "spec";
  m.d_model = kDModel;
  m.vocab_size = kVocab;
  m.output_size = kVocab;
  m.tie_embeddings = false;
  m.final_norm = fb::NormKind::RMSNorm;
  for (int i = 0; i < 2; ++i) {
    auto layer = std::make_unique<fb::LayerT>();
    fb::MlpSpecT mlp;
    mlp.d_ff = kFf;
    mlp.glu = i == 0;
    mlp.bias = i == 0;
    mlp.activation = i == 0 ? fb::Activation::SiLU : fb::Activation::GELU;
    layer->block.Set(std::move(mlp));
    layer->norm = i == 0 ? fb::NormKind::RMSNorm : fb::NormKind::LayerNorm;
    m.layers.push_back(std::move(layer));
  }
  RecurWriter writer(std::move(m));
  auto add = [&](const std::string& name, std::vector<int64_t> shape, float scale, float offset = 0) {
    size_t n = 1;
    for (int64_t d : shape) n *= d;
    const auto& v = w.Add(name, n, rng, scale, offset);
    REQUIRE(writer.AddTensorFromMemory(name, DType::kF32, shape, v.data()).ok());
  };
  add("embed.weight", {kVocab, kDModel}, 1.0f);
  add("head.weight", {kVocab, kDModel}, 0.2f);
  add("norm_f.weight", {kDModel}, 0.1f, 1.0f);
  add("layers.0.norm.weight", {kDModel}, 0.1f, 1.0f);
  add("layers.0.mlp.up.weight", {kFf, kDModel}, 0.2f);
  add("layers.0.mlp.gate.weight", {kFf, kDModel}, 0.2f);
  add("layers.0.mlp.down.weight", {kDModel, kFf}, 0.2f);
  add("layers.0.mlp.up.bias", {kFf}, 0.1f);
  add("layers.0.mlp.gate.bias", {kFf}, 0.1f);
  add("layers.0.mlp.down.bias", {kDModel}, 0.1f);
  add("layers.1.norm.weight", {kDModel}, 0.1f, 1.0f);
  add("layers.1.norm.bias", {kDModel}, 0.1f);
  add("layers.1.mlp.up.weight", {kFf, kDModel}, 0.2f);
  add("layers.1.mlp.down.weight", {kDModel, kFf}, 0.2f);
  const std::string path = dir.File("mlp.recur");
  REQUIRE(writer.Write(path).ok());
  return path;
}

using Vec = std::vector<double>;

Vec MatVec(const std::vector<float>& w, const Vec& x, size_t rows, const std::vector<float>* bias) {
  Vec y(rows);
  for (size_t r = 0; r < rows; ++r) {
    double s = bias ? (*bias)[r] : 0.0;
    for (size_t c = 0; c < x.size(); ++c) s += double(w[r * x.size() + c]) * x[c];
    y[r] = s;
  }
  return y;
}

Vec RmsNorm(const Vec& x, const std::vector<float>& w) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double inv = 1.0 / std::sqrt(ss / x.size() + 1e-5);
  Vec y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * w[i];
  return y;
}

Vec LayerNorm(const Vec& x, const std::vector<float>& w, const std::vector<float>& b) {
  double mean = 0, var = 0;
  for (double v : x) mean += v;
  mean /= x.size();
  for (double v : x) var += (v - mean) * (v - mean);
  const double inv = 1.0 / std::sqrt(var / x.size() + 1e-5);
  Vec y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = (x[i] - mean) * inv * w[i] + b[i];
  return y;
}

// The whole model on one token, in double precision.
Vec Reference(Weights& w, int token) {
  auto& t = w.t;
  Vec h(t["embed.weight"].begin() + token * kDModel, t["embed.weight"].begin() + (token + 1) * kDModel);
  {
    Vec x = RmsNorm(h, t["layers.0.norm.weight"]);
    Vec up = MatVec(t["layers.0.mlp.up.weight"], x, kFf, &t["layers.0.mlp.up.bias"]);
    Vec gate = MatVec(t["layers.0.mlp.gate.weight"], x, kFf, &t["layers.0.mlp.gate.bias"]);
    for (int i = 0; i < kFf; ++i) up[i] *= gate[i] / (1 + std::exp(-gate[i]));
    Vec out = MatVec(t["layers.0.mlp.down.weight"], up, kDModel, &t["layers.0.mlp.down.bias"]);
    for (int i = 0; i < kDModel; ++i) h[i] += out[i];
  }
  {
    Vec x = LayerNorm(h, t["layers.1.norm.weight"], t["layers.1.norm.bias"]);
    Vec up = MatVec(t["layers.1.mlp.up.weight"], x, kFf, nullptr);
    for (double& v : up) v = 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
    Vec out = MatVec(t["layers.1.mlp.down.weight"], up, kDModel, nullptr);
    for (int i = 0; i < kDModel; ++i) h[i] += out[i];
  }
  return MatVec(t["head.weight"], RmsNorm(h, t["norm_f.weight"]), kVocab, nullptr);
}

TEST_CASE("mlp model: step logits match a double-precision forward pass; prefill == step") {
  testing::TempDir dir;
  Weights w;
  const std::string path = WriteModel(dir, w);
  for (int threads : {1, 2}) {
    CAPTURE(threads);
    auto model = Model::Load(path, ModelParams{.n_threads = threads});
    REQUIRE_MESSAGE(model.ok(), model.status().ToString());
    CHECK((*model)->runnable().ok());
    CHECK((*model)->info().layers.size() == 2);
    CHECK((*model)->info().layers[0].runnable);
    CHECK((*model)->info().state_bytes == 0);
    auto session = Session::Create(*model);
    REQUIRE(session.ok());
    const std::vector<int32_t> tokens = {5, 0, 36, 17, 17, 2, 30};
    std::vector<float> step_logits;
    for (int32_t tok : tokens) {
      const float* logits = nullptr;
      REQUIRE((*session)->StepToken(tok, &logits).ok());
      const Vec want = Reference(w, tok);
      double max_diff = 0;
      for (int v = 0; v < kVocab; ++v) max_diff = std::max(max_diff, std::abs(logits[v] - want[v]));
      // f32 kernels against a double reference over sums of ~40 terms of size ~1: 1e-4 is
      // the project's logit tolerance and leaves two orders of magnitude of headroom.
      CHECK(max_diff < 1e-4);
      step_logits.insert(step_logits.end(), logits, logits + kVocab);
    }
    CHECK((*session)->position() == 7);

    (*session)->Reset();
    std::vector<float> all(tokens.size() * kVocab);
    const float* last = nullptr;
    REQUIRE((*session)->PrefillTokens(tokens.data(), tokens.size(), &last, all.data()).ok());
    double max_diff = 0;
    for (size_t i = 0; i < all.size(); ++i) max_diff = std::max<double>(max_diff, std::abs(all[i] - step_logits[i]));
    CHECK(max_diff < 1e-5);
    CHECK(std::memcmp(last, all.data() + (tokens.size() - 1) * kVocab, kVocab * 4) == 0);
    CHECK((*session)->position() == 7);
  }
}

TEST_CASE("session calls with bad arguments give errors and leave the session usable") {
  testing::TempDir dir;
  Weights w;
  auto model = Model::Load(WriteModel(dir, w));
  REQUIRE(model.ok());
  auto session = Session::Create(*model);
  REQUIRE(session.ok());
  const float* logits = nullptr;
  CHECK((*session)->StepToken(kVocab, &logits).message().find("outside the vocabulary") != std::string::npos);
  CHECK(!(*session)->StepToken(-1, &logits).ok());
  CHECK(!(*session)->StepToken(1, nullptr).ok());
  const int32_t bad[] = {1, 2, 999};
  CHECK((*session)->PrefillTokens(bad, 3, &logits).message().find("position 2") != std::string::npos);
  float frame[4] = {};
  CHECK(!(*session)->StepFrame(frame, &logits).ok());
  CHECK((*session)->position() == 0);
  CHECK((*session)->StepToken(3, &logits).ok());
  CHECK(Session::Create(nullptr).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("Model::Load names a missing or mis-shaped tensor") {
  testing::TempDir dir;
  fb::ModelT m;
  m.architecture = "spec";
  m.d_model = 4;
  m.vocab_size = 3;
  m.tie_embeddings = true;
  m.final_norm = fb::NormKind::None;
  auto layer = std::make_unique<fb::LayerT>();
  fb::MlpSpecT mlp;
  mlp.d_ff = 8;
  layer->block.Set(std::move(mlp));
  layer->norm = fb::NormKind::None;
  m.layers.push_back(std::move(layer));
  std::vector<float> zeros(64, 0.0f);
  {
    RecurWriter writer(m);
    REQUIRE(writer.AddTensorFromMemory("embed.weight", DType::kF32, {3, 4}, zeros.data()).ok());
    REQUIRE(writer.AddTensorFromMemory("layers.0.mlp.up.weight", DType::kF32, {8, 4}, zeros.data()).ok());
    REQUIRE(writer.Write(dir.File("missing.recur")).ok());
    auto r = Model::Load(dir.File("missing.recur"));
    CHECK(r.status().message().find("layers.0.mlp.down.weight") != std::string::npos);
  }
  {
    RecurWriter writer(m);
    REQUIRE(writer.AddTensorFromMemory("embed.weight", DType::kF32, {3, 4}, zeros.data()).ok());
    REQUIRE(writer.AddTensorFromMemory("layers.0.mlp.up.weight", DType::kF32, {8, 4}, zeros.data()).ok());
    REQUIRE(writer.AddTensorFromMemory("layers.0.mlp.down.weight", DType::kF32, {8, 4}, zeros.data()).ok());
    REQUIRE(writer.Write(dir.File("shape.recur")).ok());
    auto r = Model::Load(dir.File("shape.recur"));
    CHECK(r.status().message().find("layers.0.mlp.down.weight") != std::string::npos);
    CHECK(r.status().message().find("[4, 8]") != std::string::npos);
  }
}

}  // namespace
}  // namespace recur

namespace recur {
namespace {

// A one-layer mlp model; `extra` adds tensors, `features` makes the output features of size 4.
std::string WriteTinyModel(const testing::TempDir& dir, const std::string& name, bool features,
                           bool stray_bias) {
  fb::ModelT m;
  m.architecture = "spec";
  m.d_model = 4;
  m.vocab_size = 3;
  m.tie_embeddings = !features;
  m.output_kind = features ? fb::OutputKind::Features : fb::OutputKind::Logits;
  m.output_size = features ? 4096 : 3;
  m.final_norm = fb::NormKind::None;
  auto layer = std::make_unique<fb::LayerT>();
  fb::MlpSpecT mlp;
  mlp.d_ff = 8;
  layer->block.Set(std::move(mlp));
  layer->norm = fb::NormKind::None;
  m.layers.push_back(std::move(layer));
  static const std::vector<float> zeros(4096 * 4, 0.0f);
  RecurWriter writer(std::move(m));
  REQUIRE(writer.AddTensorFromMemory("embed.weight", DType::kF32, {3, 4}, zeros.data()).ok());
  REQUIRE(writer.AddTensorFromMemory("layers.0.mlp.up.weight", DType::kF32, {8, 4}, zeros.data()).ok());
  REQUIRE(writer.AddTensorFromMemory("layers.0.mlp.down.weight", DType::kF32, {4, 8}, zeros.data()).ok());
  if (features) {
    REQUIRE(writer.AddTensorFromMemory("output_proj.weight", DType::kF32, {4096, 4}, zeros.data()).ok());
    REQUIRE(writer.AddTensorFromMemory("output_proj.bias", DType::kF32, {4096}, zeros.data()).ok());
  }
  if (stray_bias) {
    REQUIRE(writer.AddTensorFromMemory("layers.0.mlp.up.bias", DType::kF32, {1}, zeros.data()).ok());
  }
  const std::string path = dir.File(name);
  REQUIRE(writer.Write(path).ok());
  return path;
}

TEST_CASE("a token model with feature output refuses token calls instead of overrunning logits") {
  testing::TempDir dir;
  auto model = Model::Load(WriteTinyModel(dir, "features.recur", /*features=*/true, false));
  REQUIRE_MESSAGE(model.ok(), model.status().ToString());
  CHECK(!(*model)->info().logits_output);
  auto session = Session::Create(*model);
  REQUIRE(session.ok());
  const float* out = nullptr;
  CHECK((*session)->StepToken(1, &out).message().find("outputs features") != std::string::npos);
  const int32_t tokens[] = {0, 1};
  std::vector<float> all(2 * 3);
  CHECK(!(*session)->PrefillTokens(tokens, 2, &out, all.data()).ok());
}

TEST_CASE("a tensor in a layer's namespace that its spec does not declare is refused") {
  testing::TempDir dir;
  auto model = Model::Load(WriteTinyModel(dir, "stray.recur", false, /*stray_bias=*/true));
  REQUIRE(!model.ok());
  CHECK(model.status().message().find("layers.0.mlp.up.bias") != std::string::npos);
  CHECK(Model::Load(WriteTinyModel(dir, "clean.recur", false, false)).ok());
}

}  // namespace
}  // namespace recur
