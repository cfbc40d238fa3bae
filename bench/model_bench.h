// Timing a whole model: prefill and decode speed with the weight bytes and FLOPs they imply, the
// measurements behind `recur bench` and the throughput sweep.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "formats/status.h"
#include "runtime/recur.hpp"

namespace recur::bench {

struct ModelBenchOptions {
  size_t prompt_tokens = 512;  // Prefill length: one PrefillTokens call, last logits only.
  size_t gen_tokens = 128;     // Decode steps timed per repeat.
  int repeats = 5;             // Timed repeats, after one warm-up.
  bool progress = false;       // Say what is being timed on stderr.
  // Optional: read bandwidth now, in GB/s. Called before each timed decode repeat and after the
  // last, so each repeat's speed is set against the bandwidth of its own moment.
  std::function<double()> bandwidth_probe;
};

struct ModelBenchResult {
  double prefill_tokens_per_s = 0.0;  // 0 for frame models.
  double decode_tokens_per_s = 0.0;   // Median per-token step (frames/s for frame models).
  uint64_t weight_bytes = 0;          // Weight bytes one decode step reads.
  uint64_t layer_params = 0;          // Matrix parameters every token multiplies.
  uint64_t head_params = 0;           // The logits head (once per prefill call).
  double prefill_gflops = 0.0;        // 2 x (layer_params x T + head_params) / prefill time.
  size_t state_bytes = 0;
  // With a bandwidth_probe: the median probe, and the median over repeats of the weight bytes
  // per second a repeat's median step reads over the mean of the probes before and after it.
  double probe_gbps = 0.0;
  double probe_min_gbps = 0.0, probe_max_gbps = 0.0;
  double decode_bandwidth_ratio = 0.0;
};

// What one token reads: every weight matrix once, except the token embedding, of which a step
// gathers one row (unless the head is tied to it and reads all of it).
void CountWeights(const Model& model, ModelBenchResult* result);

// Times prefill and decode on a fresh session of `model` with random token ids (or frames).
Result<ModelBenchResult> BenchModel(const std::shared_ptr<const Model>& model,
                                    const ModelBenchOptions& options);

}  // namespace recur::bench
