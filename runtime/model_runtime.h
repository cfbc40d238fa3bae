// The parts of a loaded Model that sessions run: blocks, norms, embedding and head views.
// Internal to runtime/ (the public API is runtime/recur.hpp).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "formats/recur_file.h"
#include "ops/types.h"
#include "runtime/blocks/block.h"
#include "runtime/recur.hpp"
#include "runtime/threads.h"

namespace recur {

struct NormWeights {
  fb::NormKind kind = fb::NormKind::None;
  float eps = 1e-5f;
  const float* weight = nullptr;
  const float* bias = nullptr;

  static const float* Find(const RecurFile& file, const std::string& name);
};

struct Model::Runtime {
  explicit Runtime(int n_threads) : threads(n_threads) {}

  struct Layer {
    NormWeights norm;
    bool residual = true;
    size_t state_offset = 0;  // Floats from the start of the session's state block.
    std::unique_ptr<Block> block;
  };

  Threads threads;
  size_t d_model = 0;
  size_t chunk = 0;  // Tokens per prefill chunk.
  ops::WeightView embed;       // Tokens input: [vocab, d_model].
  ops::WeightView input_proj;  // Frames input: [d_model, input_size].
  const float* input_bias = nullptr;
  ops::WeightView head;        // [vocab or output_size, d_model].
  const float* head_bias = nullptr;
  NormWeights final_norm;
  std::vector<Layer> layers;
  size_t state_floats = 0;    // All layers' state.
  size_t scratch_floats = 0;  // The largest layer's scratch for a step or a chunk.
};

}  // namespace recur
