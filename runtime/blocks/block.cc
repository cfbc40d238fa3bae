#include "runtime/blocks/block.h"

#include "formats/block_tensors.h"
#include "ops/matmul.h"
#include "ops/matvec.h"

#include <cstdio>

namespace recur {
namespace {

std::string Kv(const char* key, long long value) {
  return std::string(key) + "=" + std::to_string(value);
}

// "dt=0.001": a real-valued field, shortest form.
std::string Num(const char* key, double value) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%s=%g", key, value);
  return buf;
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
    case fb::BlockSpec::PoolSpec: return PlanPool(model, *layer.block_as_PoolSpec(), tokens);
    case fb::BlockSpec::Mamba1Spec: return PlanMamba1(model, *layer.block_as_Mamba1Spec(), tokens);
    case fb::BlockSpec::Mamba2Spec: return PlanMamba2(model, *layer.block_as_Mamba2Spec(), tokens);
    case fb::BlockSpec::LinearAttentionSpec:
      return PlanLinearAttention(model, *layer.block_as_LinearAttentionSpec(), tokens);
    case fb::BlockSpec::SoftmaxAttentionSpec:
      return PlanSoftmaxAttention(model, *layer.block_as_SoftmaxAttentionSpec(), tokens);
    case fb::BlockSpec::RwkvSpec: return PlanRwkv(model, *layer.block_as_RwkvSpec(), tokens);
    case fb::BlockSpec::HippoSpec: return PlanHippo(model, *layer.block_as_HippoSpec(), tokens);
    case fb::BlockSpec::S4dSpec: return PlanS4d(model, *layer.block_as_S4dSpec(), tokens);
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
    case fb::BlockSpec::RwkvSpec: {
      const auto& s = *layer.block_as_RwkvSpec();
      std::string v = "v" + std::to_string(s.version());
      if (s.version() == 5) v += "." + std::to_string(s.minor());
      return Join({v, s.version() >= 5 ? Kv("heads", s.n_heads()) : "",
                   s.version() >= 5 ? Kv("head_size", s.head_size()) : "", Kv("d_ffn", s.d_ffn()),
                   s.lora_mix() > 0 ? Kv("lora_mix", s.lora_mix()) : "",
                   s.lora_decay() > 0 ? Kv("lora_w", s.lora_decay()) : "",
                   s.lora_a() > 0 ? Kv("lora_a", s.lora_a()) : "",
                   s.lora_v() > 0 ? Kv("lora_v", s.lora_v()) : "",
                   s.lora_g() > 0 ? Kv("lora_g", s.lora_g()) : "",
                   s.version() >= 5 ? "gn_eps=" + std::to_string(s.group_norm_eps()) : ""});
    }
    case fb::BlockSpec::HippoSpec: {
      const auto& s = *layer.block_as_HippoSpec();
      return Join({std::string("measure=") + (s.measure() ? s.measure()->str() : "?"),
                   Kv("n", s.n()), Kv("d_input", s.d_input()),
                   std::string("method=") + (s.method() ? s.method()->str() : "?"),
                   s.dt() > 0 ? Num("dt", s.dt()) : std::string(),
                   s.theta() > 0 ? Num("theta", s.theta()) : std::string()});
    }
    case fb::BlockSpec::S4dSpec: {
      const auto& s = *layer.block_as_S4dSpec();
      return Join({Kv("d_state", s.d_state()),
                   std::string("init=") + (s.init() ? s.init()->str() : "lin"),
                   std::string("disc=") + (s.discretisation() ? s.discretisation()->str() : "zoh"),
                   std::string("act=") + fb::EnumNameActivation(s.activation()),
                   s.glu() ? "glu" : ""});
    }
    case fb::BlockSpec::LinearAttentionSpec: {
      const auto& s = *layer.block_as_LinearAttentionSpec();
      const auto str = [](const flatbuffers::String* v, const char* d) {
        return v ? v->str() : std::string(d);
      };
      return Join({Kv("heads", s.n_heads()), Kv("head_dim", s.head_dim()),
                   "phi=" + str(s.feature_map(), "identity"), s.normalise() ? "normalise" : "",
                   "decay=" + str(s.decay(), "none"),
                   str(s.rope(), "none") == "none" ? "" : "rope=" + str(s.rope(), "none"),
                   s.output_gate() ? "output_gate" : "", s.head_norm() ? "head_norm" : "",
                   Kv("chunk", s.chunk_size())});
    }
    case fb::BlockSpec::SoftmaxAttentionSpec: {
      const auto& s = *layer.block_as_SoftmaxAttentionSpec();
      const std::string mode = s.mode() && s.mode()->size() ? s.mode()->str() : "kv_cache";
      const std::string rope = s.rope() && s.rope()->size() ? s.rope()->str() : "none";
      return Join({Kv("heads", s.n_heads()), Kv("kv_heads", s.n_kv_heads()),
                   Kv("head_dim", s.head_dim()), rope == "none" ? "" : "rope=" + rope,
                   "mode=" + mode, mode == "window" ? Kv("window", s.window()) : "",
                   mode == "window" ? "" : Kv("max_context", s.max_context())});
    }
    case fb::BlockSpec::PoolSpec: return "mean";
    default: return "";
  }
}

void ProjectRows(const ops::WeightView& w, const float* in, size_t T, const float* bias,
                 float* out, const Threads& threads) {
  // 64 rows per task: a multiple of every target's lane count, and at least a few KiB of weights.
  threads.ParallelFor(w.rows, 64, [&](size_t begin, size_t end) {
    if (T == 1) {
      ops::MatVec(w, in, bias, out, begin, end, StreamSource(threads));
    } else {
      ops::MatMul(w, in, T, bias, out, begin, end, threads.SlotScratch());
    }
  });
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
    case fb::BlockSpec::PoolSpec: return MakePool(ctx);
    case fb::BlockSpec::Mamba1Spec: return MakeMamba1(ctx);
    case fb::BlockSpec::Mamba2Spec: return MakeMamba2(ctx);
    case fb::BlockSpec::LinearAttentionSpec: return MakeLinearAttention(ctx);
    case fb::BlockSpec::SoftmaxAttentionSpec: return MakeSoftmaxAttention(ctx);
    case fb::BlockSpec::RwkvSpec: return MakeRwkv(ctx);
    case fb::BlockSpec::HippoSpec: return MakeHippo(ctx);
    case fb::BlockSpec::S4dSpec: return MakeS4d(ctx);
    default:
      return Unsupported(ctx.file.path() + ": layer " + std::to_string(ctx.index) + " is a '" +
                         BlockKindName(ctx.layer.block_type()) +
                         "' block, which this build cannot run yet (inspect and dump work)");
  }
}

}  // namespace recur
