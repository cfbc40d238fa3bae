// recur's C++ API: load a model, look inside it, run it.
//
// Nothing here throws: what can fail returns recur::Status or recur::Result<T>.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "formats/status.h"

namespace recur {

class RecurFile;

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
};

struct LayerInfo {
  std::string kind;     // "mamba1", "mlp", ...
  std::string summary;  // The block's dimensions, e.g. "d_inner=128 d_state=16 d_conv=4".
  uint64_t params = 0;
  size_t state_bytes = 0;
  bool runnable = false;  // This build has the block's kernels.
};

struct ModelInfo {
  std::string path;
  std::string architecture;
  uint32_t format_version = 0;
  int d_model = 0;
  std::string input;   // "tokens (vocab 50280)" or "frames of 3 features".
  std::string output;  // "logits (vocab 50280)" or "features (8)".
  int vocab_size = 0;
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

class Model {
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

 private:
  Model() = default;
  std::shared_ptr<const RecurFile> file_;
  ModelParams params_;
  ModelInfo info_;
  std::vector<TensorInfo> tensors_;
};

}  // namespace recur
