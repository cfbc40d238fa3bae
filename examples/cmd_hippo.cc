// recur hippo --measure legt|legs|lagt|fourier --n N [--theta X] --dt E --method ... -o M.recur:
// a HiPPO memory model (examples/hippo_model.h) that `recur stream` runs and `recur dump`
// exports (hippo.A, hippo.B).
#include <cstdio>

#include "examples/commands.h"
#include "examples/hippo_model.h"

namespace recur::cli {

Action AddHippo(CLI::App& app) {
  struct Opts {
    hippo_model::Options model;
    std::string output, dtype = "f64";
  };
  auto opts = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand(
      "hippo",
      "Build a HiPPO memory model: each frame's channels update N coefficients that summarise "
      "their whole history (legs) or a sliding window of length theta (legt), or a Laguerre "
      "(lagt) or Fourier memory. The file's hippo.A and hippo.B are the discretised matrices "
      "(x+ = A x + B u; LegS: the continuous pair, run as A/t, B/t). See docs/hippo.md.");
  sub->add_option("--measure", opts->model.measure, "legs, legt, lagt or fourier")
      ->required()
      ->check(CLI::IsMember({"legs", "legt", "lagt", "fourier"}));
  sub->add_option("--n", opts->model.n, "Coefficients per channel")
      ->required()
      ->check(CLI::Range(1, 4096));
  sub->add_option("--theta", opts->model.theta, "LegT window length (default: n * dt)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--dt", opts->model.dt, "Time step per sample (default 1)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--method", opts->model.method,
                  "Discretisation: euler, backward, bilinear or zoh (LegS: euler, backward or "
                  "bilinear)")
      ->check(CLI::IsMember({"euler", "backward", "bilinear", "zoh"}))
      ->capture_default_str();
  sub->add_option("--channels", opts->model.channels, "Samples per frame (default 1)")
      ->check(CLI::Range(1, 1 << 16));
  sub->add_option("--recon", opts->model.recon,
                  "Output the reconstruction at this many points of the window instead of the "
                  "coefficients (legs, legt)")
      ->check(CLI::Range(0, 1 << 16));
  sub->add_option("--dtype", opts->dtype, "Type of hippo.A / hippo.B: f64 or f32")
      ->check(CLI::IsMember({"f64", "f32"}))
      ->capture_default_str();
  sub->add_option("-o,--output", opts->output, "The .recur file to write")->required();
  return [opts] {
    opts->model.dtype = opts->dtype == "f32" ? DType::kF32 : DType::kF64;
    const Status s = hippo_model::Write(opts->model, opts->output);
    if (!s.ok()) return Fail(s.ToString());
    std::fprintf(stderr, "wrote %s: %s memory, n=%d over %d channel(s), %s\n", opts->output.c_str(),
                 opts->model.measure.c_str(), opts->model.n, opts->model.channels,
                 opts->model.method.c_str());
    return 0;
  };
}

}  // namespace recur::cli
