// recur logits and recur generate: run a token model over input, or sample text from it.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "examples/cli_util.h"
#include "examples/commands.h"
#include "runtime/recur.hpp"

namespace recur::cli {
namespace {

// "1,2, 3" -> {1, 2, 3}; false on anything that is not a list of integers.
bool ParseIdList(const std::string& text, std::vector<int32_t>* ids) {
  std::string token;
  std::stringstream ss(text);
  while (std::getline(ss, token, ',')) {
    size_t a = token.find_first_not_of(" \t\r\n"), b = token.find_last_not_of(" \t\r\n");
    if (a == std::string::npos) continue;
    token = token.substr(a, b - a + 1);
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(token, &used);
    } catch (...) {
      return false;
    }
    if (used != token.size() || v < INT32_MIN || v > INT32_MAX) return false;
    ids->push_back(static_cast<int32_t>(v));
  }
  return true;
}

Result<std::shared_ptr<const Model>> LoadRunnable(const std::string& path, int threads) {
  RECUR_ASSIGN_OR_RETURN(auto model, Model::Load(path, ModelParams{.n_threads = threads}));
  if (!model->runnable().ok()) return model->runnable();
  const ModelInfo& info = model->info();
  if (!info.token_input || !info.logits_output || info.vocab_size <= 0) {
    return InvalidArgument(path + ": takes " + info.input + " and gives " + info.output +
                           "; this command needs a token model with logits");
  }
  return model;
}

}  // namespace

Action AddLogits(CLI::App& app) {
  struct Opts {
    std::string model, tokens, tokens_file, text, mode = "prefill", output;
    int threads = 0;
  };
  auto opts = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand(
      "logits", "Run a token model over input tokens and write float32 logits, one row of "
                "vocab_size per input token (row-major, little-endian)");
  sub->add_option("MODEL", opts->model, "A .recur file")->required();
  auto* tokens = sub->add_option("--tokens", opts->tokens, "Comma-separated token ids");
  auto* file = sub->add_option("--tokens-file", opts->tokens_file,
                               "A file of token ids separated by commas or white space");
  auto* text = sub->add_option("--text", opts->text, "Text, encoded with the model's tokenizer");
  tokens->excludes(file)->excludes(text);
  file->excludes(text);
  sub->add_option("--mode", opts->mode,
                  "step: one token at a time; prefill: the chunked parallel form")
      ->check(CLI::IsMember({"step", "prefill"}))
      ->capture_default_str();
  sub->add_option("--threads", opts->threads, "Threads (0: every core)")->capture_default_str();
  sub->add_option("-o,--output", opts->output, "The .f32 file to write")->required();
  return [opts] {
    auto model = LoadRunnable(opts->model, opts->threads);
    if (!model.ok()) return Fail(model.status().ToString());
    std::vector<int32_t> ids;
    if (!opts->text.empty()) {
      Status s = (*model)->Tokenize(opts->text, &ids);
      if (!s.ok()) return Fail(s.ToString());
    } else {
      std::string list = opts->tokens;
      if (!opts->tokens_file.empty()) {
        std::ifstream in(opts->tokens_file);
        if (!in) return Fail(opts->tokens_file + ": cannot read");
        std::stringstream ss;
        ss << in.rdbuf();
        list = ss.str();
        for (char& c : list) {
          if (c == ' ' || c == '\n' || c == '\t' || c == '\r') c = ',';
        }
      }
      if (!ParseIdList(list, &ids)) return Fail("token ids must be integers separated by commas");
    }
    if (ids.empty()) return Fail("no input tokens (use --tokens, --tokens-file or --text)");
    auto session = Session::Create(*model);
    if (!session.ok()) return Fail(session.status().ToString());
    const size_t vocab = static_cast<size_t>((*model)->info().vocab_size);
    std::vector<float> logits(ids.size() * vocab);
    if (opts->mode == "step") {
      for (size_t i = 0; i < ids.size(); ++i) {
        const float* row = nullptr;
        Status s = (*session)->StepToken(ids[i], &row);
        if (!s.ok()) return Fail(s.Prepend("token " + std::to_string(i) + ": ").ToString());
        std::copy(row, row + vocab, logits.begin() + i * vocab);
      }
    } else {
      Status s = (*session)->PrefillTokens(ids.data(), ids.size(), nullptr, logits.data());
      if (!s.ok()) return Fail(s.ToString());
    }
    std::FILE* f = std::fopen(opts->output.c_str(), "wb");
    if (f == nullptr) return Fail(opts->output + ": cannot create");
    const bool ok = std::fwrite(logits.data(), sizeof(float), logits.size(), f) == logits.size();
    if (std::fclose(f) != 0 || !ok) return Fail(opts->output + ": write failed");
    std::fprintf(stderr, "wrote %s: %zu x %zu float32 logits (%s mode)\n", opts->output.c_str(),
                 ids.size(), vocab, opts->mode.c_str());
    return 0;
  };
}

