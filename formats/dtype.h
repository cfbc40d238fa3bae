// Element types of tensors in a `.recur` file, and their sizes and names.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "formats/status.h"

namespace recur {

// The values equal recur::fb::DType in formats/recur.fbs.
enum class DType : uint8_t { kF32 = 0, kF16 = 1, kBF16 = 2, kQ8_0 = 3, kF64 = 4, kI32 = 5, kI8 = 6, kU8 = 7 };
inline constexpr int kDTypeCount = 8;

// Bytes per element of the main data region (q8_0: one int8 quant; its scales live apart).
size_t DTypeSize(DType dtype);
// "f32", "f16", "bf16", "q8_0", "f64", "i32", "i8", "u8".
std::string_view DTypeName(DType dtype);
Result<DType> ParseDType(std::string_view name);
bool IsValidDType(uint8_t raw);

// The default q8_0 block length: 32 quants share one scale.
inline constexpr uint32_t kQ8BlockSize = 32;

}  // namespace recur
