// The C API (runtime/recur.h), called from C++: saved state round trips bit-exactly and is
// refused for another model or damaged bytes; forks diverge independently; a batch matches
// separate steps; sessions on many threads match one at a time; every function refuses NULL
// and out-of-range arguments; tokenize/detokenize round-trip.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "formats/convert.h"
#include "formats/rwkv_cpp.h"
#include "runtime/recur.h"
#include "tests/capi/test_models.h"
#include "tests/test_util.h"

namespace {

using recur::testing::TempDir;

struct ModelDeleter {
  void operator()(recur_model* m) const { recur_model_free(m); }
};
struct SessionDeleter {
  void operator()(recur_session* s) const { recur_session_free(s); }
};
using ModelPtr = std::unique_ptr<recur_model, ModelDeleter>;
using SessionPtr = std::unique_ptr<recur_session, SessionDeleter>;

ModelPtr LoadModel(const std::string& path, int n_threads = 1) {
  recur_model_params p = recur_model_default_params();
  p.n_threads = n_threads;
  recur_model* m = nullptr;
  const recur_status st = recur_model_load(path.c_str(), &p, &m);
  REQUIRE_MESSAGE(st == RECUR_OK, recur_last_error());
  REQUIRE(m != nullptr);
  return ModelPtr(m);
}

SessionPtr NewSession(recur_model* m) {
  recur_session* s = nullptr;
  REQUIRE_MESSAGE(recur_session_create(m, &s) == RECUR_OK, recur_last_error());
  return SessionPtr(s);
}

// A deterministic token sequence (a different one for each `salt`).
std::vector<int32_t> Tokens(size_t n, uint32_t salt, int32_t vocab = 256) {
  std::vector<int32_t> t(n);
  uint32_t x = 2463534242u ^ (salt * 0x9E3779B9u);
  for (int32_t& v : t) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    v = static_cast<int32_t>(x % static_cast<uint32_t>(vocab));
  }
  return t;
}

// Logits after each token, stepped one at a time: [tokens, vocab].
std::vector<float> Step(recur_session* s, const std::vector<int32_t>& tokens, size_t vocab) {
  std::vector<float> all;
  for (int32_t t : tokens) {
    const float* logits = nullptr;
    REQUIRE_MESSAGE(recur_session_step_token(s, t, &logits) == RECUR_OK, recur_last_error());
    all.insert(all.end(), logits, logits + vocab);
  }
  return all;
}

std::vector<uint8_t> Save(const recur_session* s) {
  std::vector<uint8_t> buf(recur_session_state_size(s));
  REQUIRE(!buf.empty());
  REQUIRE_MESSAGE(recur_session_state_save(s, buf.data(), buf.size()) == RECUR_OK,
                  recur_last_error());
  return buf;
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

double MaxAbsDiff(const float* a, const float* b, size_t n) {
  double worst = 0;
  for (size_t i = 0; i < n; ++i) worst = std::max(worst, std::fabs(double(a[i]) - double(b[i])));
  return worst;
}

struct Fixture {
  TempDir dir;
  std::string path = dir.File("mixed.recur");
  ModelPtr model;
  size_t vocab = 0;
  explicit Fixture(int n_threads = 1, uint32_t seed = 7) {
    REQUIRE(recur::testing::WriteMixedModel(path, seed).ok());
    model = LoadModel(path, n_threads);
    vocab = static_cast<size_t>(recur_model_output_size(model.get()));
    REQUIRE(vocab == 256);
  }
};

}  // namespace

