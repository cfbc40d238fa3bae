// hippo_demo: a synthetic sensor signal (tones, a chirp and noise) streamed through HiPPO-LegS
// memories of N = 16, 32, 64 and 128 coefficients with recur's runtime, one sample at a time in
// constant memory. Prints, for each N, the reconstruction error over the last window of the
// history, the streaming rate and the state size; then the raw kernel rate of a 64-channel memory;
// and writes an SVG plot of the signal and its reconstructions.
//
//   hippo_demo [--samples 4000] [--svg hippo_demo.svg]
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "examples/hippo_model.h"
#include "ops/hippo.h"
#include "ops/hippo_scan.h"
#include "runtime/recur.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// The sensor: 1000 samples per second of two tones, a rising chirp and a little noise (a fixed
// LCG, so every run plots the same signal).
std::vector<float> SensorSignal(size_t n, std::vector<float>* clean) {
  std::vector<float> u(n);
  clean->resize(n);
  uint64_t state = 0x9E3779B97F4A7C15ull;
  const double kPi = 3.14159265358979323846;
  for (size_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(i) / 1000.0;
    const double span = static_cast<double>(n) / 1000.0;
    // Chirp from 0.2 Hz to 2.5 Hz over the record.
    const double chirp = std::sin(2 * kPi * (0.2 * t + (2.5 - 0.2) / (2 * span) * t * t));
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    const double noise = (static_cast<double>(state >> 11) / 9007199254740992.0 - 0.5) * 0.1;
    (*clean)[i] = static_cast<float>(0.6 * std::sin(2 * kPi * 0.5 * t) +
                                     0.3 * std::sin(2 * kPi * 1.3 * t + 0.7) + 0.5 * chirp);
    u[i] = (*clean)[i] + static_cast<float>(noise);
  }
  return u;
}

struct Run {
  int n = 0;
  std::vector<double> recon;  // [samples]
  double rms = 0, max_err = 0, rms_clean = 0, samples_per_s = 0;
  size_t state_bytes = 0;
};

std::string Polyline(const std::vector<double>& y, double x0, double w, double ymid, double yscale,
                     const char* color, double width) {
  std::string s = "<polyline fill=\"none\" stroke=\"" + std::string(color) + "\" stroke-width=\"" +
                  std::to_string(width) + "\" points=\"";
  const size_t step = std::max<size_t>(1, y.size() / 1000);
  char buf[64];
  for (size_t i = 0; i < y.size(); i += step) {
    std::snprintf(buf, sizeof(buf), "%.1f,%.1f ", x0 + w * i / (y.size() - 1),
                  ymid - yscale * y[i]);
    s += buf;
  }
  return s + "\"/>\n";
}

bool WriteSvg(const std::string& path, const std::vector<float>& u, const std::vector<Run>& runs,
              size_t window) {
  const double H = 420, x0 = 50, pw = 880, ymid = 200, ys = 110;
  std::string svg =
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"960\" height=\"420\" "
      "font-family=\"sans-serif\" font-size=\"13\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  const double wx = x0 + pw * (u.size() - window) / (u.size() - 1);
  char buf[512];
  std::snprintf(buf, sizeof(buf),
                "<rect x=\"%.1f\" y=\"40\" width=\"%.1f\" height=\"320\" fill=\"#f2f2f2\"/>\n"
                "<text x=\"%.1f\" y=\"55\" fill=\"#666\">last window</text>\n",
                wx, x0 + pw - wx, wx + 5);
  svg += buf;
  std::vector<double> ud(u.begin(), u.end());
  svg += Polyline(ud, x0, pw, ymid, ys, "#999999", 1.0);
  const char* colors[] = {"#d62728", "#ff7f0e", "#2ca02c", "#1f77b4"};
  for (size_t i = 0; i < runs.size(); ++i) {
    svg += Polyline(runs[i].recon, x0, pw, ymid, ys, colors[i % 4], 1.4);
    std::snprintf(buf, sizeof(buf),
                  "<text x=\"%.0f\" y=\"%.0f\" fill=\"%s\">LegS N=%d  (last-window RMS %.3g)"
                  "</text>\n",
                  x0 + 10 + 220.0 * i, H - 25, colors[i % 4], runs[i].n, runs[i].rms);
    svg += buf;
  }
  std::snprintf(buf, sizeof(buf),
                "<text x=\"%.0f\" y=\"25\">Sensor signal (grey, %zu samples) and its HiPPO-LegS "
                "reconstruction from N coefficients, streamed one sample at a time</text>\n",
                x0, u.size());
  svg += buf;
  svg += "</svg>\n";
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  std::fwrite(svg.data(), 1, svg.size(), f);
  return std::fclose(f) == 0;
}

