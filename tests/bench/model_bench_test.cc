// BenchModel's bandwidth pairing: the probe is called before each timed decode repeat and after
// the last, its readings are summarised, and each repeat's speed is set against the mean of the
// probes around it.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "bench/model_bench.h"
#include "formats/synth.h"
#include "runtime/recur.hpp"
#include "tests/test_util.h"

namespace recur::bench {
namespace {

using testing::TempDir;

std::shared_ptr<const Model> TinyModel(const TempDir& dir, const std::string& preset) {
  SynthOptions synth;
  synth.preset = preset;
  synth.output = dir.File(preset + ".recur");
  auto report = Synthesize(synth);
  REQUIRE_MESSAGE(report.ok(), report.status().message());
  auto model = Model::Load(synth.output, ModelParams{.n_threads = 1});
  REQUIRE_MESSAGE(model.ok(), model.status().message());
  return *model;
}

TEST_CASE("BenchModel probes the bandwidth around every decode repeat and pairs the ratios") {
  TempDir dir;
  for (const char* preset : {"rwkv7-tiny", "mamba-tiny"}) {
    CAPTURE(std::string(preset));
    const auto model = TinyModel(dir, preset);
    ModelBenchOptions options;
    options.prompt_tokens = 8;
    options.gen_tokens = 4;
    options.repeats = 4;
    std::vector<double> readings = {10.0, 30.0, 20.0, 50.0, 40.0};  // GB/s, one per call.
    size_t calls = 0;
    options.bandwidth_probe = [&] { return readings[calls++ % readings.size()]; };
    auto r = BenchModel(model, options);
    REQUIRE_MESSAGE(r.ok(), r.status().message());
    CHECK(calls == 5);  // Before each of the 4 timed repeats and after the last; not the warm-up.
    CHECK(r->probe_gbps == doctest::Approx(30.0));
    CHECK(r->probe_min_gbps == doctest::Approx(10.0));
    CHECK(r->probe_max_gbps == doctest::Approx(50.0));
    // Each repeat's ratio lies between its speed over the largest and the smallest probe, so
    // the median does too: bounded by the overall decode speed's range over the readings.
    CHECK(r->decode_bandwidth_ratio > 0.0);
    CHECK(std::isfinite(r->decode_bandwidth_ratio));
    const double decode_gbps = static_cast<double>(r->weight_bytes) * r->decode_tokens_per_s * 1e-9;
    CHECK(r->decode_bandwidth_ratio < 10.0 * decode_gbps / 15.0);
    CHECK(r->decode_bandwidth_ratio > 0.1 * decode_gbps / 45.0);
  }
}

TEST_CASE("BenchModel without a probe reports no bandwidth ratio") {
  TempDir dir;
  const auto model = TinyModel(dir, "rwkv7-tiny");
  ModelBenchOptions options;
  options.prompt_tokens = 4;
  options.gen_tokens = 2;
  options.repeats = 2;
  auto r = BenchModel(model, options);
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  CHECK(r->decode_tokens_per_s > 0.0);
  CHECK(r->decode_bandwidth_ratio == 0.0);
  CHECK(r->probe_gbps == 0.0);
}

}  // namespace
}  // namespace recur::bench
