#include "bench/model_bench.h"

#include <algorithm>
#include <cstdio>
#include <random>
#include <vector>

#include "bench/limits.h"

namespace recur::bench {

void CountWeights(const Model& model, ModelBenchResult* result) {
  const ModelInfo& info = model.info();
  const bool tied = info.token_input && info.logits_output && model.FindTensor("head.weight") == nullptr;
  for (const TensorInfo& t : model.tensors()) {
    if (!t.matrix) continue;
    const bool embed = t.name == "embed.weight";
    const bool head = t.name == "head.weight" || (embed && tied);
    if (embed && !head) {
      result->weight_bytes += t.bytes / std::max<int64_t>(1, t.shape.empty() ? 1 : t.shape[0]);
      continue;
    }
    result->weight_bytes += t.bytes;
    (head ? result->head_params : result->layer_params) += static_cast<uint64_t>(t.numel);
  }
}

Result<ModelBenchResult> BenchModel(const std::shared_ptr<const Model>& model,
                                    const ModelBenchOptions& o) {
  ModelBenchResult r;
  if (!model->runnable().ok()) return model->runnable();
  RECUR_ASSIGN_OR_RETURN(std::unique_ptr<Session> session, Session::Create(model));
  const ModelInfo& info = model->info();
  const size_t T = o.prompt_tokens, G = o.gen_tokens;
  std::mt19937 rng(1);
  double prefill_s = 0.0;
  std::vector<double> step_times;
  std::vector<double> repeat_steps;  // Each timed repeat's median step.
  std::vector<double> probes;        // Bandwidth before each timed repeat and after the last.
  Status status;
  // Called after each repeat: probes around the timed ones and keeps the repeat's median step.
  auto end_repeat = [&](int rep, size_t first_step) {
    if (rep == 0 || !o.bandwidth_probe) return;
    const auto first = step_times.begin() + static_cast<std::ptrdiff_t>(first_step);
    repeat_steps.push_back(Median(std::vector<double>(first, step_times.end())));
    probes.push_back(o.bandwidth_probe());
  };
  if (info.token_input) {
    std::uniform_int_distribution<int32_t> token(0, info.vocab_size - 1);
    std::vector<int32_t> prompt(T), gen(G);
    for (int32_t& t : prompt) t = token(rng);
    for (int32_t& t : gen) t = token(rng);
    const float* logits = nullptr;
    if (o.progress) std::fprintf(stderr, "prefill: %zu tokens x %d repeats...\n", T, o.repeats);
    prefill_s = MedianSeconds(o.repeats, [&] {
      session->Reset();
      if (status.ok()) status = session->PrefillTokens(prompt.data(), T, &logits);
    });
    RECUR_RETURN_IF_ERROR(status);
    if (o.progress) std::fprintf(stderr, "decode: %zu steps x %d repeats...\n", G, o.repeats);
    for (int rep = 0; rep <= o.repeats; ++rep) {  // Repeat 0 warms up.
      session->Reset();
      RECUR_RETURN_IF_ERROR(session->PrefillTokens(prompt.data(), T, &logits));
      if (rep == 1 && o.bandwidth_probe) probes.push_back(o.bandwidth_probe());
      const size_t first_step = step_times.size();
      for (size_t i = 0; i < G; ++i) {
        const auto t0 = Clock::now();
        status = session->StepToken(gen[i], &logits);
        if (rep > 0) step_times.push_back(Seconds(t0, Clock::now()));
        RECUR_RETURN_IF_ERROR(status);
      }
      end_repeat(rep, first_step);
    }
  } else {
    // Frame models: StepFrame is their decode; there is no batched frame prefill.
    std::normal_distribution<float> value(0.0f, 1.0f);
    const size_t in = static_cast<size_t>(model->input_size());
    std::vector<float> frames(G * in);
    for (float& v : frames) v = value(rng);
    const float* out = nullptr;
    if (o.progress) std::fprintf(stderr, "frames: %zu steps x %d repeats...\n", G, o.repeats);
    for (int rep = 0; rep <= o.repeats; ++rep) {
      session->Reset();
      if (rep == 1 && o.bandwidth_probe) probes.push_back(o.bandwidth_probe());
      const size_t first_step = step_times.size();
      for (size_t i = 0; i < G; ++i) {
        const auto t0 = Clock::now();
        status = session->StepFrame(&frames[i * in], &out);
        if (rep > 0) step_times.push_back(Seconds(t0, Clock::now()));
        RECUR_RETURN_IF_ERROR(status);
      }
      end_repeat(rep, first_step);
    }
  }
  CountWeights(*model, &r);
  const double decode_s = Median(step_times);
  r.decode_tokens_per_s = decode_s > 0 ? 1.0 / decode_s : 0.0;
  r.prefill_tokens_per_s = prefill_s > 0 ? static_cast<double>(T) / prefill_s : 0.0;
  const double flops = 2.0 * (static_cast<double>(r.layer_params) * static_cast<double>(T) +
                              static_cast<double>(r.head_params));
  r.prefill_gflops = prefill_s > 0 ? flops / prefill_s * 1e-9 : 0.0;
  r.state_bytes = session->state_bytes();
  if (!probes.empty()) {
    std::vector<double> ratios;
    for (size_t i = 0; i < repeat_steps.size(); ++i) {
      const double gbps = static_cast<double>(r.weight_bytes) / repeat_steps[i] * 1e-9;
      ratios.push_back(gbps / (0.5 * (probes[i] + probes[i + 1])));
    }
    r.decode_bandwidth_ratio = Median(ratios);
    r.probe_gbps = Median(probes);
    r.probe_min_gbps = *std::min_element(probes.begin(), probes.end());
    r.probe_max_gbps = *std::max_element(probes.begin(), probes.end());
  }
  return r;
}

}  // namespace recur::bench