TEST_CASE("C API: save after t tokens, load into a fresh session, continue: bit-identical logits") {
  Fixture f;
  const std::vector<int32_t> prefix = Tokens(40, 1), rest = Tokens(12, 2);
  auto whole = NewSession(f.model.get());
  for (size_t t : {0u, 1u, 5u, 17u, 40u}) {
    CAPTURE(t);
    const std::vector<int32_t> head(prefix.begin(), prefix.begin() + t);
    // The uninterrupted stream.
    REQUIRE(recur_session_reset(whole.get()) == RECUR_OK);
    Step(whole.get(), head, f.vocab);
    const std::vector<float> expected = Step(whole.get(), rest, f.vocab);
    // Saved after t tokens (fed by prefill, the other path), loaded into a fresh session.
    auto a = NewSession(f.model.get());
    REQUIRE(recur_session_prefill_tokens(a.get(), head.data(), head.size(), nullptr) == RECUR_OK);
    // Prefill and step leave states equal within rounding, not bit for bit, so the bit-exact
    // comparison uses a state saved after stepping.
    REQUIRE(recur_session_reset(a.get()) == RECUR_OK);
    Step(a.get(), head, f.vocab);
    const std::vector<uint8_t> saved = Save(a.get());
    CHECK(saved.size() == recur_session_state_size(a.get()));
    auto b = NewSession(f.model.get());
    REQUIRE_MESSAGE(recur_session_state_load(b.get(), saved.data(), saved.size()) == RECUR_OK,
                    recur_last_error());
    CHECK(recur_session_position(b.get()) == static_cast<int64_t>(t));
    CHECK(SameBits(Step(b.get(), rest, f.vocab), expected));
    // Loading into a used session replaces what it held.
    auto c = NewSession(f.model.get());
    Step(c.get(), Tokens(9, 3), f.vocab);
    REQUIRE(recur_session_state_load(c.get(), saved.data(), saved.size()) == RECUR_OK);
    CHECK(SameBits(Step(c.get(), rest, f.vocab), expected));
    // The saved bytes are the same from any session in the same place.
    CHECK(Save(b.get()).size() == saved.size());
  }
}

// The same guarantees on models of the other constant-state block kinds that this tree can make
// without writing their weights by hand: every RWKV version, converted from ../shared.
TEST_CASE("C API: rwkv v4-v7: save/load and fork continue bit-identically; batches match") {
  const std::string shared = recur::testing::SharedDir();
  if (shared.empty()) {
    MESSAGE("skipped: the shared models folder is absent");
    return;
  }
  TempDir dir;
  for (const char* file : {"tiny-rwkv-4v0-660K-FP32.bin", "tiny-rwkv-5v2-730K-FP32.bin",
                           "tiny-rwkv-6v0-1m-FP32.bin", "tiny-rwkv-7v0-834K-FP32.bin"}) {
    CAPTURE(file);
    recur::ConvertOptions options;
    options.source = shared + "/models/rwkv-tiny/" + file;
    options.output = dir.File(std::string(file) + ".recur");
    auto report = recur::ConvertRwkvCpp(options);
    REQUIRE_MESSAGE(report.ok(), report.status().message());
    ModelPtr model = LoadModel(options.output);
    const size_t vocab = static_cast<size_t>(recur_model_output_size(model.get()));
    const std::vector<int32_t> prefix = Tokens(9, 21, static_cast<int32_t>(vocab)),
                               rest = Tokens(7, 22, static_cast<int32_t>(vocab)),
                               other = Tokens(7, 23, static_cast<int32_t>(vocab));
    auto whole = NewSession(model.get());
    Step(whole.get(), prefix, vocab);
    const std::vector<float> expected = Step(whole.get(), rest, vocab);
    REQUIRE(recur_session_reset(whole.get()) == RECUR_OK);
    Step(whole.get(), prefix, vocab);
    const std::vector<float> expected_other = Step(whole.get(), other, vocab);

    auto a = NewSession(model.get());
    Step(a.get(), prefix, vocab);
    const std::vector<uint8_t> saved = Save(a.get());
    recur_session* fork_raw = nullptr;
    REQUIRE(recur_session_fork(a.get(), &fork_raw) == RECUR_OK);
    SessionPtr fork(fork_raw);
    auto b = NewSession(model.get());
    REQUIRE(recur_session_state_load(b.get(), saved.data(), saved.size()) == RECUR_OK);
    CHECK(SameBits(Step(b.get(), rest, vocab), expected));
    // The parent and the fork, advanced together in batches with different tokens.
    std::vector<float> got_a, got_fork;
    recur_session* pair[2] = {a.get(), fork.get()};
    for (size_t i = 0; i < rest.size(); ++i) {
      const int32_t t[2] = {rest[i], other[i]};
      const float* l[2];
      REQUIRE(recur_step_batch(pair, t, 2, l) == RECUR_OK);
      got_a.insert(got_a.end(), l[0], l[0] + vocab);
      got_fork.insert(got_fork.end(), l[1], l[1] + vocab);
    }
    // rwkv's own StepBatch runs its projections through ops::MatMul (another summation order
    // than Step's matvec), so its batches match separate steps within f32 rounding rather than
    // bit for bit; the bound is its tests' 1e-4. (Block kinds on the default StepBatch, or on
    // runtime/blocks/batch_matvec.h, are exact.)
    const double diff_a = MaxAbsDiff(got_a.data(), expected.data(), expected.size());
    const double diff_fork = MaxAbsDiff(got_fork.data(), expected_other.data(), expected.size());
    MESSAGE(std::string(file), ": batch of parent + fork vs separate steps: max |logit diff| ",
            diff_a, ", ", diff_fork);
    CHECK(got_a.size() == expected.size());
    CHECK(got_fork.size() == expected_other.size());
    CHECK(diff_a <= 1e-4);
    CHECK(diff_fork <= 1e-4);
  }
}