// Kernel rate of a LegS memory, N = 64 over 64 channels (what a multichannel sensor needs), and of
// the dense N x N update for comparison; channel-samples per second on one core.
void KernelRates() {
  const size_t n = 64, d = 64, T = 20000;
  std::vector<float> u(T * d);
  for (size_t i = 0; i < u.size(); ++i) u[i] = std::sin(0.001f * static_cast<float>(i));
  std::vector<float> state(n * d, 0.0f), scratch(recur::ops::HippoScanScratchFloats(n, d));
  double best = 1e9;
  for (int rep = 0; rep < 3; ++rep) {
    std::fill(state.begin(), state.end(), 0.0f);
    const auto t0 = Clock::now();
    recur::ops::HippoLegsChunk(state.data(), n, d, u.data(), d, T, 0,
                               recur::ops::LegsMethod::kBilinear, scratch.data());
    best = std::min(best, Seconds(t0));
  }
  auto dense = recur::ops::hippo::Discretise(
      recur::ops::hippo::Transition(recur::ops::hippo::Measure::kLegT, n, 1.0,
                                    recur::ops::hippo::Convention::kStateSpaces),
      0.01, recur::ops::hippo::Method::kZoh);
  std::vector<float> A(dense->A.a.begin(), dense->A.a.end()), B(dense->B.begin(), dense->B.end());
  double best_dense = 1e9;
  const size_t Td = T / 4;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = Clock::now();
    recur::ops::HippoDenseChunk(state.data(), n, d, A.data(), B.data(), u.data(), d, Td,
                                scratch.data());
    best_dense = std::min(best_dense, Seconds(t0));
  }
  std::printf(
      "\nkernel, one core: LegS N=64 over 64 channels (O(N) bilinear update): %.1f M "
      "channel-samples/s; dense 64x64 update: %.1f M channel-samples/s\n",
      T * d / best / 1e6, Td * d / best_dense / 1e6);
}

}  // namespace

int main(int argc, char** argv) {
  size_t samples = 4000;
  std::string svg_path = "hippo_demo.svg";
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--samples") && i + 1 < argc) {
      samples = std::strtoul(argv[++i], nullptr, 10);
    } else if (!std::strcmp(argv[i], "--svg") && i + 1 < argc) {
      svg_path = argv[++i];
    } else {
      std::fprintf(stderr, "usage: hippo_demo [--samples N] [--svg FILE.svg]\n");
      return 2;
    }
  }
  if (samples < 100) samples = 100;
  std::vector<float> clean;
  const std::vector<float> u = SensorSignal(samples, &clean);
  const size_t window = samples / 4;
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("hippo_demo-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);

  std::printf("HiPPO-LegS memory over a %zu-sample sensor signal (tones + chirp + noise)\n",
              samples);
  std::printf(
      "error: reconstruction of the last %zu samples from the final N coefficients, vs the\n"
      "signal and vs its noise-free part (the noise, RMS 0.029, is what N cannot keep)\n\n",
      window);
  std::printf("%6s  %12s  %12s  %14s  %14s  %12s\n", "N", "RMS error", "max error", "RMS vs clean",
              "samples/s", "state bytes");
  std::vector<Run> runs;
  for (int n : {16, 32, 64, 128}) {
    recur::hippo_model::Options o;
    o.measure = "legs";
    o.method = "bilinear";
    o.n = n;
    const std::string path = (dir / ("legs" + std::to_string(n) + ".recur")).string();
    recur::Status s = recur::hippo_model::Write(o, path);
    auto model = s.ok() ? recur::Model::Load(path, recur::ModelParams{.n_threads = 1})
                        : recur::Result<std::shared_ptr<const recur::Model>>(s);
    if (!model.ok()) {
      std::fprintf(stderr, "hippo_demo: %s\n", model.status().ToString().c_str());
      return 1;
    }
    auto session = recur::Session::Create(*model);
    if (!session.ok()) {
      std::fprintf(stderr, "hippo_demo: %s\n", session.status().ToString().c_str());
      return 1;
    }
    const float* out = nullptr;
    const auto t0 = Clock::now();
    for (size_t i = 0; i < samples; ++i) (*session)->StepFrame(&u[i], &out);
    const double secs = Seconds(t0);
    // The final coefficients reconstruct the whole history: sample j at r = (j + 1/2) / samples.
    std::vector<double> c(out, out + n), x(samples);
    for (size_t j = 0; j < samples; ++j) x[j] = 2.0 * (j + 0.5) / samples - 1.0;
    Run run;
    run.n = n;
    run.recon = recur::ops::hippo::LegendreReconstruct(c.data(), n, x);
    double sq = 0, sq_clean = 0;
    for (size_t j = samples - window; j < samples; ++j) {
      const double e = run.recon[j] - u[j];
      sq += e * e;
      sq_clean += (run.recon[j] - clean[j]) * (run.recon[j] - clean[j]);
      run.max_err = std::max(run.max_err, std::abs(e));
    }
    run.rms = std::sqrt(sq / window);
    run.rms_clean = std::sqrt(sq_clean / window);
    run.samples_per_s = samples / secs;
    run.state_bytes = (*session)->state_bytes();
    std::printf("%6d  %12.4g  %12.4g  %14.4g  %14.3g  %12zu\n", n, run.rms, run.max_err,
                run.rms_clean, run.samples_per_s, run.state_bytes);
    runs.push_back(std::move(run));
  }
  std::filesystem::remove_all(dir);
  KernelRates();
  if (!WriteSvg(svg_path, u, runs, window)) {
    std::fprintf(stderr, "hippo_demo: cannot write %s\n", svg_path.c_str());
    return 1;
  }
  std::printf("wrote %s\n", svg_path.c_str());
  return 0;
}
