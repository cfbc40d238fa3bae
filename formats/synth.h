// Synthetic models: random weights at the shapes of published models, written straight to a
// `.recur` file, for benchmarks that should not need a download.
//
// Values are drawn as the families initialise them (Mamba: A_log = log(1..N), D = 1, dt in
// [1e-3, 1e-1] through an inverse-softplus bias, unit norm weights, matrices uniform with the
// variance of a 1/sqrt(fan_in) init), from a seed, tensor by tensor, so a preset and a seed give
// the same file on every machine and only one row is ever held in memory.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "formats/convert.h"
#include "formats/dtype.h"
#include "formats/recur_generated.h"
#include "formats/status.h"

namespace recur {

struct SynthPreset {
  std::string name;         // "mamba-130m".
  std::string description;  // "Mamba-1 130M: d_model 768, 24 layers, d_state 16".
  int layers = 0;           // The published layer count.
  // Everything but the tensor table, with `layers` layers (blocks of mixer + mlp for the
  // attention presets).
  std::function<fb::ModelT(int layers)> make;
  // Softmax-attention presets only: the same with a KV-cache capacity of `max_context` tokens.
  std::function<fb::ModelT(int layers, int64_t max_context)> make_attention;
};

// The KV-cache capacity of the softmax-attention presets unless SynthOptions says otherwise.
inline constexpr int64_t kDefaultSynthContext = 32768;

// The built-in presets (mamba-130m ... mamba-2.8b, mamba2-130m ... mamba2-2.7b, attention
// families at the 130M class, tiny shapes for tests).
const std::vector<SynthPreset>& SynthPresets();
const SynthPreset* FindSynthPreset(const std::string& name);

struct SynthOptions {
  std::string preset;
  std::string output;
  DType dtype = DType::kF32;          // Weight matrices: f32, f16, bf16 or q8_0.
  DType q8_scale_dtype = DType::kF16;
  uint64_t seed = 1;
  std::optional<int> layers;          // Override the preset's layer count (smaller benches).
  std::optional<int64_t> max_context;  // Softmax-attention presets: KV-cache capacity.
  ProgressFn progress;
};

// Writes the model; the report counts bytes per dtype like Convert's.
Result<ConvertReport> Synthesize(const SynthOptions& options);

}  // namespace recur
