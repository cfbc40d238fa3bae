#include "formats/hf_mamba.h"

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

#include "formats/hf_common.h"
#include "formats/recur_file.h"

namespace recur {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// What both layouts agree on once their configs are read.
struct MambaDims {
  int64_t d_model = 0, n_layer = 0, vocab = 0;
  int64_t d_inner = 0, d_state = 0, d_conv = 0, dt_rank = 0;
  bool conv_bias = true, proj_bias = false, tied = true;
  fb::NormKind norm = fb::NormKind::RMSNorm;
  double eps = 1e-5;
};

// A dimension must be a positive int32 (the schema's field type).
Status CheckDim(const HfConfig& config, const char* key, int64_t value) {
  if (value <= 0 || value > std::numeric_limits<int32_t>::max()) {
    return InvalidArgument(config.path() + ": \"" + key +
                           "\": expected a positive integer below 2^31, got " +
                           std::to_string(value));
  }
  return Status::Ok();
}

// The dimension `key`, or default_value when absent (std::nullopt: required).
Result<int64_t> Dim(const HfConfig& config, const char* key,
                    std::optional<int64_t> default_value = std::nullopt) {
  Result<int64_t> value = default_value ? config.Int(key, *default_value) : config.Int(key);
  if (value.ok()) RECUR_RETURN_IF_ERROR(CheckDim(config, key, *value));
  return value;
}

// d_inner = int(expand * d_model), as both MambaConfig classes compute it; expand may be written
// as 2 or 2.0.
Result<int64_t> InnerFromExpand(const HfConfig& config, const char* key, int64_t d_model) {
  RECUR_ASSIGN_OR_RETURN(double expand, config.Float(key, 2.0));
  if (!(expand > 0.0) || !std::isfinite(expand)) {
    return InvalidArgument(config.path() + ": \"" + key + "\": expected a positive number");
  }
  const double d_inner = std::floor(expand * static_cast<double>(d_model));
  if (d_inner < 1.0 || d_inner > std::numeric_limits<int32_t>::max()) {
    return InvalidArgument(config.path() + ": \"" + key + "\": expand * d_model is out of range");
  }
  return static_cast<int64_t>(d_inner);
}

// dt_rank: an integer, or "auto" (the default) for ceil(d_model / 16).
Result<int64_t> DtRank(const HfConfig& config, const char* key, int64_t d_model) {
  if (!config.Has(key)) return (d_model + 15) / 16;
  Result<std::string> text = config.String(key);
  if (text.ok()) {
    if (*text == "auto") return (d_model + 15) / 16;
    return InvalidArgument(config.path() + ": \"" + key +
                           "\": expected an integer or \"auto\", got \"" + *text + "\"");
  }
  return Dim(config, key);
}

// The ssm_cfg object of a state-spaces config as an HfConfig of its own, so that its errors name
// the key. An absent or null ssm_cfg is an empty one: every field has a default.
Result<HfConfig> SsmConfig(const HfConfig& config, const Json& root) {
  const std::string where = config.path() + ": \"ssm_cfg\"";
  const auto it = root.find("ssm_cfg");
  if (it == root.end() || it->is_null()) return HfConfig::Parse("{}", where);
  if (!it->is_object()) return InvalidArgument(where + ": expected an object");
  return HfConfig::Parse(it->dump(), where);
}

// The model and its canonical -> checkpoint names. `embed_name` is where the token embedding
// lives in the checkpoint; everything else sits under "backbone." with recur's own names.
Result<HfMapping> BuildMapping(const HfConfig& config, const MambaDims& dims,
                               const std::string& embed_name) {
  if (!(dims.eps >= 0.0) || !std::isfinite(dims.eps)) {
    return InvalidArgument(config.path() + ": the norm epsilon must be finite and non-negative");
  }

  HfMapping mapping;
  fb::ModelT& m = mapping.model;
  m.format_version = kRecurFormatVersion;
  m.architecture = "mamba1";
  m.d_model = static_cast<int32_t>(dims.d_model);
  m.input_kind = fb::InputKind::Tokens;
  m.vocab_size = static_cast<int32_t>(dims.vocab);
  m.output_kind = fb::OutputKind::Logits;
  m.output_size = m.vocab_size;
  m.tie_embeddings = dims.tied;
  m.final_norm = dims.norm;
  m.final_norm_eps = static_cast<float>(dims.eps);
  for (int64_t i = 0; i < dims.n_layer; ++i) {
    fb::Mamba1SpecT s;
    s.d_inner = static_cast<int32_t>(dims.d_inner);
    s.d_state = static_cast<int32_t>(dims.d_state);
    s.d_conv = static_cast<int32_t>(dims.d_conv);
    s.dt_rank = static_cast<int32_t>(dims.dt_rank);
    s.conv_bias = dims.conv_bias;
    s.proj_bias = dims.proj_bias;
    auto layer = std::make_unique<fb::LayerT>();
    layer->block.Set(std::move(s));
    layer->norm = dims.norm;
    layer->norm_eps = static_cast<float>(dims.eps);
    layer->residual = true;
    m.layers.push_back(std::move(layer));
  }

  // Every canonical tensor (optional biases included) gets its checkpoint name.
  RECUR_ASSIGN_OR_RETURN(std::vector<ExpectedTensor> expected, ExpectedTensorsOf(m));
  for (const ExpectedTensor& e : expected) {
    std::string source;
    if (e.name == "embed.weight") {
      source = embed_name;
    } else if (e.name == "head.weight") {
      source = "lm_head.weight";
    } else {
      source = "backbone." + e.name;  // layers.N.norm.*, layers.N.mixer.*, norm_f.*
    }
    mapping.source_names[e.name] = std::move(source);
  }

  RECUR_RETURN_IF_ERROR(AttachHfTokenizer(config, &m));
  return mapping;
}

}  // namespace

