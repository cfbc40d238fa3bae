#include "formats/recur_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>
#include <utility>

#include "formats/recur_file.h"
#include "flatbuffers/flatbuffers.h"

namespace recur {
namespace {

uint64_t AlignUp(uint64_t x) { return (x + kRecurAlignment - 1) / kRecurAlignment * kRecurAlignment; }

// Writes `n` zero bytes.
bool WriteZeros(std::FILE* f, uint64_t n) {
  static const char kZeros[kRecurAlignment] = {};
  while (n > 0) {
    const size_t k = n < sizeof(kZeros) ? static_cast<size_t>(n) : sizeof(kZeros);
    if (std::fwrite(kZeros, 1, k, f) != k) return false;
    n -= k;
  }
  return true;
}

// Closes and removes a partly written file unless released.
class TempFile {
 public:
  explicit TempFile(std::string path) : path_(std::move(path)) {}
  ~TempFile() {
    if (f_ != nullptr) std::fclose(f_);
    if (!keep_) std::remove(path_.c_str());
  }
  bool Open() { return (f_ = std::fopen(path_.c_str(), "wb")) != nullptr; }
  std::FILE* get() { return f_; }
  bool Close() {
    const bool ok = std::fclose(f_) == 0;
    f_ = nullptr;
    return ok;
  }
  void Keep() { keep_ = true; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
  bool keep_ = false;
};

}  // namespace

RecurWriter::RecurWriter(fb::ModelT model) : model_(std::move(model)) {}

Status RecurWriter::CheckNew(const std::string& name, const std::vector<int64_t>& shape,
                             uint64_t* numel) {
  if (name.empty()) return InvalidArgument("a tensor needs a name");
  for (const Entry& e : entries_) {
    if (e.name == name) return InvalidArgument("tensor '" + name + "' added twice");
  }
  if (shape.size() > static_cast<size_t>(kMaxTensorRank)) {
    return InvalidArgument("tensor '" + name + "': rank above " + std::to_string(kMaxTensorRank));
  }
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) {
      return InvalidArgument("tensor '" + name + "': bad shape");
    }
  }
  *numel = n;
  return Status::Ok();
}

Status RecurWriter::AddTensor(std::string name, DType dtype, std::vector<int64_t> shape,
                              FillFn fill) {
  if (dtype == DType::kQ8_0) {
    return InvalidArgument("tensor '" + name + "': use AddQ8Tensor for q8_0");
  }
  uint64_t numel = 0;
  RECUR_RETURN_IF_ERROR(CheckNew(name, shape, &numel));
  Entry e;
  e.name = std::move(name);
  e.dtype = dtype;
  e.shape = std::move(shape);
  e.size = numel * DTypeSize(dtype);
  e.fill = std::move(fill);
  entries_.push_back(std::move(e));
  return Status::Ok();
}

Status RecurWriter::AddTensorFromMemory(std::string name, DType dtype, std::vector<int64_t> shape,
                                        const void* data) {
  return AddTensor(std::move(name), dtype, std::move(shape), [data](std::span<std::byte> out) {
    if (!out.empty()) std::memcpy(out.data(), data, out.size());
    return Status::Ok();
  });
}

Status RecurWriter::AddQ8Tensor(std::string name, std::vector<int64_t> shape, DType scale_dtype,
                                FillFn fill_quants, FillFn fill_scales, uint32_t block_size) {
  uint64_t numel = 0;
  RECUR_RETURN_IF_ERROR(CheckNew(name, shape, &numel));
  if (scale_dtype != DType::kF16 && scale_dtype != DType::kF32) {
    return InvalidArgument("tensor '" + name + "': q8_0 scales must be f16 or f32");
  }
  if (block_size != kQ8BlockSize) {
    return InvalidArgument("tensor '" + name + "': q8_0 blocks must hold " +
                           std::to_string(kQ8BlockSize) + " elements");
  }
  if (shape.empty() || shape.back() % block_size != 0) {
    return InvalidArgument("tensor '" + name + "': q8_0 needs a last dimension that is a multiple of " +
                           std::to_string(block_size));
  }
  Entry e;
  e.name = std::move(name);
  e.dtype = DType::kQ8_0;
  e.shape = std::move(shape);
  e.size = numel;
  e.fill = std::move(fill_quants);
  e.scale_dtype = scale_dtype;
  e.block_size = block_size;
  e.scale_size = numel / block_size * DTypeSize(scale_dtype);
  e.fill_scales = std::move(fill_scales);
  entries_.push_back(std::move(e));
  return Status::Ok();
}

