// recur convert SRC -o OUT.recur [--dtype f32|f16|bf16|q8_0]: import a model into a .recur file.
#include <chrono>
#include <cstdio>

#include "examples/cli_util.h"
#include "examples/commands.h"
#include "formats/convert.h"

namespace recur::cli {

Action AddConvert(CLI::App& app) {
  struct Opts {
    std::string source, output, dtype = "f32", scale_dtype = "f16";
    bool quiet = false;
  };
  auto opts = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand(
      "convert",
      "Convert a model to .recur. SRC is a native spec .json (beside its safetensors; see "
      "docs/native-spec.md), a Hugging Face model directory (config.json + safetensors, sharded "
      "too), or an rwkv.cpp file. Every tensor is checked for presence and shape.");
  sub->add_option("SRC", opts->source, "Spec .json, model directory or rwkv.cpp file")->required();
  sub->add_option("-o,--output", opts->output, "The .recur file to write")->required();
  sub->add_option("--dtype", opts->dtype,
                  "Weight matrices' type: f32, f16, bf16, or q8_0 (int8 blocks of 32 with a "
                  "scale; matrices whose rows are not a multiple of 32 fall back to f16). Norms, "
                  "biases and SSM parameters stay f32.")
      ->check(CLI::IsMember({"f32", "f16", "bf16", "q8_0"}))
      ->capture_default_str();
  sub->add_option("--q8-scale", opts->scale_dtype, "q8_0 scale type: f16 or f32")
      ->check(CLI::IsMember({"f16", "f32"}))
      ->capture_default_str();
  sub->add_flag("-q,--quiet", opts->quiet, "No progress bar or summary");
  return [opts] {
    ConvertOptions options;
    options.source = opts->source;
    options.output = opts->output;
    options.dtype = ParseDType(opts->dtype).value();
    options.q8_scale_dtype = ParseDType(opts->scale_dtype).value();
    auto bar = std::make_shared<ProgressBar>(opts->quiet, "converting");
    options.progress = [bar](uint64_t done, uint64_t total) { bar->Update(done, total); };
    options.warning = [](const std::string& line) {
      std::fprintf(stderr, "recur: warning: %s\n", line.c_str());
    };
    const auto start = std::chrono::steady_clock::now();
    auto report = Convert(options);
    if (!report.ok()) return Fail(report.status().ToString());
    if (!opts->quiet) {
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("wrote %s: %s from %s (%s), %zu tensors, %.1f MiB in %.2f s\n",
                  opts->output.c_str(), report->architecture.c_str(), report->weights.c_str(),
                  std::string(SourceKindName(report->source_kind)).c_str(), report->tensors_written,
                  report->file_bytes / 1048576.0, seconds);
      for (int d = 0; d < kDTypeCount; ++d) {
        if (report->bytes_by_dtype[d] == 0) continue;
        std::printf("  %-5s %10.2f MiB\n", std::string(DTypeName(static_cast<DType>(d))).c_str(),
                    report->bytes_by_dtype[d] / 1048576.0);
      }
    }
    return 0;
  };
}

}  // namespace recur::cli
