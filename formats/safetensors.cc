#include "formats/safetensors.h"
#include "formats/json_limits.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

namespace recur {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// A header this large is not a real checkpoint's: the biggest models' headers are a few MB.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
// Index files are small JSON maps; anything far larger is a mistake, not an index.
constexpr uintmax_t kMaxIndexBytes = 100ull << 20;

struct DTypeInfo {
  SafetensorsDType dtype;
  const char* name;
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {SafetensorsDType::kBool, "BOOL", 1},      {SafetensorsDType::kU8, "U8", 1},
    {SafetensorsDType::kI8, "I8", 1},          {SafetensorsDType::kI16, "I16", 2},
    {SafetensorsDType::kU16, "U16", 2},        {SafetensorsDType::kF16, "F16", 2},
    {SafetensorsDType::kBF16, "BF16", 2},      {SafetensorsDType::kI32, "I32", 4},
    {SafetensorsDType::kU32, "U32", 4},        {SafetensorsDType::kF32, "F32", 4},
    {SafetensorsDType::kF64, "F64", 8},        {SafetensorsDType::kI64, "I64", 8},
    {SafetensorsDType::kU64, "U64", 8},        {SafetensorsDType::kF8E4M3, "F8_E4M3", 1},
    {SafetensorsDType::kF8E5M2, "F8_E5M2", 1},
};

std::string KnownDTypeList() {
  std::string s;
  for (const DTypeInfo& info : kDTypes) {
    if (!s.empty()) s += ", ";
    s += info.name;
  }
  return s;
}

std::string ShapeToString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// Parses JSON without letting an exception out, and refuses duplicate keys in any object
// (nlohmann would silently keep the last one, hiding a broken or tampered header).
Status ParseJsonNoDuplicates(std::string_view text, Json* out, std::string* duplicate) {
  std::vector<std::set<std::string>> keys;
  duplicate->clear();
  try {
    *out = Json::parse(
        text.begin(), text.end(), [&](int depth, Json::parse_event_t event, Json& parsed) {
          CheckJsonDepth(depth);
          if (event == Json::parse_event_t::object_start) {
            keys.emplace_back();
          } else if (event == Json::parse_event_t::object_end) {
            if (!keys.empty()) keys.pop_back();
          } else if (event == Json::parse_event_t::key && !keys.empty()) {
            if (parsed.is_string() && !keys.back().insert(parsed.get<std::string>()).second &&
                duplicate->empty()) {
              *duplicate = parsed.get<std::string>();
            }
          }
          return true;
        });
  } catch (const std::exception& e) {
    return Corrupt(std::string("invalid JSON: ") + e.what());
  } catch (...) {
    return Corrupt("invalid JSON");
  }
  return Status::Ok();
}

// A JSON integer >= 0 (integers written as 3.0 are not integers).
bool GetNonNegative(const Json& j, uint64_t* out) {
  if (j.is_number_unsigned()) {
    *out = j.get<uint64_t>();
    return true;
  }
  if (j.is_number_integer()) {
    const int64_t v = j.get<int64_t>();
    if (v < 0) return false;
    *out = static_cast<uint64_t>(v);
    return true;
  }
  return false;
}

Status ReadWholeFile(const std::string& path, int fd, size_t size, std::vector<std::byte>* out) {
  out->resize(size);
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::read(fd, out->data() + done, size - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError(path + ": read failed: " + std::strerror(errno));
    }
    if (n == 0) return IoError(path + ": file shrank while being read");
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Result<std::string> ReadTextFile(const std::string& path, uintmax_t limit) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) return IoError(path + ": " + ec.message());
  if (size > limit) {
    return Corrupt(path + ": " + std::to_string(size) + " bytes is too large for a JSON index");
  }
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return IoError(path + ": cannot open: " + std::strerror(errno));
  std::string text(static_cast<size_t>(size), '\0');
  const size_t n = std::fread(text.data(), 1, text.size(), f);
  std::fclose(f);
  if (n != text.size()) return IoError(path + ": short read");
  return text;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

std::string_view SafetensorsDTypeName(SafetensorsDType dtype) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.dtype == dtype) return info.name;
  }
  return "?";
}