uint64_t RecurWriter::data_bytes() const {
  uint64_t total = 0;
  for (const Entry& e : entries_) total += AlignUp(e.size) + AlignUp(e.scale_size);
  return total;
}

Status RecurWriter::Write(const std::string& path, const ProgressFn& progress) {
  // Lay the data out after a metadata block of `meta_size` bytes. Every offset field is written
  // even when zero (ForceDefaults), so the flatbuffer's size does not depend on the offsets'
  // values and one trial build tells how much room the metadata needs.
  model_.format_version = kRecurFormatVersion;
  auto build = [&](uint64_t data_start, flatbuffers::FlatBufferBuilder* fbb) {
    model_.tensors.clear();
    uint64_t at = data_start;
    for (const Entry& e : entries_) {
      auto t = std::make_unique<fb::TensorT>();
      t->name = e.name;
      t->dtype = static_cast<fb::DType>(e.dtype);
      t->shape = e.shape;
      t->offset = at;
      t->size = e.size;
      at += AlignUp(e.size);
      if (e.dtype == DType::kQ8_0) {
        t->quant = std::make_unique<fb::QuantParamsT>();
        t->quant->block_size = e.block_size;
        t->quant->scale_dtype = static_cast<fb::DType>(e.scale_dtype);
        t->quant->scale_offset = at;
        t->quant->scale_size = e.scale_size;
        at += AlignUp(e.scale_size);
      }
      model_.tensors.push_back(std::move(t));
    }
    fbb->Clear();
    fbb->ForceDefaults(true);
    fbb->Finish(fb::Model::Pack(*fbb, &model_), fb::ModelIdentifier());
  };
  flatbuffers::FlatBufferBuilder fbb(1 << 16);
  build(0, &fbb);
  const uint64_t data_start = AlignUp(fbb.GetSize());
  build(data_start, &fbb);
  if (AlignUp(fbb.GetSize()) != data_start) {
    return Internal("metadata size changed between layout passes");
  }
  if (fbb.GetSize() >= FLATBUFFERS_MAX_BUFFER_SIZE) {
    return Unsupported("model metadata exceeds 2 GiB");
  }

  TempFile tmp(path + ".tmp");
  if (!tmp.Open()) return IoError(tmp.path() + ": cannot create: " + std::strerror(errno));
  std::FILE* f = tmp.get();
  auto io_error = [&](const std::string& what) {
    return IoError(tmp.path() + ": write failed (" + what + "): " + std::strerror(errno));
  };
  if (std::fwrite(fbb.GetBufferPointer(), 1, fbb.GetSize(), f) != fbb.GetSize() ||
      !WriteZeros(f, data_start - fbb.GetSize())) {
    return io_error("metadata");
  }

  const uint64_t total = data_bytes();
  uint64_t done = 0;
  std::vector<std::byte> buffer;
  auto emit = [&](const std::string& name, uint64_t size, const FillFn& fill) -> Status {
    buffer.assign(size, std::byte{0});
    if (fill) {
      Status s = fill(std::span<std::byte>(buffer.data(), buffer.size()));
      if (!s.ok()) return s.Prepend("tensor '" + name + "': ");
    }
    if (std::fwrite(buffer.data(), 1, buffer.size(), f) != buffer.size() ||
        !WriteZeros(f, AlignUp(size) - size)) {
      return io_error("tensor '" + name + "'");
    }
    done += AlignUp(size);
    if (progress) progress(done, total);
    return Status::Ok();
  };
  for (const Entry& e : entries_) {
    RECUR_RETURN_IF_ERROR(emit(e.name, e.size, e.fill));
    if (e.dtype == DType::kQ8_0) RECUR_RETURN_IF_ERROR(emit(e.name + " scales", e.scale_size, e.fill_scales));
  }
  if (!tmp.Close()) return io_error("close");
  if (std::rename(tmp.path().c_str(), path.c_str()) != 0) {
    return IoError(path + ": cannot rename the finished file into place: " + std::strerror(errno));
  }
  tmp.Keep();
  return Status::Ok();
}

}  // namespace recur
