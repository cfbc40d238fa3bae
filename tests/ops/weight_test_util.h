// Random weight matrices in every weight type, for the matvec and matmul tests.
#pragma once

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "ops/convert.h"
#include "ops/types.h"

namespace recur::ops::testing {

// A weight matrix of random values in [-1, 1) stored as `type`, starting `misalign` elements
// past an aligned allocation so kernels see unaligned rows.
struct TestMatrix {
  std::vector<uint8_t> data;
  std::vector<uint8_t> scales;
  WeightView view;
};

inline size_t ElementBytes(WeightType type) {
  switch (type) {
    case WeightType::kF32:
      return 4;
    case WeightType::kF16:
    case WeightType::kBF16:
      return 2;
    case WeightType::kQ8_0:
      return 1;
  }
  return 0;
}

inline TestMatrix MakeMatrix(WeightType type, ScaleType scale_type, size_t rows, size_t cols,
                      size_t misalign, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> values(rows * cols);
  for (float& v : values) v = dist(rng);
  TestMatrix m;
  const size_t elem = ElementBytes(type);
  m.data.assign((rows * cols + misalign) * elem + 64, 0);
  uint8_t* base = m.data.data() + misalign * elem;
  const size_t scale_bytes = scale_type == ScaleType::kF16 ? 2 : 4;
  m.scales.assign((rows * cols / kQ8Block + 1) * scale_bytes + 64, 0);
  uint8_t* scale_base = m.scales.data() + scale_bytes;  // Scales unaligned too.
  for (size_t i = 0; i < rows * cols; ++i) {
    if (type == WeightType::kF32) {
      std::memcpy(base + 4 * i, &values[i], 4);
    } else if (type == WeightType::kF16) {
      const uint16_t h = F32ToF16(values[i]);
      std::memcpy(base + 2 * i, &h, 2);
    } else if (type == WeightType::kBF16) {
      const uint16_t b = F32ToBF16(values[i]);
      std::memcpy(base + 2 * i, &b, 2);
    }
  }
  if (type == WeightType::kQ8_0) {
    for (size_t r = 0; r < rows; ++r) {
      QuantizeRowQ8_0(values.data() + r * cols, cols, reinterpret_cast<int8_t*>(base) + r * cols,
                      scale_base + r * (cols / kQ8Block) * scale_bytes, scale_type);
    }
  }
  m.view = {type, base, type == WeightType::kQ8_0 ? scale_base : nullptr, scale_type, rows, cols};
  return m;
}

inline std::vector<float> RandomVector(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

}  // namespace recur::ops::testing
