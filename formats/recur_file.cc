#include "formats/recur_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include "flatbuffers/flatbuffers.h"

namespace recur {
namespace {

std::string Quote(std::string_view s) { return "'" + std::string(s) + "'"; }

std::string ErrnoText() { return std::strerror(errno); }

// Checked a * b for element counts; false on overflow.
bool MulOverflow(uint64_t a, uint64_t b, uint64_t* out) {
  return __builtin_mul_overflow(a, b, out);
}

bool RangeInFile(uint64_t offset, uint64_t size, uint64_t file_size) {
  return offset <= file_size && size <= file_size - offset;
}

}  // namespace

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int i = 0; i < rank; ++i) n *= shape[i];
  return n;
}

std::string TensorView::ShapeString() const {
  std::string s = "[";
  for (int i = 0; i < rank; ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

bool TensorView::HasShape(std::initializer_list<int64_t> dims) const {
  if (static_cast<int>(dims.size()) != rank) return false;
  int i = 0;
  for (int64_t d : dims) {
    if (shape[i++] != d) return false;
  }
  return true;
}

RecurFile::~RecurFile() {
  if (mapped_) {
    munmap(const_cast<std::byte*>(base_), size_);
  } else {
    std::free(owned_);
  }
}

Status RecurFile::Error(std::string_view what) const {
  return Corrupt(path_ + ": " + std::string(what));
}

Result<std::shared_ptr<const RecurFile>> RecurFile::Open(const std::string& path,
                                                         const OpenOptions& options) {
  std::shared_ptr<RecurFile> file(new RecurFile());
  file->path_ = path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound(path + ": no such file");
    return IoError(path + ": cannot open: " + ErrnoText());
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    Status s = IoError(path + ": cannot stat: " + ErrnoText());
    ::close(fd);
    return s;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgument(path + ": not a regular file");
  }
  file->size_ = static_cast<size_t>(st.st_size);
  if (file->size_ == 0) {
    ::close(fd);
    return file->Error("the file is empty (not a .recur model)");
  }
  if (options.use_mmap) {
    void* p = mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p != MAP_FAILED) {
      file->base_ = static_cast<const std::byte*>(p);
      file->mapped_ = true;
    }
  }
  if (!file->mapped_) {
    // Reading into a 64-byte aligned buffer keeps every tensor view aligned as in a mapping.
    size_t alloc = (file->size_ + kRecurAlignment - 1) / kRecurAlignment * kRecurAlignment;
    file->owned_ = std::aligned_alloc(kRecurAlignment, alloc);
    if (file->owned_ == nullptr) {
      ::close(fd);
      return Status(StatusCode::kOutOfMemory, path + ": cannot allocate " +
                                                  std::to_string(file->size_) + " bytes to read it");
    }
    size_t done = 0;
    while (done < file->size_) {
      ssize_t n = ::pread(fd, static_cast<char*>(file->owned_) + done, file->size_ - done,
                          static_cast<off_t>(done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        Status s = IoError(path + ": read failed at byte " + std::to_string(done) + ": " +
                           (n < 0 ? ErrnoText() : std::string("unexpected end of file")));
        ::close(fd);
        return s;
      }
      done += static_cast<size_t>(n);
    }
    file->base_ = static_cast<const std::byte*>(file->owned_);
  }
  ::close(fd);
  RECUR_RETURN_IF_ERROR(file->Validate());
  return std::shared_ptr<const RecurFile>(std::move(file));
}

Result<std::shared_ptr<const RecurFile>> RecurFile::FromBytes(const void* bytes, size_t size,
                                                              std::string name) {
  std::shared_ptr<RecurFile> file(new RecurFile());
  file->path_ = std::move(name);
  file->size_ = size;
  if (size == 0) return file->Error("the file is empty (not a .recur model)");
  size_t alloc = (size + kRecurAlignment - 1) / kRecurAlignment * kRecurAlignment;
  file->owned_ = std::aligned_alloc(kRecurAlignment, alloc);
  if (file->owned_ == nullptr) {
    return Status(StatusCode::kOutOfMemory, file->path_ + ": cannot allocate a copy");
  }
  std::memcpy(file->owned_, bytes, size);
  file->base_ = static_cast<const std::byte*>(file->owned_);
  RECUR_RETURN_IF_ERROR(file->Validate());
  return std::shared_ptr<const RecurFile>(std::move(file));
}

Status RecurFile::Validate() {
  const auto* bytes = reinterpret_cast<const uint8_t*>(base_);
  // The flatbuffer starts with a u32 root offset, then the 4-byte identifier.
  if (size_ < 8 || !flatbuffers::BufferHasIdentifier(bytes, fb::ModelIdentifier())) {
    return Error("not a .recur file (the identifier 'RCUR' is missing at byte 4)");
  }
  // Only the metadata is a flatbuffer; the verifier must not see past the 2 GiB it supports.
  const size_t fb_limit = std::min<size_t>(size_, FLATBUFFERS_MAX_BUFFER_SIZE - 1);
  flatbuffers::Verifier::Options vopts;
  vopts.max_depth = 64;
  vopts.max_tables = 10'000'000;
  flatbuffers::Verifier verifier(bytes, fb_limit, vopts);
  if (!fb::VerifyModelBuffer(verifier)) {
    return Error("the metadata flatbuffer fails verification (truncated or damaged file)");
  }
  model_ = fb::GetModel(bytes);
  if (model_->format_version() == 0 || model_->format_version() > kRecurFormatVersion) {
    return Error("format version " + std::to_string(model_->format_version()) +
                 " is not supported (this build reads versions 1 to " +
                 std::to_string(kRecurFormatVersion) + "; a newer recur may read it)");
  }
  if (model_->architecture()->size() == 0) return Error("the architecture name is empty");

  const auto* tensors = model_->tensors();
  const uint32_t count = tensors ? tensors->size() : 0;
  tensors_.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    const fb::Tensor* t = tensors->Get(i);
    TensorView v;
    v.name = std::string_view(t->name()->c_str(), t->name()->size());
    const std::string who = "tensor " + Quote(v.name) + " (#" + std::to_string(i) + ")";
    if (v.name.empty()) return Error(who + ": empty name");
    const uint8_t raw_dtype = static_cast<uint8_t>(t->dtype());
    if (!IsValidDType(raw_dtype)) {
      return Error(who + ": unknown dtype code " + std::to_string(raw_dtype));
    }
    v.dtype = static_cast<DType>(raw_dtype);
    const auto* shape = t->shape();
    const uint32_t rank = shape ? shape->size() : 0;
    if (rank > kMaxTensorRank) {
      return Error(who + ": rank " + std::to_string(rank) + " exceeds " +
                   std::to_string(kMaxTensorRank));
    }
    v.rank = static_cast<int>(rank);
    uint64_t numel = 1;
    for (uint32_t d = 0; d < rank; ++d) {
      // flatbuffers 2.0.8's verifier checks a vector's length field but not that 8-byte
      // elements are 8-byte aligned, so a damaged file can misalign them: copy, don't load.
      int64_t dim;
      std::memcpy(&dim, shape->Data() + d * sizeof(int64_t), sizeof(dim));
      if (dim < 0) return Error(who + ": negative dimension " + std::to_string(dim));
      v.shape[d] = dim;
      if (MulOverflow(numel, static_cast<uint64_t>(dim), &numel)) {
        return Error(who + ": element count overflows");
      }
    }
    uint64_t expect_size = 0;
    if (MulOverflow(numel, DTypeSize(v.dtype), &expect_size)) {
      return Error(who + ": byte size overflows");
    }
    if (t->size() != expect_size) {
      return Error(who + ": size " + std::to_string(t->size()) + " bytes does not match " +
                   std::string(DTypeName(v.dtype)) + " " + v.ShapeString() + " (" +
                   std::to_string(expect_size) + " bytes)");
    }
    if (t->offset() % kRecurAlignment != 0) {
      return Error(who + ": offset " + std::to_string(t->offset()) +
                   " is not 64-byte aligned");
    }
    if (!RangeInFile(t->offset(), t->size(), size_)) {
      return Error(who + ": data [" + std::to_string(t->offset()) + ", +" +
                   std::to_string(t->size()) + ") lies outside the file (" +
                   std::to_string(size_) + " bytes; truncated?)");
    }
    v.data = base_ + t->offset();
    v.size = t->size();
    if (v.dtype == DType::kQ8_0) {
      const fb::QuantParams* q = t->quant();
      if (q == nullptr) return Error(who + ": q8_0 tensor without quantisation parameters");
      const uint8_t raw_scale = static_cast<uint8_t>(q->scale_dtype());
      if (raw_scale != static_cast<uint8_t>(DType::kF16) &&
          raw_scale != static_cast<uint8_t>(DType::kF32)) {
        return Error(who + ": q8_0 scales must be f16 or f32");
      }
      v.scale_dtype = static_cast<DType>(raw_scale);
      v.block_size = q->block_size();
      if (v.block_size != kQ8BlockSize) {
        return Error(who + ": q8_0 block size " + std::to_string(v.block_size) +
                     " is not supported (the kernels use blocks of " +
                     std::to_string(kQ8BlockSize) + ")");
      }
      if (rank == 0 ||
          static_cast<uint64_t>(v.shape[rank - 1]) % v.block_size != 0) {
        return Error(who + ": the last dimension of " + v.ShapeString() +
                     " is not a multiple of the q8_0 block size " +
                     std::to_string(v.block_size));
      }
      const uint64_t expect_scales = numel / v.block_size * DTypeSize(v.scale_dtype);
      if (q->scale_size() != expect_scales) {
        return Error(who + ": scale size " + std::to_string(q->scale_size()) +
                     " bytes, expected " + std::to_string(expect_scales));
      }
      if (q->scale_offset() % kRecurAlignment != 0) {
        return Error(who + ": scale offset is not 64-byte aligned");
      }
      if (!RangeInFile(q->scale_offset(), q->scale_size(), size_)) {
        return Error(who + ": scales lie outside the file (truncated?)");
      }
      v.scales = base_ + q->scale_offset();
      v.scale_size = q->scale_size();
    } else if (t->quant() != nullptr) {
      return Error(who + ": quantisation parameters on a " + std::string(DTypeName(v.dtype)) +
                   " tensor");
    }
    tensors_.push_back(v);
  }

  by_name_.resize(tensors_.size());
  for (uint32_t i = 0; i < by_name_.size(); ++i) by_name_[i] = i;
  std::sort(by_name_.begin(), by_name_.end(),
            [&](uint32_t a, uint32_t b) { return tensors_[a].name < tensors_[b].name; });
  for (size_t i = 1; i < by_name_.size(); ++i) {
    if (tensors_[by_name_[i]].name == tensors_[by_name_[i - 1]].name) {
      return Error("tensor " + Quote(tensors_[by_name_[i]].name) + " appears twice");
    }
  }

  if (const auto* layers = model_->layers()) {
    for (uint32_t i = 0; i < layers->size(); ++i) {
      const fb::BlockSpec kind = layers->Get(i)->block_type();
      if (static_cast<int>(kind) <= 0 || kind > fb::BlockSpec::MAX) {
        return Error("layer " + std::to_string(i) + ": unknown block kind code " +
                     std::to_string(static_cast<int>(kind)));
      }
    }
  }
  return Status::Ok();
}

