// recur convert SRC -o OUT.recur [--dtype f32|f16|bf16|q8_0]: import a model into a .recur file.
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "examples/commands.h"
#include "formats/convert.h"

namespace recur::cli {
namespace {

// Draws "[=====>    ]  45%  120.0/266.7 MiB" on stderr: redrawn in place on a terminal, a line
// per 10% otherwise (logs and CI).
class ProgressBar {
 public:
  explicit ProgressBar(bool quiet) : quiet_(quiet), tty_(isatty(STDERR_FILENO) == 1) {}

  void Update(uint64_t done, uint64_t total) {
    // Small models convert in a blink; a bar would only be noise.
    constexpr uint64_t kMinBytesForBar = 64ull << 20;
    if (quiet_ || total < kMinBytesForBar) return;
    const int percent = static_cast<int>(done * 100 / total);
    const auto now = std::chrono::steady_clock::now();
    if (tty_) {
      if (done != total && now - last_ < std::chrono::milliseconds(100)) return;
      last_ = now;
      constexpr int kWidth = 30;
      const int filled = percent * kWidth / 100;
      std::string bar(filled, '=');
      if (filled < kWidth) bar += '>' + std::string(kWidth - filled - 1, ' ');
      std::fprintf(stderr, "\r[%s] %3d%%  %.1f/%.1f MiB", bar.c_str(), percent, done / 1048576.0,
                   total / 1048576.0);
      if (done == total) std::fputc('\n', stderr);
    } else if (percent / 10 > last_decile_ || done == total) {
      last_decile_ = percent / 10;
      if (done == total && printed_done_) return;
      printed_done_ = done == total;
      std::fprintf(stderr, "converting: %3d%% (%.1f/%.1f MiB)\n", percent, done / 1048576.0,
                   total / 1048576.0);
    }
  }

 private:
  bool quiet_, tty_;
  int last_decile_ = -1;
  bool printed_done_ = false;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace

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
    auto bar = std::make_shared<ProgressBar>(opts->quiet);
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
