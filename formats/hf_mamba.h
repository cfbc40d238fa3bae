// Mamba-1 checkpoints -> `.recur`: the Hugging Face table entries of the Mamba-1 family.
//
// Two layouts of the same model:
//  - Hugging Face transformers' MambaForCausalLM (config.json with "architectures":
//    ["MambaForCausalLM"], "model_type": "mamba"; hidden_size, num_hidden_layers, state_size,
//    conv_kernel, expand, intermediate_size, time_step_rank, use_bias, use_conv_bias,
//    tie_word_embeddings, layer_norm_epsilon). Tensors: backbone.embeddings.weight,
//    backbone.layers.N.{norm.weight, mixer.*}, backbone.norm_f.weight, lm_head.weight.
//  - state-spaces/mamba's MambaLMHeadModel (MambaConfig: d_model, n_layer, vocab_size, ssm_cfg
//    {d_state, d_conv, expand, dt_rank, conv_bias, bias}, rms_norm, pad_vocab_size_multiple,
//    tie_embeddings). Its config.json names no architecture, so the table entry is keyed
//    "MambaLMHeadModel"; IsStateSpacesMambaConfig recognises such a config by its keys.
//    Tensors: backbone.embedding.weight (singular), the rest as above.
// Both give architecture "mamba1": RMSNorm (or, for rms_norm false, LayerNorm) pre-norms, one
// mamba1 layer per block, a final norm, and a head tied to the embedding unless the config says
// otherwise. A tokenizer.json beside config.json is imported into the model.
#pragma once

#include <vector>

#include "formats/convert.h"

namespace recur {

// {"MambaForCausalLM", "mamba", MapHfMamba} and {"MambaLMHeadModel", "", MapStateSpacesMamba}.
std::vector<HfArchitecture> MambaHfArchitectures();

// The Hugging Face transformers layout.
Result<HfMapping> MapHfMamba(const HfConfig& config);
// The state-spaces/mamba layout. ssm_cfg is read from the file at config.path().
Result<HfMapping> MapStateSpacesMamba(const HfConfig& config);

// True for a state-spaces MambaConfig: d_model, n_layer and vocab_size, and neither
// transformers' hidden_size nor a model_type (what the original repository's save_pretrained
// writes). The converter can use it to pick MapStateSpacesMamba for a config.json that names no
// architecture.
bool IsStateSpacesMambaConfig(const HfConfig& config);

}  // namespace recur