TEST_CASE("C API: a fork and its parent continue independently") {
  Fixture f;
  const std::vector<int32_t> prefix = Tokens(11, 4), x = Tokens(9, 5), y = Tokens(9, 6);
  auto ref = NewSession(f.model.get());
  Step(ref.get(), prefix, f.vocab);
  const std::vector<float> expect_x = Step(ref.get(), x, f.vocab);
  REQUIRE(recur_session_reset(ref.get()) == RECUR_OK);
  Step(ref.get(), prefix, f.vocab);
  const std::vector<float> expect_y = Step(ref.get(), y, f.vocab);
  CHECK(!SameBits(expect_x, expect_y));

  auto parent = NewSession(f.model.get());
  const std::vector<float> prefix_logits = Step(parent.get(), prefix, f.vocab);
  recur_session* fork_raw = nullptr;
  REQUIRE(recur_session_fork(parent.get(), &fork_raw) == RECUR_OK);
  SessionPtr fork(fork_raw);
  CHECK(recur_session_position(fork.get()) == static_cast<int64_t>(prefix.size()));
  // Interleaved: each step of one must not disturb the other.
  std::vector<float> got_x, got_y;
  for (size_t i = 0; i < x.size(); ++i) {
    const float* lx = nullptr;
    const float* ly = nullptr;
    REQUIRE(recur_session_step_token(parent.get(), x[i], &lx) == RECUR_OK);
    REQUIRE(recur_session_step_token(fork.get(), y[i], &ly) == RECUR_OK);
    got_x.insert(got_x.end(), lx, lx + f.vocab);
    got_y.insert(got_y.end(), ly, ly + f.vocab);
  }
  CHECK(SameBits(got_x, expect_x));
  CHECK(SameBits(got_y, expect_y));
  // Freeing the parent leaves the fork working.
  parent.reset();
  const float* l = nullptr;
  CHECK(recur_session_step_token(fork.get(), 3, &l) == RECUR_OK);
}

