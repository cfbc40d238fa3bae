// Session state you can hold: save to bytes, load from bytes, fork; and the model fingerprint
// that ties saved bytes to the model that wrote them. The byte format is documented in
// docs/c-api.md ("Saved state").
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "formats/recur_file.h"
#include "runtime/model_runtime.h"
#include "runtime/recur.hpp"

namespace recur {
namespace {

// "RCURSTAT": the first 8 bytes of every saved state.
constexpr uint8_t kStateMagic[8] = {'R', 'C', 'U', 'R', 'S', 'T', 'A', 'T'};
constexpr uint32_t kStateFormatVersion = 1;
constexpr size_t kStateHeaderBytes = 64;
// Header fields, as byte offsets (all little-endian).
constexpr size_t kOffVersion = 8;         // u32
constexpr size_t kOffHeaderBytes = 12;    // u32
constexpr size_t kOffFingerprint = 16;    // u64
constexpr size_t kOffPosition = 24;       // i64
constexpr size_t kOffPayloadBytes = 32;   // u64
constexpr size_t kOffPayloadHash = 40;    // u64
constexpr size_t kOffReserved = 48;       // u64, zero
constexpr size_t kOffHeaderHash = 56;     // u64 over bytes [0, 56)
// Bytes of each tensor's data the fingerprint reads at its start and at its end.
constexpr size_t kFingerprintSample = 4096;

constexpr uint64_t kP1 = 0x9E3779B185EBCA87ull, kP2 = 0xC2B2AE3D27D4EB4Full,
                   kP3 = 0x165667B19E3779F9ull;

constexpr uint64_t Rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

uint64_t Fmix(uint64_t h) {
  h ^= h >> 33;
  h *= kP2;
  h ^= h >> 29;
  h *= kP3;
  h ^= h >> 32;
  return h;
}

// A 64-bit hash of `size` bytes, continuing from `seed`: one xxHash64-style lane, eight bytes at
// a time (about a byte per cycle or better). It detects damage, it is not a MAC.
uint64_t Hash(const void* data, size_t size, uint64_t seed) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t h = seed ^ (static_cast<uint64_t>(size) * kP1);
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h ^= Rotl(w * kP2, 31) * kP1;
    h = Rotl(h, 27) * kP1 + kP3;
  }
  for (; i < size; ++i) {
    h ^= p[i] * kP3;
    h = Rotl(h, 11) * kP1;
  }
  return Fmix(h);
}

void PutU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void PutU64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t GetU32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return v;
}
uint64_t GetU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

std::string Hex(uint64_t v) {
  char buf[19];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

uint64_t ComputeFingerprint(const RecurFile& file) {
  const fb::Model& m = file.model();
  uint64_t h = Hash("recur model fingerprint v1", 26, 0);
  const auto* tensors = m.tensors();
  // The metadata flatbuffer starts the file and ends where the first tensor's data begins;
  // tensor views point into the same buffer, so its start is any view's data minus its offset.
  const uint8_t* base = nullptr;
  uint64_t fb_end = file.file_size();
  if (tensors != nullptr) {
    for (const fb::Tensor* t : *tensors) {
      fb_end = std::min<uint64_t>(fb_end, t->offset());
      if (base == nullptr) {
        if (const TensorView* v = file.Find(std::string_view(t->name()->c_str(), t->name()->size()))) {
          base = reinterpret_cast<const uint8_t*>(v->data) - t->offset();
        }
      }
    }
  }
  if (base != nullptr) {
    h = Hash(base, static_cast<size_t>(fb_end), h);
  } else {
    h = Hash(m.architecture()->c_str(), m.architecture()->size(), h);
  }
  // Weights: a sample of every tensor, so that two files with one layout but other weights
  // (a fine-tune, another seed) differ.
  for (const TensorView& t : file.tensors()) {
    const auto* data = reinterpret_cast<const uint8_t*>(t.data);
    const size_t head = std::min(t.size, kFingerprintSample);
    h = Hash(data, head, h);
    if (t.size > head) {
      const size_t tail = std::min(t.size - head, kFingerprintSample);
      h = Hash(data + t.size - tail, tail, h);
    }
    if (t.scales != nullptr) {
      h = Hash(t.scales, std::min(t.scale_size, kFingerprintSample), h);
    }
  }
  return h;
}

}  // namespace

uint64_t Model::fingerprint() const {
  std::call_once(fingerprint_once_, [this] { fingerprint_ = ComputeFingerprint(*file_); });
  return fingerprint_;
}

int32_t Model::input_size() const {
  const fb::Model& m = file_->model();
  return m.input_kind() == fb::InputKind::Frames ? m.input_size() : 0;
}