Result<HfMapping> MapHfMamba(const HfConfig& config) {
  MambaDims dims;
  RECUR_ASSIGN_OR_RETURN(dims.d_model, Dim(config, "hidden_size"));
  RECUR_ASSIGN_OR_RETURN(dims.n_layer, Dim(config, "num_hidden_layers"));
  RECUR_ASSIGN_OR_RETURN(dims.vocab, Dim(config, "vocab_size"));
  RECUR_ASSIGN_OR_RETURN(dims.d_state, Dim(config, "state_size", 16));
  RECUR_ASSIGN_OR_RETURN(dims.d_conv, Dim(config, "conv_kernel", 4));
  if (config.Has("intermediate_size")) {
    RECUR_ASSIGN_OR_RETURN(dims.d_inner, Dim(config, "intermediate_size"));
  } else {
    RECUR_ASSIGN_OR_RETURN(dims.d_inner, InnerFromExpand(config, "expand", dims.d_model));
  }
  RECUR_ASSIGN_OR_RETURN(dims.dt_rank, DtRank(config, "time_step_rank", dims.d_model));
  RECUR_ASSIGN_OR_RETURN(dims.proj_bias, config.Bool("use_bias", false));
  RECUR_ASSIGN_OR_RETURN(dims.conv_bias, config.Bool("use_conv_bias", true));
  RECUR_ASSIGN_OR_RETURN(dims.tied, config.Bool("tie_word_embeddings", true));
  RECUR_ASSIGN_OR_RETURN(dims.eps, config.Float("layer_norm_epsilon", 1e-5));
  // MambaMixer uses hidden_act for both the conv output and the gate; the mamba1 block is SiLU.
  RECUR_ASSIGN_OR_RETURN(const std::string act, config.String("hidden_act", "silu"));
  if (act != "silu" && act != "swish") {
    return Unsupported(config.path() + ": \"hidden_act\": \"" + act +
                       "\"; the mamba1 block gates with SiLU only");
  }
  return BuildMapping(config, dims, "backbone.embeddings.weight");
}

