// Helpers for the attention block tests: write a small token model whose tensors are exactly the
// ones formats/block_tensors.cc expects (random, seeded), run one layer's block directly, and the
// double-precision pieces (matvec, RoPE, RMSNorm) the references share.
#pragma once

#include <doctest/doctest.h>

#include <flatbuffers/flatbuffers.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "formats/block_tensors.h"
#include "formats/recur_file.h"
#include "formats/recur_writer.h"
#include "runtime/blocks/block.h"
#include "runtime/threads.h"
#include "tests/test_util.h"

namespace recur::testing {

using Weights = std::map<std::string, std::vector<float>>;

inline bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Writes `m` (tokens in, tied logits out) with random tensors under every expected name to
// `path`; fills *w with them. Matrices are N(0, 1) * scale / sqrt(cols); norm weights 1 + N(0, 0.1);
// biases N(0, 1) (the GLA gate's bias spread over [-4, 2] with a few at -20, so some decays are
// strong).
inline void WriteRandomModel(fb::ModelT m, const std::string& path, Weights* w, uint32_t seed,
                             float scale = 0.6f) {
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(fb::Model::Pack(fbb, &m));
  const fb::Model* packed = flatbuffers::GetRoot<fb::Model>(fbb.GetBufferPointer());
  auto expected = ExpectedTensors(*packed);
  REQUIRE_MESSAGE(expected.ok(), expected.status().ToString());
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(-4.0f, 2.0f);
  RecurWriter writer(std::move(m));
  for (const ExpectedTensor& e : *expected) {
    size_t n = 1;
    for (int64_t dim : e.shape) n *= static_cast<size_t>(dim);
    std::vector<float>& v = (*w)[e.name];
    v.resize(n);
    const size_t cols = e.shape.empty() ? 1 : static_cast<size_t>(e.shape.back());
    for (size_t i = 0; i < n; ++i) {
      if (EndsWith(e.name, "gk.bias")) {
        v[i] = i % 7 == 3 ? -20.0f : uniform(rng);
      } else if (EndsWith(e.name, "norm.weight") || e.name == "norm_f.weight") {
        v[i] = 1.0f + 0.1f * normal(rng);
      } else if (e.matrix) {
        v[i] = normal(rng) * scale / std::sqrt(static_cast<float>(cols));
      } else {
        v[i] = normal(rng);
      }
    }
    REQUIRE(writer.AddTensorFromMemory(e.name, DType::kF32, e.shape, v.data()).ok());
  }
  REQUIRE(writer.Write(path).ok());
}

inline fb::ModelT TokenModel(int d_model, int vocab) {
  fb::ModelT m;
  m.architecture = "spec";
  m.d_model = d_model;
  m.vocab_size = vocab;
  m.output_size = vocab;
  m.tie_embeddings = true;
  m.final_norm = fb::NormKind::RMSNorm;
  return m;
}

// One layer's block of an opened file, with its state and scratch.
struct BlockRunner {
  std::shared_ptr<const RecurFile> file;
  std::unique_ptr<Block> block;
  std::vector<float> state, scratch;

  BlockRunner(const std::string& path, int layer, size_t max_tokens) {
    auto f = RecurFile::Open(path);
    REQUIRE_MESSAGE(f.ok(), f.status().ToString());
    file = *f;
    const fb::Model& m = file->model();
    LayerContext ctx{*file, m, *m.layers()->Get(layer), layer,
                     "layers." + std::to_string(layer) + "."};
    auto b = MakeBlock(ctx);
    REQUIRE_MESSAGE(b.ok(), b.status().ToString());
    block = std::move(b).value();
    state_floats = block->Plan(1).state_bytes / sizeof(float);
    scratch_floats = std::max(block->Plan(1).scratch_bytes, block->Plan(max_tokens).scratch_bytes) /
                     sizeof(float);
    // Guard zones after the planned sizes: a block that writes past its plan trips GuardsIntact.
    state.assign(state_floats + kGuard, kGuardValue);
    std::fill(state.begin(), state.begin() + state_floats, 0.0f);
    scratch.assign(scratch_floats + kGuard, kGuardValue);
  }
  ~BlockRunner() { CHECK(GuardsIntact()); }
  void Reset() { std::fill(state.begin(), state.begin() + state_floats, 0.0f); }
  bool GuardsIntact() const {
    for (size_t i = 0; i < kGuard; ++i) {
      if (state[state_floats + i] != kGuardValue || scratch[scratch_floats + i] != kGuardValue) {
        return false;
      }
    }
    return true;
  }

  static constexpr size_t kGuard = 64;
  static constexpr float kGuardValue = -12345.678f;
  size_t state_floats = 0, scratch_floats = 0;
};

using Vec = std::vector<double>;

// y = W x for a [rows, cols] matrix stored in w.
inline Vec MatVecD(const std::vector<float>& w, const double* x, size_t rows, size_t cols) {
  Vec y(rows, 0.0);
  for (size_t r = 0; r < rows; ++r) {
    double s = 0.0;
    for (size_t c = 0; c < cols; ++c) s += static_cast<double>(w[r * cols + c]) * x[c];
    y[r] = s;
  }
  return y;
}

// RoPE of one head vector in double, at `pos`.
inline void RopeD(double* x, size_t hd, double pos, double base, bool interleaved) {
  for (size_t i = 0; i < hd / 2; ++i) {
    const double angle = pos * std::pow(base, -2.0 * static_cast<double>(i) / hd);
    const double c = std::cos(angle), s = std::sin(angle);
    const size_t a = interleaved ? 2 * i : i, b = interleaved ? 2 * i + 1 : i + hd / 2;
    const double xa = x[a], xb = x[b];
    x[a] = xa * c - xb * s;
    x[b] = xb * c + xa * s;
  }
}

inline double MaxAbs(const float* a, const double* b, size_t n) {
  double m = 0.0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m;
}

inline double MaxAbsF(const float* a, const float* b, size_t n) {
  double m = 0.0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m;
}

inline double MaxMag(const Vec& v) {
  double m = 0.0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

inline std::vector<float> RandomInputs(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng);
  return x;
}

}  // namespace recur::testing
