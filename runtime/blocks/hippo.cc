// hippo: a HiPPO memory cell over the first d_input channels of the residual stream, n
// coefficients per channel (ops/hippo.h, ops/hippo_scan.h). Its output is the coefficients,
// channel-major (out[i * n + j] = c_j of channel i), zero beyond d_input * n; a reconstruction
// is a linear map of them (an output projection holding Legendre values, as `recur hippo
// --recon` writes).
//
// The matrices are computed from the spec at load, in double, then stored as f32: LegS runs its
// O(n) scale-invariant update (euler, backward or bilinear in the sample index; the exact
// log-time update needs a matrix exponential per sample and is offline-only,
// ops::hippo::LegsStepExact); LegT, LagT and FouT run the dense update with (Abar, Bbar) from
// Discretise(dt, method).
//
// State: [n, d_input] coefficients, then the sample counter (a uint64 in two floats; LegS's
// 1/k needs it, and it makes the state self-contained for save/load).
#include "ops/hippo.h"

#include <cstring>
#include <vector>

#include "ops/hippo_scan.h"
#include "runtime/blocks/block.h"

namespace recur {
namespace {

namespace hp = ops::hippo;

// dt = 0 in a spec means one time unit per sample; theta = 0 a window of n samples.
double SpecDt(const fb::HippoSpec& s) { return s.dt() > 0 ? s.dt() : 1.0; }
double SpecTheta(const fb::HippoSpec& s) { return s.theta() > 0 ? s.theta() : s.n() * SpecDt(s); }

size_t StateFloats(const fb::HippoSpec& s) {
  return static_cast<size_t>(s.n()) * static_cast<size_t>(s.d_input()) + 2;
}

class HippoBlock final : public Block {
 public:
  HippoBlock(const fb::Model& model, const fb::HippoSpec& spec)
      : model_(model),
        spec_(spec),
        n_(static_cast<size_t>(spec.n())),
        d_(static_cast<size_t>(spec.d_input())),
        d_model_(static_cast<size_t>(model.d_model())) {}

  Status Init(const LayerContext& ctx) {
    const std::string where =
        ctx.file.path() + ": layer " + std::to_string(ctx.index) + " (hippo): ";
    RECUR_ASSIGN_OR_RETURN(measure_,
                           hp::ParseMeasure(spec_.measure() ? spec_.measure()->str() : ""));
    const std::string method =
        spec_.method() && spec_.method()->size() ? spec_.method()->str() : "bilinear";
    if (measure_ == hp::Measure::kLegS) {
      if (method == "euler") {
        legs_method_ = ops::LegsMethod::kEuler;
      } else if (method == "backward") {
        legs_method_ = ops::LegsMethod::kBackward;
      } else if (method == "bilinear") {
        legs_method_ = ops::LegsMethod::kBilinear;
      } else {
        return Unsupported(where + "LegS method '" + method +
                           "' needs a matrix exponential per sample; this block runs euler, "
                           "backward or bilinear");
      }
      return Status::Ok();
    }
    RECUR_ASSIGN_OR_RETURN(const hp::Method m, hp::ParseMethod(method));
    const hp::StateSpace cont =
        hp::Transition(measure_, n_, SpecTheta(spec_), hp::Convention::kStateSpaces);
    auto disc = hp::Discretise(cont, SpecDt(spec_), m);
    if (!disc.ok()) {
      Status s = disc.status();
      return s.Prepend(where);
    }
    abar_.assign(disc->A.a.begin(), disc->A.a.end());
    bbar_.assign(disc->B.begin(), disc->B.end());
    return Status::Ok();
  }

  LayerPlan Plan(size_t tokens) const override { return PlanHippo(model_, spec_, tokens); }

  void Step(const float* x, float* out, float* state, float* scratch,
            const Threads& threads) const override {
    Advance(x, out, state, scratch);
  }

  // Sample by sample through the same kernel call as Step, so the state is bit-identical; the
  // per-sample outputs are needed anyway, and the work is O(n d) per sample either way.
  void Prefill(const float* x, size_t tokens, float* out, float* state, float* scratch,
               const Threads& threads) const override {
    for (size_t t = 0; t < tokens; ++t) {
      Advance(x + t * d_model_, out + t * d_model_, state, scratch);
    }
  }

 private:
  void Advance(const float* x, float* out, float* state, float* scratch) const {
    uint64_t k = 0;
    std::memcpy(&k, state + n_ * d_, sizeof(k));
    if (measure_ == hp::Measure::kLegS) {
      ops::HippoLegsChunk(state, n_, d_, x, d_model_, 1, k, legs_method_, scratch);
    } else {
      ops::HippoDenseChunk(state, n_, d_, abar_.data(), bbar_.data(), x, d_model_, 1, scratch);
    }
    ++k;
    std::memcpy(state + n_ * d_, &k, sizeof(k));
    for (size_t i = 0; i < d_; ++i) {
      for (size_t j = 0; j < n_; ++j) out[i * n_ + j] = state[j * d_ + i];
    }
    std::memset(out + n_ * d_, 0, (d_model_ - n_ * d_) * sizeof(float));
  }

  const fb::Model& model_;
  const fb::HippoSpec& spec_;
  const size_t n_, d_, d_model_;
  hp::Measure measure_ = hp::Measure::kLegS;
  ops::LegsMethod legs_method_ = ops::LegsMethod::kBilinear;
  std::vector<float> abar_, bbar_;  // [n, n], [n]: time-invariant measures only.
};

}  // namespace

LayerPlan PlanHippo(const fb::Model& model, const fb::HippoSpec& spec, size_t tokens) {
  LayerPlan plan;
  plan.state_bytes = StateFloats(spec) * sizeof(float);
  plan.scratch_bytes = ops::HippoScanScratchFloats(static_cast<size_t>(spec.n()),
                                                   static_cast<size_t>(spec.d_input())) *
                       sizeof(float);
  return plan;
}

Result<std::unique_ptr<Block>> MakeHippo(const LayerContext& ctx) {
  auto block = std::make_unique<HippoBlock>(ctx.model, *ctx.layer.block_as_HippoSpec());
  RECUR_RETURN_IF_ERROR(block->Init(ctx));
  return std::unique_ptr<Block>(std::move(block));
}

}  // namespace recur
