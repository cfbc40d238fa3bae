// Writing NumPy .npy files (format version 1.0) for `recur dump`.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "formats/status.h"

namespace recur::cli {

// Writes `bytes` of little-endian elements described by `descr` ("<f4", "<f2", "<f8", "<i4",
// "|i1", "|u1") with `shape`, C order.
inline Status WriteNpy(const std::string& path, const std::string& descr,
                       const std::vector<int64_t>& shape, const void* data, size_t bytes) {
  std::string dims;
  for (size_t i = 0; i < shape.size(); ++i) dims += std::to_string(shape[i]) + ", ";
  if (shape.size() > 1) dims.resize(dims.size() - 2);  // "(3, 4)"; a 1-d shape keeps "(3,)".
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  // Magic (6) + version (2) + length (2) + header + '\n' is padded to a multiple of 64.
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return IoError(path + ": cannot create");
  const uint16_t len = static_cast<uint16_t>(header.size());
  const char preamble[8] = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0};
  bool ok = std::fwrite(preamble, 1, 8, f) == 8;
  const unsigned char len_le[2] = {static_cast<unsigned char>(len & 0xff),
                                   static_cast<unsigned char>(len >> 8)};
  ok = ok && std::fwrite(len_le, 1, 2, f) == 2;
  ok = ok && std::fwrite(header.data(), 1, header.size(), f) == header.size();
  ok = ok && (bytes == 0 || std::fwrite(data, 1, bytes, f) == bytes);
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) return IoError(path + ": write failed");
  return Status::Ok();
}

}  // namespace recur::cli
