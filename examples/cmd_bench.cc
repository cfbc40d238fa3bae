// recur bench MODEL: prefill and decode speed of a model, as ratios to this machine's limits
// measured in the same run.
//
// Decode (one token at a time) must stream every weight matrix once per token, so its limit is
// the read bandwidth: ratio = weight bytes per token x tokens/s / bandwidth. Prefill runs the
// projections as matrix-matrix products, so its limit is peak FMA throughput: ratio = 2 x
// matrix parameters per token x tokens/s / (peak FLOP/s per thread x threads). The prefill
// count follows llama-bench: logits for the last token only, so the head counts once.
#include <nlohmann/json.hpp>

#include <cstdio>

#include "bench/limits.h"
#include "bench/model_bench.h"
#include "examples/cli_util.h"
#include "examples/commands.h"
#include "runtime/recur.hpp"
#include "runtime/threads.h"

namespace recur::cli {

Action AddBench(CLI::App& app) {
  struct Opts {
    std::string model;
    int prompt_tokens = 512, gen_tokens = 128, threads = 0, repeats = 5;
    bool json = false;
  };
  auto opts = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand(
      "bench",
      "Measure prefill and decode speed (medians over repeats) against this machine's limits,\n"
      "measured in the same run: read bandwidth (streaming a 512 MiB buffer with the same\n"
      "thread count, before and after every decode repeat; each repeat is set against the\n"
      "bandwidth of its own moment) for decode, which must read every weight once per token,\n"
      "and peak f32 FMA throughput for prefill. Also prints weight bytes per token, state\n"
      "bytes per stream and peak resident memory. Tokens are random ids (speed does not\n"
      "depend on them). Try:\n"
      "  recur synth --preset mamba-130m -o m.recur && recur bench m.recur --threads 1");
  sub->add_option("MODEL", opts->model, "A .recur file")->required();
  sub->add_option("--prompt-tokens", opts->prompt_tokens,
                  "Prefill length (timed as one PrefillTokens call, last logits only)")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  sub->add_option("--gen-tokens", opts->gen_tokens, "Decode steps timed per repeat")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  sub->add_option("--repeats", opts->repeats, "Timed repeats (after one warm-up)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  sub->add_option("--threads", opts->threads, "Threads (0: every core)")->capture_default_str();
  sub->add_flag("--json", opts->json, "Print one JSON object instead of text");
  return [opts] {
    auto loaded = Model::Load(opts->model, ModelParams{.n_threads = opts->threads});
    if (!loaded.ok()) return Fail(loaded.status().ToString());
    std::shared_ptr<const Model> model = *loaded;
    if (!model->runnable().ok()) return Fail(model->runnable().ToString());
    const ModelInfo& info = model->info();
    const int threads = model->n_threads();
    if (!opts->json) {
      std::fprintf(stderr, "recur bench: %s (%s, %d layers), %d thread%s, target %s\n",
                   opts->model.c_str(), info.architecture.c_str(),
                   static_cast<int>(info.layers.size()), threads, threads == 1 ? "" : "s",
                   bench::BestTargetName());
    }
    bench::ModelBenchOptions options;
    options.prompt_tokens = static_cast<size_t>(opts->prompt_tokens);
    options.gen_tokens = static_cast<size_t>(opts->gen_tokens);
    options.repeats = opts->repeats;
    options.progress = !opts->json;
    // The read bandwidth is probed around every timed decode repeat (512 MiB, 16x a large L3),
    // and each repeat's speed is divided by the bandwidth of its own moment. Peak RSS is read
    // at the first probe, before the probe's buffer joins it (the warm-up has run by then).
    const Threads pool(threads);
    bench::BandwidthProbe probe(pool, size_t{512} << 20);
    uint64_t peak_rss = 0;
    options.bandwidth_probe = [&] {
      if (peak_rss == 0) peak_rss = PeakRssBytes();
      return probe.Gbps();
    };
    auto result = bench::BenchModel(model, options);
    if (!result.ok()) return Fail(result.status().ToString());
    const bench::ModelBenchResult& r = *result;
    if (peak_rss == 0) peak_rss = PeakRssBytes();

    if (!opts->json) std::fprintf(stderr, "limits: peak FMA...\n");
    const double read_gbps = r.probe_gbps;
    const double peak_gflops = bench::PeakGflops(Threads(1), 30'000'000, 5);
    const double decode_gbps = static_cast<double>(r.weight_bytes) * r.decode_tokens_per_s * 1e-9;
    const double decode_ratio = r.decode_bandwidth_ratio;
    const double prefill_ratio = r.prefill_gflops / (peak_gflops * threads);
    const size_t T = options.prompt_tokens;

    if (opts->json) {
      nlohmann::json out = {
          {"model", opts->model},
          {"architecture", info.architecture},
          {"threads", threads},
          {"target", bench::BestTargetName()},
          {"prompt_tokens", T},
          {"gen_tokens", options.gen_tokens},
          {"repeats", opts->repeats},
          {"prefill_tokens_per_s", r.prefill_tokens_per_s},
          {"decode_tokens_per_s", r.decode_tokens_per_s},
          {"weight_bytes", r.weight_bytes},
          {"read_bandwidth_gbps", read_gbps},
          {"read_bandwidth_min_gbps", r.probe_min_gbps},
          {"read_bandwidth_max_gbps", r.probe_max_gbps},
          {"decode_bandwidth_ratio", decode_ratio},
          {"peak_gflops", peak_gflops},
          {"prefill_gflops", r.prefill_gflops},
          {"prefill_flops_ratio", prefill_ratio},
          {"state_bytes", r.state_bytes},
          {"peak_rss_bytes", peak_rss},
      };
      std::printf("%s\n", out.dump(2).c_str());
      return 0;
    }
    std::printf("weights read per token  %10.1f MiB\n", r.weight_bytes / 1048576.0);
    std::printf("read bandwidth          %10.2f GB/s (%d thread%s; median of %d probes around the "
                "decode repeats, %.1f-%.1f)\n",
                read_gbps, threads, threads == 1 ? "" : "s", opts->repeats + 1, r.probe_min_gbps,
                r.probe_max_gbps);
    std::printf("peak FMA                %10.1f GFLOP/s per thread (measured now)\n", peak_gflops);
    if (info.token_input) {
      std::printf("prefill %5zu tokens     %10.1f tokens/s  %7.1f GFLOP/s  %.2f of peak x %d\n", T,
                  r.prefill_tokens_per_s, r.prefill_gflops, prefill_ratio, threads);
    }
    std::printf("decode                  %10.1f %s/s  %7.2f GB/s   %.2f of bandwidth (median per repeat)\n",
                r.decode_tokens_per_s, info.token_input ? "tokens" : "frames", decode_gbps, decode_ratio);
    std::printf("state per stream        %10.1f KiB\n", r.state_bytes / 1024.0);
    std::printf("peak RSS                %10.1f MiB\n", peak_rss / 1048576.0);
    return 0;
  };
}

}  // namespace recur::cli