TEST_CASE("C API: state from another model or damaged bytes is refused and changes nothing") {
  Fixture f;
  TempDir dir;
  // Same layout, other weights; and another layout.
  const std::string other_weights = dir.File("other.recur"), other_shape = dir.File("shape.recur");
  REQUIRE(recur::testing::WriteMixedModel(other_weights, 8).ok());
  recur::testing::TinyDims d;
  d.d_state = 8;
  REQUIRE(recur::testing::WriteMixedModel(other_shape, 7, d).ok());
  auto m_weights = LoadModel(other_weights);
  auto m_shape = LoadModel(other_shape);

  auto src = NewSession(f.model.get());
  Step(src.get(), Tokens(6, 7), f.vocab);
  const std::vector<uint8_t> saved = Save(src.get());

  SUBCASE("the same file loaded again (read, not mapped) accepts it") {
    recur_model_params p = recur_model_default_params();
    p.use_mmap = 0;
    recur_model* again = nullptr;
    REQUIRE(recur_model_load(f.path.c_str(), &p, &again) == RECUR_OK);
    ModelPtr again_ptr(again);
    auto s = NewSession(again);
    CHECK(recur_session_state_load(s.get(), saved.data(), saved.size()) == RECUR_OK);
  }
  SUBCASE("another model's sessions refuse it, naming the cause") {
    auto s1 = NewSession(m_weights.get());
    CHECK(recur_session_state_load(s1.get(), saved.data(), saved.size()) ==
          RECUR_ERR_INVALID_ARGUMENT);
    CHECK(recur::testing::Contains(recur_last_error(), "another model"));
    auto s2 = NewSession(m_shape.get());
    CHECK(recur_session_state_load(s2.get(), saved.data(), saved.size()) ==
          RECUR_ERR_INVALID_ARGUMENT);
    CHECK(recur::testing::Contains(recur_last_error(), "another model"));
  }
  SUBCASE("damaged, truncated or foreign bytes are refused and the session is unchanged") {
    auto victim = NewSession(f.model.get());
    const std::vector<int32_t> prefix = Tokens(5, 8), rest = Tokens(6, 9);
    Step(victim.get(), prefix, f.vocab);
    auto twin = NewSession(f.model.get());
    Step(twin.get(), prefix, f.vocab);
    const std::vector<float> expected = Step(twin.get(), rest, f.vocab);

    std::vector<std::pair<std::string, std::vector<uint8_t>>> bad;
    for (size_t at : {size_t{0}, size_t{9}, size_t{20}, size_t{30}, size_t{63}, size_t{64},
                      saved.size() / 2, saved.size() - 1}) {
      std::vector<uint8_t> b = saved;
      b[at] ^= 0x10;
      bad.emplace_back("flipped byte " + std::to_string(at), std::move(b));
    }
    bad.emplace_back("truncated", std::vector<uint8_t>(saved.begin(), saved.end() - 4));
    bad.emplace_back("header only", std::vector<uint8_t>(saved.begin(), saved.begin() + 64));
    bad.emplace_back("too short", std::vector<uint8_t>(saved.begin(), saved.begin() + 10));
    std::vector<uint8_t> padded = saved;
    padded.push_back(0);
    bad.emplace_back("padded", padded);
    bad.emplace_back("zeros", std::vector<uint8_t>(saved.size(), 0));
    for (const auto& [what, bytes] : bad) {
      CAPTURE(what);
      const recur_status st = recur_session_state_load(victim.get(), bytes.data(), bytes.size());
      CHECK(st != RECUR_OK);
      CHECK((st == RECUR_ERR_CORRUPT || st == RECUR_ERR_INVALID_ARGUMENT ||
             st == RECUR_ERR_UNSUPPORTED));
      CHECK(std::string(recur_last_error()).size() > 10);
    }
    CHECK(recur_session_position(victim.get()) == static_cast<int64_t>(prefix.size()));
    CHECK(SameBits(Step(victim.get(), rest, f.vocab), expected));
  }
}

