// The pool block: a streaming sequence classifier's head. Output at step t == the projection of
// the mean of the inputs so far (checked in double), step == prefill state, and a native spec
// with a pool layer converts and runs.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <span>
#include <vector>

#include "formats/recur_file.h"
#include "formats/convert.h"
#include "formats/recur_writer.h"
#include "formats/safetensors.h"
#include "runtime/blocks/block.h"
#include "runtime/recur.hpp"
#include "runtime/threads.h"
#include "tests/runtime/fixture_util.h"
#include "tests/test_util.h"

namespace recur {
namespace {

constexpr int kIn = 3, kD = 8, kClasses = 4;

struct PoolWeights {
  std::vector<float> in_w, in_b, out_w, out_b;
};

// frames [kIn] -> input_proj -> pool (mean, no norm, no residual) -> output_proj [kClasses].
std::string WritePoolModel(const testing::TempDir& dir, PoolWeights* w) {
  std::mt19937 rng(5);
  std::normal_distribution<float> g(0.0f, 1.0f);
  for (int i = 0; i < kD * kIn; ++i) w->in_w.push_back(g(rng));
  for (int i = 0; i < kD; ++i) w->in_b.push_back(g(rng));
  for (int i = 0; i < kClasses * kD; ++i) w->out_w.push_back(g(rng));
  for (int i = 0; i < kClasses; ++i) w->out_b.push_back(g(rng));
  fb::ModelT m;
  m.architecture = "spec";
  m.d_model = kD;
  m.input_kind = fb::InputKind::Frames;
  m.input_size = kIn;
  m.output_kind = fb::OutputKind::Features;
  m.output_size = kClasses;
  m.final_norm = fb::NormKind::None;
  auto layer = std::make_unique<fb::LayerT>();
  fb::PoolSpecT pool;
  pool.mode = "mean";
  layer->block.Set(std::move(pool));
  layer->norm = fb::NormKind::None;
  layer->residual = false;
  m.layers.push_back(std::move(layer));
  RecurWriter writer(std::move(m));
  REQUIRE(writer.AddTensorFromMemory("input_proj.weight", DType::kF32, {kD, kIn}, w->in_w.data()).ok());
  REQUIRE(writer.AddTensorFromMemory("input_proj.bias", DType::kF32, {kD}, w->in_b.data()).ok());
  REQUIRE(writer.AddTensorFromMemory("output_proj.weight", DType::kF32, {kClasses, kD}, w->out_w.data()).ok());
  REQUIRE(writer.AddTensorFromMemory("output_proj.bias", DType::kF32, {kClasses}, w->out_b.data()).ok());
  const std::string path = dir.File("pool.recur");
  REQUIRE(writer.Write(path).ok());
  return path;
}

TEST_CASE("pool: every step outputs the projection of the running mean of the inputs") {
  testing::TempDir dir;
  PoolWeights w;
  auto model = testing::LoadModel(WritePoolModel(dir, &w), 1);
  auto session = testing::NewSession(model);
  std::mt19937 rng(9);
  std::normal_distribution<double> g(0.0, 1.0);
  std::vector<double> sum(kIn, 0.0);
  double worst = 0.0;
  const int kSteps = 2000;
  for (int t = 1; t <= kSteps; ++t) {
    float frame[kIn];
    for (int i = 0; i < kIn; ++i) {
      frame[i] = static_cast<float>(g(rng) + (i == 0 ? 3.0 : 0.0));
      sum[i] += frame[i];
    }
    const float* out = nullptr;
    REQUIRE(session->StepFrame(frame, &out).ok());
    for (int c = 0; c < kClasses; ++c) {
      double ref = w.out_b[c];
      for (int d = 0; d < kD; ++d) {
        double h = w.in_b[d];
        for (int i = 0; i < kIn; ++i) h += static_cast<double>(w.in_w[d * kIn + i]) * sum[i] / t;
        ref += static_cast<double>(w.out_w[c * kD + d]) * h;
      }
      worst = std::max(worst, std::fabs(ref - out[c]));
    }
  }
  MESSAGE("pool: max |output - double reference| over " << kSteps << " steps: " << worst);
  CHECK(worst < 1e-4);
  CHECK(model->info().layers[0].state_bytes == (kD + 2) * sizeof(float));
}

TEST_CASE("pool: step and prefill leave identical state and outputs") {
  testing::TempDir dir;
  PoolWeights w;
  auto file = RecurFile::Open(WritePoolModel(dir, &w));
  REQUIRE(file.ok());
  const fb::Model& m = (*file)->model();
  LayerContext ctx{**file, m, *m.layers()->Get(0), 0, "layers.0."};
  auto made = MakeBlock(ctx);
  REQUIRE_MESSAGE(made.ok(), made.status().message());
  const Block& block = **made;
  const size_t state_floats = block.Plan(1).state_bytes / sizeof(float);
  const Threads threads(1);
  const size_t T = 300;
  std::vector<float> x(T * kD);
  std::mt19937 rng(2);
  std::normal_distribution<float> g(0.0f, 1.0f);
  for (float& v : x) v = g(rng);
  for (size_t piece : {size_t{1}, size_t{7}, size_t{32}, T}) {
    CAPTURE(piece);
    std::vector<float> s1(state_floats, 0.0f), s2(state_floats, 0.0f), o1(T * kD), o2(T * kD);
    for (size_t t = 0; t < T; ++t) {
      block.Step(&x[t * kD], &o1[t * kD], s1.data(), nullptr, threads);
    }
    for (size_t t0 = 0; t0 < T; t0 += piece) {
      const size_t n = std::min(piece, T - t0);
      block.Prefill(&x[t0 * kD], n, &o2[t0 * kD], s2.data(), nullptr, threads);
    }
    CHECK(s1 == s2);
    CHECK(o1 == o2);
  }
}

TEST_CASE("pool: a native spec with a pool layer converts and runs, and a bad mode is named") {
  testing::TempDir dir;
  PoolWeights w;
  WritePoolModel(dir, &w);
  auto tensor = [](const char* name, std::vector<int64_t> shape, const std::vector<float>& v) {
    SafetensorsWriteTensor t;
    t.name = name;
    t.shape = std::move(shape);
    t.data = std::as_bytes(std::span<const float>(v));
    return t;
  };
  REQUIRE(WriteSafetensors(dir.File("model.safetensors"),
                           {tensor("input_proj.weight", {kD, kIn}, w.in_w),
                            tensor("input_proj.bias", {kD}, w.in_b),
                            tensor("output_proj.weight", {kClasses, kD}, w.out_w),
                            tensor("output_proj.bias", {kClasses}, w.out_b)})
              .ok());
  const std::string head = R"({"d_model": 8, "input": {"kind": "frames", "size": 3},
    "output": {"kind": "features", "size": 4}, "final_norm": "none", "layers": [)";
  testing::WriteText(dir.File("spec.json"),
                     head + R"({"kind": "pool", "norm": "none", "residual": false}]})");
  ConvertOptions options;
  options.source = dir.File("spec.json");
  options.output = dir.File("spec.recur");
  auto report = Convert(options);
  REQUIRE_MESSAGE(report.ok(), report.status().message());
  auto a = testing::NewSession(testing::LoadModel(dir.File("spec.recur"), 1));
  auto b = testing::NewSession(testing::LoadModel(dir.File("pool.recur"), 1));
  const float frame[kIn] = {0.5f, -1.0f, 2.0f};
  const float *oa = nullptr, *ob = nullptr;
  REQUIRE(a->StepFrame(frame, &oa).ok());
  REQUIRE(b->StepFrame(frame, &ob).ok());
  for (int c = 0; c < kClasses; ++c) CHECK(oa[c] == ob[c]);

  testing::WriteText(dir.File("bad.json"),
                     head + R"({"kind": "pool", "mode": "max", "norm": "none", "residual": false}]})");
  options.source = dir.File("bad.json");
  options.output = dir.File("bad.recur");
  report = Convert(options);
  REQUIRE_FALSE(report.ok());
  CHECK(testing::Contains(report.status().message(), "layers[0].mode"));
}

}  // namespace
}  // namespace recur

namespace recur {
namespace {

TEST_CASE("pool: saved state continues bit-identically, and forks") {
  testing::TempDir dir;
  PoolWeights w;
  testing::CheckFrameStateRoundTrip(testing::LoadModel(WritePoolModel(dir, &w), 1));
}

}  // namespace
}  // namespace recur
