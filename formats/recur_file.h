// Reading a `.recur` file: map it, verify it, and hand out typed views of its tensors.
//
// Open() maps the file read-only (or reads it into an aligned buffer when mapping is off or
// fails), verifies the flatbuffer, then checks every tensor against the file: offset and size
// within the file, 64-byte alignment, a known dtype, a shape whose element count times the dtype
// size equals the size, unique names. Anything wrong gives a Status that names the file, the
// tensor and what is wrong; no input makes it crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "formats/dtype.h"
#include "formats/recur_generated.h"
#include "formats/status.h"

namespace recur {

// The newest format version this build reads and writes.
inline constexpr uint32_t kRecurFormatVersion = 1;
// Tensor data (and q8_0 scales) start at multiples of this many bytes from the file start.
inline constexpr size_t kRecurAlignment = 64;
inline constexpr int kMaxTensorRank = 8;

struct TensorView {
  std::string_view name;
  DType dtype = DType::kF32;
  int rank = 0;
  int64_t shape[kMaxTensorRank] = {};
  const std::byte* data = nullptr;  // 64-byte aligned.
  size_t size = 0;                  // Bytes of data.
  // q8_0 only: one scale per `block_size` elements along the last dimension.
  const std::byte* scales = nullptr;
  size_t scale_size = 0;
  DType scale_dtype = DType::kF16;
  uint32_t block_size = 0;

  int64_t numel() const;
  // Bytes in the file, scales included.
  size_t total_bytes() const { return size + scale_size; }
  // "[768, 3072]".
  std::string ShapeString() const;
  bool HasShape(std::initializer_list<int64_t> dims) const;
};

struct OpenOptions {
  bool use_mmap = true;
};

class RecurFile {
 public:
  ~RecurFile();
  RecurFile(const RecurFile&) = delete;
  RecurFile& operator=(const RecurFile&) = delete;

  static Result<std::shared_ptr<const RecurFile>> Open(const std::string& path,
                                                       const OpenOptions& options = {});
  // Validates bytes already in memory (copied into an aligned buffer); `name` is used in errors.
  static Result<std::shared_ptr<const RecurFile>> FromBytes(const void* bytes, size_t size,
                                                            std::string name);

  const fb::Model& model() const { return *model_; }
  const std::string& path() const { return path_; }
  size_t file_size() const { return size_; }
  bool mapped() const { return mapped_; }

  // Tensors in file order.
  const std::vector<TensorView>& tensors() const { return tensors_; }
  // Null when there is no tensor of that name.
  const TensorView* Find(std::string_view name) const;
  // The tensor, or a Status naming the file and the tensor when it is missing or, if `shape` is
  // non-empty, shaped otherwise.
  Result<const TensorView*> Require(std::string_view name,
                                    std::initializer_list<int64_t> shape = {}) const;

  // Metadata value for `key`, or empty.
  std::string_view Metadata(std::string_view key) const;

 private:
  RecurFile() = default;
  Status Validate();
  Status Error(std::string_view what) const;

  std::string path_;
  const std::byte* base_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
  void* owned_ = nullptr;  // Aligned buffer when not mapped.
  const fb::Model* model_ = nullptr;
  std::vector<TensorView> tensors_;
  std::vector<uint32_t> by_name_;  // Indices into tensors_, sorted by name.
};

}  // namespace recur
