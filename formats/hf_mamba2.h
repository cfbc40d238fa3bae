// Importer mappings for Mamba-2 checkpoints (the mamba2 block, runtime/blocks/mamba2.cc).
//
// Two layouts exist:
//  - Hugging Face transformers' Mamba2ForCausalLM (config.json with "architectures":
//    ["Mamba2ForCausalLM"], model_type "mamba2"; tensors "backbone.embeddings.weight",
//    "backbone.layers.<i>.{norm,mixer.*}", "backbone.norm_f.weight", "lm_head.weight");
//  - state-spaces/mamba's MambaLMHeadModel (config.json with "ssm_cfg": {"layer": "Mamba2", ...},
//    "d_model", "n_layer", "pad_vocab_size_multiple"; tensors "backbone.embedding.weight", ...).
// Both map to architecture "mamba2": one Mamba2Spec layer per block with an RMSNorm (LayerNorm
// for a state-spaces config with "rms_norm": false) before it, the final norm, and a tied or
// separate head. A tokenizer.json beside config.json is imported too.
#pragma once

#include <vector>

#include "formats/convert.h"
#include "formats/status.h"

namespace recur {

// {"Mamba2ForCausalLM", "mamba2", MapMamba2Hf}. Pass to Convert(options, ...) until the
// built-in table in convert.cc lists it.
std::vector<HfArchitecture> Mamba2HfArchitectures();

// Hugging Face Mamba2ForCausalLM's config.json. Keys missing from the file take transformers'
// Mamba2Config defaults, except the sizes (hidden_size, num_hidden_layers, vocab_size).
Result<HfMapping> MapMamba2Hf(const HfConfig& config);

// state-spaces/mamba's MambaLMHeadModel config.json with ssm_cfg.layer == "Mamba2". Such a file
// names no architecture, so Convert cannot pick this mapping from it yet (IsMamba2StateSpaces
// is the test the table needs); tests pass it through an entry of their own.
Result<HfMapping> MapMamba2StateSpaces(const HfConfig& config);

// True for a state-spaces MambaLMHeadModel config whose ssm_cfg.layer is "Mamba2".
bool IsMamba2StateSpaces(const HfConfig& config);

}  // namespace recur
