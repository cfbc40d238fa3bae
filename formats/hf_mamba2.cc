#include "formats/hf_mamba2.h"

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>

#include "formats/hf_common.h"
#include "formats/recur_file.h"

namespace recur {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// The block sizes of one Mamba-2 model, whichever layout they came from.
struct Mamba2Sizes {
  int64_t d_model = 0, n_layers = 0, vocab = 0;
  int64_t d_inner = 0, d_state = 0, d_conv = 0, n_heads = 0, head_dim = 0, n_groups = 0;
  int64_t chunk = 0;
  bool proj_bias = false, conv_bias = true, norm_before_gate = false;
  double norm_eps = 1e-5;        // The block and final norms.
  double mixer_norm_eps = 1e-5;  // The gated RMSNorm inside the mixer.
  fb::NormKind norm = fb::NormKind::RMSNorm;
  bool tie = true;
};

Status Positive(const std::string& where, const char* key, int64_t v) {
  if (v <= 0 || v > std::numeric_limits<int32_t>::max()) {
    return InvalidArgument(where + ": \"" + key + "\" must be a positive 32-bit integer, not " +
                           std::to_string(v));
  }
  return Status::Ok();
}

Status CheckSizes(const std::string& where, const Mamba2Sizes& s) {
  RECUR_RETURN_IF_ERROR(Positive(where, "d_model", s.d_model));
  RECUR_RETURN_IF_ERROR(Positive(where, "n_layers", s.n_layers));
  RECUR_RETURN_IF_ERROR(Positive(where, "vocab_size", s.vocab));
  RECUR_RETURN_IF_ERROR(Positive(where, "d_inner", s.d_inner));
  RECUR_RETURN_IF_ERROR(Positive(where, "d_state", s.d_state));
  RECUR_RETURN_IF_ERROR(Positive(where, "d_conv", s.d_conv));
  RECUR_RETURN_IF_ERROR(Positive(where, "n_heads", s.n_heads));
  RECUR_RETURN_IF_ERROR(Positive(where, "head_dim", s.head_dim));
  RECUR_RETURN_IF_ERROR(Positive(where, "n_groups", s.n_groups));
  RECUR_RETURN_IF_ERROR(Positive(where, "chunk_size", s.chunk));
  if (s.n_heads * s.head_dim != s.d_inner) {
    return InvalidArgument(
        where + ": " + std::to_string(s.n_heads) + " heads of " + std::to_string(s.head_dim) +
        " channels do not make d_inner = expand * d_model = " + std::to_string(s.d_inner));
  }
  if (s.n_heads % s.n_groups != 0) {
    return InvalidArgument(where + ": n_groups " + std::to_string(s.n_groups) +
                           " does not divide the " + std::to_string(s.n_heads) + " heads");
  }
  if (!(s.norm_eps >= 0) || !std::isfinite(s.norm_eps) || !(s.mixer_norm_eps >= 0) ||
      !std::isfinite(s.mixer_norm_eps)) {
    return InvalidArgument(where + ": norm epsilons must be finite and non-negative");
  }
  return Status::Ok();
}

fb::ModelT BuildModel(const Mamba2Sizes& s) {
  fb::ModelT m;
  m.format_version = kRecurFormatVersion;
  m.architecture = "mamba2";
  m.d_model = static_cast<int32_t>(s.d_model);
  m.input_kind = fb::InputKind::Tokens;
  m.vocab_size = static_cast<int32_t>(s.vocab);
  m.output_kind = fb::OutputKind::Logits;
  m.output_size = static_cast<int32_t>(s.vocab);
  m.tie_embeddings = s.tie;
  m.final_norm = s.norm;
  m.final_norm_eps = static_cast<float>(s.norm_eps);
  for (int64_t i = 0; i < s.n_layers; ++i) {
    fb::Mamba2SpecT spec;
    spec.d_inner = static_cast<int32_t>(s.d_inner);
    spec.d_state = static_cast<int32_t>(s.d_state);
    spec.d_conv = static_cast<int32_t>(s.d_conv);
    spec.n_heads = static_cast<int32_t>(s.n_heads);
    spec.head_dim = static_cast<int32_t>(s.head_dim);
    spec.n_groups = static_cast<int32_t>(s.n_groups);
    spec.chunk_size = static_cast<int32_t>(s.chunk);
    spec.conv_bias = s.conv_bias;
    spec.proj_bias = s.proj_bias;
    spec.norm_before_gate = s.norm_before_gate;
    spec.norm_eps = static_cast<float>(s.mixer_norm_eps);
    auto layer = std::make_unique<fb::LayerT>();
    layer->block.Set(std::move(spec));
    layer->norm = s.norm;
    layer->norm_eps = static_cast<float>(s.norm_eps);
    layer->residual = true;
    m.layers.push_back(std::move(layer));
  }
  return m;
}

// Canonical -> checkpoint names. The mixer's tensors are called the same in both layouts.
std::map<std::string, std::string> SourceNames(const Mamba2Sizes& s, const std::string& embedding) {
  std::map<std::string, std::string> names;
  names["embed.weight"] = "backbone." + embedding + ".weight";
  names["head.weight"] = "lm_head.weight";
  names["norm_f.weight"] = "backbone.norm_f.weight";
  names["norm_f.bias"] = "backbone.norm_f.bias";
  static const char* const kMixer[] = {
      "in_proj.weight", "in_proj.bias",    "conv1d.weight", "conv1d.bias", "dt_bias", "A_log", "D",
      "norm.weight",    "out_proj.weight", "out_proj.bias"};
  for (int64_t i = 0; i < s.n_layers; ++i) {
    const std::string canon = "layers." + std::to_string(i) + ".";
    const std::string source = "backbone.layers." + std::to_string(i) + ".";
    names[canon + "norm.weight"] = source + "norm.weight";
    names[canon + "norm.bias"] = source + "norm.bias";
    for (const char* t : kMixer) names[canon + "mixer." + t] = source + "mixer." + t;
  }
  return names;
}

// A dt clamp of (lo, hi) other than (0, inf) changes the model, and the mamba2 block has none.
Status CheckNoDtLimit(const Json& root, const std::string& key, const std::string& path) {
  const auto it = root.find(key);
  if (it == root.end() || it->is_null()) return Status::Ok();
  const bool two_numbers =
      it->is_array() && it->size() == 2 && (*it)[0].is_number() && (*it)[1].is_number();
  if (two_numbers && (*it)[0].get<double>() == 0.0 && (*it)[1].get<double>() >= 1e30) {
    return Status::Ok();
  }
  return Unsupported(path + ": \"" + key + "\" " + it->dump() +
                     " clamps dt, which the mamba2 block does not do (only [0, inf) is accepted)");
}

}  // namespace

