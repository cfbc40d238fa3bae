// recur stream MODEL [--input FILE.csv|-] [--output FILE.csv]: runs a feature-frame model over a
// stream of frames, one frame a line (numbers separated by commas or spaces), one output line per
// frame; throughput and the (constant) state size go to stderr at the end.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "examples/commands.h"
#include "runtime/recur.hpp"

namespace recur::cli {
namespace {

// Parses one line into `out`; false (with *why) on a bad number.
bool ParseFrame(const std::string& line, std::vector<float>* out, std::string* why) {
  out->clear();
  const char* p = line.c_str();
  while (*p != '\0') {
    while (*p == ' ' || *p == '\t' || *p == ',' || *p == '\r') ++p;
    if (*p == '\0') break;
    char* end = nullptr;
    const float v = std::strtof(p, &end);
    if (end == p) {
      *why = "not a number: '" + std::string(p).substr(0, 20) + "'";
      return false;
    }
    out->push_back(v);
    p = end;
  }
  return true;
}

}  // namespace

Action AddStream(CLI::App& app) {
  struct Opts {
    std::string model, input = "-", output;
    int threads = 1;
  };
  auto opts = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand(
      "stream",
      "Run a feature-frame model (e.g. from `recur hippo`) over frames, one a line (CSV or "
      "spaces; '#' lines and blank lines skipped), writing one output line per frame. Prints "
      "throughput and the constant state size on stderr at the end.");
  sub->add_option("MODEL", opts->model, "A .recur file with frames input")->required();
  sub->add_option("--input", opts->input, "Frames file, or - for stdin")->capture_default_str();
  sub->add_option("--output", opts->output, "Output CSV (default: stdout)");
  sub->add_option("--threads", opts->threads, "Threads (default 1: a stream is sequential)")
      ->check(CLI::Range(0, 1024));
  return [opts] {
    auto loaded = Model::Load(opts->model, ModelParams{.n_threads = opts->threads});
    if (!loaded.ok()) return Fail(loaded.status().ToString());
    std::shared_ptr<const Model> model = *loaded;
    if (!model->runnable().ok()) return Fail(model->runnable().ToString());
    if (model->info().token_input) {
      return Fail(opts->model +
                  " takes tokens, not frames; use `recur generate` or `recur logits`");
    }
    auto session = Session::Create(model);
    if (!session.ok()) return Fail(session.status().ToString());
    std::ifstream file;
    std::istream* in = &std::cin;
    if (opts->input != "-") {
      file.open(opts->input);
      if (!file) return Fail("cannot open " + opts->input);
      in = &file;
    }
    FILE* out = stdout;
    if (!opts->output.empty()) {
      out = std::fopen(opts->output.c_str(), "w");
      if (out == nullptr) return Fail("cannot write " + opts->output);
    }
    const size_t in_size = static_cast<size_t>(model->input_size());
    const size_t out_size = static_cast<size_t>(model->output_size());
    std::vector<float> frame;
    std::string line, why, text;
    size_t frames = 0, line_no = 0;
    double compute_s = 0.0;
    const auto t_start = std::chrono::steady_clock::now();
    while (std::getline(*in, line)) {
      ++line_no;
      const size_t first = line.find_first_not_of(" \t\r");
      if (first == std::string::npos || line[first] == '#') continue;
      if (!ParseFrame(line, &frame, &why)) {
        if (out != stdout) std::fclose(out);
        return Fail(opts->input + ":" + std::to_string(line_no) + ": " + why);
      }
      if (frame.size() != in_size) {
        if (out != stdout) std::fclose(out);
        return Fail(opts->input + ":" + std::to_string(line_no) + ": " +
                    std::to_string(frame.size()) + " values, the model takes frames of " +
                    std::to_string(in_size));
      }
      const float* y = nullptr;
      const auto t0 = std::chrono::steady_clock::now();
      const Status s = (*session)->StepFrame(frame.data(), &y);
      compute_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (!s.ok()) return Fail(s.ToString());
      text.clear();
      char buf[32];
      for (size_t i = 0; i < out_size; ++i) {
        std::snprintf(buf, sizeof(buf), i ? ",%.7g" : "%.7g", y[i]);
        text += buf;
      }
      text += '\n';
      std::fwrite(text.data(), 1, text.size(), out);
      ++frames;
    }
    if (out != stdout) std::fclose(out);
    const double total_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    std::fprintf(stderr,
                 "recur stream: %zu frames (%zu values each) in %.3f s; model %.0f frames/s "
                 "(%.3g samples/s) excluding I/O; state %zu bytes, constant per stream\n",
                 frames, in_size, total_s, compute_s > 0 ? frames / compute_s : 0.0,
                 compute_s > 0 ? frames * in_size / compute_s : 0.0, (*session)->state_bytes());
    return 0;
  };
}

}  // namespace recur::cli
