// The canonical tensors of a model: which names each block kind needs, with which shapes.
//
// One table serves the importers (is everything there, shaped right?) and the runtime loader
// (does the file hold what the blocks will read?). Adding a block kind adds its case here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "formats/recur_generated.h"
#include "formats/status.h"

namespace recur {

struct ExpectedTensor {
  std::string name;            // Canonical name, e.g. "layers.3.mixer.in_proj.weight".
  std::vector<int64_t> shape;  // Outermost first.
  bool matrix = false;         // A weight matrix read by matvec/matmul or gathered: may be
                               // stored as f16/bf16/q8_0. Everything else stays f32/f64.
  bool optional = false;
};

// Every tensor the model described by `model` reads, in a stable order: global tensors
// ("embed.weight", "norm_f.weight", "head.weight", "input_proj.weight", ...), then each layer's.
// Fails with a message naming the layer when a spec is inconsistent (e.g. non-positive sizes).
Result<std::vector<ExpectedTensor>> ExpectedTensors(const fb::Model& model);

// "mamba1", "mlp", ...: the name of a layer's block kind as used in specs and messages.
const char* BlockKindName(fb::BlockSpec kind);

}  // namespace recur
