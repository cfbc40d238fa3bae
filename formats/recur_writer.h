// Writing a `.recur` file. Every importer builds a fb::ModelT (the flatbuffers object API) and
// adds tensors whose bytes are produced while the file is written, so a converter never holds
// a whole converted model in memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "formats/dtype.h"
#include "formats/recur_generated.h"
#include "formats/status.h"

namespace recur {

// Fills `out` (exactly the tensor's byte size) with the tensor's bytes.
using FillFn = std::function<Status(std::span<std::byte> out)>;
// Called as bytes are written: done and total bytes of tensor data.
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

class RecurWriter {
 public:
  // `model` describes everything but the tensor table, which the writer fills in.
  explicit RecurWriter(fb::ModelT model);

  fb::ModelT& model() { return model_; }

  // A tensor of `dtype` (not q8_0) and `shape`; `fill` writes its numel * DTypeSize bytes.
  Status AddTensor(std::string name, DType dtype, std::vector<int64_t> shape, FillFn fill);
  // Copies from `data` at write time; `data` must hold the exact byte size and outlive Write().
  Status AddTensorFromMemory(std::string name, DType dtype, std::vector<int64_t> shape,
                             const void* data);
  // A q8_0 tensor: `fill_quants` writes numel int8 quants, `fill_scales` numel / block_size
  // scales of `scale_dtype` (f16 or f32). The last dimension must be a multiple of block_size.
  Status AddQ8Tensor(std::string name, std::vector<int64_t> shape, DType scale_dtype,
                     FillFn fill_quants, FillFn fill_scales, uint32_t block_size = kQ8BlockSize);

  size_t tensor_count() const { return entries_.size(); }
  uint64_t data_bytes() const;

  // Writes the file (to `path`.tmp, then renamed over `path`).
  Status Write(const std::string& path, const ProgressFn& progress = {});

 private:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    uint64_t size;
    FillFn fill;
    // q8_0 only.
    DType scale_dtype = DType::kF16;
    uint32_t block_size = 0;
    uint64_t scale_size = 0;
    FillFn fill_scales;
  };
  Status CheckNew(const std::string& name, const std::vector<int64_t>& shape, uint64_t* numel);

  fb::ModelT model_;
  std::vector<Entry> entries_;
};

}  // namespace recur