TEST_CASE("C API: recur_step_batch of 8 streams gives the logits of 8 separate steps, bit for bit") {
  for (int n_threads : {1, 2}) {
    CAPTURE(n_threads);
    Fixture f(n_threads);
    constexpr size_t kStreams = 8, kSteps = 10;
    std::vector<SessionPtr> batch, single;
    std::vector<recur_session*> handles;
    for (size_t i = 0; i < kStreams; ++i) {
      batch.push_back(NewSession(f.model.get()));
      single.push_back(NewSession(f.model.get()));
      // Streams at different positions: prompts of different lengths.
      const std::vector<int32_t> prompt = Tokens(3 * i, 100 + static_cast<uint32_t>(i));
      Step(batch.back().get(), prompt, f.vocab);
      Step(single.back().get(), prompt, f.vocab);
      handles.push_back(batch.back().get());
    }
    REQUIRE(recur_session_reserve_batch(handles[0], kStreams) == RECUR_OK);
    double worst = 0;
    for (size_t step = 0; step < kSteps; ++step) {
      const std::vector<int32_t> tokens = Tokens(kStreams, 200 + static_cast<uint32_t>(step));
      std::vector<const float*> logits(kStreams, nullptr);
      REQUIRE_MESSAGE(recur_step_batch(handles.data(), tokens.data(), kStreams, logits.data()) ==
                          RECUR_OK,
                      recur_last_error());
      for (size_t i = 0; i < kStreams; ++i) {
        const float* expect = nullptr;
        REQUIRE(recur_session_step_token(single[i].get(), tokens[i], &expect) == RECUR_OK);
        REQUIRE(logits[i] != nullptr);
        worst = std::max(worst, MaxAbsDiff(logits[i], expect, f.vocab));
        CHECK(recur_session_position(handles[i]) == recur_session_position(single[i].get()));
      }
    }
    // The batch runs each projection with Step's matvec kernel on blocks of rows (reading each
    // weight from memory once for all streams) and each recurrence with Step's kernels, so the
    // sums are the same sums in the same order: exactly equal, not merely close.
    MESSAGE("batch of 8 vs 8 separate steps, ", kSteps, " steps: max |logit diff| = ", worst);
    CHECK(worst == 0.0);

    // A smaller batch (led by another session, so it gets its own workspace) and a batch of one
    // (the single-token path: bit-identical).
    std::vector<recur_session*> three = {handles[5], handles[2], handles[7]};
    const std::vector<int32_t> t3 = {1, 2, 3};
    std::vector<const float*> l3(3);
    REQUIRE(recur_step_batch(three.data(), t3.data(), 3, l3.data()) == RECUR_OK);
    for (size_t k = 0; k < 3; ++k) {
      const size_t i = k == 0 ? 5 : k == 1 ? 2 : 7;
      const float* expect = nullptr;
      REQUIRE(recur_session_step_token(single[i].get(), t3[k], &expect) == RECUR_OK);
      CHECK(MaxAbsDiff(l3[k], expect, f.vocab) == 0.0);
    }
    const int32_t t1 = 42;
    const float* l1 = nullptr;
    REQUIRE(recur_step_batch(&handles[0], &t1, 1, &l1) == RECUR_OK);
    const float* e1 = nullptr;
    REQUIRE(recur_session_step_token(single[0].get(), t1, &e1) == RECUR_OK);
    CHECK(MaxAbsDiff(l1, e1, f.vocab) == 0.0);
  }
}

TEST_CASE("C API: streams batched for a while, then stepped alone, match streams never batched") {
  // A batch leaves each stream's state exactly where its separate steps would have.
  Fixture f;
  auto a = NewSession(f.model.get());
  auto b = NewSession(f.model.get());
  auto ref = NewSession(f.model.get());
  std::vector<recur_session*> h = {a.get(), b.get()};
  const std::vector<int32_t> ta = Tokens(6, 11), tb = Tokens(6, 12);
  for (size_t i = 0; i < ta.size(); ++i) {
    const int32_t tok[2] = {ta[i], tb[i]};
    const float* l[2];
    REQUIRE(recur_step_batch(h.data(), tok, 2, l) == RECUR_OK);
  }
  const std::vector<float> ref_rest = [&] {
    Step(ref.get(), ta, f.vocab);
    return Step(ref.get(), Tokens(5, 13), f.vocab);
  }();
  const std::vector<float> got = Step(a.get(), Tokens(5, 13), f.vocab);
  CHECK(SameBits(got, ref_rest));
}

TEST_CASE("C API: sessions on many threads at once give the results of one at a time") {
  Fixture f(/*n_threads=*/2);
  constexpr int kThreads = 4;
  std::vector<std::vector<float>> sequential(kThreads), parallel(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    auto s = NewSession(f.model.get());
    sequential[i] = Step(s.get(), Tokens(24, 300 + i), f.vocab);
  }
  std::vector<int> failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      recur_session* s = nullptr;
      if (recur_session_create(f.model.get(), &s) != RECUR_OK) {
        failures[i] = 1;
        return;
      }
      for (int32_t t : Tokens(24, 300 + i)) {
        const float* logits = nullptr;
        if (recur_session_step_token(s, t, &logits) != RECUR_OK) {
          failures[i] = 1;
          break;
        }
        parallel[i].insert(parallel[i].end(), logits, logits + f.vocab);
      }
      recur_session_free(s);
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) {
    CAPTURE(i);
    CHECK(failures[i] == 0);
    CHECK(SameBits(parallel[i], sequential[i]));
  }
}