const TensorView* RecurFile::Find(std::string_view name) const {
  auto it = std::lower_bound(by_name_.begin(), by_name_.end(), name,
                             [&](uint32_t i, std::string_view n) { return tensors_[i].name < n; });
  if (it == by_name_.end() || tensors_[*it].name != name) return nullptr;
  return &tensors_[*it];
}

Result<const TensorView*> RecurFile::Require(std::string_view name,
                                             std::initializer_list<int64_t> shape) const {
  const TensorView* t = Find(name);
  if (t == nullptr) return NotFound(path_ + ": tensor " + Quote(name) + " is missing");
  if (shape.size() != 0 && !t->HasShape(shape)) {
    std::string want = "[";
    for (int64_t d : shape) want += (want.size() > 1 ? ", " : "") + std::to_string(d);
    return Corrupt(path_ + ": tensor " + Quote(name) + " has shape " + t->ShapeString() +
                   ", expected " + want + "]");
  }
  return t;
}

std::string_view RecurFile::Metadata(std::string_view key) const {
  if (const auto* md = model_->metadata()) {
    for (const fb::KeyValue* kv : *md) {
      if (kv->key()->string_view() == key) {
        return kv->value() ? kv->value()->string_view() : std::string_view();
      }
    }
  }
  return {};
}

}  // namespace recur
