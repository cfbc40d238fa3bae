// The C API (runtime/recur.h) over the C++ API (runtime/recur.hpp).
//
// Every entry point checks its pointers and ranges, converts a recur::Status into a
// recur_status plus a thread-local message, and catches every exception (std::bad_alloc from a
// message string, say) so that none crosses the ABI. A recur_session* is the recur::Session*
// itself (so recur_step_batch passes the caller's array through without copying it); a
// recur_model* holds the shared_ptr that sessions share.
#include "runtime/recur.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/recur.hpp"

struct recur_model {
  std::shared_ptr<const recur::Model> model;
};

namespace {

thread_local std::string g_last_error;

recur_status Fail(recur_status code, std::string_view message) noexcept {
  try {
    g_last_error.assign(message);
  } catch (...) {
    g_last_error.clear();  // Out of memory for the message itself: "" beats a crash.
  }
  return code;
}

recur_status CodeOf(recur::StatusCode code) {
  switch (code) {
    case recur::StatusCode::kOk: return RECUR_OK;
    case recur::StatusCode::kInvalidArgument: return RECUR_ERR_INVALID_ARGUMENT;
    case recur::StatusCode::kNotFound: return RECUR_ERR_NOT_FOUND;
    case recur::StatusCode::kIoError: return RECUR_ERR_IO;
    case recur::StatusCode::kCorrupt: return RECUR_ERR_CORRUPT;
    case recur::StatusCode::kUnsupported: return RECUR_ERR_UNSUPPORTED;
    case recur::StatusCode::kOutOfMemory: return RECUR_ERR_OUT_OF_MEMORY;
    case recur::StatusCode::kInternal: return RECUR_ERR_INTERNAL;
  }
  return RECUR_ERR_INTERNAL;
}

recur_status FromStatus(const recur::Status& s) noexcept {
  if (s.ok()) return RECUR_OK;
  return Fail(CodeOf(s.code()), s.message());
}

recur_status Null(const char* call, const char* what) noexcept {
  try {
    return Fail(RECUR_ERR_INVALID_ARGUMENT, std::string(call) + ": " + what + " is NULL");
  } catch (...) {
    return Fail(RECUR_ERR_INVALID_ARGUMENT, "a required pointer is NULL");
  }
}

recur_status FromException() noexcept {
  try {
    throw;
  } catch (const std::bad_alloc&) {
    return Fail(RECUR_ERR_OUT_OF_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return Fail(RECUR_ERR_INTERNAL, e.what());
  } catch (...) {
    return Fail(RECUR_ERR_INTERNAL, "internal error: unknown exception");
  }
}

recur::Session* S(recur_session* s) { return reinterpret_cast<recur::Session*>(s); }
const recur::Session* S(const recur_session* s) {
  return reinterpret_cast<const recur::Session*>(s);
}
recur_session* Handle(std::unique_ptr<recur::Session> s) {
  return reinterpret_cast<recur_session*>(s.release());
}

}  // namespace

#define RECUR_C_TRY try {
#define RECUR_C_CATCH \
  }                   \
  catch (...) {       \
    return FromException(); \
  }