TEST_CASE("C API: batches on several threads at once give the results of one at a time") {
  Fixture f(/*n_threads=*/2);
  constexpr int kThreads = 3;
  constexpr size_t kStreams = 4, kSteps = 12;
  // Each thread drives its own batch of kStreams sessions; the reference steps them alone.
  auto run = [&](int t, std::vector<float>* out) -> bool {
    std::vector<recur_session*> s(kStreams, nullptr);
    bool ok = true;
    for (recur_session*& x : s) ok = ok && recur_session_create(f.model.get(), &x) == RECUR_OK;
    for (size_t step = 0; ok && step < kSteps; ++step) {
      const std::vector<int32_t> tokens = Tokens(kStreams, 500 + 50 * t + step);
      std::vector<const float*> l(kStreams);
      ok = recur_step_batch(s.data(), tokens.data(), kStreams, l.data()) == RECUR_OK;
      for (size_t i = 0; ok && i < kStreams; ++i) out->insert(out->end(), l[i], l[i] + f.vocab);
    }
    for (recur_session* x : s) recur_session_free(x);
    return ok;
  };
  std::vector<std::vector<float>> expected(kThreads), got(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    std::vector<SessionPtr> s;
    for (size_t i = 0; i < kStreams; ++i) s.push_back(NewSession(f.model.get()));
    for (size_t step = 0; step < kSteps; ++step) {
      const std::vector<int32_t> tokens = Tokens(kStreams, 500 + 50 * t + step);
      for (size_t i = 0; i < kStreams; ++i) {
        const float* l = nullptr;
        REQUIRE(recur_session_step_token(s[i].get(), tokens[i], &l) == RECUR_OK);
        expected[t].insert(expected[t].end(), l, l + f.vocab);
      }
    }
  }
  std::vector<int> ok(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] { ok[t] = run(t, &got[t]) ? 1 : 0; });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    CAPTURE(t);
    CHECK(ok[t] == 1);
    CHECK(SameBits(got[t], expected[t]));
  }
}

TEST_CASE("C API: tokenize and detokenize round-trip with the model's bytes tokenizer") {
  Fixture f;
  const std::string text = "Hello, recur! \xC3\xA9t\xC3\xA9 \xE2\x9C\x93";
  size_t n = 0;
  // Size query first, then the real call.
  CHECK(recur_tokenize(f.model.get(), text.c_str(), nullptr, 0, &n) == RECUR_ERR_BUFFER_TOO_SMALL);
  CHECK(n == text.size());
  std::vector<int32_t> ids(n);
  REQUIRE(recur_tokenize(f.model.get(), text.c_str(), ids.data(), ids.size(), &n) == RECUR_OK);
  CHECK(n == text.size());
  CHECK(ids[0] == 'H');
  std::vector<char> out(n + 1, 'x');
  size_t m = 0;
  REQUIRE(recur_detokenize(f.model.get(), ids.data(), n, out.data(), out.size(), &m) == RECUR_OK);
  CHECK(m == text.size());
  CHECK(std::string(out.data()) == text);  // NUL-terminated when it fits.
  // Too small: truncated copy, the full size reported.
  char small[4];
  CHECK(recur_detokenize(f.model.get(), ids.data(), n, small, sizeof(small), &m) ==
        RECUR_ERR_BUFFER_TOO_SMALL);
  CHECK(m == text.size());
  CHECK(std::memcmp(small, text.data(), 4) == 0);
  std::vector<int32_t> few(3);
  CHECK(recur_tokenize(f.model.get(), text.c_str(), few.data(), few.size(), &n) ==
        RECUR_ERR_BUFFER_TOO_SMALL);
  CHECK(n == text.size());
  CHECK(few[2] == 'l');
  // Empty text.
  CHECK(recur_tokenize(f.model.get(), "", nullptr, 0, &n) == RECUR_OK);
  CHECK(n == 0);
  // Out-of-range ids.
  const int32_t bad[2] = {65, 256};
  CHECK(recur_detokenize(f.model.get(), bad, 2, out.data(), out.size(), &m) ==
        RECUR_ERR_INVALID_ARGUMENT);
  CHECK(recur::testing::Contains(recur_last_error(), "256"));
  // A model without a tokenizer says so.
  TempDir dir;
  const std::string bare = dir.File("bare.recur");
  REQUIRE(recur::testing::WriteMixedModel(bare, 7, {}, /*tokenizer=*/false).ok());
  auto bare_model = LoadModel(bare);
  CHECK(recur_tokenize(bare_model.get(), "x", ids.data(), ids.size(), &n) == RECUR_ERR_NOT_FOUND);
  CHECK(recur_detokenize(bare_model.get(), ids.data(), 1, out.data(), out.size(), &m) ==
        RECUR_ERR_NOT_FOUND);
}

