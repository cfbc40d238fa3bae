// recur's C++ API: load a model, look inside it, run it.
//
// Nothing here throws: what can fail returns recur::Status or recur::Result<T>.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "formats/status.h"
#include "runtime/recur.h"  // RECUR_API; the C API beside this one.

namespace recur {

class RecurFile;
class Tokenizer;
class Block;
class Threads;
class Session;

struct ModelParams {
  int n_threads = 0;     // 0: every core available to the process.
  bool use_mmap = true;  // Map the file (no copy); false reads it into memory.
};

// One tensor of a loaded model, viewed in place.
struct TensorInfo {
  std::string name;
  std::string dtype;  // "f32", "f16", "bf16", "q8_0", "f64", "i32", "i8", "u8".
  std::vector<int64_t> shape;
  int64_t numel = 0;
  size_t bytes = 0;  // In the file, q8_0 scales included.
  const void* data = nullptr;
  bool matrix = false;  // A weight matrix (read by matvec/matmul, or gathered by token).
};

struct LayerInfo {
  std::string kind;     // "mamba1", "mlp", ...
  std::string summary;  // The block's dimensions, e.g. "d_inner=128 d_state=16 d_conv=4".
  uint64_t params = 0;
  size_t state_bytes = 0;
  bool runnable = false;  // This build has the block's kernels.
  // A KV cache: state_bytes is its capacity (max_context tokens), filled by bytes_per_token per
  // token; false: the state is constant in the stream's length.
  bool state_grows = false;
  size_t bytes_per_token = 0;
};

struct ModelInfo {
  std::string path;
  std::string architecture;
  uint32_t format_version = 0;
  int d_model = 0;
  std::string input;   // "tokens (vocab 50280)" or "frames of 3 features".
  std::string output;  // "logits (vocab 50280)" or "features (8)".
  int vocab_size = 0;
  bool token_input = false;    // Takes token ids (else feature frames).
  bool logits_output = false;  // Produces vocab_size logits (else features).
  std::string tokenizer;  // "none", "bytes", "bpe (50277 tokens, 50009 merges)".
  std::vector<LayerInfo> layers;
  uint64_t params = 0;
  std::map<std::string, uint64_t> bytes_by_dtype;  // Tensor bytes in the file, by dtype.
  uint64_t file_bytes = 0;
  size_t state_bytes = 0;          // Per stream, all layers.
  size_t scratch_bytes_step = 0;   // Per stream, for one token.
  size_t scratch_bytes_prefill = 0;  // Per stream, for a chunk of prefill_chunk tokens.
  size_t prefill_chunk = 0;
  bool mapped = false;
  std::map<std::string, std::string> metadata;
};

class RECUR_API Model {
 public:
  ~Model();
  // Opens and verifies `path`, and checks that it holds every tensor its layers read, shaped
  // as they expect. Errors name the file and the tensor.
  static Result<std::shared_ptr<const Model>> Load(const std::string& path,
                                                   const ModelParams& params = {});