int32_t Model::output_size() const {
  const fb::Model& m = file_->model();
  return m.output_kind() == fb::OutputKind::Logits ? m.vocab_size() : m.output_size();
}

size_t Session::saved_state_size() const { return kStateHeaderBytes + state_bytes(); }

Status Session::SaveState(void* buf, size_t size) const {
  if (buf == nullptr) return InvalidArgument("SaveState: null buffer");
  const size_t need = saved_state_size();
  if (size < need) {
    return InvalidArgument("SaveState: the buffer holds " + std::to_string(size) +
                           " bytes; the state needs " + std::to_string(need));
  }
  auto* p = static_cast<uint8_t*>(buf);
  const size_t payload = state_bytes();
  std::memcpy(p + kStateHeaderBytes, state_, payload);
  std::memcpy(p, kStateMagic, sizeof(kStateMagic));
  PutU32(p + kOffVersion, kStateFormatVersion);
  PutU32(p + kOffHeaderBytes, static_cast<uint32_t>(kStateHeaderBytes));
  PutU64(p + kOffFingerprint, model_->fingerprint());
  PutU64(p + kOffPosition, static_cast<uint64_t>(position_));
  PutU64(p + kOffPayloadBytes, payload);
  PutU64(p + kOffPayloadHash, Hash(p + kStateHeaderBytes, payload, 0));
  PutU64(p + kOffReserved, 0);
  PutU64(p + kOffHeaderHash, Hash(p, kOffHeaderHash, 0));
  return Status::Ok();
}

Status Session::LoadState(const void* buf, size_t size) {
  if (buf == nullptr) return InvalidArgument("LoadState: null buffer");
  const auto* p = static_cast<const uint8_t*>(buf);
  if (size < kStateHeaderBytes) {
    return Corrupt("LoadState: " + std::to_string(size) +
                   " bytes are too few for saved state (the header alone is " +
                   std::to_string(kStateHeaderBytes) + ")");
  }
  if (std::memcmp(p, kStateMagic, sizeof(kStateMagic)) != 0) {
    return Corrupt("LoadState: not saved session state (the magic 'RCURSTAT' is missing)");
  }
  if (GetU64(p + kOffHeaderHash) != Hash(p, kOffHeaderHash, 0)) {
    return Corrupt("LoadState: the saved state's header is damaged (checksum mismatch)");
  }
  const uint32_t version = GetU32(p + kOffVersion);
  if (version != kStateFormatVersion) {
    return Unsupported("LoadState: saved state format version " + std::to_string(version) +
                       " is not supported (this build reads version " +
                       std::to_string(kStateFormatVersion) + ")");
  }
  if (GetU32(p + kOffHeaderBytes) != kStateHeaderBytes) {
    return Corrupt("LoadState: unexpected header size " + std::to_string(GetU32(p + kOffHeaderBytes)));
  }
  const uint64_t fingerprint = GetU64(p + kOffFingerprint);
  if (fingerprint != model_->fingerprint()) {
    return InvalidArgument("LoadState: the state was saved by another model (fingerprint " +
                           Hex(fingerprint) + "; this model is " + Hex(model_->fingerprint()) +
                           ", " + model_->info().path + ")");
  }
  const uint64_t payload = GetU64(p + kOffPayloadBytes);
  if (payload != state_bytes()) {
    return Corrupt("LoadState: the saved state holds " + std::to_string(payload) +
                   " bytes of state; this model's sessions hold " + std::to_string(state_bytes()));
  }
  if (size != kStateHeaderBytes + payload) {
    return Corrupt("LoadState: got " + std::to_string(size) + " bytes; the header says " +
                   std::to_string(kStateHeaderBytes + payload) + " (truncated or padded)");
  }
  if (GetU64(p + kOffPayloadHash) != Hash(p + kStateHeaderBytes, payload, 0)) {
    return Corrupt("LoadState: the saved state's payload is damaged (checksum mismatch)");
  }
  const auto position = static_cast<int64_t>(GetU64(p + kOffPosition));
  if (position < 0) return Corrupt("LoadState: negative position " + std::to_string(position));
  std::memcpy(state_, p + kStateHeaderBytes, payload);
  position_ = position;
  return Status::Ok();
}

Result<std::unique_ptr<Session>> Session::Fork() const {
  RECUR_ASSIGN_OR_RETURN(std::unique_ptr<Session> fork, Create(model_));
  std::memcpy(fork->state_, state_, state_bytes());
  // The last output too: both branches can sample from the logits they share.
  const fb::Model& m = model_->file_->model();
  const size_t out_size =
      m.output_kind() == fb::OutputKind::Logits ? m.vocab_size() : m.output_size();
  std::memcpy(fork->out_, out_, out_size * sizeof(float));
  fork->position_ = position_;
  return fork;
}

}  // namespace recur