Action AddGenerate(CLI::App& app) {
  struct Opts {
    std::string model, prompt;
    int n = 128, threads = 0;
    SamplerParams sampler;
  };
  auto opts = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand(
      "generate", "Stream text from a language model: prefill the prompt, then sample token by "
                  "token; ends with tokens/s and memory used");
  sub->add_option("MODEL", opts->model, "A .recur file with a tokenizer")->required();
  sub->add_option("-p,--prompt", opts->prompt, "The prompt text")->required();
  sub->add_option("-n,--tokens", opts->n, "Tokens to generate")->capture_default_str();
  sub->add_option("--temperature", opts->sampler.temperature, "0 for greedy")->capture_default_str();
  sub->add_option("--top-k", opts->sampler.top_k, "Keep the k most likely (0: all)")->capture_default_str();
  sub->add_option("--top-p", opts->sampler.top_p, "Nucleus: smallest set with this much probability")
      ->capture_default_str();
  sub->add_option("--seed", opts->sampler.seed, "Sampling seed")->capture_default_str();
  sub->add_option("--presence-penalty", opts->sampler.presence_penalty,
                  "Lower the logit of every token already generated by this (0: off)")
      ->capture_default_str();
  sub->add_option("--frequency-penalty", opts->sampler.frequency_penalty,
                  "And by this times its (decayed) count of earlier draws (0: off)")
      ->capture_default_str();
  sub->add_option("--penalty-decay", opts->sampler.penalty_decay,
                  "Counts are multiplied by this per generated token (1: never forget)")
      ->capture_default_str();
  sub->add_option("--threads", opts->threads, "Threads (0: every core)")->capture_default_str();
  return [opts] {
    using Clock = std::chrono::steady_clock;
    auto model = LoadRunnable(opts->model, opts->threads);
    if (!model.ok()) return Fail(model.status().ToString());
    std::vector<int32_t> ids;
    Status s = (*model)->Tokenize(opts->prompt, &ids);
    if (!s.ok()) return Fail(s.ToString());
    if (ids.empty()) return Fail("the prompt encodes to no tokens");
    auto session = Session::Create(*model);
    if (!session.ok()) return Fail(session.status().ToString());
    Sampler sampler(**model, opts->sampler);
    TextStream text(**model);

    std::printf("%s", opts->prompt.c_str());
    std::fflush(stdout);
    const auto t0 = Clock::now();
    const float* logits = nullptr;
    s = (*session)->PrefillTokens(ids.data(), ids.size(), &logits);
    if (!s.ok()) return Fail(s.ToString());
    const auto t1 = Clock::now();
    int generated = 0;
    for (; generated < opts->n; ++generated) {
      const int32_t next = sampler.Sample(logits);
      if (next == (*model)->eos_id()) break;
      std::printf("%s", text.Next(next).c_str());
      std::fflush(stdout);
      s = (*session)->StepToken(next, &logits);
      if (!s.ok()) return Fail(s.ToString());
    }
    std::printf("%s\n", text.Flush().c_str());
    const auto t2 = Clock::now();
    const double prefill_s = std::chrono::duration<double>(t1 - t0).count();
    const double decode_s = std::chrono::duration<double>(t2 - t1).count();
    std::fprintf(stderr,
                 "\nprompt %zu tokens in %.3f s (%.1f tokens/s); generated %d tokens in %.3f s "
                 "(%.1f tokens/s); %d thread(s)\nstate %.1f KiB per stream; peak RSS %.1f MiB\n",
                 ids.size(), prefill_s, ids.size() / prefill_s, generated, decode_s,
                 generated / decode_s, (*model)->n_threads(), (*session)->state_bytes() / 1024.0,
                 PeakRssBytes() / 1048576.0);
    return 0;
  };
}

}  // namespace recur::cli
