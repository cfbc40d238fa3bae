// rwkv.cpp model files (RWKV/rwkv.cpp's python/convert_pytorch_to_ggml.py output): reading them,
// and importing them as `.recur` models with BlinkDL's official parameterisation restored
// (docs/rwkv.md lists every transformation undone). FP32 and FP16 files are supported; quantised
// ones (Q4_0 ... Q8_0) are refused with a message saying to convert the FP32/FP16 file instead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "formats/convert.h"
#include "formats/recur_generated.h"
#include "formats/status.h"

namespace recur {

// rwkv.cpp's magic, 'ggmf' as a little-endian u32 (bytes 66 6d 67 67 on disk).
inline constexpr uint32_t kRwkvCppFileMagic = 0x67676d66;

// One tensor record of an rwkv.cpp file.
struct RwkvCppTensor {
  std::string name;
  int32_t type = 0;             // rwkv.cpp's code: 0 FP32, 1 FP16 (others are refused on read).
  std::vector<int64_t> shape;   // PyTorch order (the file's ggml dims reversed).
  const std::byte* data = nullptr;
  size_t size = 0;              // Bytes.

  int64_t numel() const;
  // The values as f32 (FP32 or FP16 records), copied: the file's data is not aligned.
  std::vector<float> Values() const;
};

// A parsed rwkv.cpp file, holding its bytes.
struct RwkvCppFile {
  std::string path;
  uint32_t file_version = 0;
  int32_t n_vocab = 0, n_embed = 0, n_layer = 0, data_type = 0;
  std::vector<RwkvCppTensor> tensors;  // In file order.
  std::vector<std::byte> bytes;

  // Null when absent.
  const RwkvCppTensor* Find(const std::string& name) const;
};

// Reads and checks `path`: magic, version (100 or 101), header sizes, every record's dims, name
// and data size, no duplicate names. Errors name the file, the record and its offset.
Result<RwkvCppFile> ReadRwkvCpp(const std::string& path);
// The same from bytes in memory (`path` only names it in messages).
Result<RwkvCppFile> ParseRwkvCpp(std::vector<std::byte> bytes, std::string path);

struct RwkvImportOptions {
  // ln_x's GroupNorm epsilon for v5/v6/v7. Default: the official code's 64e-5 (rwkv.cpp's v5
  // graph uses 1e-5, which reproduces its v5 expected-logits files).
  std::optional<float> group_norm_eps;
};

// The architecture an rwkv.cpp file holds, by tensor names as rwkv.cpp's loader decides it:
// "rwkv4", "rwkv5" (minor 1 or 2), "rwkv6" or "rwkv7".
struct RwkvCppVersion {
  int version = 4;
  int minor = 0;
};
RwkvCppVersion DetectRwkvCppVersion(const RwkvCppFile& file);

// Converts the rwkv.cpp file options.source to the .recur options.output (dtype options as for
// any source). Convert() calls this for rwkv.cpp sources.
Result<ConvertReport> ConvertRwkvCpp(const ConvertOptions& options,
                                     const RwkvImportOptions& rwkv = {});

}  // namespace recur
