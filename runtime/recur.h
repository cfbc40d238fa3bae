/* recur's C API: a small, stable C99 ABI over the C++ runtime (runtime/recur.hpp).
 *
 * Every handle is opaque. Nothing throws or aborts across this ABI: every failure returns a
 * negative recur_status (or, for the size queries, 0 / -1), and recur_last_error() then holds a
 * message naming what was wrong. docs/c-api.md describes ownership, lifetimes, thread safety and
 * the saved-state format.
 */
#ifndef RECUR_H_
#define RECUR_H_

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#if defined(RECUR_BUILDING_LIBRARY)
#define RECUR_API __declspec(dllexport)
#else
#define RECUR_API
#endif
#elif defined(__GNUC__) || defined(__clang__)
#define RECUR_API __attribute__((visibility("default")))
#else
#define RECUR_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version: RECUR_VERSION_MAJOR.MINOR.PATCH of the headers, and recur_version()
 * of the library actually loaded. */
#define RECUR_VERSION_MAJOR 0
#define RECUR_VERSION_MINOR 1
#define RECUR_VERSION_PATCH 0
RECUR_API const char *recur_version(void);

typedef enum recur_status {
  RECUR_OK = 0,
  RECUR_ERR_INVALID_ARGUMENT = -1, /* NULL pointer, out-of-range id, wrong kind of model. */
  RECUR_ERR_NOT_FOUND = -2,        /* A file or tensor that is not there; no tokenizer. */
  RECUR_ERR_IO = -3,               /* Reading or mapping a file failed. */
  RECUR_ERR_CORRUPT = -4,          /* Damaged model file or saved state. */
  RECUR_ERR_UNSUPPORTED = -5,      /* Valid, but this build cannot run it. */
  RECUR_ERR_OUT_OF_MEMORY = -6,
  RECUR_ERR_BUFFER_TOO_SMALL = -7, /* The caller's buffer is too small; *n_out says how big. */
  RECUR_ERR_INTERNAL = -8
} recur_status;

/* A fixed English name for a status ("ok", "invalid argument", ...); never NULL. */
RECUR_API const char *recur_status_string(recur_status status);
/* The message of the last failure on the calling thread ("" if none yet); successful calls
 * leave it alone. Valid until the next failing call on this thread. */
RECUR_API const char *recur_last_error(void);

/* ---- Models: loaded once, shared (read-only) by any number of sessions and threads. */
typedef struct recur_model recur_model;

typedef struct recur_model_params {
  int32_t n_threads; /* Threads for one session's call; 0: every core available. */
  int32_t use_mmap;  /* Non-zero: map the file (no copy); 0: read it into memory. */
} recur_model_params;

RECUR_API recur_model_params recur_model_default_params(void);
/* params may be NULL (defaults). On success *out owns a model; free it with recur_model_free
 * after every session on it has been freed. */
RECUR_API recur_status recur_model_load(const char *path, const recur_model_params *params,
                                        recur_model **out);
RECUR_API void recur_model_free(recur_model *model); /* NULL is a no-op. */
/* Vocabulary size of a token model; 0 for frame models; -1 for NULL. */
RECUR_API int32_t recur_model_vocab_size(const recur_model *model);
/* Features per input frame (frame models; 0 for token models); -1 for NULL. */
RECUR_API int32_t recur_model_input_size(const recur_model *model);
/* Floats each step returns: the vocabulary (logits) or the output features; -1 for NULL. */
RECUR_API int32_t recur_model_output_size(const recur_model *model);
/* Width of the residual stream; -1 for NULL. */
RECUR_API int32_t recur_model_d_model(const recur_model *model);
/* End-of-text token id, or -1 (none, or NULL model). */
RECUR_API int32_t recur_model_eos_token(const recur_model *model);

/* ---- Sessions: one stream through a model (its state, position and working memory).
 * Calls on one session must not overlap; different sessions may run on different threads at
 * once. Stepping does no heap allocation. */
typedef struct recur_session recur_session;

RECUR_API recur_status recur_session_create(recur_model *model, recur_session **out);
RECUR_API void recur_session_free(recur_session *session); /* NULL is a no-op. */
/* Back to the start of a stream: zero state, position 0. */
RECUR_API recur_status recur_session_reset(recur_session *session);
/* Tokens fed since creation or the last reset (or as loaded); -1 for NULL. */
RECUR_API int64_t recur_session_position(const recur_session *session);

/* Feeds one token; *logits points at recur_model_output_size floats. Pointers returned by any
 * call stay valid until the next call on that session. */
RECUR_API recur_status recur_session_step_token(recur_session *session, int32_t token,
                                                const float **logits);
/* Feeds n tokens with each block's chunked form; *last_logits (may be NULL if not wanted)
 * receives the logits after the last token (NULL when n is 0). */