size_t SafetensorsDTypeSize(SafetensorsDType dtype) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.dtype == dtype) return info.size;
  }
  return 0;
}

std::optional<SafetensorsDType> ParseSafetensorsDType(std::string_view name) {
  for (const DTypeInfo& info : kDTypes) {
    if (name == info.name) return info.dtype;
  }
  return std::nullopt;
}

std::optional<DType> ToDType(SafetensorsDType dtype) {
  switch (dtype) {
    case SafetensorsDType::kF32:
      return DType::kF32;
    case SafetensorsDType::kF16:
      return DType::kF16;
    case SafetensorsDType::kBF16:
      return DType::kBF16;
    case SafetensorsDType::kF64:
      return DType::kF64;
    case SafetensorsDType::kI32:
      return DType::kI32;
    case SafetensorsDType::kI8:
      return DType::kI8;
    case SafetensorsDType::kU8:
      return DType::kU8;
    default:
      return std::nullopt;
  }
}

std::optional<SafetensorsDType> FromDType(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return SafetensorsDType::kF32;
    case DType::kF16:
      return SafetensorsDType::kF16;
    case DType::kBF16:
      return SafetensorsDType::kBF16;
    case DType::kF64:
      return SafetensorsDType::kF64;
    case DType::kI32:
      return SafetensorsDType::kI32;
    case DType::kI8:
      return SafetensorsDType::kI8;
    case DType::kU8:
      return SafetensorsDType::kU8;
    default:
      return std::nullopt;
  }
}

int64_t SafetensorsTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string SafetensorsTensor::ShapeString() const { return ShapeToString(shape); }

SafetensorsFile::~SafetensorsFile() {
  if (mapped_ && base_ != nullptr) {
    ::munmap(const_cast<std::byte*>(base_), size_);
  }
}

Status SafetensorsFile::Error(std::string_view what) const {
  return Corrupt(path_ + ": " + std::string(what));
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path,
                                                               bool use_mmap) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return NotFound(path + ": no such file");
    return IoError(path + ": cannot open: " + std::strerror(err));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return IoError(path + ": cannot stat: " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgument(path + ": not a regular file");
  }
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  file->size_ = static_cast<size_t>(st.st_size);
  if (use_mmap && file->size_ > 0) {
    void* p = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p != MAP_FAILED) {
      file->base_ = static_cast<const std::byte*>(p);
      file->mapped_ = true;
    }
  }
  if (!file->mapped_) {
    // Mapping is off or failed (some file systems refuse it): read the bytes instead.
    Status s = ReadWholeFile(path, fd, file->size_, &file->buffer_);
    if (!s.ok()) {
      ::close(fd);
      return s;
    }
    file->base_ = file->buffer_.data();
  }
  ::close(fd);
  RECUR_RETURN_IF_ERROR(file->Parse());
  return file;
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::FromBytes(const void* bytes, size_t size,
                                                                    std::string name) {
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = std::move(name);
  file->buffer_.resize(size);
  if (size > 0) std::memcpy(file->buffer_.data(), bytes, size);
  file->base_ = file->buffer_.data();
  file->size_ = size;
  RECUR_RETURN_IF_ERROR(file->Parse());
  return file;
}

