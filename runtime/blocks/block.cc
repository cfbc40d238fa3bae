#include "runtime/blocks/block.h"

#include "formats/block_tensors.h"

namespace recur {
namespace {

std::string Kv(const char* key, long long value) {
  return std::string(key) + "=" + std::to_string(value);
}

std::string Join(std::initializer_list<std::string> parts) {
  std::string s;
  for (const std::string& p : parts) {
    if (p.empty()) continue;
    if (!s.empty()) s += ' ';
    s += p;
  }
  return s;
}

}  // namespace

LayerPlan PlanLayer(const fb::Model& model, const fb::Layer& layer, size_t tokens) {
  switch (layer.block_type()) {
    case fb::BlockSpec::MlpSpec: return PlanMlp(model, *layer.block_as_MlpSpec(), tokens);
    case fb::BlockSpec::Mamba1Spec: return PlanMamba1(model, *layer.block_as_Mamba1Spec(), tokens);
    case fb::BlockSpec::Mamba2Spec: return PlanMamba2(model, *layer.block_as_Mamba2Spec(), tokens);
    default: return LayerPlan{.known = false};
  }
}

std::string DescribeLayer(const fb::Layer& layer) {
  switch (layer.block_type()) {
    case fb::BlockSpec::MlpSpec: {
      const auto& s = *layer.block_as_MlpSpec();
      return Join({Kv("d_ff", s.d_ff()),
                   std::string("act=") + fb::EnumNameActivation(s.activation()),
                   s.glu() ? "glu" : "", s.bias() ? "bias" : ""});
    }
    case fb::BlockSpec::Mamba1Spec: {
      const auto& s = *layer.block_as_Mamba1Spec();
      return Join({Kv("d_inner", s.d_inner()), Kv("d_state", s.d_state()),
                   Kv("d_conv", s.d_conv()), Kv("dt_rank", s.dt_rank())});
    }
    case fb::BlockSpec::Mamba2Spec: {
      const auto& s = *layer.block_as_Mamba2Spec();
      return Join({Kv("d_inner", s.d_inner()), Kv("d_state", s.d_state()),
                   Kv("d_conv", s.d_conv()), Kv("heads", s.n_heads()),
                   Kv("head_dim", s.head_dim()), Kv("groups", s.n_groups()),
                   Kv("chunk", s.chunk_size())});
    }
    default: return "";
  }
}

ops::WeightView WeightViewOf(const TensorView& t) {
  ops::WeightView w;
  switch (t.dtype) {
    case DType::kF16: w.type = ops::WeightType::kF16; break;
    case DType::kBF16: w.type = ops::WeightType::kBF16; break;
    case DType::kQ8_0: w.type = ops::WeightType::kQ8_0; break;
    default: w.type = ops::WeightType::kF32; break;
  }
  w.data = t.data;
  w.scales = t.scales;
  w.scale_type = t.scale_dtype == DType::kF32 ? ops::ScaleType::kF32 : ops::ScaleType::kF16;
  w.cols = t.rank == 0 ? 1 : static_cast<size_t>(t.shape[t.rank - 1]);
  w.rows = w.cols == 0 ? 0 : static_cast<size_t>(t.numel()) / w.cols;
  return w;
}

Result<ops::WeightView> LayerContext::Matrix(const std::string& name) const {
  const TensorView* t = file.Find(prefix + name);
  if (t == nullptr) return Internal(file.path() + ": tensor '" + prefix + name + "' vanished");
  return WeightViewOf(*t);
}

const float* LayerContext::Vector(const std::string& name) const {
  const TensorView* t = file.Find(prefix + name);
  if (t == nullptr || t->dtype != DType::kF32) return nullptr;
  return reinterpret_cast<const float*>(t->data);
}

Result<std::unique_ptr<Block>> MakeBlock(const LayerContext& ctx) {
  switch (ctx.layer.block_type()) {
    case fb::BlockSpec::MlpSpec: return MakeMlp(ctx);
    case fb::BlockSpec::Mamba1Spec: return MakeMamba1(ctx);
    case fb::BlockSpec::Mamba2Spec: return MakeMamba2(ctx);
    default:
      return Unsupported(ctx.file.path() + ": layer " + std::to_string(ctx.index) + " is a '" +
                         BlockKindName(ctx.layer.block_type()) +
                         "' block, which this build cannot run yet (inspect and dump work)");
  }
}

}  // namespace recur
