/* Compiled as strict C99 (-std=c99 -Wall -Wextra -Werror -pedantic): recur.h is plain C, and the
 * C API works from C. With a model path (a .recur with a bytes tokenizer), it also runs a stream:
 * tokenize, prefill, step, save, load into a fresh session, fork, batch, detokenize. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/recur.h"

static int failures = 0;

#define EXPECT(cond)                                              \
  do {                                                            \
    if (!(cond)) {                                                \
      fprintf(stderr, "%s:%d: failed: %s (last error: %s)\n", __FILE__, __LINE__, #cond, \
              recur_last_error());                                \
      ++failures;                                                 \
    }                                                             \
  } while (0)

static int run_model(const char *path) {
  recur_model_params params = recur_model_default_params();
  recur_model *model = NULL;
  recur_session *a = NULL, *b = NULL, *fork = NULL;
  int32_t ids[64];
  size_t n_ids = 0, n_text = 0, state_size, i;
  const float *logits = NULL, *la = NULL, *lb = NULL;
  const float *batch_logits[2];
  recur_session *pair[2];
  int32_t pair_tokens[2];
  void *state = NULL;
  char text[64];
  int32_t vocab;
  float saved_logit;

  params.n_threads = 1;
  EXPECT(recur_model_load(path, &params, &model) == RECUR_OK);
  if (model == NULL) return 1;
  vocab = recur_model_vocab_size(model);
  EXPECT(vocab > 0);
  EXPECT(recur_session_create(model, &a) == RECUR_OK);
  EXPECT(recur_session_create(model, &b) == RECUR_OK);
  if (a == NULL || b == NULL) return 1;

  EXPECT(recur_tokenize(model, "hello from C", ids, 64, &n_ids) == RECUR_OK);
  EXPECT(n_ids == 12);
  EXPECT(recur_session_prefill_tokens(a, ids, n_ids, &logits) == RECUR_OK);
  EXPECT(logits != NULL);
  EXPECT(recur_session_step_token(a, ids[0], &logits) == RECUR_OK);

  state_size = recur_session_state_size(a);
  EXPECT(state_size > 64);
  state = malloc(state_size);
  if (state == NULL) return 1;
  EXPECT(recur_session_state_save(a, state, state_size) == RECUR_OK);
  EXPECT(recur_session_state_load(b, state, state_size) == RECUR_OK);
  EXPECT(recur_session_position(b) == (int64_t)n_ids + 1);
  EXPECT(recur_session_step_token(a, 5, &la) == RECUR_OK);
  saved_logit = la[3];
  EXPECT(recur_session_step_token(b, 5, &lb) == RECUR_OK);
  EXPECT(memcmp(&saved_logit, &lb[3], sizeof(float)) == 0);
  ((unsigned char *)state)[state_size - 1] ^= 1;
  EXPECT(recur_session_state_load(b, state, state_size) == RECUR_ERR_CORRUPT);
  free(state);

  EXPECT(recur_session_fork(a, &fork) == RECUR_OK);
  pair[0] = a;
  pair[1] = fork;
  pair_tokens[0] = 1;
  pair_tokens[1] = 2;
  EXPECT(recur_session_reserve_batch(a, 2) == RECUR_OK);
  EXPECT(recur_step_batch(pair, pair_tokens, 2, batch_logits) == RECUR_OK);
  EXPECT(batch_logits[0] != NULL && batch_logits[1] != NULL);

  EXPECT(recur_detokenize(model, ids, n_ids, text, sizeof(text), &n_text) == RECUR_OK);
  EXPECT(n_text == 12 && strcmp(text, "hello from C") == 0);
  for (i = 0; i < n_ids; ++i) EXPECT(ids[i] >= 0 && ids[i] < vocab);

  recur_session_free(fork);
  recur_session_free(b);
  recur_session_free(a);
  recur_model_free(model);
  return 0;
}

int main(int argc, char **argv) {
  recur_model *model = (recur_model *)1;
  const float *logits = NULL;
  EXPECT(recur_model_load("/nonexistent.recur", NULL, &model) != RECUR_OK);
  EXPECT(model == NULL);
  EXPECT(strlen(recur_last_error()) > 0);
  EXPECT(recur_session_step_token(NULL, 0, &logits) == RECUR_ERR_INVALID_ARGUMENT);
  EXPECT(strcmp(recur_status_string(RECUR_ERR_INVALID_ARGUMENT), "invalid argument") == 0);
  if (argc > 1) run_model(argv[1]);
  if (failures == 0) printf("c99 smoke: ok (recur %s)\n", recur_version());
  return failures == 0 ? 0 : 1;
}
