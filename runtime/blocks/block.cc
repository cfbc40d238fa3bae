#include "runtime/blocks/block.h"

namespace recur {

LayerPlan PlanLayer(const fb::Model& model, const fb::Layer& layer, size_t tokens) {
  switch (layer.block_type()) {
    case fb::BlockSpec::MlpSpec: return PlanMlp(model, *layer.block_as_MlpSpec(), tokens);
    case fb::BlockSpec::Mamba1Spec: return PlanMamba1(model, *layer.block_as_Mamba1Spec(), tokens);
    case fb::BlockSpec::Mamba2Spec: return PlanMamba2(model, *layer.block_as_Mamba2Spec(), tokens);
    default: return LayerPlan{.known = false};
  }
}

}  // namespace recur

namespace recur {
namespace {

std::string Kv(const char* key, long long value) { return std::string(key) + "=" + std::to_string(value); }

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

std::string DescribeLayer(const fb::Layer& layer) {
  switch (layer.block_type()) {
    case fb::BlockSpec::MlpSpec: {
      const auto& s = *layer.block_as_MlpSpec();
      return Join({Kv("d_ff", s.d_ff()), std::string("act=") + fb::EnumNameActivation(s.activation()),
                   s.glu() ? "glu" : "", s.bias() ? "bias" : ""});
    }
    case fb::BlockSpec::Mamba1Spec: {
      const auto& s = *layer.block_as_Mamba1Spec();
      return Join({Kv("d_inner", s.d_inner()), Kv("d_state", s.d_state()), Kv("d_conv", s.d_conv()),
                   Kv("dt_rank", s.dt_rank())});
    }
    case fb::BlockSpec::Mamba2Spec: {
      const auto& s = *layer.block_as_Mamba2Spec();
      return Join({Kv("d_inner", s.d_inner()), Kv("d_state", s.d_state()), Kv("d_conv", s.d_conv()),
                   Kv("heads", s.n_heads()), Kv("head_dim", s.head_dim()), Kv("groups", s.n_groups()),
                   Kv("chunk", s.chunk_size())});
    }
    default: return "";
  }
}

}  // namespace recur
