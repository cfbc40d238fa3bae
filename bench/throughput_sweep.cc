// throughput_sweep: `recur bench` over presets x dtypes x thread counts, into one table (Markdown
// and CSV) and an SVG bar chart, each figure with its ratio to the limit measured in the same run
// (read bandwidth at that thread count for decode, peak FMA x threads for prefill).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bench/limits.h"
#include "bench/model_bench.h"
#include "formats/synth.h"

namespace recur::bench {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> Split(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

struct Entry {
  std::string preset, dtype;
  int threads = 1;
  ModelBenchResult r;
  double decode_ratio = 0, prefill_ratio = 0;
};

std::string Svg(const std::vector<Entry>& entries) {
  const double bar = 18, gap = 6, left = 230, width = 420;
  const double height = 60 + entries.size() * (bar + gap);
  std::ostringstream s;
  s << "<svg xmlns='http://www.w3.org/2000/svg' width='" << left + 2 * width + 60 << "' height='"
    << height << "' font-family='sans-serif' font-size='11'>\n"
    << "<rect width='100%' height='100%' fill='white'/>\n";
  auto panel = [&](double x0, const char* title, auto ratio, auto value, const char* unit) {
    s << "<text x='" << x0 << "' y='20' font-size='13'>" << title << "</text>\n";
    s << "<line x1='" << x0 << "' y1='30' x2='" << x0 << "' y2='" << height - 20
      << "' stroke='#444'/>\n<line x1='" << x0 + width * 0.8 << "' y1='30' x2='" << x0 + width * 0.8
      << "' y2='" << height - 20 << "' stroke='#aaa' stroke-dasharray='3,3'/>\n<text x='"
      << x0 + width * 0.8 - 20 << "' y='" << height - 6 << "'>limit</text>\n";
    for (size_t i = 0; i < entries.size(); ++i) {
      const double y = 36 + i * (bar + gap);
      const double w = std::min(1.2, ratio(entries[i])) * width * 0.8;
      s << "<rect x='" << x0 << "' y='" << y << "' width='" << w << "' height='" << bar
        << "' fill='" << (entries[i].threads == 1 ? "#1f77b4" : "#ff7f0e") << "'/>\n";
      char label[96];
      std::snprintf(label, sizeof(label), "%.1f %s (%.2f)", value(entries[i]), unit, ratio(entries[i]));
      s << "<text x='" << x0 + w + 4 << "' y='" << y + 13 << "'>" << label << "</text>\n";
    }
  };
  for (size_t i = 0; i < entries.size(); ++i) {
    const double y = 36 + i * (bar + gap);
    s << "<text x='8' y='" << y + 13 << "'>" << entries[i].preset << " " << entries[i].dtype
      << ", " << entries[i].threads << " thread" << (entries[i].threads == 1 ? "" : "s")
      << "</text>\n";
  }
  panel(left, "decode tokens/s (ratio to read bandwidth)",
        [](const Entry& e) { return e.decode_ratio; },
        [](const Entry& e) { return e.r.decode_tokens_per_s; }, "t/s");
  panel(left + width + 40, "prefill tokens/s (ratio to peak FMA x threads)",
        [](const Entry& e) { return e.prefill_ratio; },
        [](const Entry& e) { return e.r.prefill_tokens_per_s; }, "t/s");
  s << "</svg>\n";
  return s.str();
}

int Main(int argc, char** argv) {
  std::string presets = "mamba-130m,mamba2-130m", dtypes = "f32,bf16,q8_0", threads_list = "1,2";
  std::string out_dir = "throughput";
  ModelBenchOptions options;
  int prompt = 512, gen = 64;
  bool quick = false;
  CLI::App app{
      "throughput_sweep: recur bench over presets x dtypes x thread counts (synthetic weights\n"
      "at the presets' published shapes), each figure with its ratio to the limit measured in\n"
      "the same run. Writes throughput.{md,csv,svg} to --out-dir and prints the table."};
  app.add_option("--presets", presets, "recur synth presets")->capture_default_str();
  app.add_option("--dtypes", dtypes, "Weight dtypes")->capture_default_str();
  app.add_option("--threads", threads_list, "Thread counts")->capture_default_str();
  app.add_option("--prompt-tokens", prompt, "Prefill length")->capture_default_str();
  app.add_option("--gen-tokens", gen, "Decode steps per repeat")->capture_default_str();
  app.add_option("--repeats", options.repeats, "Timed repeats")->capture_default_str();
  app.add_option("--out-dir", out_dir, "Output folder")->capture_default_str();
  app.add_flag("--quick", quick, "Tiny presets, 2 repeats: a smoke test of the sweep itself");
  CLI11_PARSE(app, argc, argv);
  if (quick) {
    presets = "mamba-tiny,mamba2-tiny";
    options.repeats = 2;
    prompt = 64;
    gen = 16;
  }
  options.prompt_tokens = static_cast<size_t>(prompt);
  options.gen_tokens = static_cast<size_t>(gen);
  const fs::path dir(out_dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir)) {
    std::fprintf(stderr, "throughput_sweep: --out-dir %s: cannot create the folder\n",
                 dir.string().c_str());
    return 1;
  }

  // Peak FMA once. The read bandwidth is probed around every decode repeat instead, with the
  // entry's thread count, and each repeat's speed set against the bandwidth of its moment (on
  // a shared machine it moves by 2x within minutes).
  double peak = 0.0;
  {
    const Threads one(1);
    peak = PeakGflops(one, quick ? 5'000'000 : 30'000'000, quick ? 3 : 5);
  }
  std::map<int, std::unique_ptr<Threads>> pools;
  std::map<int, std::unique_ptr<BandwidthProbe>> probes;
  std::map<int, std::vector<double>> read_gbps;  // Each entry's median probe, per thread count.
  for (const std::string& t : Split(threads_list)) {
    const int n = std::stoi(t);
    pools[n] = std::make_unique<Threads>(n);
    probes[n] = std::make_unique<BandwidthProbe>(*pools[n], (quick ? size_t{64} : size_t{512}) << 20);
  }
  std::fprintf(stderr, "limits: peak %.1f GFLOP/s per thread\n", peak);

  std::vector<Entry> entries;
  const auto start = Clock::now();
  for (const std::string& preset : Split(presets)) {
    for (const std::string& dtype : Split(dtypes)) {
      SynthOptions synth;
      synth.preset = preset;
      auto parsed = ParseDType(dtype);
      if (!parsed.ok()) {
        std::fprintf(stderr, "throughput_sweep: %s\n", parsed.status().ToString().c_str());
        return 1;
      }
      synth.dtype = *parsed;
      synth.output = (dir / (preset + "-" + dtype + ".recur")).string();
      auto report = Synthesize(synth);
      if (!report.ok()) {
        std::fprintf(stderr, "throughput_sweep: %s\n", report.status().ToString().c_str());
        return 1;
      }
      for (const auto& [n, probe] : probes) {
        BandwidthProbe* p = probe.get();
        options.bandwidth_probe = [p] { return p->Gbps(); };
        auto model = Model::Load(synth.output, ModelParams{.n_threads = n});
        if (!model.ok()) {
          std::fprintf(stderr, "throughput_sweep: %s\n", model.status().ToString().c_str());
          return 1;
        }
        auto r = BenchModel(*model, options);
        if (!r.ok()) {
          std::fprintf(stderr, "throughput_sweep: %s\n", r.status().ToString().c_str());
          return 1;
        }
        Entry e{preset, dtype, n, *r};
        e.decode_ratio = r->decode_bandwidth_ratio;
        read_gbps[n].push_back(r->probe_gbps);
        e.prefill_ratio = r->prefill_gflops / (peak * n);
        std::fprintf(stderr, "  %-12s %-5s %d thread(s): decode %7.1f t/s (%.2f), prefill %7.1f t/s (%.2f)\n",
                     preset.c_str(), dtype.c_str(), n, r->decode_tokens_per_s, e.decode_ratio,
                     r->prefill_tokens_per_s, e.prefill_ratio);
        entries.push_back(e);
      }
      fs::remove(synth.output, ec);
    }
  }
  std::ostringstream md;
  md << "| model | dtype | threads | weights/token | decode t/s | x bandwidth | prefill " << prompt
     << " t/s | x peak FMA | state |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n";
  std::ofstream csv(dir / "throughput.csv");
  csv << "preset,dtype,threads,weight_bytes,decode_tokens_per_s,decode_bandwidth_ratio,"
         "prefill_tokens_per_s,prefill_flops_ratio,state_bytes,read_bandwidth_gbps,peak_gflops\n";
  for (const Entry& e : entries) {
    char line[320];
    std::snprintf(line, sizeof(line), "| %s | %s | %d | %.1f MiB | %.1f | %.2f | %.1f | %.2f | %.1f KiB |\n",
                  e.preset.c_str(), e.dtype.c_str(), e.threads, e.r.weight_bytes / 1048576.0,
                  e.r.decode_tokens_per_s, e.decode_ratio, e.r.prefill_tokens_per_s,
                  e.prefill_ratio, e.r.state_bytes / 1024.0);
    md << line;
    csv << e.preset << "," << e.dtype << "," << e.threads << "," << e.r.weight_bytes << ","
        << e.r.decode_tokens_per_s << "," << e.decode_ratio << "," << e.r.prefill_tokens_per_s
        << "," << e.prefill_ratio << "," << e.r.state_bytes << "," << e.r.probe_gbps << ","
        << peak << "\n";
  }
  char footer[256];
  std::snprintf(footer, sizeof(footer),
                "\nLimits measured in this run: peak %.1f GFLOP/s per thread; read bandwidth probed "
                "around each decode repeat (each ratio is a median of per-repeat ratios), medians",
                peak);
  md << footer;
  for (const auto& [n, gbps] : read_gbps) {
    std::snprintf(footer, sizeof(footer), " %.2f GB/s (%d thread%s)", Median(gbps), n,
                  n == 1 ? "" : "s");
    md << footer;
  }
  std::snprintf(footer, sizeof(footer), "; target %s; sweep took %.0f s.\n", BestTargetName(),
                Seconds(start, Clock::now()));
  md << footer;
  std::ofstream(dir / "throughput.md") << md.str();
  std::ofstream(dir / "throughput.svg") << Svg(entries);
  std::printf("%s", md.str().c_str());
  std::fprintf(stderr, "wrote %s/throughput.{md,csv,svg}\n", dir.string().c_str());
  return 0;
}

}  // namespace
}  // namespace recur::bench

int main(int argc, char** argv) { return recur::bench::Main(argc, argv); }
