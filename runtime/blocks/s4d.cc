// s4d: a diagonal LTI state-space layer per channel (S4D, state-spaces/s4 models/s4/s4d.py):
//   y = SSM(u) + D u,  out = out_proj(act(y)), GLU'd (first half * sigmoid(second half)) when glu.
// The SSM of channel h has M modes (N/2 complex conjugate pairs, or N real ones for the "real"
// init) with A = -exp(log_A_real) + i A_imag, B = 1 (folded into C as in s4d.py), step
// dt = exp(log_dt), discretised by ZOH or bilinear (ops/hippo.h) at load in double.
//
// Step runs the recurrence (ops/s4d_scan.h). Prefill runs the chunk as a causal convolution with
// the kernel K_l = 2 Re(C Abar^l Bbar) (precomputed at load for kConvLen taps), plus the response
// to the state carried in; the state after the chunk comes from the same recurrence kernel as
// Step, so Step and Prefill leave bit-identical state and outputs equal to rounding.
#include <algorithm>
#include <cmath>
#include <complex>
#include <cstring>
#include <vector>

#include "ops/activation.h"
#include "ops/elementwise.h"
#include "ops/hippo.h"
#include "ops/matmul.h"
#include "ops/matvec.h"
#include "ops/s4d_scan.h"
#include "runtime/blocks/block.h"

namespace recur {
namespace {

namespace hp = ops::hippo;

// Taps of the precomputed convolution kernel: the runtime's prefill chunk (longer chunks are run
// kConvLen tokens at a time). Memory: d_model * kConvLen floats.
constexpr size_t kConvLen = 256;
// Rows per thread task for the output projection (as in mlp.cc).
constexpr size_t kRowGrain = 64;

bool RealInit(const fb::S4dSpec& s) { return s.init() != nullptr && s.init()->str() == "real"; }

size_t Modes(const fb::S4dSpec& s) {
  const size_t n = static_cast<size_t>(s.d_state());
  return RealInit(s) ? n : std::max<size_t>(1, n / 2);
}

void Activate(fb::Activation act, float* x, size_t n) {
  switch (act) {
    case fb::Activation::SiLU:
      ops::SiLUInPlace(x, n);
      break;
    case fb::Activation::GELU:
      ops::GeluErfInPlace(x, n);
      break;
    case fb::Activation::GELUTanh:
      ops::GeluTanhInPlace(x, n);
      break;
    case fb::Activation::ReLU:
      ops::ReluInPlace(x, n);
      break;
    case fb::Activation::ReLUSquared:
      ops::ReluInPlace(x, n);
      ops::Mul(x, x, x, n);
      break;
    case fb::Activation::Identity:
      break;
  }
}

class S4dBlock final : public Block {
 public:
  S4dBlock(const fb::Model& model, const fb::S4dSpec& spec)
      : model_(model),
        spec_(spec),
        h_(static_cast<size_t>(model.d_model())),
        m_(Modes(spec)),
        out_rows_(spec.glu() ? 2 * h_ : h_) {}

  Status Init(const LayerContext& ctx) {
    const float* log_dt = ctx.Vector("mixer.log_dt");
    const float* log_a = ctx.Vector("mixer.log_A_real");
    const float* a_im = ctx.Vector("mixer.A_imag");
    const float* C = ctx.Vector("mixer.C");
    D_ = ctx.Vector("mixer.D");
    out_bias_ = ctx.Vector("mixer.out_proj.bias");
    RECUR_ASSIGN_OR_RETURN(out_proj_, ctx.Matrix("mixer.out_proj.weight"));
    if (!log_dt || !log_a || !a_im || !C || !D_ || !out_bias_) {
      return Internal(ctx.file.path() + ": s4d layer " + std::to_string(ctx.index) +
                      ": a checked tensor vanished");
    }
    std::string disc = spec_.discretisation() ? spec_.discretisation()->str() : "zoh";
    RECUR_ASSIGN_OR_RETURN(const hp::Method method, hp::ParseMethod(disc));
    if (method != hp::Method::kZoh && method != hp::Method::kBilinear) {
      return InvalidArgument(ctx.file.path() +
                             ": s4d discretisation must be zoh or bilinear, not " + disc);
    }
    const size_t HM = h_ * m_;
    for (auto* v : {&a_re_, &a_im_, &b_re_, &b_im_, &c_re_, &c_im_}) v->resize(HM);
    K_.assign(h_ * kConvLen, 0.0f);
    const double scale = RealInit(spec_) ? 1.0 : 2.0;
    std::vector<std::complex<double>> A(m_), B(m_, 1.0), Cc(m_), Ab(m_), Bb(m_);
    for (size_t c = 0; c < h_; ++c) {
      for (size_t m = 0; m < m_; ++m) {
        A[m] = {-std::exp(static_cast<double>(log_a[c * m_ + m])), a_im[c * m_ + m]};
        Cc[m] = {C[(c * m_ + m) * 2], C[(c * m_ + m) * 2 + 1]};
      }
      hp::S4dDiscretise(A.data(), B.data(), m_, std::exp(static_cast<double>(log_dt[c])), method,
                        Ab.data(), Bb.data());
      for (size_t m = 0; m < m_; ++m) {
        const size_t i = m * h_ + c;  // [modes, h]
        a_re_[i] = static_cast<float>(Ab[m].real());
        a_im_[i] = static_cast<float>(Ab[m].imag());
        b_re_[i] = static_cast<float>(Bb[m].real());
        b_im_[i] = static_cast<float>(Bb[m].imag());
        c_re_[i] = static_cast<float>(scale * Cc[m].real());
        c_im_[i] = static_cast<float>(scale * Cc[m].imag());
      }
      const std::vector<double> K =
          hp::S4dKernel(Cc.data(), Ab.data(), Bb.data(), m_, kConvLen, RealInit(spec_));
      for (size_t l = 0; l < kConvLen; ++l) K_[c * kConvLen + l] = static_cast<float>(K[l]);
    }
    params_ = {m_,           h_,           a_re_.data(), a_im_.data(),
               b_re_.data(), b_im_.data(), c_re_.data(), c_im_.data()};
    return Status::Ok();
  }