Result<HfMapping> MapStateSpacesMamba(const HfConfig& config) {
  MambaDims dims;
  RECUR_ASSIGN_OR_RETURN(dims.d_model, Dim(config, "d_model"));
  RECUR_ASSIGN_OR_RETURN(dims.n_layer, Dim(config, "n_layer"));
  RECUR_ASSIGN_OR_RETURN(const int64_t vocab, Dim(config, "vocab_size"));
  RECUR_ASSIGN_OR_RETURN(const int64_t pad, Dim(config, "pad_vocab_size_multiple", 8));
  // MambaLMHeadModel pads the embedding (and head) rows up to a multiple of the padding.
  dims.vocab = vocab % pad == 0 ? vocab : vocab + pad - vocab % pad;
  RECUR_RETURN_IF_ERROR(CheckDim(config, "vocab_size", dims.vocab));
  RECUR_ASSIGN_OR_RETURN(dims.tied, config.Bool("tie_embeddings", true));
  RECUR_ASSIGN_OR_RETURN(const bool rms_norm, config.Bool("rms_norm", true));
  dims.norm = rms_norm ? fb::NormKind::RMSNorm : fb::NormKind::LayerNorm;
  // MixerModel's norm_epsilon is not part of MambaConfig; its default is 1e-5.
  RECUR_ASSIGN_OR_RETURN(dims.eps, config.Float("norm_epsilon", 1e-5));
  RECUR_ASSIGN_OR_RETURN(const int64_t d_intermediate, config.Int("d_intermediate", 0));
  if (d_intermediate != 0) {
    return Unsupported(config.path() +
                       ": \"d_intermediate\" > 0 puts a gated MLP after each mixer, whose fused "
                       "fc1 this importer cannot split yet");
  }
  RECUR_ASSIGN_OR_RETURN(const Json root, ReadHfConfigJson(config));
  // An empty attn_layer_idx is the default; anything else is a hybrid with attention layers.
  const auto attn = root.find("attn_layer_idx");
  if (attn != root.end() && !attn->is_null() && !(attn->is_array() && attn->empty())) {
    return Unsupported(config.path() +
                       ": \"attn_layer_idx\" names attention layers; hybrid Mamba/attention "
                       "models are not supported by this importer");
  }
  RECUR_ASSIGN_OR_RETURN(HfConfig ssm, SsmConfig(config, root));
  RECUR_ASSIGN_OR_RETURN(const std::string layer, ssm.String("layer", "Mamba1"));
  if (layer != "Mamba1") {
    return Unsupported(ssm.path() + ": \"layer\": \"" + layer +
                       "\" layers are not Mamba-1; only \"Mamba1\" maps to mamba1");
  }
  RECUR_ASSIGN_OR_RETURN(dims.d_state, Dim(ssm, "d_state", 16));
  RECUR_ASSIGN_OR_RETURN(dims.d_conv, Dim(ssm, "d_conv", 4));
  RECUR_ASSIGN_OR_RETURN(dims.d_inner, InnerFromExpand(ssm, "expand", dims.d_model));
  RECUR_ASSIGN_OR_RETURN(dims.dt_rank, DtRank(ssm, "dt_rank", dims.d_model));
  RECUR_ASSIGN_OR_RETURN(dims.conv_bias, ssm.Bool("conv_bias", true));
  RECUR_ASSIGN_OR_RETURN(dims.proj_bias, ssm.Bool("bias", false));
  return BuildMapping(config, dims, "backbone.embedding.weight");
}

bool IsStateSpacesMambaConfig(const HfConfig& config) {
  return config.Has("d_model") && config.Has("n_layer") && config.Has("vocab_size") &&
         !config.Has("hidden_size") && config.model_type().empty();
}

std::vector<HfArchitecture> MambaHfArchitectures() {
  return {{"MambaForCausalLM", "mamba", MapHfMamba}, {"MambaLMHeadModel", "", MapStateSpacesMamba}};
}

}  // namespace recur
