// memory_vs_context: how state memory and per-token latency grow with context length, for each
// model family recur runs, next to the analytic cache sizes of published attention models.
//
// Each family is a synthetic model (recur synth presets: real widths, random weights, fewer
// layers so that long contexts finish), streamed to each context length with PrefillTokens; at
// every length the program records the state bytes the session reports, the process's resident
// memory, and the median latency of the next decode steps. Output: a Markdown table on stdout,
// and CSV, Markdown and a log-log SVG chart in --out-dir.
#include <CLI/CLI.hpp>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "bench/context_budget.h"
#include "bench/limits.h"
#include "formats/synth.h"
#include "runtime/recur.hpp"

namespace recur::bench {
namespace {

namespace fs = std::filesystem;

struct Family {
  std::string label;     // Column and legend name.
  std::string preset;    // recur synth preset.
  bool grows = false;    // KV cache: state grows with the context.
  // Longest context streamed (0: all lengths). Prefill through softmax attention costs O(T^2),
  // and recompute mode O(T^2) per chunk, so these stop where the time stops being sensible.
  int64_t max_tokens = 0;
  int64_t max_tokens_quick = 0;
  int64_t flat_from = 0;  // Constant-state families: memory is flat from this length on (window).
  // Earlier tokens each token attends to, for the time prediction (bench/context_budget.h):
  // 0 none (recurrent), -1 all (a cache; prefill O(T^2)), W a window.
  int64_t attended = 0;
};

// The families compared, at the width of their ~130M-parameter published shapes.
std::vector<Family> AllFamilies() {
  std::vector<Family> f = {
      {"mamba1", "mamba-130m"},
      {"mamba2", "mamba2-130m"},
  };
  // Further families appear as their synth presets exist.
  const std::vector<Family> optional = {
      {"rwkv7", "rwkv7-0.1b"},
      {"linear_attention", "linear-attention-130m"},
      {"retention", "retention-130m"},
      {"mha_kv_cache", "attention-mha-130m", true, 65536, 8192, 0, -1},
      {"gqa_kv_cache", "attention-gqa-130m", true, 65536, 8192, 0, -1},
      {"mqa_kv_cache", "attention-mqa-130m", true, 65536, 8192, 0, -1},
      {"mha_window", "attention-window-130m", false, 65536, 16384, 4096, 4096},
      {"mha_recompute", "attention-recompute-130m", true, 16384, 4096, 0, -1},
  };
  for (const Family& o : optional) {
    if (FindSynthPreset(o.preset) != nullptr) f.push_back(o);
  }
  return f;
}

struct Row {
  std::string family;
  int64_t tokens = 0;
  size_t state_bytes = 0;
  size_t rss_bytes = 0;
  double step_ms = 0.0;
};

size_t RssBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

std::string Human(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 4) {
    bytes /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

std::vector<int64_t> ParseLengths(const std::string& text) {
  std::vector<int64_t> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    int64_t mult = 1;
    const char last = static_cast<char>(std::tolower(item.back()));
    if (last == 'k') mult = 1024;
    if (last == 'm') mult = 1024 * 1024;
    if (mult != 1) item.pop_back();
    out.push_back(std::stoll(item) * mult);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// ---------------------------------------------------------------------------- analytic

struct Published {
  std::string model, kind;
  double bytes_per_token = 0;  // bf16 cache, all layers.
  std::string formula;
};

// MATH.md "Cache memory per token per layer": MHA 2 h d_k, MQA 2 d_k, GQA 2 g d_k, MLA d_c + d_r
// elements, here in bf16 (2 bytes).
std::vector<Published> PublishedCaches() {
  return {
      {"Llama-2-7B", "MHA", 2.0 * 32 * 128 * 32 * 2, "2 x 32 heads x 128 x 32 layers x 2 B"},
      {"Llama-2-7B as MQA", "MQA", 2.0 * 1 * 128 * 32 * 2, "2 x 1 head x 128 x 32 layers x 2 B"},
      {"Llama-2-70B", "GQA (g=8)", 2.0 * 8 * 128 * 80 * 2, "2 x 8 groups x 128 x 80 layers x 2 B"},
      {"DeepSeek-V2", "MLA", (512.0 + 64) * 60 * 2, "(512 + 64) x 60 layers x 2 B"},
  };
}

struct ConstantState {
  std::string model;
  double bytes = 0;  // f32 state per stream.
};

// Mamba-1: per layer (d_conv - 1) d_inner + d_inner N; Mamba-2: (d_conv - 1)(d_inner + 2 N)
// + heads x head_dim x N; f32.
std::vector<ConstantState> RecurrentStates() {
  std::vector<ConstantState> out;
  struct M1 { const char* name; double d_model, layers; };
  for (const M1& m : {M1{"mamba-130m", 768, 24}, M1{"mamba-370m", 1024, 48},
                      M1{"mamba-790m", 1536, 48}, M1{"mamba-1.4b", 2048, 48},
                      M1{"mamba-2.8b", 2560, 64}}) {
    const double d_inner = 2 * m.d_model;
    out.push_back({m.name, 4.0 * m.layers * (3 * d_inner + d_inner * 16)});
  }
  for (const M1& m : {M1{"mamba2-130m", 768, 24}, M1{"mamba2-370m", 1024, 48},
                      M1{"mamba2-780m", 1536, 48}, M1{"mamba2-1.3b", 2048, 48},
                      M1{"mamba2-2.7b", 2560, 64}}) {
    const double d_inner = 2 * m.d_model;
    out.push_back({m.name, 4.0 * m.layers * (3 * (d_inner + 2 * 128) + d_inner * 128)});
  }
  return out;
}

// ---------------------------------------------------------------------------- SVG

// Two log-log panels (state bytes vs tokens, step latency vs tokens), one line per family.
std::string Svg(const std::vector<Row>& rows, const std::vector<std::string>& families) {
  const char* colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                           "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};
  const double W = 460, H = 320, left = 70, top = 40, pw = 360, ph = 230;
  std::ostringstream s;
  s << "<svg xmlns='http://www.w3.org/2000/svg' width='" << 2 * W + 160 << "' height='" << H + 40
    << "' font-family='sans-serif' font-size='11'>\n<rect width='100%' height='100%' fill='white'/>\n";
  auto panel = [&](int index, const char* title, auto value) {
    const double x0 = left + index * W, y0 = top;
    double xmin = 1e300, xmax = 0, ymin = 1e300, ymax = 0;
    for (const Row& r : rows) {
      const double v = value(r);
      if (v <= 0) continue;
      xmin = std::min(xmin, double(r.tokens));
      xmax = std::max(xmax, double(r.tokens));
      ymin = std::min(ymin, v);
      ymax = std::max(ymax, v);
    }
    if (xmax <= 0) return;
    const double lx0 = std::floor(std::log10(xmin)), lx1 = std::ceil(std::log10(xmax * 1.0001));
    const double ly0 = std::floor(std::log10(ymin)), ly1 = std::ceil(std::log10(ymax * 1.0001));
    auto X = [&](double x) { return x0 + (std::log10(x) - lx0) / std::max(1.0, lx1 - lx0) * pw; };
    auto Y = [&](double y) { return y0 + ph - (std::log10(y) - ly0) / std::max(1.0, ly1 - ly0) * ph; };
    s << "<text x='" << x0 << "' y='" << y0 - 12 << "' font-size='13'>" << title << "</text>\n";
    s << "<rect x='" << x0 << "' y='" << y0 << "' width='" << pw << "' height='" << ph
      << "' fill='none' stroke='#444'/>\n";
    for (double e = lx0; e <= lx1; ++e) {
      s << "<line x1='" << X(std::pow(10, e)) << "' y1='" << y0 << "' x2='" << X(std::pow(10, e))
        << "' y2='" << y0 + ph << "' stroke='#ddd'/><text x='" << X(std::pow(10, e)) - 10
        << "' y='" << y0 + ph + 14 << "'>1e" << e << "</text>\n";
    }
    for (double e = ly0; e <= ly1; ++e) {
      s << "<line x1='" << x0 << "' y1='" << Y(std::pow(10, e)) << "' x2='" << x0 + pw
        << "' y2='" << Y(std::pow(10, e)) << "' stroke='#ddd'/><text x='" << x0 - 34 << "' y='"
        << Y(std::pow(10, e)) + 4 << "'>1e" << e << "</text>\n";
    }
    s << "<text x='" << x0 + pw / 2 - 40 << "' y='" << y0 + ph + 30 << "'>context (tokens)</text>\n";
    for (size_t f = 0; f < families.size(); ++f) {
      std::string points;
      for (const Row& r : rows) {
        if (r.family != families[f] || value(r) <= 0) continue;
        points += std::to_string(X(double(r.tokens))) + "," + std::to_string(Y(value(r))) + " ";
      }
      s << "<polyline fill='none' stroke-width='2' stroke='" << colours[f % 10] << "' points='"
        << points << "'/>\n";
    }
  };
  panel(0, "state bytes per stream", [](const Row& r) { return double(r.state_bytes); });
  panel(1, "next-token latency (ms)", [](const Row& r) { return r.step_ms; });
  for (size_t f = 0; f < families.size(); ++f) {
    const double y = top + 14 * f;
    s << "<rect x='" << 2 * W + 10 << "' y='" << y << "' width='12' height='3' fill='"
      << colours[f % 10] << "'/><text x='" << 2 * W + 28 << "' y='" << y + 5 << "'>"
      << families[f] << "</text>\n";
  }
  s << "</svg>\n";
  return s.str();
}

// ---------------------------------------------------------------------------- run

struct Options {
  bool quick = false, check = false;
  std::string lengths, families, out_dir = "memory_vs_context";
  int layers = 2, threads = 1, repeats = 9;
  double max_seconds = 600;  // Per family: lengths beyond this are skipped.
};

// Streams one family to every length; returns its rows. `note` says what was skipped.
std::vector<Row> RunFamily(const Family& family, const Options& o, std::vector<int64_t> lengths,
                           const fs::path& dir, std::string* note) {
  std::vector<Row> rows;
  const int64_t cap = o.quick ? family.max_tokens_quick : family.max_tokens;
  if (cap > 0 && !lengths.empty() && lengths.back() > cap) {
    lengths.erase(std::remove_if(lengths.begin(), lengths.end(), [&](int64_t l) { return l > cap; }),
                  lengths.end());
    *note = "lengths above " + std::to_string(cap) + " tokens skipped (O(T^2) prefill)";
  }
  if (lengths.empty()) return rows;
  SynthOptions synth;
  synth.preset = family.preset;
  synth.layers = o.layers;
  // Room for the longest context and the timed steps after each length.
  synth.max_context = lengths.back() + static_cast<int64_t>(o.repeats * lengths.size()) + 64;
  synth.output = (dir / (family.label + ".recur")).string();
  auto report = Synthesize(synth);
  if (!report.ok()) {
    *note = report.status().ToString();
    return rows;
  }
  auto model = Model::Load(synth.output, ModelParams{.n_threads = o.threads});
  if (!model.ok() || !(*model)->runnable().ok()) {
    *note = model.ok() ? (*model)->runnable().ToString() : model.status().ToString();
    return rows;
  }
  auto session = Session::Create(*model);
  if (!session.ok()) {
    *note = session.status().ToString();
    return rows;
  }
  Session& s = **session;
  const int vocab = (*model)->info().vocab_size;
  uint64_t x = 88172645463325252ull;
  auto next = [&] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return static_cast<int32_t>(x % static_cast<uint64_t>(vocab));
  };
  std::vector<int32_t> chunk(4096);
  // Per-token work that does not depend on the history, in attended keys (bench/context_budget.h):
  // the q, k, v, o projections and a 4x MLP are ~12 d^2 multiply-adds a token, one key of all
  // heads (score and value) ~2 d.
  const double fixed = 6.0 * (*model)->info().d_model;
  const auto start = Clock::now();
  for (size_t li = 0; li < lengths.size(); ++li) {
    const int64_t target = lengths[li];
    const double elapsed = Seconds(start, Clock::now());
    const double predicted =
        li == 0 ? 0.0
                : PredictSeconds(elapsed, s.position(), target, family.attended, fixed);
    // Stop before a length that would overrun the budget, not after it: for an O(T^2) prefill
    // the next length (4x the tokens) costs ~16x the time so far.
    if (li > 0 && elapsed + predicted > o.max_seconds) {
      *note += (note->empty() ? "" : "; ") + std::string("stopped after ") +
               std::to_string(lengths[li - 1]) + " tokens (" + std::to_string(target) +
               " would take ~" + std::to_string(static_cast<int>(predicted)) +
               " s more; time budget " + std::to_string(static_cast<int>(o.max_seconds)) + " s)";
      break;
    }
    std::fprintf(stderr, "  %-18s -> %lld tokens (predicted %.0f s)\r", family.label.c_str(),
                 static_cast<long long>(target), predicted);
    while (s.position() < target) {
      const size_t n = static_cast<size_t>(std::min<int64_t>(chunk.size(), target - s.position()));
      for (size_t i = 0; i < n; ++i) chunk[i] = next();
      const float* logits = nullptr;
      Status status = s.PrefillTokens(chunk.data(), n, &logits);
      if (!status.ok()) {
        *note = "at " + std::to_string(s.position()) + " tokens: " + status.ToString();
        return rows;
      }
    }
    Row r;
    r.family = family.label;
    r.tokens = target;
    r.state_bytes = s.state_bytes_in_use();
    r.rss_bytes = RssBytes();
    std::vector<double> times;
    for (int i = 0; i < o.repeats; ++i) {
      const float* logits = nullptr;
      const auto t0 = Clock::now();
      Status status = s.StepToken(next(), &logits);
      times.push_back(Seconds(t0, Clock::now()) * 1e3);
      if (!status.ok()) {
        *note = "step at " + std::to_string(s.position()) + ": " + status.ToString();
        return rows;
      }
    }
    r.step_ms = Median(times);
    rows.push_back(r);
    std::fprintf(stderr, "  %-18s %9lld tokens  state %12s  RSS %12s  step %8.3f ms\n",
                 family.label.c_str(), static_cast<long long>(target), Human(r.state_bytes).c_str(),
                 Human(r.rss_bytes).c_str(), r.step_ms);
  }
  fs::remove(synth.output);
  return rows;
}

int Main(int argc, char** argv) {
  // Every allocation above 1 MiB gets fresh pages from the kernel and returns them when freed,
  // so one family's freed cache is never reused (already resident) by the next, and resident
  // memory shows exactly the part of each state that has been written.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  Options o;
  CLI::App app{
      "memory_vs_context: streams each model family (synthetic weights at ~130M-parameter\n"
      "widths, --layers layers) to contexts of 1k..256k tokens and records, at each length,\n"
      "the state bytes per stream, the process's resident memory, and the median latency of\n"
      "the next decode step. Prints a Markdown table (plus published attention cache sizes and\n"
      "recurrent state sizes) and writes CSV, Markdown and an SVG chart to --out-dir."};
  app.add_flag("--quick", o.quick,
               "Lengths 1k, 4k, 16k, 64k (attention with a cache to 8k, recompute to 4k) and 1 "
               "layer: under two minutes");
  app.add_flag("--check", o.check,
               "Exit 1 unless constant-state families' memory at the longest length is within 5% "
               "of that at the shortest, and KV-cache state grows linearly");
  app.add_option("--lengths", o.lengths, "Comma-separated lengths (k and m suffixes), "
                                         "default 1k,4k,16k,64k,256k");
  app.add_option("--families", o.families, "Comma-separated family labels (default: all)");
  app.add_option("--layers", o.layers, "Layers per model")->capture_default_str();
  app.add_option("--threads", o.threads, "Threads")->capture_default_str();
  app.add_option("--max-seconds", o.max_seconds, "Time budget per family")->capture_default_str();
  app.add_option("--out-dir", o.out_dir, "Where to write the CSV, Markdown and SVG")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (o.quick) {
    if (o.lengths.empty()) o.lengths = "1k,4k,16k,64k";
    o.layers = 1;
    o.repeats = 5;
    o.max_seconds = std::min(o.max_seconds, 60.0);
  }
  const std::vector<int64_t> lengths = ParseLengths(o.lengths.empty() ? "1k,4k,16k,64k,256k" : o.lengths);
  std::vector<Family> families;
  for (const Family& f : AllFamilies()) {
    if (o.families.empty() || ("," + o.families + ",").find("," + f.label + ",") != std::string::npos) {
      families.push_back(f);
    }
  }
  if (families.empty()) {
    std::fprintf(stderr, "memory_vs_context: no family matches --families %s\n", o.families.c_str());
    return 1;
  }
  const fs::path dir(o.out_dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir)) {
    std::fprintf(stderr, "memory_vs_context: --out-dir %s: cannot create the folder\n",
                 dir.string().c_str());
    return 1;
  }
  const auto start = Clock::now();
  std::vector<Row> rows;
  std::vector<std::string> labels, notes;
  for (const Family& f : families) {
    std::fprintf(stderr, "%s (%s, %d layer%s):\n", f.label.c_str(), f.preset.c_str(), o.layers,
                 o.layers == 1 ? "" : "s");
    std::string note;
    std::vector<Row> r = RunFamily(f, o, lengths, dir, &note);
    if (!note.empty()) notes.push_back(f.label + ": " + note);
    if (!r.empty()) labels.push_back(f.label);
    rows.insert(rows.end(), r.begin(), r.end());
  }
  const double seconds = Seconds(start, Clock::now());

  std::ostringstream md;
  md << "| family | tokens | state per stream | process RSS | next-token latency (ms) |\n"
        "|---|---:|---:|---:|---:|\n";
  std::ofstream csv(dir / "memory_vs_context.csv");
  csv << "family,tokens,state_bytes,rss_bytes,step_ms\n";
  for (const Row& r : rows) {
    char line[256];
    std::snprintf(line, sizeof(line), "| %s | %lld | %s | %s | %.3f |\n", r.family.c_str(),
                  static_cast<long long>(r.tokens), Human(r.state_bytes).c_str(),
                  Human(r.rss_bytes).c_str(), r.step_ms);
    md << line;
    csv << r.family << "," << r.tokens << "," << r.state_bytes << "," << r.rss_bytes << ","
        << r.step_ms << "\n";
  }
  md << "\nPublished attention caches (bf16, all layers; formulas from MATH.md):\n\n"
        "| model | cache | per token | at 4k | at 128k | formula |\n|---|---|---:|---:|---:|---|\n";
  for (const Published& p : PublishedCaches()) {
    md << "| " << p.model << " | " << p.kind << " | " << Human(p.bytes_per_token) << " | "
       << Human(p.bytes_per_token * 4096) << " | " << Human(p.bytes_per_token * 131072) << " | "
       << p.formula << " |\n";
  }
  md << "\nRecurrent state at published shapes (f32, per stream, any context length):\n\n"
        "| model | state |\n|---|---:|\n";
  for (const ConstantState& c : RecurrentStates()) {
    md << "| " << c.model << " | " << Human(c.bytes) << " |\n";
  }
  char footer[256];
  std::snprintf(footer, sizeof(footer),
                "\n%d layer(s) per model, %d thread(s); run took %.0f s.\n", o.layers, o.threads,
                seconds);
  md << footer;
  for (const std::string& n : notes) md << "\nnote: " << n << "\n";
  std::ofstream(dir / "memory_vs_context.md") << md.str();
  std::ofstream(dir / "memory_vs_context.svg") << Svg(rows, labels);
  std::printf("%s", md.str().c_str());
  std::fprintf(stderr, "wrote %s/memory_vs_context.{csv,md,svg}\n", dir.string().c_str());

  if (!o.check) return 0;
  int failures = 0;
  for (const Family& f : families) {
    std::vector<Row> r;
    for (const Row& row : rows) {
      if (row.family == f.label && row.tokens >= f.flat_from) r.push_back(row);
    }
    if (r.size() < 2) {
      std::printf("check %s: fewer than two lengths measured: FAILED\n", f.label.c_str());
      ++failures;
      continue;
    }
    const Row &first = r.front(), &last = r.back();
    if (!f.grows) {
      const double ratio = double(last.rss_bytes) / double(first.rss_bytes);
      const bool ok = last.state_bytes == first.state_bytes && ratio <= 1.05;
      std::printf("check %s: state %zu -> %zu bytes, RSS x%.3f from %lld to %lld tokens: %s\n",
                  f.label.c_str(), first.state_bytes, last.state_bytes, ratio,
                  static_cast<long long>(first.tokens), static_cast<long long>(last.tokens),
                  ok ? "ok" : "FAILED");
      failures += ok ? 0 : 1;
    } else {
      // Linear growth: the per-token slope between every pair of lengths agrees within 5%.
      const double slope = double(last.state_bytes - first.state_bytes) / double(last.tokens - first.tokens);
      bool ok = slope > 0;
      for (size_t i = 1; i < r.size(); ++i) {
        const double s = double(r[i].state_bytes - r[i - 1].state_bytes) /
                         double(r[i].tokens - r[i - 1].tokens);
        ok = ok && std::fabs(s - slope) <= 0.05 * slope;
      }
      const double rss_slope =
          (double(last.rss_bytes) - double(first.rss_bytes)) / double(last.tokens - first.tokens);
      ok = ok && std::fabs(rss_slope - slope) <= 0.05 * slope;
      std::printf("check %s: state grows %.1f bytes/token, RSS %.1f bytes/token: %s\n",
                  f.label.c_str(), slope, rss_slope, ok ? "ok" : "FAILED");
      failures += ok ? 0 : 1;
    }
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace recur::bench

int main(int argc, char** argv) { return recur::bench::Main(argc, argv); }
