// Reading (and, for tests and tools, writing) safetensors files, the weight format of Hugging Face
// checkpoints and of the native spec.
//
// A safetensors file is: a u64 little-endian header length N, N bytes of JSON
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
// "__metadata__": {"k": "v"}} (possibly padded with spaces), then the data region, to which the
// offsets are relative. Open() checks all of it, so that a bad file gives a Status naming the
// file and the tensor, never a crash: the header length against the file, the JSON, each dtype,
// that shape x dtype size equals the offsets' span, that spans lie in the data region and do not
// overlap, and that names are unique.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "formats/dtype.h"
#include "formats/status.h"

namespace recur {

// The element types a safetensors header may name. Only the float ones can become weights; the
// others are known so that files holding them open and messages can say what a tensor is.
enum class SafetensorsDType : uint8_t {
  kBool,
  kU8,
  kI8,
  kI16,
  kU16,
  kF16,
  kBF16,
  kI32,
  kU32,
  kF32,
  kF64,
  kI64,
  kU64,
  kF8E4M3,
  kF8E5M2,
};

// "F32", "BF16", ... as spelled in headers.
std::string_view SafetensorsDTypeName(SafetensorsDType dtype);
size_t SafetensorsDTypeSize(SafetensorsDType dtype);
std::optional<SafetensorsDType> ParseSafetensorsDType(std::string_view name);
// The recur dtype of the same element type: f32, f16, bf16, f64, i32, i8 or u8; none otherwise.
std::optional<DType> ToDType(SafetensorsDType dtype);
std::optional<SafetensorsDType> FromDType(DType dtype);

// One tensor of an open file. `data` points into the file's mapping (or buffer) and is NOT
// necessarily aligned: read it with memcpy or ConvertRow.
struct SafetensorsTensor {
  std::string name;
  SafetensorsDType dtype = SafetensorsDType::kF32;
  std::vector<int64_t> shape;
  const std::byte* data = nullptr;
  size_t size = 0;                    // Bytes.
  uint64_t data_offset = 0;           // From the start of the data region, as in the header.
  const std::string* file = nullptr;  // The owning file's path, for messages.

  int64_t numel() const;
  // "[768, 3072]".
  std::string ShapeString() const;
};

class SafetensorsFile {
 public:
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  // Maps `path` read-only (or reads it when `use_mmap` is false or mapping fails) and checks it.
  static Result<std::unique_ptr<SafetensorsFile>> Open(const std::string& path,
                                                       bool use_mmap = true);
  // Checks bytes already in memory (copied); `name` stands for the file in messages.
  static Result<std::unique_ptr<SafetensorsFile>> FromBytes(const void* bytes, size_t size,
                                                            std::string name);

  const std::string& path() const { return path_; }
  bool mapped() const { return mapped_; }
  // Tensors in data order (by data offset).
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  // Null when absent.
  const SafetensorsTensor* Find(std::string_view name) const;
  // The "__metadata__" entries (non-string values are kept as their JSON text).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  SafetensorsFile() = default;
  Status Parse();
  Status Error(std::string_view what) const;

  std::string path_;
  const std::byte* base_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
  std::vector<std::byte> buffer_;  // Owns the bytes when not mapped.
  std::vector<SafetensorsTensor> tensors_;
  std::unordered_map<std::string_view, size_t> by_name_;
  std::map<std::string, std::string> metadata_;
};

// The tensors of a checkpoint, which may be one file or many shards.
class TensorStore {
 public:
  // `path` is one of:
  //  - a .safetensors file;
  //  - a sharded index (model.safetensors.index.json or any *.json with a "weight_map"), whose
  //    shards, relative to the index, are each opened once;
  //  - a directory holding model.safetensors.index.json or model.safetensors.
  static Result<std::unique_ptr<TensorStore>> Open(const std::string& path, bool use_mmap = true);

  // Null when absent.
  const SafetensorsTensor* Find(std::string_view name) const;
  // Every tensor name, sorted.
  std::vector<std::string> Names() const;
  size_t size() const { return by_name_.size(); }
  // What was opened, for messages: "dir/model.safetensors" or "dir/x.index.json (3 shards)".
  const std::string& description() const { return description_; }
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }

 private:
  TensorStore() = default;
  Status Add(std::unique_ptr<SafetensorsFile> file);

  std::string description_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsTensor*, std::less<>> by_name_;
};

// A tensor to write: `data` holds exactly numel x dtype size bytes, little-endian.
struct SafetensorsWriteTensor {
  std::string name;
  SafetensorsDType dtype = SafetensorsDType::kF32;
  std::vector<int64_t> shape;
  std::span<const std::byte> data;
};

// Writes a safetensors file (data in the given order, header padded with spaces to a multiple of
// 8 bytes so the data region starts aligned). Used by tests and the demo-model generator.
Status WriteSafetensors(const std::string& path, const std::vector<SafetensorsWriteTensor>& tensors,
                        const std::map<std::string, std::string>& metadata = {});

}  // namespace recur
