#include "formats/block_tensors.h"

#include <cmath>
#include <string>
#include <utility>

namespace recur {
namespace {

// Collects the tensor list, with the current layer's name prefix and message prefix.
class TensorList {
 public:
  void Matrix(std::string name, std::vector<int64_t> shape) {
    Add(std::move(name), std::move(shape), /*matrix=*/true);
  }
  void Vector(std::string name, std::vector<int64_t> shape) {
    Add(std::move(name), std::move(shape), /*matrix=*/false);
  }
  void SetPrefix(std::string prefix) { prefix_ = std::move(prefix); }
  std::vector<ExpectedTensor> Take() { return std::move(tensors_); }

 private:
  void Add(std::string name, std::vector<int64_t> shape, bool matrix) {
    ExpectedTensor t;
    t.name = prefix_ + name;
    t.shape = std::move(shape);
    t.matrix = matrix;
    tensors_.push_back(std::move(t));
  }

  std::string prefix_;
  std::vector<ExpectedTensor> tensors_;
};

// Checks that each named value is positive, and says which one is not.
Status RequirePositive(const std::string& where,
                       std::initializer_list<std::pair<const char*, int64_t>> fields) {
  for (const auto& [name, value] : fields) {
    if (value <= 0) {
      return InvalidArgument(where + name + " must be positive, not " + std::to_string(value));
    }
  }
  return Status::Ok();
}

bool ValidNorm(fb::NormKind kind) {
  return kind == fb::NormKind::None || kind == fb::NormKind::RMSNorm ||
         kind == fb::NormKind::LayerNorm;
}

bool ValidActivation(fb::Activation a) {
  return static_cast<uint8_t>(a) <= static_cast<uint8_t>(fb::Activation::MAX);
}

// A norm's weight (and, for LayerNorm, bias) of `size` under `name`.
void AddNorm(TensorList& list, fb::NormKind kind, const std::string& name, int64_t size) {
  if (kind == fb::NormKind::None) return;
  list.Vector(name + ".weight", {size});
  if (kind == fb::NormKind::LayerNorm) list.Vector(name + ".bias", {size});
}

Status AddMlp(TensorList& list, const fb::MlpSpec& spec, int64_t d_model,
              const std::string& where) {
  RECUR_RETURN_IF_ERROR(RequirePositive(where, {{"d_ff", spec.d_ff()}}));
  if (!ValidActivation(spec.activation())) {
    return InvalidArgument(where + "unknown activation " +
                           std::to_string(static_cast<int>(spec.activation())));
  }
  const int64_t d_ff = spec.d_ff();
  list.Matrix("mlp.up.weight", {d_ff, d_model});
  if (spec.bias()) list.Vector("mlp.up.bias", {d_ff});
  if (spec.glu()) {
    list.Matrix("mlp.gate.weight", {d_ff, d_model});
    if (spec.bias()) list.Vector("mlp.gate.bias", {d_ff});
  }
  list.Matrix("mlp.down.weight", {d_model, d_ff});
  if (spec.bias()) list.Vector("mlp.down.bias", {d_model});
  return Status::Ok();
}

// Mamba-1, in the Hugging Face MambaMixer layout (conv1d's [d_inner, 1, d_conv] squeezed).
Status AddMamba1(TensorList& list, const fb::Mamba1Spec& spec, int64_t d_model,
                 const std::string& where) {
  RECUR_RETURN_IF_ERROR(RequirePositive(where, {{"d_inner", spec.d_inner()},
                                                {"d_state", spec.d_state()},
                                                {"d_conv", spec.d_conv()},
                                                {"dt_rank", spec.dt_rank()}}));
  const int64_t d_inner = spec.d_inner();
  const int64_t d_state = spec.d_state();
  const int64_t dt_rank = spec.dt_rank();
  list.Matrix("mixer.in_proj.weight", {2 * d_inner, d_model});
  if (spec.proj_bias()) list.Vector("mixer.in_proj.bias", {2 * d_inner});
  list.Vector("mixer.conv1d.weight", {d_inner, spec.d_conv()});
  if (spec.conv_bias()) list.Vector("mixer.conv1d.bias", {d_inner});
  list.Matrix("mixer.x_proj.weight", {dt_rank + 2 * d_state, d_inner});
  list.Matrix("mixer.dt_proj.weight", {d_inner, dt_rank});
  list.Vector("mixer.dt_proj.bias", {d_inner});
  list.Vector("mixer.A_log", {d_inner, d_state});
  list.Vector("mixer.D", {d_inner});
  list.Matrix("mixer.out_proj.weight", {d_model, d_inner});
  if (spec.proj_bias()) list.Vector("mixer.out_proj.bias", {d_model});
  return Status::Ok();
}

// Mamba-2, in the Hugging Face Mamba2Mixer layout. in_proj's rows are [z, x, B, C, dt]; conv1d
// runs over [x, B, C].
Status AddMamba2(TensorList& list, const fb::Mamba2Spec& spec, int64_t d_model,
                 const std::string& where) {
  RECUR_RETURN_IF_ERROR(RequirePositive(where, {{"d_inner", spec.d_inner()},
                                                {"d_state", spec.d_state()},
                                                {"d_conv", spec.d_conv()},
                                                {"n_heads", spec.n_heads()},
                                                {"head_dim", spec.head_dim()},
                                                {"n_groups", spec.n_groups()},
                                                {"chunk_size", spec.chunk_size()}}));
  const int64_t d_inner = spec.d_inner();
  const int64_t d_state = spec.d_state();
  const int64_t n_heads = spec.n_heads();
  const int64_t n_groups = spec.n_groups();
  if (d_inner != n_heads * spec.head_dim()) {
    return InvalidArgument(where + "d_inner (" + std::to_string(d_inner) +
                           ") must equal n_heads * head_dim (" + std::to_string(n_heads) + " * " +
                           std::to_string(spec.head_dim()) + ")");
  }
  if (n_heads % n_groups != 0) {
    return InvalidArgument(where + "n_heads (" + std::to_string(n_heads) +
                           ") must be a multiple of n_groups (" + std::to_string(n_groups) + ")");
  }
  if (!(spec.norm_eps() >= 0.0f) || !std::isfinite(spec.norm_eps())) {
    return InvalidArgument(where + "norm_eps must be a finite non-negative number");
  }
  const int64_t conv_dim = d_inner + 2 * n_groups * d_state;
  const int64_t proj_dim = 2 * d_inner + 2 * n_groups * d_state + n_heads;
  list.Matrix("mixer.in_proj.weight", {proj_dim, d_model});
  if (spec.proj_bias()) list.Vector("mixer.in_proj.bias", {proj_dim});
  list.Vector("mixer.conv1d.weight", {conv_dim, spec.d_conv()});
  if (spec.conv_bias()) list.Vector("mixer.conv1d.bias", {conv_dim});
  list.Vector("mixer.dt_bias", {n_heads});
  list.Vector("mixer.A_log", {n_heads});
  list.Vector("mixer.D", {n_heads});
  list.Vector("mixer.norm.weight", {d_inner});
  list.Matrix("mixer.out_proj.weight", {d_model, d_inner});
  if (spec.proj_bias()) list.Vector("mixer.out_proj.bias", {d_model});
  return Status::Ok();
}

// RWKV-4 to 7 (docs/rwkv.md): one layer is a whole RWKV block, both residual sub-layers, with its
// own ln1 / ln2, so the layer's norm must be none. Names and values are BlinkDL's (blocks.<i>.X
// -> layers.<i>.X), squeezed; matrices are [out, in] as everywhere in recur, so the v6/v7 LoRA
// factors official code applies as x @ W are stored transposed.
Status AddRwkv(TensorList& list, const fb::RwkvSpec& spec, fb::NormKind norm, int64_t C,
               const std::string& where) {
  const int version = spec.version();
  if (version < 4 || version > 7) {
    return InvalidArgument(where + "version must be 4, 5, 6 or 7, not " + std::to_string(version));
  }
  if (norm != fb::NormKind::None) {
    return InvalidArgument(
        where + "an rwkv layer applies its own ln1 and ln2; the layer norm must be none");
  }
  RECUR_RETURN_IF_ERROR(RequirePositive(where, {{"d_ffn", spec.d_ffn()}}));
  if (spec.lora_mix() < 0 || spec.lora_decay() < 0 || spec.lora_a() < 0 || spec.lora_v() < 0 ||
      spec.lora_g() < 0) {
    return InvalidArgument(where + "LoRA widths must not be negative");
  }
  const int64_t H = spec.n_heads(), N = spec.head_size(), F = spec.d_ffn();
  if (version >= 5) {
    RECUR_RETURN_IF_ERROR(RequirePositive(where, {{"n_heads", H}, {"head_size", N}}));
    if (H * N != C) {
      return InvalidArgument(where + "n_heads * head_size (" + std::to_string(H) + " * " +
                             std::to_string(N) + ") must equal d_model (" + std::to_string(C) +
                             ")");
    }
    if (!(spec.group_norm_eps() >= 0.0f) || !std::isfinite(spec.group_norm_eps())) {
      return InvalidArgument(where + "group_norm_eps must be a finite non-negative number");
    }
  }
  if (version == 5 && spec.minor() > 2) {
    return InvalidArgument(where + "RWKV-5 minor version must be 0, 1 or 2, not " +
                           std::to_string(spec.minor()));
  }
  if (version == 6) {
    RECUR_RETURN_IF_ERROR(RequirePositive(
        where, {{"lora_mix", spec.lora_mix()}, {"lora_decay", spec.lora_decay()}}));
  }
  if (version == 7) {
    RECUR_RETURN_IF_ERROR(RequirePositive(where, {{"lora_decay", spec.lora_decay()},
                                                  {"lora_a", spec.lora_a()},
                                                  {"lora_g", spec.lora_g()}}));
  }
  for (const char* ln : {"ln1", "ln2"}) {
    list.Vector(std::string(ln) + ".weight", {C});
    list.Vector(std::string(ln) + ".bias", {C});
  }
  const auto linear = [&](const char* name, int64_t out, int64_t in) {
    list.Matrix(std::string(name) + ".weight", {out, in});
  };
  const auto vec = [&](const char* name) { list.Vector(name, {C}); };
  switch (version) {
    case 4:
      for (const char* v : {"att.time_decay", "att.time_first", "att.time_mix_k",
                            "att.time_mix_v", "att.time_mix_r", "ffn.time_mix_k",
                            "ffn.time_mix_r"}) {
        vec(v);
      }
      break;
    case 5:
      if (spec.minor() == 2) {
        list.Vector("att.time_decay", {H, N});
        list.Vector("att.time_faaaa", {H, N});
        vec("att.time_mix_g");
        linear("att.gate", C, C);
      } else {
        list.Vector("att.time_decay", {H});
        list.Vector("att.time_first", {H});
      }
      for (const char* v : {"att.time_mix_k", "att.time_mix_v", "att.time_mix_r",
                            "ffn.time_mix_k", "ffn.time_mix_r"}) {
        vec(v);
      }
      break;
    case 6: {
      const int64_t D = spec.lora_mix(), Dw = spec.lora_decay();
      for (const char* v : {"att.time_maa_x", "att.time_maa_w", "att.time_maa_k",
                            "att.time_maa_v", "att.time_maa_r", "att.time_maa_g",
                            "att.time_decay", "ffn.time_maa_k", "ffn.time_maa_r"}) {
        vec(v);
      }
      list.Matrix("att.time_maa_w1", {5 * D, C});
      list.Matrix("att.time_maa_w2", {5, C, D});
      list.Matrix("att.time_decay_w1", {Dw, C});
      list.Matrix("att.time_decay_w2", {C, Dw});
      list.Vector("att.time_faaaa", {H, N});
      linear("att.gate", C, C);
      break;
    }
    case 7: {
      for (const char* v : {"att.x_r", "att.x_w", "att.x_k", "att.x_v", "att.x_a", "att.x_g",
                            "att.w0", "att.a0", "att.k_k", "att.k_a", "ffn.x_k"}) {
        vec(v);
      }
      list.Vector("att.r_k", {H, N});
      list.Matrix("att.w1", {spec.lora_decay(), C});
      list.Matrix("att.w2", {C, spec.lora_decay()});
      list.Matrix("att.a1", {spec.lora_a(), C});
      list.Matrix("att.a2", {C, spec.lora_a()});
      if (spec.lora_v() > 0) {
        vec("att.v0");
        list.Matrix("att.v1", {spec.lora_v(), C});
        list.Matrix("att.v2", {C, spec.lora_v()});
      }
      list.Matrix("att.g1", {spec.lora_g(), C});
      list.Matrix("att.g2", {C, spec.lora_g()});
      break;
    }
  }
  linear("att.receptance", C, C);
  linear("att.key", C, C);
  linear("att.value", C, C);
  linear("att.output", C, C);
  if (version >= 5) {
    list.Vector("att.ln_x.weight", {C});
    list.Vector("att.ln_x.bias", {C});
  }
  linear("ffn.key", F, C);
  linear("ffn.value", C, F);
  if (version != 7) linear("ffn.receptance", C, C);
  return Status::Ok();
}

// HiPPO memory (docs/hippo.md): no tensors, the matrices follow from the spec. It reads the
// first d_input channels and writes d_input * n coefficients, so both must fit in d_model.
Status AddHippo(TensorList& list, const fb::HippoSpec& spec, int64_t d_model,
                const std::string& where) {
  RECUR_RETURN_IF_ERROR(RequirePositive(where, {{"n", spec.n()}, {"d_input", spec.d_input()}}));
  const std::string measure = spec.measure() ? spec.measure()->str() : "";
  if (measure != "legs" && measure != "legt" && measure != "lagt" && measure != "fourier") {
    return InvalidArgument(where + "measure must be legs, legt, lagt or fourier, not '" + measure +
                           "'");
  }
  if (static_cast<int64_t>(spec.n()) * spec.d_input() > d_model) {
    return InvalidArgument(where + "d_input * n (" + std::to_string(spec.d_input()) + " * " +
                           std::to_string(spec.n()) + ") coefficients must fit in d_model (" +
                           std::to_string(d_model) + ")");
  }
  if (!(spec.dt() >= 0.0) || !std::isfinite(spec.dt()) || !(spec.theta() >= 0.0) ||
      !std::isfinite(spec.theta())) {
    return InvalidArgument(where + "dt and theta must be finite and not negative (0: default)");
  }
  (void)list;
  return Status::Ok();
}

// S4D (state-spaces/s4 s4d.py): per channel M modes (d_state / 2 complex, or d_state real for
// init "real"); C as [.., 2] (re, im); out_proj is the GLU's [2 d_model, d_model] (or square).
Status AddS4d(TensorList& list, const fb::S4dSpec& spec, int64_t d_model,
              const std::string& where) {
  RECUR_RETURN_IF_ERROR(RequirePositive(where, {{"d_state", spec.d_state()}}));
  const std::string init = spec.init() ? spec.init()->str() : "lin";
  const int64_t modes = init == "real" ? spec.d_state() : spec.d_state() / 2;
  if (modes <= 0) return InvalidArgument(where + "d_state must be at least 2 for complex modes");
  if (!ValidActivation(spec.activation())) {
    return InvalidArgument(where + "unknown activation " +
                           std::to_string(static_cast<int>(spec.activation())));
  }
  list.Vector("mixer.log_dt", {d_model});
  list.Vector("mixer.log_A_real", {d_model, modes});
  list.Vector("mixer.A_imag", {d_model, modes});
  list.Vector("mixer.C", {d_model, modes, 2});
  list.Vector("mixer.D", {d_model});
  const int64_t out = spec.glu() ? 2 * d_model : d_model;
  list.Matrix("mixer.out_proj.weight", {out, d_model});
  list.Vector("mixer.out_proj.bias", {out});
  return Status::Ok();
}

// A string field that must be one of `allowed` ("" or absent reads as allowed[0]).
Status OneOf(const std::string& where, const char* field, const flatbuffers::String* value,
             std::initializer_list<const char*> allowed, std::string* out) {
  *out = value == nullptr || value->size() == 0 ? std::string(*allowed.begin()) : value->str();
  std::string names;
  for (const char* a : allowed) {
    if (*out == a) return Status::Ok();
    names += names.empty() ? a : std::string(", ") + a;
  }
  return InvalidArgument(where + field + " '" + *out + "' is not one of " + names);
}

// Linear attention / retention / GLA (docs/attention.md).
Status AddLinearAttention(TensorList& list, const fb::LinearAttentionSpec& spec, int64_t d_model,
                          const std::string& where) {
  RECUR_RETURN_IF_ERROR(RequirePositive(where, {{"n_heads", spec.n_heads()},
                                                {"head_dim", spec.head_dim()},
                                                {"chunk_size", spec.chunk_size()}}));
  std::string phi, decay, rope;
  RECUR_RETURN_IF_ERROR(OneOf(where, "feature_map", spec.feature_map(),
                              {"identity", "elu1", "relu", "exp"}, &phi));
  RECUR_RETURN_IF_ERROR(OneOf(where, "decay", spec.decay(), {"none", "fixed", "gate"}, &decay));
  RECUR_RETURN_IF_ERROR(OneOf(where, "rope", spec.rope(), {"none", "interleaved", "half"}, &rope));
  if (rope != "none" && spec.head_dim() % 2 != 0) {
    return InvalidArgument(where + "RoPE needs an even head_dim, not " +
                           std::to_string(spec.head_dim()));
  }
  if (spec.normalise() && phi == "identity") {
    return InvalidArgument(where +
                           "normalise needs a positive feature map (elu1, relu or exp): with "
                           "identity features the denominator can be zero or negative");
  }
  if (!(spec.norm_eps() >= 0.0f) || !std::isfinite(spec.norm_eps())) {
    return InvalidArgument(where + "norm_eps must be a finite non-negative number");
  }
  if (spec.gate_rank() < 0) return InvalidArgument(where + "gate_rank must not be negative");
  if (!(spec.gate_normaliser() > 0.0f) || !std::isfinite(spec.gate_normaliser())) {
    return InvalidArgument(where + "gate_normaliser must be a finite positive number");
  }
  if (!(spec.rope_base() > 0.0f) || !std::isfinite(spec.rope_base())) {
    return InvalidArgument(where + "rope_base must be a finite positive number");
  }
  const int64_t inner = static_cast<int64_t>(spec.n_heads()) * spec.head_dim();
  list.Matrix("attn.q.weight", {inner, d_model});
  list.Matrix("attn.k.weight", {inner, d_model});
  list.Matrix("attn.v.weight", {inner, d_model});
  if (spec.output_gate()) list.Matrix("attn.g.weight", {inner, d_model});
  if (decay == "gate") {
    if (spec.gate_rank() > 0) {
      list.Matrix("attn.gk1.weight", {spec.gate_rank(), d_model});
      list.Matrix("attn.gk2.weight", {inner, spec.gate_rank()});
    } else {
      list.Matrix("attn.gk.weight", {inner, d_model});
    }
    list.Vector("attn.gk.bias", {inner});
  }
  if (spec.head_norm()) list.Vector("attn.norm.weight", {spec.head_dim()});
  list.Matrix("attn.o.weight", {d_model, inner});
  return Status::Ok();
}

// Softmax attention (MHA / GQA / MQA) with a KV cache, a window or recomputation.
Status AddSoftmaxAttention(TensorList& list, const fb::SoftmaxAttentionSpec& spec,
                           int64_t d_model, const std::string& where) {
  RECUR_RETURN_IF_ERROR(RequirePositive(where, {{"n_heads", spec.n_heads()},
                                                {"n_kv_heads", spec.n_kv_heads()},
                                                {"head_dim", spec.head_dim()}}));
  if (spec.n_heads() % spec.n_kv_heads() != 0) {
    return InvalidArgument(where + "n_kv_heads (" + std::to_string(spec.n_kv_heads()) +
                           ") must divide n_heads (" + std::to_string(spec.n_heads()) + ")");
  }
  std::string rope, mode;
  RECUR_RETURN_IF_ERROR(OneOf(where, "rope", spec.rope(), {"none", "interleaved", "half"}, &rope));
  RECUR_RETURN_IF_ERROR(
      OneOf(where, "mode", spec.mode(), {"kv_cache", "window", "recompute"}, &mode));
  if (rope != "none" && spec.head_dim() % 2 != 0) {
    return InvalidArgument(where + "RoPE needs an even head_dim, not " +
                           std::to_string(spec.head_dim()));
  }
  if (!(spec.rope_base() > 0.0f) || !std::isfinite(spec.rope_base())) {
    return InvalidArgument(where + "rope_base must be a finite positive number");
  }
  if (mode == "window") {
    RECUR_RETURN_IF_ERROR(RequirePositive(where, {{"window", spec.window()}}));
  } else if (spec.max_context() <= 0) {
    return InvalidArgument(where + "max_context must be positive in " + mode +
                           " mode (the state is allocated once for that many tokens), not " +
                           std::to_string(spec.max_context()));
  }
  const int64_t q_dim = static_cast<int64_t>(spec.n_heads()) * spec.head_dim();
  const int64_t kv_dim = static_cast<int64_t>(spec.n_kv_heads()) * spec.head_dim();
  // The state is rows * row floats, allocated once: refuse sizes no machine holds (and whose
  // byte count would overflow) here rather than at allocation.
  const double rows = mode == "window" ? spec.window() : static_cast<double>(spec.max_context());
  const double row_floats = mode == "recompute" ? d_model : 2.0 * static_cast<double>(kv_dim);
  if (rows * row_floats * 4.0 > static_cast<double>(int64_t{1} << 50)) {
    return InvalidArgument(where + (mode == "window" ? "window" : "max_context") + " of " +
                           std::to_string(static_cast<int64_t>(rows)) +
                           " tokens needs a state beyond 1 PiB");
  }
  list.Matrix("attn.q.weight", {q_dim, d_model});
  list.Matrix("attn.k.weight", {kv_dim, d_model});
  list.Matrix("attn.v.weight", {kv_dim, d_model});
  list.Matrix("attn.o.weight", {d_model, q_dim});
  return Status::Ok();
}

}  // namespace

const char* BlockKindName(fb::BlockSpec kind) {
  switch (kind) {
    case fb::BlockSpec::NONE:
      return "none";
    case fb::BlockSpec::Mamba1Spec:
      return "mamba1";
    case fb::BlockSpec::Mamba2Spec:
      return "mamba2";
    case fb::BlockSpec::RwkvSpec:
      return "rwkv";
    case fb::BlockSpec::HippoSpec:
      return "hippo";
    case fb::BlockSpec::S4dSpec:
      return "s4d";
    case fb::BlockSpec::LinearAttentionSpec:
      return "linear_attention";
    case fb::BlockSpec::SoftmaxAttentionSpec:
      return "softmax_attention";
    case fb::BlockSpec::MlpSpec:
      return "mlp";
    case fb::BlockSpec::PoolSpec:
      return "pool";
  }
  return "unknown";
}

Result<std::vector<ExpectedTensor>> ExpectedTensors(const fb::Model& model) {
  TensorList list;
  const int64_t d_model = model.d_model();
  if (d_model <= 0) {
    return InvalidArgument("model: d_model must be positive, not " + std::to_string(d_model));
  }
  if (!ValidNorm(model.final_norm())) {
    return InvalidArgument("model: unknown final_norm kind " +
                           std::to_string(static_cast<int>(model.final_norm())));
  }

  // Input: token embeddings or a projection of feature frames.
  switch (model.input_kind()) {
    case fb::InputKind::Tokens:
      if (model.vocab_size() <= 0) {
        return InvalidArgument("model: tokens input needs a positive vocab_size, not " +
                               std::to_string(model.vocab_size()));
      }
      list.Matrix("embed.weight", {model.vocab_size(), d_model});
      break;
    case fb::InputKind::Frames:
      if (model.input_size() <= 0) {
        return InvalidArgument("model: frames input needs a positive input_size, not " +
                               std::to_string(model.input_size()));
      }
      list.Matrix("input_proj.weight", {d_model, model.input_size()});
      list.Vector("input_proj.bias", {d_model});
      break;
    default:
      return InvalidArgument("model: unknown input_kind " +
                             std::to_string(static_cast<int>(model.input_kind())));
  }

  // Layers, each [norm, block] with a residual add.
  const auto* layers = model.layers();
  const uint32_t n_layers = layers == nullptr ? 0 : layers->size();
  for (uint32_t i = 0; i < n_layers; ++i) {
    const fb::Layer* layer = layers->Get(i);
    const std::string index = std::to_string(i);
    const fb::BlockSpec kind = layer == nullptr ? fb::BlockSpec::NONE : layer->block_type();
    const std::string where = "layer " + index + " (" + BlockKindName(kind) + "): ";
    if (layer == nullptr || kind == fb::BlockSpec::NONE || layer->block() == nullptr) {
      return InvalidArgument("layer " + index + ": no block spec");
    }
    if (!ValidNorm(layer->norm())) {
      return InvalidArgument(where + "unknown norm kind " +
                             std::to_string(static_cast<int>(layer->norm())));
    }
    if (!(layer->norm_eps() >= 0.0f) || !std::isfinite(layer->norm_eps())) {
      return InvalidArgument(where + "norm_eps must be a finite non-negative number");
    }
    list.SetPrefix("layers." + index + ".");
    AddNorm(list, layer->norm(), "norm", d_model);
    switch (kind) {
      case fb::BlockSpec::MlpSpec:
        RECUR_RETURN_IF_ERROR(AddMlp(list, *layer->block_as_MlpSpec(), d_model, where));
        break;
      case fb::BlockSpec::Mamba1Spec:
        RECUR_RETURN_IF_ERROR(AddMamba1(list, *layer->block_as_Mamba1Spec(), d_model, where));
        break;
      case fb::BlockSpec::PoolSpec: {
        const flatbuffers::String* mode = layer->block_as_PoolSpec()->mode();
        if (mode != nullptr && mode->str() != "mean" && !mode->str().empty()) {
          return InvalidArgument(where + "unknown pool mode '" + mode->str() + "' (mean)");
        }
        break;  // No tensors.
      }
      case fb::BlockSpec::Mamba2Spec:
        RECUR_RETURN_IF_ERROR(AddMamba2(list, *layer->block_as_Mamba2Spec(), d_model, where));
        break;
      case fb::BlockSpec::RwkvSpec:
        RECUR_RETURN_IF_ERROR(
            AddRwkv(list, *layer->block_as_RwkvSpec(), layer->norm(), d_model, where));
        break;
      case fb::BlockSpec::HippoSpec:
        RECUR_RETURN_IF_ERROR(AddHippo(list, *layer->block_as_HippoSpec(), d_model, where));
        break;
      case fb::BlockSpec::S4dSpec:
        RECUR_RETURN_IF_ERROR(AddS4d(list, *layer->block_as_S4dSpec(), d_model, where));
        break;
      case fb::BlockSpec::LinearAttentionSpec:
        RECUR_RETURN_IF_ERROR(
            AddLinearAttention(list, *layer->block_as_LinearAttentionSpec(), d_model, where));
        break;
      case fb::BlockSpec::SoftmaxAttentionSpec:
        RECUR_RETURN_IF_ERROR(
            AddSoftmaxAttention(list, *layer->block_as_SoftmaxAttentionSpec(), d_model, where));
        break;
      default:
        return InvalidArgument("layer " + index + ": unknown block kind " +
                               std::to_string(static_cast<int>(kind)));
    }
  }
  list.SetPrefix("");

  // Final norm, then the output head.
  if (!(model.final_norm_eps() >= 0.0f) || !std::isfinite(model.final_norm_eps())) {
    return InvalidArgument("model: final_norm_eps must be a finite non-negative number");
  }
  AddNorm(list, model.final_norm(), "norm_f", d_model);
  switch (model.output_kind()) {
    case fb::OutputKind::Logits: {
      if (model.vocab_size() <= 0) {
        return InvalidArgument("model: logits output needs a positive vocab_size, not " +
                               std::to_string(model.vocab_size()));
      }
      if (model.output_size() != 0 && model.output_size() != model.vocab_size()) {
        return InvalidArgument("model: logits output_size (" + std::to_string(model.output_size()) +
                               ") must equal vocab_size (" + std::to_string(model.vocab_size()) +
                               ")");
      }
      if (model.tie_embeddings()) {
        if (model.input_kind() != fb::InputKind::Tokens) {
          return InvalidArgument(
              "model: tie_embeddings needs tokens input (there is no embed.weight to share)");
        }
      } else {
        list.Matrix("head.weight", {model.vocab_size(), d_model});
      }
      break;
    }
    case fb::OutputKind::Features:
      if (model.output_size() <= 0) {
        return InvalidArgument("model: features output needs a positive output_size, not " +
                               std::to_string(model.output_size()));
      }
      if (model.tie_embeddings()) {
        return InvalidArgument("model: tie_embeddings applies to logits output only");
      }
      list.Matrix("output_proj.weight", {model.output_size(), d_model});
      list.Vector("output_proj.bias", {model.output_size()});
      break;
    default:
      return InvalidArgument("model: unknown output_kind " +
                             std::to_string(static_cast<int>(model.output_kind())));
  }
  return list.Take();
}

}  // namespace recur