RECUR_API recur_status recur_session_prefill_tokens(recur_session *session, const int32_t *tokens,
                                                    size_t n, const float **last_logits);
/* Frame models: feeds recur_model_input_size floats; *out points at output_size floats. */
RECUR_API recur_status recur_session_step_frame(recur_session *session, const float *in,
                                                const float **out);

/* ---- State you can hold. The bytes carry a header (magic, format version, the model's
 * fingerprint, position, checksums) and are refused, with RECUR_ERR_INVALID_ARGUMENT for another
 * model or RECUR_ERR_CORRUPT for damaged bytes, leaving the session unchanged. */
/* Bytes recur_session_state_save writes (0 for NULL). The same for every session of a model. */
RECUR_API size_t recur_session_state_size(const recur_session *session);
RECUR_API recur_status recur_session_state_save(const recur_session *session, void *buf,
                                                size_t size);
RECUR_API recur_status recur_session_state_load(recur_session *session, const void *buf,
                                                size_t size);
/* A new session on the same model with a copy of the state, position and last output. */
RECUR_API recur_status recur_session_fork(const recur_session *session, recur_session **out);

/* ---- Batches: n independent streams of one model advance one token each, reading the weights
 * once. sessions[i] takes tokens[i]; logits[i] receives its logits (valid until the next call on
 * sessions[i]). The sessions must be distinct and share one model; the call counts as a call on
 * each. The working memory belongs to sessions[0]: reserve it once with
 * recur_session_reserve_batch so that the loop never allocates (otherwise the first batch it
 * leads with a larger n allocates it). On error no session has moved. */
RECUR_API recur_status recur_step_batch(recur_session *const *sessions, const int32_t *tokens,
                                        size_t n, const float **logits);
RECUR_API recur_status recur_session_reserve_batch(recur_session *session, size_t n);

/* ---- Text, with the tokenizer stored in the model (RECUR_ERR_NOT_FOUND when it has none).
 * Both write at most cap items and set *n_out to the full count; when that exceeds cap they
 * return RECUR_ERR_BUFFER_TOO_SMALL (call again with a buffer of *n_out). out may be NULL when
 * cap is 0, to ask for the size. */
RECUR_API recur_status recur_tokenize(const recur_model *model, const char *text, int32_t *out,
                                      size_t cap, size_t *n_out);
/* The bytes of the tokens (raw UTF-8, possibly split mid-character at the ends), plus a
 * terminating NUL when it fits (not counted in *n_out). */
RECUR_API recur_status recur_detokenize(const recur_model *model, const int32_t *ids, size_t n,
                                        char *out, size_t cap, size_t *n_out);

/* ---- Sampling: the next token from a token model's logits, with temperature, top-k, top-p and
 * the repetition penalties of RWKV's samplers (docs/rwkv.md "Generating text"): each token the
 * sampler drew has its logit lowered by presence_penalty + frequency_penalty * count, the counts
 * decaying by penalty_decay per draw. A sampler serves one stream, draws from its own seeded
 * random numbers (same seed and logits: same tokens), and holds its scratch, so
 * recur_sampler_sample never allocates. The params struct is versioned: struct_size is the
 * sizeof the caller was compiled with (recur_sampler_default_params sets it); later versions
 * append fields only, and fields past the caller's struct_size take their defaults. */
typedef struct recur_sampler recur_sampler;
typedef struct recur_sampler_params {
  size_t struct_size;      /* sizeof(recur_sampler_params). */
  float temperature;       /* <= 0: greedy (argmax). */
  int32_t top_k;           /* 0: no limit. */
  float top_p;             /* >= 1: no nucleus cut. */
  uint64_t seed;
  float presence_penalty;  /* 0 and 0: no penalty. */
  float frequency_penalty;
  float penalty_decay;     /* 1: counts never decay. */
} recur_sampler_params;
/* The C++ API's defaults (temperature 1, top-p 0.5, frequency penalty 0.7 decaying 0.9). */
RECUR_API recur_sampler_params recur_sampler_default_params(void);
/* params may be NULL (defaults). The model must have logits output; it must outlive the sampler. */
RECUR_API recur_status recur_sampler_create(const recur_model *model,
                                            const recur_sampler_params *params,
                                            recur_sampler **out);
RECUR_API void recur_sampler_free(recur_sampler *sampler); /* NULL is a no-op. */
/* Draws from logits (recur_model_vocab_size floats) into *token and counts it for the penalties. */
RECUR_API recur_status recur_sampler_sample(recur_sampler *sampler, const float *logits,
                                            int32_t *token);
/* Forgets the drawn tokens (a new text); the random sequence goes on. */
RECUR_API recur_status recur_sampler_reset(recur_sampler *sampler);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* RECUR_H_ */
