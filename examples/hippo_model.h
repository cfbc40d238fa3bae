// Building a HiPPO memory model (.recur), shared by `recur hippo`, examples/hippo_demo.cc and
// the tests: frames of `channels` samples -> identity input projection -> one hippo layer (no
// norm, no residual) -> an output projection that either passes the coefficients through or
// evaluates the Legendre reconstruction at `recon` points of the window (LegS: r = j/(recon-1)
// of the whole history; LegT: s = j/(recon-1) of the window back from now).
//
// The file also holds `hippo.A` and `hippo.B` (f64 or f32) for export with `recur dump`: the
// discretised (Abar, Bbar) in the state-spaces sign (x+ = Abar x + Bbar u). LegS is time-varying
// (A/t, B/t), so for it they are the continuous state-spaces pair (A_ss = -A_paper, B).
#pragma once

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "formats/recur_writer.h"
#include "ops/hippo.h"

namespace recur::hippo_model {

struct Options {
  std::string measure = "legs";
  int n = 64;
  int channels = 1;
  double dt = 0.0;     // 0: the block's default (1 per sample).
  double theta = 0.0;  // 0: the block's default (n samples).
  std::string method = "bilinear";
  int recon = 0;              // 0: output the coefficients.
  DType dtype = DType::kF64;  // Of hippo.A / hippo.B.
};

// The matrices stored as hippo.A / hippo.B (see above), in double.
inline Result<ops::hippo::StateSpace> ExportedMatrices(const Options& o) {
  namespace hp = ops::hippo;
  RECUR_ASSIGN_OR_RETURN(const hp::Measure measure, hp::ParseMeasure(o.measure));
  const double dt = o.dt > 0 ? o.dt : 1.0;
  const double theta = o.theta > 0 ? o.theta : o.n * dt;
  const hp::StateSpace cont =
      hp::Transition(measure, static_cast<size_t>(o.n), theta, hp::Convention::kStateSpaces);
  if (measure == hp::Measure::kLegS) return cont;
  RECUR_ASSIGN_OR_RETURN(const hp::Method method, hp::ParseMethod(o.method));
  return hp::Discretise(cont, dt, method);
}

// Rows of the reconstruction map for one channel: [recon, n].
inline std::vector<double> ReconstructionRows(const Options& o) {
  namespace hp = ops::hippo;
  const size_t n = static_cast<size_t>(o.n), p = static_cast<size_t>(o.recon);
  std::vector<double> rows(p * n);
  std::vector<double> c(n, 0.0), grid(p);
  for (size_t j = 0; j < p; ++j) grid[j] = p == 1 ? 1.0 : static_cast<double>(j) / (p - 1);
  for (size_t i = 0; i < n; ++i) {
    std::fill(c.begin(), c.end(), 0.0);
    c[i] = 1.0;
    const std::vector<double> col =
        o.measure == "legt" ? hp::LegtReconstruct(c.data(), n, grid) : [&] {
          std::vector<double> x(p);
          for (size_t j = 0; j < p; ++j) x[j] = 2 * grid[j] - 1;
          return hp::LegendreReconstruct(c.data(), n, x);
        }();
    for (size_t j = 0; j < p; ++j) rows[j * n + i] = col[j];
  }
  return rows;
}

// Holds the tensors' bytes until the writer has written them.
struct Built {
  std::vector<float> input_proj, input_bias, output_proj, output_bias;
  std::vector<double> a64, b64;
  std::vector<float> a32, b32;
};

inline Status Write(const Options& o, const std::string& path) {
  if (o.n <= 0 || o.channels <= 0)
    return InvalidArgument("hippo: --n and channels must be positive");
  if (o.recon < 0) return InvalidArgument("hippo: --recon must not be negative");
  if (o.recon > 0 && o.measure != "legs" && o.measure != "legt") {
    return InvalidArgument("hippo: --recon needs a Legendre measure (legs or legt), not " +
                           o.measure);
  }
  if (o.dtype != DType::kF64 && o.dtype != DType::kF32) {
    return InvalidArgument("hippo: hippo.A / hippo.B are stored as f64 or f32");
  }
  if (o.measure == "legs" && o.method != "euler" && o.method != "backward" &&
      o.method != "bilinear") {
    return InvalidArgument(
        "hippo: LegS runs euler, backward or bilinear (its exact update needs "
        "a matrix exponential per sample), not " +
        o.method);
  }
  RECUR_ASSIGN_OR_RETURN(const ops::hippo::StateSpace ab, ExportedMatrices(o));
  const int64_t n = o.n, ch = o.channels, d_model = n * ch;
  const int64_t out_per = o.recon > 0 ? o.recon : n;
  fb::ModelT m;
  m.architecture = "hippo";
  m.d_model = static_cast<int32_t>(d_model);
  m.input_kind = fb::InputKind::Frames;
  m.input_size = static_cast<int32_t>(ch);
  m.output_kind = fb::OutputKind::Features;
  m.output_size = static_cast<int32_t>(out_per * ch);
  m.final_norm = fb::NormKind::None;
  auto layer = std::make_unique<fb::LayerT>();
  fb::HippoSpecT spec;
  spec.measure = o.measure;
  spec.n = o.n;
  spec.d_input = o.channels;
  spec.dt = o.dt;
  spec.theta = o.theta;
  spec.method = o.method;
  layer->block.Set(std::move(spec));
  layer->norm = fb::NormKind::None;
  layer->residual = false;
  m.layers.push_back(std::move(layer));
  auto kv = std::make_unique<fb::KeyValueT>();
  kv->key = "hippo.matrices";
  kv->value = o.measure == "legs" ? "continuous (A, B), state-spaces sign; LegS runs A/t, B/t"
                                  : "discretised (Abar, Bbar), state-spaces sign, dt and method";
  m.metadata.push_back(std::move(kv));

  auto b = std::make_shared<Built>();
  b->input_proj.assign(d_model * ch, 0.0f);
  for (int64_t i = 0; i < ch; ++i) b->input_proj[i * ch + i] = 1.0f;
  b->input_bias.assign(d_model, 0.0f);
  b->output_proj.assign(out_per * ch * d_model, 0.0f);
  const std::vector<double> rows = o.recon > 0 ? ReconstructionRows(o) : std::vector<double>();
  for (int64_t c = 0; c < ch; ++c) {
    for (int64_t j = 0; j < out_per; ++j) {
      float* row = b->output_proj.data() + (c * out_per + j) * d_model + c * n;
      if (o.recon > 0) {
        for (int64_t i = 0; i < n; ++i) row[i] = static_cast<float>(rows[j * n + i]);
      } else {
        row[j] = 1.0f;
      }
    }
  }
  b->output_bias.assign(out_per * ch, 0.0f);
  b->a64 = ab.A.a;
  b->b64 = ab.B;
  b->a32.assign(b->a64.begin(), b->a64.end());
  b->b32.assign(b->b64.begin(), b->b64.end());

  RecurWriter w(std::move(m));
  RECUR_RETURN_IF_ERROR(
      w.AddTensorFromMemory("input_proj.weight", DType::kF32, {d_model, ch}, b->input_proj.data()));
  RECUR_RETURN_IF_ERROR(
      w.AddTensorFromMemory("input_proj.bias", DType::kF32, {d_model}, b->input_bias.data()));
  RECUR_RETURN_IF_ERROR(w.AddTensorFromMemory("output_proj.weight", DType::kF32,
                                              {out_per * ch, d_model}, b->output_proj.data()));
  RECUR_RETURN_IF_ERROR(w.AddTensorFromMemory("output_proj.bias", DType::kF32, {out_per * ch},
                                              b->output_bias.data()));
  const bool f64 = o.dtype == DType::kF64;
  RECUR_RETURN_IF_ERROR(w.AddTensorFromMemory(
      "hippo.A", o.dtype, {n, n},
      f64 ? static_cast<const void*>(b->a64.data()) : static_cast<const void*>(b->a32.data())));
  RECUR_RETURN_IF_ERROR(w.AddTensorFromMemory(
      "hippo.B", o.dtype, {n},
      f64 ? static_cast<const void*>(b->b64.data()) : static_cast<const void*>(b->b32.data())));
  return w.Write(path);
}

}  // namespace recur::hippo_model