Result<HfMapping> MapMamba2Hf(const HfConfig& config) {
  const std::string& where = config.path();
  Mamba2Sizes s;
  RECUR_ASSIGN_OR_RETURN(s.d_model, config.Int("hidden_size"));
  RECUR_ASSIGN_OR_RETURN(s.n_layers, config.Int("num_hidden_layers"));
  RECUR_ASSIGN_OR_RETURN(s.vocab, config.Int("vocab_size"));
  // Defaults: transformers' Mamba2Config.
  RECUR_ASSIGN_OR_RETURN(const double expand, config.Float("expand", 2.0));
  RECUR_ASSIGN_OR_RETURN(s.d_state, config.Int("state_size", 128));
  RECUR_ASSIGN_OR_RETURN(s.d_conv, config.Int("conv_kernel", 4));
  RECUR_ASSIGN_OR_RETURN(s.n_groups, config.Int("n_groups", 8));
  RECUR_ASSIGN_OR_RETURN(s.head_dim, config.Int("head_dim", 64));
  RECUR_ASSIGN_OR_RETURN(s.chunk, config.Int("chunk_size", 256));
  RECUR_ASSIGN_OR_RETURN(s.proj_bias, config.Bool("use_bias", false));
  RECUR_ASSIGN_OR_RETURN(s.conv_bias, config.Bool("use_conv_bias", true));
  RECUR_ASSIGN_OR_RETURN(s.norm_eps, config.Float("layer_norm_epsilon", 1e-5));
  RECUR_ASSIGN_OR_RETURN(s.tie, config.Bool("tie_word_embeddings", false));
  // Mamba2Mixer's gated norm is a MambaRMSNormGated with the model's layer_norm_epsilon.
  s.mixer_norm_eps = s.norm_eps;
  // transformers' int(expand * hidden_size).
  s.d_inner = static_cast<int64_t>(expand * static_cast<double>(s.d_model));
  if (s.head_dim > 0 && !config.Has("num_heads")) s.n_heads = s.d_inner / s.head_dim;
  RECUR_ASSIGN_OR_RETURN(s.n_heads, config.Int("num_heads", s.n_heads));
  // Mamba2Mixer always gates before the norm (its torch path multiplies by SiLU(z) inside
  // MambaRMSNormGated, its CUDA path passes norm_before_gate=False) whatever config.json says:
  // Mamba-Codestral's config.json has "norm_before_gate": true and runs with it false. So the
  // key is read (to reject a malformed value) but not followed.
  RECUR_RETURN_IF_ERROR(config.Bool("norm_before_gate", false).status());
  s.norm_before_gate = false;
  RECUR_ASSIGN_OR_RETURN(const std::string act, config.String("hidden_act", "silu"));
  if (act != "silu" && act != "swish") {
    return Unsupported(where + ": \"hidden_act\" \"" + act +
                       "\": the mamba2 block's conv activation is SiLU");
  }
  RECUR_ASSIGN_OR_RETURN(const bool rms_norm, config.Bool("rms_norm", true));
  if (!rms_norm) {
    return Unsupported(where +
                       ": \"rms_norm\": false; Mamba2ForCausalLM always uses RMSNorm, "
                       "so this checkpoint's intent is unclear");
  }
  RECUR_RETURN_IF_ERROR(CheckSizes(where, s));
  RECUR_ASSIGN_OR_RETURN(const Json root, ReadHfConfigJson(config));
  RECUR_RETURN_IF_ERROR(CheckNoDtLimit(root, "time_step_limit", where));

  HfMapping mapping;
  mapping.model = BuildModel(s);
  mapping.source_names = SourceNames(s, "embeddings");
  RECUR_RETURN_IF_ERROR(AttachHfTokenizer(config, &mapping.model));
  return mapping;
}