Status SafetensorsFile::Parse() {
  if (size_ < 8) {
    return Error("file is too small to be safetensors (" + std::to_string(size_) +
                 " bytes; the 8-byte header length alone is missing)");
  }
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) {
    header_len = (header_len << 8) | static_cast<uint8_t>(base_[i]);
  }
  if (header_len > kMaxHeaderBytes) {
    return Error("header length " + std::to_string(header_len) +
                 " is implausibly large (limit 100 MB); is this a safetensors file?");
  }
  if (header_len > size_ - 8) {
    return Error("header length " + std::to_string(header_len) +
                 " runs past the end of the file (" + std::to_string(size_) +
                 " bytes): truncated or not safetensors");
  }
  const std::string_view header(reinterpret_cast<const char*>(base_ + 8),
                                static_cast<size_t>(header_len));
  const std::byte* data = base_ + 8 + header_len;
  const uint64_t data_size = size_ - 8 - header_len;

  Json root;
  std::string duplicate;
  Status parsed = ParseJsonNoDuplicates(header, &root, &duplicate);
  if (!parsed.ok()) return Error("header: " + parsed.message());
  if (!duplicate.empty()) return Error("header names '" + duplicate + "' twice");
  if (!root.is_object()) return Error("header is not a JSON object");

  try {
    for (auto it = root.begin(); it != root.end(); ++it) {
      const std::string& name = it.key();
      const Json& entry = it.value();
      if (name == "__metadata__") {
        if (!entry.is_object()) return Error("__metadata__ is not a JSON object");
        for (auto m = entry.begin(); m != entry.end(); ++m) {
          metadata_[m.key()] = m.value().is_string()
                                   ? m.value().get<std::string>()
                                   : m.value().dump(-1, ' ', false, Json::error_handler_t::replace);
        }
        continue;
      }
      const std::string where = "tensor '" + name + "': ";
      if (name.empty()) return Error("a tensor has an empty name");
      if (!entry.is_object()) {
        return Error(where + "expected an object with dtype, shape and data_offsets");
      }
      const auto dtype_it = entry.find("dtype");
      if (dtype_it == entry.end() || !dtype_it->is_string()) {
        return Error(where + "missing or non-string \"dtype\"");
      }
      const std::string dtype_name = dtype_it->get<std::string>();
      const std::optional<SafetensorsDType> dtype = ParseSafetensorsDType(dtype_name);
      if (!dtype) {
        return Error(where + "unknown dtype '" + dtype_name + "' (known: " + KnownDTypeList() +
                     ")");
      }
      const auto shape_it = entry.find("shape");
      if (shape_it == entry.end() || !shape_it->is_array()) {
        return Error(where + "missing or non-array \"shape\"");
      }
      SafetensorsTensor t;
      t.name = name;
      t.dtype = *dtype;
      t.file = &path_;
      uint64_t numel = 1;
      bool numel_overflow = false;
      for (const Json& d : *shape_it) {
        uint64_t dim = 0;
        if (!GetNonNegative(d, &dim) || dim > static_cast<uint64_t>(INT64_MAX)) {
          return Error(where + "shape " +
                       shape_it->dump(-1, ' ', false, Json::error_handler_t::replace) +
                       " must hold non-negative integers");
        }
        t.shape.push_back(static_cast<int64_t>(dim));
        if (__builtin_mul_overflow(numel, dim, &numel)) numel_overflow = true;
      }
      const auto offsets_it = entry.find("data_offsets");
      uint64_t begin = 0, end = 0;
      if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
          !GetNonNegative((*offsets_it)[0], &begin) || !GetNonNegative((*offsets_it)[1], &end)) {
        return Error(where + "\"data_offsets\" must be [begin, end] with non-negative integers");
      }
      if (end < begin) {
        return Error(where + "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                     "] end before they begin");
      }
      if (end > data_size) {
        return Error(where + "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                     "] run past the data region (" + std::to_string(data_size) +
                     " bytes): truncated file?");
      }
      uint64_t bytes = 0;
      if (numel_overflow || __builtin_mul_overflow(numel, SafetensorsDTypeSize(*dtype), &bytes) ||
          bytes != end - begin) {
        return Error(where + "shape " + t.ShapeString() + " of " + dtype_name + " needs " +
                     (numel_overflow ? std::string("more than 2^64") : std::to_string(bytes)) +
                     " bytes, but data_offsets [" + std::to_string(begin) + ", " +
                     std::to_string(end) + "] span " + std::to_string(end - begin));
      }
      t.data_offset = begin;
      t.data = data + begin;
      t.size = static_cast<size_t>(bytes);
      tensors_.push_back(std::move(t));
    }
  } catch (const std::exception& e) {
    // The checks above should leave nothing to throw; this keeps a surprise from escaping.
    return Error(std::string("header: ") + e.what());
  }

  // Data order; then no two non-empty spans may share a byte.
  std::sort(tensors_.begin(), tensors_.end(),
            [](const SafetensorsTensor& a, const SafetensorsTensor& b) {
              if (a.data_offset != b.data_offset) return a.data_offset < b.data_offset;
              return a.name < b.name;
            });
  const SafetensorsTensor* previous = nullptr;
  for (const SafetensorsTensor& t : tensors_) {
    if (t.size == 0) continue;
    if (previous != nullptr && t.data_offset < previous->data_offset + previous->size) {
      return Error("tensors '" + previous->name + "' (bytes " +
                   std::to_string(previous->data_offset) + ".." +
                   std::to_string(previous->data_offset + previous->size) + ") and '" + t.name +
                   "' (bytes " + std::to_string(t.data_offset) + ".." +
                   std::to_string(t.data_offset + t.size) + ") overlap");
    }
    previous = &t;
  }
  by_name_.reserve(tensors_.size());
  for (size_t i = 0; i < tensors_.size(); ++i) by_name_.emplace(tensors_[i].name, i);
  return Status::Ok();
}

