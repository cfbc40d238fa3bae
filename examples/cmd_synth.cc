// recur synth --preset NAME [--dtype ...] -o OUT.recur: random weights at a published model's
// shape, for benchmarks without downloads.
#include <chrono>
#include <cstdio>

#include "examples/cli_util.h"
#include "examples/commands.h"
#include "formats/synth.h"

namespace recur::cli {

Action AddSynth(CLI::App& app) {
  struct Opts {
    std::string preset, output, dtype = "f32", scale_dtype = "f16";
    uint64_t seed = 1;
    int layers = 0;
    bool quiet = false, list = false;
  };
  auto opts = std::make_shared<Opts>();
  std::string presets;
  for (const SynthPreset& p : SynthPresets()) {
    presets += "\n  " + p.name + std::string(p.name.size() < 12 ? 12 - p.name.size() : 1, ' ') +
               p.description;
  }
  CLI::App* sub = app.add_subcommand(
      "synth",
      "Write a model with random weights at the shape of a published one (initialised as the "
      "family initialises them, so activations stay in range), for benchmarking without a "
      "download. Presets:" + presets);
  // Checked by Synthesize, whose error lists the presets.
  auto* preset = sub->add_option("--preset", opts->preset, "The shape to copy");
  auto* output = sub->add_option("-o,--output", opts->output, "The .recur file to write");
  sub->add_option("--dtype", opts->dtype, "Weight matrices' type: f32, f16, bf16 or q8_0")
      ->check(CLI::IsMember({"f32", "f16", "bf16", "q8_0"}))
      ->capture_default_str();
  sub->add_option("--q8-scale", opts->scale_dtype, "q8_0 scale type: f16 or f32")
      ->check(CLI::IsMember({"f16", "f32"}))
      ->capture_default_str();
  sub->add_option("--seed", opts->seed, "Random seed")->capture_default_str();
  sub->add_option("--layers", opts->layers,
                  "Layers (default: the preset's; fewer for quick experiments)");
  sub->add_flag("-q,--quiet", opts->quiet, "No progress bar or summary");
  auto* list = sub->add_flag("--list", opts->list, "List the presets and exit");
  preset->excludes(list);
  output->excludes(list);
  return [opts] {
    if (opts->list) {
      for (const SynthPreset& p : SynthPresets()) {
        std::printf("%-12s %s\n", p.name.c_str(), p.description.c_str());
      }
      return 0;
    }
    if (opts->preset.empty() || opts->output.empty()) {
      return Fail("synth needs --preset and -o (recur synth --list shows the presets)");
    }
    SynthOptions options;
    options.preset = opts->preset;
    options.output = opts->output;
    options.dtype = ParseDType(opts->dtype).value();
    options.q8_scale_dtype = ParseDType(opts->scale_dtype).value();
    options.seed = opts->seed;
    if (opts->layers != 0) options.layers = opts->layers;
    auto bar = std::make_shared<ProgressBar>(opts->quiet, "writing");
    options.progress = [bar](uint64_t done, uint64_t total) { bar->Update(done, total); };
    const auto start = std::chrono::steady_clock::now();
    auto report = Synthesize(options);
    if (!report.ok()) return Fail(report.status().ToString());
    if (!opts->quiet) {
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("wrote %s: %s, %zu tensors, %.1f MiB in %.2f s\n", opts->output.c_str(),
                  report->weights.c_str(), report->tensors_written,
                  report->file_bytes / 1048576.0, seconds);
    }
    return 0;
  };
}

}  // namespace recur::cli