TEST_CASE("C API: every function refuses NULL and out-of-range arguments with an error") {
  Fixture f;
  auto s = NewSession(f.model.get());
  recur_model* m = f.model.get();
  const float* lp = nullptr;
  const int32_t tok = 1;
  int32_t ids[4];
  char text[8];
  size_t n = 0;
  std::vector<uint8_t> buf(recur_session_state_size(s.get()));

  CHECK(std::string(recur_status_string(RECUR_OK)) == "ok");
  CHECK(std::string(recur_status_string(RECUR_ERR_CORRUPT)) == "corrupt");
  CHECK(std::string(recur_status_string(static_cast<recur_status>(-99))) == "unknown status");
  CHECK(std::string(recur_version()) == "0.1.0");

  // Models.
  recur_model* out_model = reinterpret_cast<recur_model*>(0x1);
  CHECK(recur_model_load(nullptr, nullptr, &out_model) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(out_model == nullptr);  // Cleared on failure.
  CHECK(recur::testing::Contains(recur_last_error(), "path"));
  CHECK(recur_model_load(f.path.c_str(), nullptr, nullptr) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(recur_model_load("/nonexistent/x.recur", nullptr, &out_model) != RECUR_OK);
  CHECK(recur::testing::Contains(recur_last_error(), "/nonexistent/x.recur"));
  recur_model_params bad_params = recur_model_default_params();
  bad_params.n_threads = -3;
  CHECK(recur_model_load(f.path.c_str(), &bad_params, &out_model) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(recur_model_vocab_size(nullptr) == -1);
  CHECK(recur_model_input_size(nullptr) == -1);
  CHECK(recur_model_output_size(nullptr) == -1);
  CHECK(recur_model_d_model(nullptr) == -1);
  CHECK(recur_model_eos_token(nullptr) == -1);
  CHECK(recur_model_vocab_size(m) == 256);
  CHECK(recur_model_input_size(m) == 0);
  CHECK(recur_model_d_model(m) == 64);
  recur_model_free(nullptr);

  // Sessions.
  recur_session* out_session = reinterpret_cast<recur_session*>(0x1);
  CHECK(recur_session_create(nullptr, &out_session) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(out_session == nullptr);
  CHECK(recur_session_create(m, nullptr) == RECUR_ERR_INVALID_ARGUMENT);
  recur_session_free(nullptr);
  CHECK(recur_session_reset(nullptr) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(recur_session_position(nullptr) == -1);
  CHECK(recur_session_step_token(nullptr, 1, &lp) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(recur_session_step_token(s.get(), 1, nullptr) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(recur_session_step_token(s.get(), -1, &lp) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(recur_session_step_token(s.get(), 256, &lp) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(recur::testing::Contains(recur_last_error(), "256"));
  CHECK(recur_session_prefill_tokens(nullptr, &tok, 1, &lp) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(recur_session_prefill_tokens(s.get(), nullptr, 1, &lp) == RECUR_ERR_INVALID_ARGUMENT);
  const int32_t bad_tokens[2] = {3, 9999};
  CHECK(recur_session_prefill_tokens(s.get(), bad_tokens, 2, &lp) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(recur_session_prefill_tokens(s.get(), nullptr, 0, &lp) == RECUR_OK);  // Nothing to do.
  CHECK(lp == nullptr);
  const float frame[4] = {0, 0, 0, 0};
  CHECK(recur_session_step_frame(nullptr, frame, &lp) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(recur_session_step_frame(s.get(), nullptr, &lp) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(recur_session_step_frame(s.get(), frame, nullptr) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(recur_session_step_frame(s.get(), frame, &lp) == RECUR_ERR_INVALID_ARGUMENT);  // Tokens model.
  CHECK(recur_session_position(s.get()) == 0);  // Nothing moved.

  // State.
  CHECK(recur_session_state_size(nullptr) == 0);
  CHECK(recur_session_state_save(nullptr, buf.data(), buf.size()) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(recur_session_state_save(s.get(), nullptr, buf.size()) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(recur_session_state_save(s.get(), buf.data(), buf.size() - 1) ==
        RECUR_ERR_BUFFER_TOO_SMALL);
  CHECK(recur_session_state_load(nullptr, buf.data(), buf.size()) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(recur_session_state_load(s.get(), nullptr, buf.size()) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(recur_session_state_load(s.get(), buf.data(), 0) == RECUR_ERR_CORRUPT);
  CHECK(recur_session_fork(nullptr, &out_session) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(recur_session_fork(s.get(), nullptr) == RECUR_ERR_INVALID_ARGUMENT);

  // Batches.
  auto s2 = NewSession(f.model.get());
  TempDir dir;
  const std::string other = dir.File("other.recur");
  REQUIRE(recur::testing::WriteMixedModel(other, 9).ok());
  auto other_model = LoadModel(other);
  auto s3 = NewSession(other_model.get());
  const float* l2[2];
  const int32_t t2[2] = {1, 2};
  recur_session* pair[2] = {s.get(), s2.get()};
  recur_session* with_null[2] = {s.get(), nullptr};
  recur_session* twice[2] = {s.get(), s.get()};
  recur_session* mixed[2] = {s.get(), s3.get()};
  const int32_t bad_t2[2] = {1, -5};
  CHECK(recur_step_batch(nullptr, t2, 2, l2) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(recur_step_batch(pair, nullptr, 2, l2) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(recur_step_batch(pair, t2, 2, nullptr) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(recur_step_batch(with_null, t2, 2, l2) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(recur_step_batch(twice, t2, 2, l2) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(recur::testing::Contains(recur_last_error(), "twice"));
  CHECK(recur_step_batch(mixed, t2, 2, l2) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(recur::testing::Contains(recur_last_error(), "another model"));
  CHECK(recur_step_batch(pair, bad_t2, 2, l2) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(recur_step_batch(pair, t2, 0, l2) == RECUR_OK);  // An empty batch does nothing.
  CHECK(recur_session_position(s.get()) == 0);
  CHECK(recur_session_position(s2.get()) == 0);
  CHECK(recur_session_reserve_batch(nullptr, 4) == RECUR_ERR_INVALID_ARGUMENT);
  // After all those refusals the batch still runs.
  CHECK(recur_step_batch(pair, t2, 2, l2) == RECUR_OK);
  CHECK(recur_session_position(s.get()) == 1);

  // Text.
  CHECK(recur_tokenize(nullptr, "a", ids, 4, &n) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(recur_tokenize(m, nullptr, ids, 4, &n) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(recur_tokenize(m, "a", nullptr, 4, &n) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(recur_tokenize(m, "a", ids, 4, nullptr) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(recur_detokenize(nullptr, ids, 1, text, 8, &n) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(recur_detokenize(m, nullptr, 1, text, 8, &n) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(recur_detokenize(m, ids, 0, nullptr, 8, &n) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(recur_detokenize(m, ids, 0, text, 8, nullptr) == RECUR_ERR_INVALID_ARGUMENT);
  CHECK(recur_detokenize(m, nullptr, 0, text, 8, &n) == RECUR_OK);
  CHECK(n == 0);
  CHECK(text[0] == '\0');
}