bool IsMamba2StateSpaces(const HfConfig& config) {
  Result<Json> root = ReadHfConfigJson(config);
  if (!root.ok()) return false;
  const auto cfg = root->find("ssm_cfg");
  if (cfg == root->end() || !cfg->is_object()) return false;
  const auto layer = cfg->find("layer");
  return layer != cfg->end() && layer->is_string() && layer->get<std::string>() == "Mamba2";
}

Result<HfMapping> MapMamba2StateSpaces(const HfConfig& config) {
  const std::string& where = config.path();
  RECUR_ASSIGN_OR_RETURN(const Json root, ReadHfConfigJson(config));
  const auto cfg_it = root.find("ssm_cfg");
  if (cfg_it == root.end() || !cfg_it->is_object()) {
    return InvalidArgument(where + ": \"ssm_cfg\": missing or not an object");
  }
  // The mixer's own options, read with HfConfig's typed getters (defaults: mamba_ssm's Mamba2).
  RECUR_ASSIGN_OR_RETURN(const HfConfig ssm, HfConfig::Parse(cfg_it->dump(), where + " ssm_cfg"));
  RECUR_ASSIGN_OR_RETURN(const std::string layer, ssm.String("layer", "Mamba1"));
  if (layer != "Mamba2") {
    return InvalidArgument(where + ": ssm_cfg.layer is \"" + layer +
                           "\", not \"Mamba2\" (Mamba-1 checkpoints have their own importer)");
  }
  Mamba2Sizes s;
  RECUR_ASSIGN_OR_RETURN(s.d_model, config.Int("d_model"));
  RECUR_ASSIGN_OR_RETURN(s.n_layers, config.Int("n_layer"));
  RECUR_ASSIGN_OR_RETURN(const int64_t vocab, config.Int("vocab_size"));
  RECUR_ASSIGN_OR_RETURN(const int64_t pad_multiple, config.Int("pad_vocab_size_multiple", 8));
  // MambaLMHeadModel rounds the vocabulary up to a multiple of pad_vocab_size_multiple; the
  // embedding and head have the padded size.
  s.vocab = vocab;
  if (pad_multiple > 1 && vocab % pad_multiple != 0) s.vocab += pad_multiple - vocab % pad_multiple;
  RECUR_ASSIGN_OR_RETURN(s.tie, config.Bool("tie_embeddings", true));
  RECUR_ASSIGN_OR_RETURN(const bool rms_norm, config.Bool("rms_norm", true));
  s.norm = rms_norm ? fb::NormKind::RMSNorm : fb::NormKind::LayerNorm;
  // create_block's norm_epsilon (MixerModel's default; config.json does not carry it).
  s.norm_eps = 1e-5;
  RECUR_ASSIGN_OR_RETURN(const int64_t d_intermediate, config.Int("d_intermediate", 0));
  if (d_intermediate != 0) {
    return Unsupported(where + ": \"d_intermediate\" " + std::to_string(d_intermediate) +
                       ": blocks with an MLP after the mixer are not mapped yet");
  }
  if (const auto attn = root.find("attn_layer_idx");
      attn != root.end() && attn->is_array() && !attn->empty()) {
    return Unsupported(where + ": \"attn_layer_idx\" " + attn->dump() +
                       ": hybrid attention layers are not mapped yet");
  }

  RECUR_ASSIGN_OR_RETURN(s.d_state, ssm.Int("d_state", 128));
  RECUR_ASSIGN_OR_RETURN(s.d_conv, ssm.Int("d_conv", 4));
  RECUR_ASSIGN_OR_RETURN(const int64_t expand, ssm.Int("expand", 2));
  RECUR_ASSIGN_OR_RETURN(s.head_dim, ssm.Int("headdim", 64));
  RECUR_ASSIGN_OR_RETURN(s.n_groups, ssm.Int("ngroups", 1));
  RECUR_ASSIGN_OR_RETURN(s.chunk, ssm.Int("chunk_size", 256));
  RECUR_ASSIGN_OR_RETURN(s.proj_bias, ssm.Bool("bias", false));
  RECUR_ASSIGN_OR_RETURN(s.conv_bias, ssm.Bool("conv_bias", true));
  RECUR_ASSIGN_OR_RETURN(s.norm_before_gate, ssm.Bool("norm_before_gate", false));
  s.d_inner = expand * s.d_model;
  RECUR_ASSIGN_OR_RETURN(const int64_t d_ssm, ssm.Int("d_ssm", s.d_inner));
  if (d_ssm != s.d_inner) {
    return Unsupported(where + ": ssm_cfg.d_ssm " + std::to_string(d_ssm) + " != d_inner " +
                       std::to_string(s.d_inner) +
                       ": a mixer with a gated-MLP part beside the SSM is not mapped yet");
  }
  RECUR_ASSIGN_OR_RETURN(const bool rmsnorm, ssm.Bool("rmsnorm", true));
  if (!rmsnorm) {
    return Unsupported(where + ": ssm_cfg.rmsnorm false (gate without a norm) is not supported");
  }
  RECUR_ASSIGN_OR_RETURN(const bool d_has_hdim, ssm.Bool("D_has_hdim", false));
  if (d_has_hdim) {
    return Unsupported(where + ": ssm_cfg.D_has_hdim (a D per channel) is not supported");
  }
  RECUR_RETURN_IF_ERROR(CheckNoDtLimit(*cfg_it, "dt_limit", where + " ssm_cfg"));
  // Mamba2 builds RMSNormGated with eps=1e-5 whatever the model's norm_epsilon.
  s.mixer_norm_eps = 1e-5;
  if (s.head_dim > 0) s.n_heads = s.d_inner / s.head_dim;
  if (s.head_dim > 0 && s.d_inner % s.head_dim != 0) {
    return InvalidArgument(where + ": ssm_cfg.headdim " + std::to_string(s.head_dim) +
                           " does not divide d_inner " + std::to_string(s.d_inner));
  }
  RECUR_RETURN_IF_ERROR(CheckSizes(where, s));

  HfMapping mapping;
  mapping.model = BuildModel(s);
  mapping.source_names = SourceNames(s, "embedding");
  RECUR_RETURN_IF_ERROR(AttachHfTokenizer(config, &mapping.model));
  return mapping;
}

std::vector<HfArchitecture> Mamba2HfArchitectures() {
  return {{"Mamba2ForCausalLM", "mamba2", MapMamba2Hf}};
}

}  // namespace recur
