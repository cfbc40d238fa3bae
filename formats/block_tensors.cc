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
      case fb::BlockSpec::Mamba2Spec:
        RECUR_RETURN_IF_ERROR(AddMamba2(list, *layer->block_as_Mamba2Spec(), d_model, where));
        break;
      case fb::BlockSpec::RwkvSpec:
      case fb::BlockSpec::HippoSpec:
      case fb::BlockSpec::S4dSpec:
      case fb::BlockSpec::LinearAttentionSpec:
      case fb::BlockSpec::SoftmaxAttentionSpec:
        return Unsupported(where + "block kind '" + BlockKindName(kind) +
                           "' is not supported by this build yet");
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
