// Types shared by the kernels in ops/: how a weight matrix is laid out in memory.
//
// ops/ is pure numerics over raw pointers: it knows nothing of files, models or threads. The
// runtime builds a WeightView over a mapped tensor and hands each kernel call a row range.
#pragma once

#include <cstddef>
#include <cstdint>

namespace recur::ops {

enum class WeightType : uint8_t { kF32, kF16, kBF16, kQ8_0 };
enum class ScaleType : uint8_t { kF16, kF32 };

// q8_0: each row is cut into blocks of kQ8Block int8 quants with one scale per block;
// weight[r][c] = scale[r][c / kQ8Block] * quant[r][c]. cols must be a multiple of kQ8Block.
inline constexpr size_t kQ8Block = 32;

// A row-major weight matrix W: [rows, cols].
//  kF32: data = float[rows * cols]
//  kF16: data = IEEE half (uint16_t bits)[rows * cols]
//  kBF16: data = bfloat16 (uint16_t bits)[rows * cols]
//  kQ8_0: data = int8_t[rows * cols], scales = (f16 bits | float)[rows * cols / kQ8Block]
struct WeightView {
  WeightType type = WeightType::kF32;
  const void* data = nullptr;
  const void* scales = nullptr;  // q8_0 only.
  ScaleType scale_type = ScaleType::kF16;
  size_t rows = 0;
  size_t cols = 0;
};

// Bytes one row of W occupies in memory, scales included (what a matvec reads per row).
size_t RowBytes(const WeightView& w);

}  // namespace recur::ops