  const ModelInfo& info() const { return info_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* FindTensor(const std::string& name) const;
  // A copy of tensor `name` as f32 (bf16, f16 and q8_0 decoded); refuses integer tensors.
  Status TensorToF32(const std::string& name, std::vector<float>* out) const;

  // Ok when every layer's block runs in this build; else Unsupported naming the first that does
  // not (such a model can still be inspected and dumped).
  const Status& runnable() const { return runnable_; }
  int n_threads() const;

  // Text <-> tokens with the tokenizer stored in the model (NotFound when it has none).
  bool has_tokenizer() const { return tokenizer_ != nullptr; }
  Status Tokenize(std::string_view text, std::vector<int32_t>* ids) const;
  // The raw bytes of token `id` ("" when out of range or without a tokenizer).
  std::string TokenBytes(int32_t id) const;
  // End-of-text token id, or -1.
  int32_t eos_id() const;

  // 64-bit identity of the model, stamped into saved session state so that state is never
  // loaded into another model: a hash over the file's metadata flatbuffer (architecture, layer
  // specs, tensor table, tokenizer) and the first and last 4 KiB of every tensor's data.
  // Computed once (on first use; Session::Create triggers it) and cached. The same file loaded
  // from any path, mapped or read, has the same fingerprint.
  uint64_t fingerprint() const;
  // Floats per input frame (frame models; 0 for token models), and floats each step outputs
  // (vocab_size logits, or output features).
  int32_t input_size() const;
  int32_t output_size() const;

 private:
  friend class Session;
  friend class TextStream;
  struct Runtime;  // Blocks, norms, head: what sessions run.
  Model();
  Status Build();

  std::shared_ptr<const RecurFile> file_;
  ModelParams params_;
  ModelInfo info_;
  std::vector<TensorInfo> tensors_;
  Status runnable_;
  std::unique_ptr<Runtime> rt_;
  std::unique_ptr<Tokenizer> tokenizer_;
  mutable std::once_flag fingerprint_once_;
  mutable uint64_t fingerprint_ = 0;
};

// Generated tokens to text as they arrive: a character split across tokens is held back until
// it is complete, so every piece printed is valid UTF-8.
class RECUR_API TextStream {
 public:
  explicit TextStream(const Model& model);
  ~TextStream();
  std::string Next(int32_t id);
  std::string Flush();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Defaults: temperature 1 with a nucleus of 0.5 (the rwkv package's own example settings) and a
// short-memory frequency penalty; measured on the tiny RWKV models in docs/rwkv.md.
struct SamplerParams {
  float temperature = 1.0f;  // 0: greedy (argmax).
  int32_t top_k = 0;         // 0: no limit.
  float top_p = 0.5f;        // 1: no nucleus cut.
  uint64_t seed = 1;
  // Repetition penalties (RWKV's alpha_presence, alpha_frequency, alpha_decay): each token the
  // sampler has drawn has its logit lowered by presence_penalty + frequency_penalty * count,
  // where count adds 1 per draw of it and every count decays by penalty_decay per drawn token
  // (0.9: a draw weighs half after ~7 tokens). With the Model constructor, whitespace and digit
  // tokens of a multi-byte vocabulary are not counted. 0, 0: no penalty.
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.7f;
  float penalty_decay = 0.9f;
};

// Picks the next token from logits. Holds its scratch and penalty counts, so sampling never
// allocates.
class RECUR_API Sampler {
 public:
  Sampler(size_t vocab_size, const SamplerParams& params);
  // Also reads the vocabulary, so that whitespace and digit tokens are not penalised.
  Sampler(const Model& model, const SamplerParams& params);
  ~Sampler();
  // Draws a token and counts it for the repetition penalties.
  int32_t Sample(const float* logits);
  // Forgets the drawn tokens (a new text); the random stream goes on.
  void ResetPenalties();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One stream through a model: one contiguous state block, one scratch arena, a position.
// Calls on one session must not overlap; different sessions of a model may run concurrently.
// Step and prefill do no heap allocation.
class RECUR_API Session {
 public:
  ~Session();
  static Result<std::unique_ptr<Session>> Create(std::shared_ptr<const Model> model);

  // Feeds one token; *logits points at vocab_size floats, valid until the next call.
  Status StepToken(int32_t token, const float** logits);
  // Feeds `n` tokens with each block's chunked form. *last_logits (if non-null) receives the
  // logits after the last token; all_logits (if non-null) receives [n, vocab_size] logits.
  Status PrefillTokens(const int32_t* tokens, size_t n, const float** last_logits,
                       float* all_logits = nullptr);
  // Feeds one feature frame (input_size floats); *out points at output_size floats.
  Status StepFrame(const float* in, const float** out);
  // Back to the start of a stream (zero state, position 0).
  void Reset();

  // ---- State you can hold (format: docs/c-api.md, "Saved state").
  // Bytes SaveState writes: a 64-byte header (magic, format version, the model's fingerprint,
  // position, payload size and checksum) followed by the state block.
  size_t saved_state_size() const;
  // Writes saved_state_size() bytes to buf; InvalidArgument when size is smaller.
  Status SaveState(void* buf, size_t size) const;
  // Restores a state SaveState wrote (position included). Refuses, leaving this session
  // unchanged, bytes from another model (fingerprint), another state layout, or damaged bytes
  // (checksums over the header and the payload).
  Status LoadState(const void* buf, size_t size);
  // A new session on the same model with a copy of this one's state, position and last output;
  // the two then continue independently.
  Result<std::unique_ptr<Session>> Fork() const;

  // ---- Batched decoding.
  // n independent streams of one model advance one token each: sessions[i] takes tokens[i], and
  // logits[i] receives sessions[i]'s logits (valid until the next call on that session). Each
  // weight is read once for all n streams. The sessions must be distinct and share one Model
  // object; the call counts as a call on every one of them. The batch's working memory (rows
  // of the residual stream, the logits of all n, the blocks' batch scratch) belongs to
  // sessions[0]: it is allocated by ReserveBatch, or by the first StepBatch led by that session
  // with a larger n than reserved, and reused afterwards, so a loop of batches of at most the
  // reserved size does no heap allocation. On error no session has moved.
  static Status StepBatch(Session* const* sessions, const int32_t* tokens, size_t n,
                          const float** logits);
  // Sizes this session's batch workspace for batches of up to n streams that it leads.
  Status ReserveBatch(size_t n);
  size_t batch_capacity() const { return batch_capacity_; }

  int64_t position() const { return position_; }
  size_t state_bytes() const;
  // Bytes of the state in use now: state_bytes() for constant-state models; with KV-cache or
  // recompute attention layers, their filled part only (it grows with the context).
  size_t state_bytes_in_use() const;
  const float* state() const { return state_; }
  const Model& model() const { return *model_; }

 private:
  Session() = default;
  Status CheckTokenModel(const char* call) const;
  Status CheckToken(int32_t token) const;
  // Refuses a call of `tokens` tokens that some layer's state has no room for (a full KV cache).
  Status CheckRoom(size_t tokens, const char* call) const;
  // Runs `tokens` rows of resid_ through every layer and the final norm (into normed_).
  void RunLayers(size_t tokens, bool step);
  void Head(const float* normed, float* out) const;

  std::shared_ptr<const Model> model_;
  float* state_ = nullptr;    // One allocation: every layer's state, then the scratch arena.
  size_t state_floats_ = 0;
  float* resid_ = nullptr;    // [chunk, d_model]
  float* normed_ = nullptr;   // [chunk, d_model]
  float* mixed_ = nullptr;    // [chunk, d_model]
  float* out_ = nullptr;      // [output size]
  float* scratch_ = nullptr;  // The largest layer's scratch for a chunk.
  void* arena_ = nullptr;
  int64_t position_ = 0;
  // Batch workspace (StepBatch): allocated by ReserveBatch, freed by the destructor.
  void* batch_arena_ = nullptr;
  size_t batch_capacity_ = 0;       // Streams it holds.
  size_t batch_scratch_floats_ = 0;  // The largest layer's BatchScratchBytes(capacity) / 4.
  bool in_batch_ = false;           // Set while StepBatch checks for repeated sessions.
};

}  // namespace recur