const SafetensorsTensor* SafetensorsFile::Find(std::string_view name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

Status TensorStore::Add(std::unique_ptr<SafetensorsFile> file) {
  for (const SafetensorsTensor& t : file->tensors()) {
    const auto [it, inserted] = by_name_.emplace(t.name, &t);
    if (!inserted) {
      return Corrupt("tensor '" + t.name + "' is in both " + *it->second->file + " and " +
                     file->path());
    }
  }
  files_.push_back(std::move(file));
  return Status::Ok();
}

Result<std::unique_ptr<TensorStore>> TensorStore::Open(const std::string& path, bool use_mmap) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (ec || !fs::exists(status)) return NotFound(path + ": no such file or directory");

  std::string index_path;
  std::string file_path;
  if (fs::is_directory(status)) {
    const fs::path dir(path);
    if (fs::exists(dir / "model.safetensors.index.json", ec)) {
      index_path = (dir / "model.safetensors.index.json").string();
    } else if (fs::exists(dir / "model.safetensors", ec)) {
      file_path = (dir / "model.safetensors").string();
    } else {
      std::string found;
      for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (EndsWith(name, ".safetensors") || EndsWith(name, ".index.json")) {
          found += (found.empty() ? "" : ", ") + name;
        }
      }
      return NotFound(path + ": no model.safetensors or model.safetensors.index.json here" +
                      (found.empty() ? std::string() : " (found: " + found + ")"));
    }
  } else if (EndsWith(path, ".json")) {
    index_path = path;
  } else {
    file_path = path;
  }

  std::unique_ptr<TensorStore> store(new TensorStore());
  if (!file_path.empty()) {
    RECUR_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file,
                           SafetensorsFile::Open(file_path, use_mmap));
    store->description_ = file_path;
    RECUR_RETURN_IF_ERROR(store->Add(std::move(file)));
    return store;
  }

  // A sharded checkpoint: {"metadata": {...}, "weight_map": {"tensor": "shard file", ...}}.
  RECUR_ASSIGN_OR_RETURN(std::string text, ReadTextFile(index_path, kMaxIndexBytes));
  Json root;
  std::string duplicate;
  Status parsed = ParseJsonNoDuplicates(text, &root, &duplicate);
  if (!parsed.ok()) return parsed.Prepend(index_path + ": ");
  if (!duplicate.empty()) return Corrupt(index_path + ": key '" + duplicate + "' appears twice");
  if (!root.is_object()) return Corrupt(index_path + ": not a JSON object");
  const auto map_it = root.find("weight_map");
  if (map_it == root.end() || !map_it->is_object()) {
    return Corrupt(index_path + ": no \"weight_map\" object (is this a safetensors index?)");
  }
  const fs::path base_dir = fs::path(index_path).parent_path();
  std::vector<std::string> shards;  // In order of first mention.
  std::map<std::string, std::string> weight_map;
  for (auto it = map_it->begin(); it != map_it->end(); ++it) {
    if (!it.value().is_string()) {
      return Corrupt(index_path + ": weight_map[\"" + it.key() + "\"] is not a file name");
    }
    const std::string shard = it.value().get<std::string>();
    const fs::path shard_path(shard);
    bool escapes = shard.empty() || shard_path.is_absolute();
    for (const fs::path& part : shard_path) escapes = escapes || part == "..";
    if (escapes) {
      return Corrupt(index_path + ": weight_map[\"" + it.key() + "\"] = \"" + shard +
                     "\" is not a file name inside the checkpoint's folder");
    }
    if (std::find(shards.begin(), shards.end(), shard) == shards.end()) shards.push_back(shard);
    weight_map[it.key()] = shard;
  }
  if (shards.empty()) return Corrupt(index_path + ": weight_map is empty");
  std::map<std::string, const SafetensorsFile*> by_shard;
  for (const std::string& shard : shards) {
    const std::string shard_path = (base_dir / shard).string();
    RECUR_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file,
                           SafetensorsFile::Open(shard_path, use_mmap));
    by_shard[shard] = file.get();
    RECUR_RETURN_IF_ERROR(store->Add(std::move(file)));
  }
  for (const auto& [name, shard] : weight_map) {
    const SafetensorsTensor* t = by_shard[shard]->Find(name);
    if (t == nullptr) {
      return Corrupt(index_path + ": weight_map puts tensor '" + name + "' in " + shard +
                     ", which does not hold it");
    }
  }
  store->description_ = index_path + " (" + std::to_string(shards.size()) +
                        (shards.size() == 1 ? " shard)" : " shards)");
  return store;
}

