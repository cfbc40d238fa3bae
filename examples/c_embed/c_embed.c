/* c_embed: recur from plain C through the installed package.
 *
 *   c_embed MODEL.recur ["prompt"] [n_tokens]
 *
 * Loads a model with a tokenizer, feeds the prompt, greedily generates n_tokens tokens, saves
 * the stream's state, forks it, and advances both branches in one batch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <recur.h>

static int32_t argmax(const float *x, int32_t n) {
  int32_t best = 0, i;
  for (i = 1; i < n; ++i) {
    if (x[i] > x[best]) best = i;
  }
  return best;
}

static int fail(const char *what, recur_status st) {
  fprintf(stderr, "c_embed: %s: %s: %s\n", what, recur_status_string(st), recur_last_error());
  return 1;
}

int main(int argc, char **argv) {
  const char *prompt = argc > 2 ? argv[2] : "Hello";
  const int n_new = argc > 3 ? atoi(argv[3]) : 8;
  recur_model_params params = recur_model_default_params();
  recur_model *model = NULL;
  recur_session *session = NULL, *branch = NULL;
  recur_session *both[2];
  int32_t ids[256], next[2];
  const float *logits = NULL, *two[2];
  size_t n_ids = 0, n_bytes = 0, state_size;
  void *state;
  char piece[64];
  int32_t vocab;
  int i;
  recur_status st;

  if (argc < 2) {
    fprintf(stderr, "usage: %s MODEL.recur [prompt] [n_tokens]\n", argv[0]);
    return 2;
  }
  params.n_threads = 1;
  if ((st = recur_model_load(argv[1], &params, &model)) != RECUR_OK) return fail("load", st);
  vocab = recur_model_vocab_size(model);
  if ((st = recur_session_create(model, &session)) != RECUR_OK) return fail("session", st);
  if ((st = recur_tokenize(model, prompt, ids, 256, &n_ids)) != RECUR_OK) return fail("tokenize", st);
  if ((st = recur_session_prefill_tokens(session, ids, n_ids, &logits)) != RECUR_OK) {
    return fail("prefill", st);
  }
  printf("%s", prompt);
  for (i = 0; i < n_new; ++i) {
    const int32_t id = argmax(logits, vocab);
    if (recur_detokenize(model, &id, 1, piece, sizeof(piece), &n_bytes) == RECUR_OK) {
      fwrite(piece, 1, n_bytes, stdout);
    }
    if ((st = recur_session_step_token(session, id, &logits)) != RECUR_OK) return fail("step", st);
  }
  printf("\n");

  /* The state in the caller's hands: save it, and fork the stream. */
  state_size = recur_session_state_size(session);
  state = malloc(state_size);
  if (state == NULL) return 1;
  if ((st = recur_session_state_save(session, state, state_size)) != RECUR_OK) return fail("save", st);
  if ((st = recur_session_fork(session, &branch)) != RECUR_OK) return fail("fork", st);
  both[0] = session;
  both[1] = branch;
  next[0] = argmax(logits, vocab);
  next[1] = (next[0] + 1) % vocab;
  if ((st = recur_step_batch(both, next, 2, two)) != RECUR_OK) return fail("batch", st);
  printf("saved %lu bytes of state at position %ld; batch of 2 streams at position %ld\n",
         (unsigned long)state_size, (long)recur_session_position(branch) - 1,
         (long)recur_session_position(session));
  free(state);
  recur_session_free(branch);
  recur_session_free(session);
  recur_model_free(model);
  return 0;
}