extern "C" {

const char* recur_version(void) { return "0.1.0"; }

const char* recur_status_string(recur_status status) {
  switch (status) {
    case RECUR_OK: return "ok";
    case RECUR_ERR_INVALID_ARGUMENT: return "invalid argument";
    case RECUR_ERR_NOT_FOUND: return "not found";
    case RECUR_ERR_IO: return "i/o error";
    case RECUR_ERR_CORRUPT: return "corrupt";
    case RECUR_ERR_UNSUPPORTED: return "unsupported";
    case RECUR_ERR_OUT_OF_MEMORY: return "out of memory";
    case RECUR_ERR_BUFFER_TOO_SMALL: return "buffer too small";
    case RECUR_ERR_INTERNAL: return "internal error";
  }
  return "unknown status";
}

const char* recur_last_error(void) { return g_last_error.c_str(); }

recur_model_params recur_model_default_params(void) {
  recur_model_params p;
  p.n_threads = 0;
  p.use_mmap = 1;
  return p;
}

recur_status recur_model_load(const char* path, const recur_model_params* params,
                              recur_model** out) {
  if (out == nullptr) return Null("recur_model_load", "out");
  *out = nullptr;
  if (path == nullptr) return Null("recur_model_load", "path");
  RECUR_C_TRY
  const recur_model_params p = params != nullptr ? *params : recur_model_default_params();
  recur::ModelParams mp;
  mp.n_threads = p.n_threads;
  mp.use_mmap = p.use_mmap != 0;
  auto model = recur::Model::Load(path, mp);
  if (!model.ok()) return FromStatus(model.status());
  auto handle = std::make_unique<recur_model>();
  handle->model = std::move(model).value();
  *out = handle.release();
  return RECUR_OK;
  RECUR_C_CATCH
}

void recur_model_free(recur_model* model) { delete model; }

int32_t recur_model_vocab_size(const recur_model* model) {
  if (model == nullptr) return -1;
  const recur::ModelInfo& info = model->model->info();
  return info.token_input || info.logits_output ? info.vocab_size : 0;
}

int32_t recur_model_input_size(const recur_model* model) {
  return model == nullptr ? -1 : model->model->input_size();
}

int32_t recur_model_output_size(const recur_model* model) {
  return model == nullptr ? -1 : model->model->output_size();
}

int32_t recur_model_d_model(const recur_model* model) {
  return model == nullptr ? -1 : model->model->info().d_model;
}

int32_t recur_model_eos_token(const recur_model* model) {
  return model == nullptr ? -1 : model->model->eos_id();
}

recur_status recur_session_create(recur_model* model, recur_session** out) {
  if (out == nullptr) return Null("recur_session_create", "out");
  *out = nullptr;
  if (model == nullptr) return Null("recur_session_create", "model");
  RECUR_C_TRY
  auto session = recur::Session::Create(model->model);
  if (!session.ok()) return FromStatus(session.status());
  *out = Handle(std::move(session).value());
  return RECUR_OK;
  RECUR_C_CATCH
}

void recur_session_free(recur_session* session) { delete S(session); }

recur_status recur_session_reset(recur_session* session) {
  if (session == nullptr) return Null("recur_session_reset", "session");
  S(session)->Reset();
  return RECUR_OK;
}

int64_t recur_session_position(const recur_session* session) {
  return session == nullptr ? -1 : S(session)->position();
}

recur_status recur_session_step_token(recur_session* session, int32_t token,
                                      const float** logits) {
  if (session == nullptr) return Null("recur_session_step_token", "session");
  if (logits == nullptr) return Null("recur_session_step_token", "logits");
  RECUR_C_TRY
  return FromStatus(S(session)->StepToken(token, logits));
  RECUR_C_CATCH
}

recur_status recur_session_prefill_tokens(recur_session* session, const int32_t* tokens,
                                          size_t n, const float** last_logits) {
  if (session == nullptr) return Null("recur_session_prefill_tokens", "session");
  if (tokens == nullptr && n > 0) return Null("recur_session_prefill_tokens", "tokens");
  RECUR_C_TRY
  return FromStatus(S(session)->PrefillTokens(tokens, n, last_logits));
  RECUR_C_CATCH
}

recur_status recur_session_step_frame(recur_session* session, const float* in,
                                      const float** out) {
  if (session == nullptr) return Null("recur_session_step_frame", "session");
  if (in == nullptr) return Null("recur_session_step_frame", "in");
  if (out == nullptr) return Null("recur_session_step_frame", "out");
  RECUR_C_TRY
  return FromStatus(S(session)->StepFrame(in, out));
  RECUR_C_CATCH
}

size_t recur_session_state_size(const recur_session* session) {
  return session == nullptr ? 0 : S(session)->saved_state_size();
}

recur_status recur_session_state_save(const recur_session* session, void* buf, size_t size) {
  if (session == nullptr) return Null("recur_session_state_save", "session");
  if (buf == nullptr) return Null("recur_session_state_save", "buf");
  RECUR_C_TRY
  if (size < S(session)->saved_state_size()) {
    return Fail(RECUR_ERR_BUFFER_TOO_SMALL,
                "recur_session_state_save: the buffer holds " + std::to_string(size) +
                    " bytes; recur_session_state_size says " +
                    std::to_string(S(session)->saved_state_size()));
  }
  return FromStatus(S(session)->SaveState(buf, size));
  RECUR_C_CATCH
}

recur_status recur_session_state_load(recur_session* session, const void* buf, size_t size) {
  if (session == nullptr) return Null("recur_session_state_load", "session");
  if (buf == nullptr) return Null("recur_session_state_load", "buf");
  RECUR_C_TRY
  return FromStatus(S(session)->LoadState(buf, size));
  RECUR_C_CATCH
}

recur_status recur_session_fork(const recur_session* session, recur_session** out) {
  if (out == nullptr) return Null("recur_session_fork", "out");
  *out = nullptr;
  if (session == nullptr) return Null("recur_session_fork", "session");
  RECUR_C_TRY
  auto fork = S(session)->Fork();
  if (!fork.ok()) return FromStatus(fork.status());
  *out = Handle(std::move(fork).value());
  return RECUR_OK;
  RECUR_C_CATCH
}

recur_status recur_step_batch(recur_session* const* sessions, const int32_t* tokens, size_t n,
                              const float** logits) {
  if (sessions == nullptr) return Null("recur_step_batch", "sessions");
  if (tokens == nullptr) return Null("recur_step_batch", "tokens");
  if (logits == nullptr) return Null("recur_step_batch", "logits");
  RECUR_C_TRY
  return FromStatus(recur::Session::StepBatch(
      reinterpret_cast<recur::Session* const*>(sessions), tokens, n, logits));
  RECUR_C_CATCH
}

recur_status recur_session_reserve_batch(recur_session* session, size_t n) {
  if (session == nullptr) return Null("recur_session_reserve_batch", "session");
  RECUR_C_TRY
  return FromStatus(S(session)->ReserveBatch(n));
  RECUR_C_CATCH
}

recur_status recur_tokenize(const recur_model* model, const char* text, int32_t* out, size_t cap,
                            size_t* n_out) {
  if (n_out == nullptr) return Null("recur_tokenize", "n_out");
  *n_out = 0;
  if (model == nullptr) return Null("recur_tokenize", "model");
  if (text == nullptr) return Null("recur_tokenize", "text");
  if (out == nullptr && cap > 0) return Null("recur_tokenize", "out (with cap > 0)");
  RECUR_C_TRY
  std::vector<int32_t> ids;
  recur_status st = FromStatus(model->model->Tokenize(text, &ids));
  if (st != RECUR_OK) return st;
  *n_out = ids.size();
  const size_t n = ids.size() < cap ? ids.size() : cap;
  if (n > 0) std::memcpy(out, ids.data(), n * sizeof(int32_t));
  if (ids.size() > cap) {
    return Fail(RECUR_ERR_BUFFER_TOO_SMALL, "recur_tokenize: the text is " +
                                                std::to_string(ids.size()) + " tokens; cap is " +
                                                std::to_string(cap));
  }
  return RECUR_OK;
  RECUR_C_CATCH
}

recur_status recur_detokenize(const recur_model* model, const int32_t* ids, size_t n, char* out,
                              size_t cap, size_t* n_out) {
  if (n_out == nullptr) return Null("recur_detokenize", "n_out");
  *n_out = 0;
  if (model == nullptr) return Null("recur_detokenize", "model");
  if (ids == nullptr && n > 0) return Null("recur_detokenize", "ids");
  if (out == nullptr && cap > 0) return Null("recur_detokenize", "out (with cap > 0)");
  RECUR_C_TRY
  const recur::Model& m = *model->model;
  if (!m.has_tokenizer()) {
    return Fail(RECUR_ERR_NOT_FOUND, "recur_detokenize: " + m.info().path + " has no tokenizer");
  }
  const int32_t vocab = m.info().vocab_size;
  std::string text;
  for (size_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= vocab) {
      return Fail(RECUR_ERR_INVALID_ARGUMENT,
                  "recur_detokenize: ids[" + std::to_string(i) + "] = " + std::to_string(ids[i]) +
                      " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
    }
    text += m.TokenBytes(ids[i]);
  }
  *n_out = text.size();
  const size_t k = text.size() < cap ? text.size() : cap;
  if (k > 0) std::memcpy(out, text.data(), k);
  if (text.size() < cap) out[text.size()] = '\0';
  if (text.size() > cap) {
    return Fail(RECUR_ERR_BUFFER_TOO_SMALL, "recur_detokenize: the text is " +
                                                std::to_string(text.size()) + " bytes; cap is " +
                                                std::to_string(cap));
  }
  return RECUR_OK;
  RECUR_C_CATCH
}

recur_sampler_params recur_sampler_default_params(void) {
  const recur::SamplerParams d;
  recur_sampler_params p;
  std::memset(&p, 0, sizeof(p));
  p.struct_size = sizeof(p);
  p.temperature = d.temperature;
  p.top_k = d.top_k;
  p.top_p = d.top_p;
  p.seed = d.seed;
  p.presence_penalty = d.presence_penalty;
  p.frequency_penalty = d.frequency_penalty;
  p.penalty_decay = d.penalty_decay;
  return p;
}

recur_status recur_sampler_create(const recur_model* model, const recur_sampler_params* params,
                                  recur_sampler** out) {
  if (out == nullptr) return Null("recur_sampler_create", "out");
  *out = nullptr;
  if (model == nullptr) return Null("recur_sampler_create", "model");
  RECUR_C_TRY
  // Fields up to the caller's struct_size come from the caller, the rest keep the defaults, so
  // a caller built against an older (shorter) struct keeps working.
  recur_sampler_params p = recur_sampler_default_params();
  if (params != nullptr) {
    if (params->struct_size < offsetof(recur_sampler_params, temperature)) {
      return Fail(RECUR_ERR_INVALID_ARGUMENT,
                  "recur_sampler_create: params->struct_size is " +
                      std::to_string(params->struct_size) +
                      "; set it to sizeof(recur_sampler_params) (recur_sampler_default_params "
                      "does)");
    }
    std::memcpy(&p, params, std::min(params->struct_size, sizeof(p)));
    p.struct_size = sizeof(p);
  }
  const recur::ModelInfo& info = model->model->info();
  if (!info.logits_output || info.vocab_size <= 0) {
    return Fail(RECUR_ERR_INVALID_ARGUMENT,
                "recur_sampler_create: " + info.path + " does not output logits");
  }
  recur::SamplerParams sp;
  sp.temperature = p.temperature;
  sp.top_k = p.top_k;
  sp.top_p = p.top_p;
  sp.seed = p.seed;
  sp.presence_penalty = p.presence_penalty;
  sp.frequency_penalty = p.frequency_penalty;
  sp.penalty_decay = p.penalty_decay;
  *out = reinterpret_cast<recur_sampler*>(new recur::Sampler(*model->model, sp));
  return RECUR_OK;
  RECUR_C_CATCH
}

void recur_sampler_free(recur_sampler* sampler) {
  delete reinterpret_cast<recur::Sampler*>(sampler);
}

recur_status recur_sampler_sample(recur_sampler* sampler, const float* logits, int32_t* token) {
  if (token == nullptr) return Null("recur_sampler_sample", "token");
  *token = -1;
  if (sampler == nullptr) return Null("recur_sampler_sample", "sampler");
  if (logits == nullptr) return Null("recur_sampler_sample", "logits");
  *token = reinterpret_cast<recur::Sampler*>(sampler)->Sample(logits);
  return RECUR_OK;
}

recur_status recur_sampler_reset(recur_sampler* sampler) {
  if (sampler == nullptr) return Null("recur_sampler_reset", "sampler");
  reinterpret_cast<recur::Sampler*>(sampler)->ResetPenalties();
  return RECUR_OK;
}

}  // extern "C"