const SafetensorsTensor* TensorStore::Find(std::string_view name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

std::vector<std::string> TensorStore::Names() const {
  std::vector<std::string> names;
  names.reserve(by_name_.size());
  for (const auto& [name, tensor] : by_name_) names.push_back(name);
  return names;
}

Status WriteSafetensors(const std::string& path, const std::vector<SafetensorsWriteTensor>& tensors,
                        const std::map<std::string, std::string>& metadata) {
  std::string header;
  try {
    nlohmann::ordered_json root = nlohmann::ordered_json::object();
    if (!metadata.empty()) {
      nlohmann::ordered_json meta = nlohmann::ordered_json::object();
      for (const auto& [k, v] : metadata) meta[k] = v;
      root["__metadata__"] = std::move(meta);
    }
    std::set<std::string> names;
    uint64_t offset = 0;
    for (const SafetensorsWriteTensor& t : tensors) {
      if (t.name.empty() || t.name == "__metadata__") {
        return InvalidArgument(path + ": bad tensor name '" + t.name + "'");
      }
      if (!names.insert(t.name).second) {
        return InvalidArgument(path + ": tensor '" + t.name + "' given twice");
      }
      uint64_t numel = 1;
      for (int64_t d : t.shape) {
        if (d < 0) return InvalidArgument(path + ": tensor '" + t.name + "': negative dimension");
        numel *= static_cast<uint64_t>(d);
      }
      const uint64_t bytes = numel * SafetensorsDTypeSize(t.dtype);
      if (bytes != t.data.size()) {
        return InvalidArgument(path + ": tensor '" + t.name + "': shape " + ShapeToString(t.shape) +
                               " of " + std::string(SafetensorsDTypeName(t.dtype)) + " needs " +
                               std::to_string(bytes) + " bytes, given " +
                               std::to_string(t.data.size()));
      }
      nlohmann::ordered_json entry = nlohmann::ordered_json::object();
      entry["dtype"] = std::string(SafetensorsDTypeName(t.dtype));
      entry["shape"] = t.shape;
      entry["data_offsets"] = {offset, offset + bytes};
      root[t.name] = std::move(entry);
      offset += bytes;
    }
    header = root.dump();
  } catch (const std::exception& e) {
    // nlohmann refuses names or metadata that are not valid UTF-8.
    return InvalidArgument(path + ": cannot write the header: " + e.what());
  }
  // The format allows trailing spaces in the header; padding makes the data start 8-aligned.
  header.append((8 - header.size() % 8) % 8, ' ');

  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return IoError(tmp + ": cannot create: " + std::strerror(errno));
  bool ok = true;
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(header.size() >> (8 * i));
  ok = ok && std::fwrite(len, 1, 8, f) == 8;
  ok = ok && std::fwrite(header.data(), 1, header.size(), f) == header.size();
  for (const SafetensorsWriteTensor& t : tensors) {
    if (!ok) break;
    if (!t.data.empty()) ok = std::fwrite(t.data.data(), 1, t.data.size(), f) == t.data.size();
  }
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) {
    std::remove(tmp.c_str());
    return IoError(path + ": write failed");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    return IoError(path + ": cannot rename from " + tmp + ": " + std::strerror(err));
  }
  return Status::Ok();
}

}  // namespace recur
