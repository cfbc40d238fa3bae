// recur inspect MODEL [--json]: what a model file holds and what running it costs.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "examples/commands.h"
#include "runtime/recur.hpp"

namespace recur::cli {
namespace {

std::string Bytes(uint64_t b) {
  char buf[64];
  if (b < 10 * 1024) {
    std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(b));
  } else if (b < 10ull * 1024 * 1024) {
    std::snprintf(buf, sizeof(buf), "%.1f KiB", b / 1024.0);
  } else if (b < 10ull * 1024 * 1024 * 1024) {
    std::snprintf(buf, sizeof(buf), "%.1f MiB", b / (1024.0 * 1024.0));
  } else {
    std::snprintf(buf, sizeof(buf), "%.2f GiB", b / (1024.0 * 1024.0 * 1024.0));
  }
  return buf;
}

std::string Count(uint64_t n) {
  char buf[32];
  if (n < 10'000) return std::to_string(n);
  if (n < 10'000'000) std::snprintf(buf, sizeof(buf), "%.1fK", n / 1e3);
  else if (n < 10'000'000'000ull) std::snprintf(buf, sizeof(buf), "%.1fM", n / 1e6);
  else std::snprintf(buf, sizeof(buf), "%.2fB", n / 1e9);
  return buf;
}

nlohmann::json ToJson(const ModelInfo& info) {
  nlohmann::json j;
  j["path"] = info.path;
  j["architecture"] = info.architecture;
  j["format_version"] = info.format_version;
  j["d_model"] = info.d_model;
  j["input"] = info.input;
  j["output"] = info.output;
  j["vocab_size"] = info.vocab_size;
  j["tokenizer"] = info.tokenizer;
  j["params"] = info.params;
  j["file_bytes"] = info.file_bytes;
  j["bytes_by_dtype"] = info.bytes_by_dtype;
  j["state_bytes"] = info.state_bytes;
  j["scratch_bytes_step"] = info.scratch_bytes_step;
  j["scratch_bytes_prefill"] = info.scratch_bytes_prefill;
  j["prefill_chunk"] = info.prefill_chunk;
  j["metadata"] = info.metadata;
  j["layers"] = nlohmann::json::array();
  for (const LayerInfo& l : info.layers) {
    j["layers"].push_back({{"kind", l.kind}, {"summary", l.summary}, {"params", l.params},
                           {"state_bytes", l.state_bytes}, {"runnable", l.runnable},
                           {"state_grows", l.state_grows},
                           {"bytes_per_token", l.bytes_per_token}});
  }
  return j;
}

void PrintText(const ModelInfo& info) {
  std::printf("model         %s\n", info.path.c_str());
  std::printf("architecture  %s (format v%u)\n", info.architecture.c_str(), info.format_version);
  std::printf("d_model       %d\n", info.d_model);
  std::printf("input         %s\n", info.input.c_str());
  std::printf("output        %s\n", info.output.c_str());
  std::printf("tokenizer     %s\n", info.tokenizer.c_str());
  std::printf("parameters    %s (%llu)\n", Count(info.params).c_str(),
              static_cast<unsigned long long>(info.params));
  std::printf("file          %s%s\n", Bytes(info.file_bytes).c_str(),
              info.mapped ? ", mapped" : ", read into memory");
  for (const auto& [dtype, bytes] : info.bytes_by_dtype) {
    std::printf("  %-11s %s\n", dtype.c_str(), Bytes(bytes).c_str());
  }
  size_t grows_per_token = 0;
  for (const LayerInfo& l : info.layers) grows_per_token += l.state_grows ? l.bytes_per_token : 0;
  if (grows_per_token == 0) {
    std::printf("state         %s per stream (constant in the stream's length)\n",
                Bytes(info.state_bytes).c_str());
  } else {
    std::printf("state         %s per stream allocated; grows by %s per token (KV cache)\n",
                Bytes(info.state_bytes).c_str(), Bytes(grows_per_token).c_str());
  }
  std::printf("scratch       %s per stream for a step, %s for a prefill chunk of %zu\n",
              Bytes(info.scratch_bytes_step).c_str(), Bytes(info.scratch_bytes_prefill).c_str(),
              info.prefill_chunk);
  std::printf("layers        %zu\n", info.layers.size());
  for (size_t i = 0; i < info.layers.size(); ++i) {
    const LayerInfo& l = info.layers[i];
    std::printf("  %3zu  %-18s %-44s %9s params  state %s%s\n", i, l.kind.c_str(),
                l.summary.c_str(), Count(l.params).c_str(), Bytes(l.state_bytes).c_str(),
                l.state_grows ? (", grows " + Bytes(l.bytes_per_token) + "/token").c_str()
                              : ", constant");
  }
  for (const auto& [key, value] : info.metadata) {
    std::printf("meta  %s = %s\n", key.c_str(), value.c_str());
  }
}

}  // namespace

Action AddInspect(CLI::App& app) {
  struct Opts {
    std::string model;
    bool json = false;
  };
  auto opts = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand(
      "inspect", "Show a model's architecture, layers, parameter count, bytes by dtype, and the "
                 "state and scratch memory one stream needs");
  sub->add_option("MODEL", opts->model, "A .recur file")->required();
  sub->add_flag("--json", opts->json, "Print one JSON object instead of text");
  return [opts] {
    auto model = Model::Load(opts->model);
    if (!model.ok()) return Fail(model.status().ToString());
    if (opts->json) {
      // Names and metadata come from the file: invalid UTF-8 is replaced, not thrown over.
      std::printf("%s\n", ToJson((*model)->info())
                               .dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
                               .c_str());
    } else {
      PrintText((*model)->info());
    }
    return 0;
  };
}

}  // namespace recur::cli