  LayerPlan Plan(size_t tokens) const override { return PlanS4d(model_, spec_, tokens); }

  void Step(const float* x, float* out, float* state, float* scratch,
            const Threads& threads) const override {
    float* y = scratch;       // [h]
    float* z = scratch + h_;  // [out_rows]
    ops::S4dScanChunk(params_, state, state + h_ * m_, x, h_, 1, y, h_);
    Finish(x, y, 1);
    threads.ParallelFor(out_rows_, kRowGrain, [&](size_t begin, size_t end) {
      ops::MatVec(out_proj_, y, out_bias_, z, begin, end, StreamSource(threads));
    });
    Glu(z, out, 1);
  }

  void Prefill(const float* x, size_t tokens, float* out, float* state, float* scratch,
               const Threads& threads) const override {
    float* y = scratch;                  // [tokens, h]
    float* z = y + tokens * h_;          // [tokens, out_rows]
    float* x0 = z + tokens * out_rows_;  // [2, modes, h]: a copy of the carried-in state
    for (size_t t0 = 0; t0 < tokens; t0 += kConvLen) {
      const size_t T = std::min(kConvLen, tokens - t0);
      const float* u = x + t0 * h_;
      float* yc = y + t0 * h_;
      // The response to the carried-in state (zero input), then the causal convolution.
      std::memcpy(x0, state, 2 * h_ * m_ * sizeof(float));
      ops::S4dScanChunk(params_, x0, x0 + h_ * m_, nullptr, h_, T, yc, h_);
      for (size_t t = 0; t < T; ++t) {
        float* yt = yc + t * h_;
        for (size_t l = 0; l <= t; ++l) {
          const float* ut = u + (t - l) * h_;
          for (size_t c = 0; c < h_; ++c) yt[c] += K_[c * kConvLen + l] * ut[c];
        }
      }
      // The state after the chunk: the recurrence Step runs, so both leave the same bits.
      ops::S4dScanChunk(params_, state, state + h_ * m_, u, h_, T, nullptr, 0);
    }
    Finish(x, y, tokens);
    threads.ParallelFor(out_rows_, kRowGrain, [&](size_t begin, size_t end) {
      ops::MatMul(out_proj_, y, tokens, out_bias_, z, begin, end, threads.SlotScratch());
    });
    Glu(z, out, tokens);
  }

 private:
  // y += D u, then the activation. u, y: [tokens, h].
  void Finish(const float* u, float* y, size_t tokens) const {
    for (size_t t = 0; t < tokens; ++t) {
      for (size_t c = 0; c < h_; ++c) y[t * h_ + c] += D_[c] * u[t * h_ + c];
    }
    Activate(spec_.activation(), y, tokens * h_);
  }

  // out = z[:h] * sigmoid(z[h:]) per token (or z itself without glu). z: [tokens, out_rows].
  void Glu(float* z, float* out, size_t tokens) const {
    for (size_t t = 0; t < tokens; ++t) {
      float* zt = z + t * out_rows_;
      if (spec_.glu()) {
        ops::SigmoidInPlace(zt + h_, h_);
        ops::Mul(zt, zt + h_, out + t * h_, h_);
      } else {
        std::memcpy(out + t * h_, zt, h_ * sizeof(float));
      }
    }
  }

  const fb::Model& model_;
  const fb::S4dSpec& spec_;
  const size_t h_, m_, out_rows_;
  ops::WeightView out_proj_;
  const float* out_bias_ = nullptr;
  const float* D_ = nullptr;
  std::vector<float> a_re_, a_im_, b_re_, b_im_, c_re_, c_im_;  // [modes, h]
  std::vector<float> K_;                                        // [h, kConvLen]
  ops::S4dParams params_;
};

}  // namespace

LayerPlan PlanS4d(const fb::Model& model, const fb::S4dSpec& spec, size_t tokens) {
  LayerPlan plan;
  const size_t h = static_cast<size_t>(model.d_model());
  const size_t m = Modes(spec);
  const size_t out_rows = spec.glu() ? 2 * h : h;
  plan.state_bytes = 2 * h * m * sizeof(float);  // Re and Im planes, [modes, h] each.
  plan.scratch_bytes = (tokens * (h + out_rows) + 2 * h * m) * sizeof(float);
  return plan;
}

Result<std::unique_ptr<Block>> MakeS4d(const LayerContext& ctx) {
  auto block = std::make_unique<S4dBlock>(ctx.model, *ctx.layer.block_as_S4dSpec());
  RECUR_RETURN_IF_ERROR(block->Init(ctx));
  return std::unique_ptr<Block>(std::move(block));
}

}  // namespace recur
