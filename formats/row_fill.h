// Adding a tensor to a RecurWriter from a function that produces it row by row, stored as any
// float dtype or as q8_0: what the importers that compute their tensors (rwkv.cpp undoing its
// converter's transformations, synthetic weights) share. Only one row is held in memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "formats/dtype.h"
#include "formats/recur_writer.h"
#include "formats/status.h"

namespace recur {

// Writes row r (cols floats) into `row`; rows are asked for in order 0, 1, ...
using RowFn = std::function<Status(size_t r, float* row)>;
// A fresh row function for one pass over the tensor (q8_0 makes two: quants, then scales), so
// that stateful generators start again from the first row.
using RowSource = std::function<RowFn()>;

// Adds `name` with `shape` to the writer as `dtype` (f32, f16, bf16, f64, or q8_0 with
// `q8_scale_dtype` scales; q8_0 needs the last dimension to be a multiple of kQ8BlockSize).
// Returns the bytes the tensor takes in the file (q8_0 scales included).
Result<uint64_t> AddTensorFromRows(RecurWriter& writer, const std::string& name,
                                   const std::vector<int64_t>& shape, DType dtype,
                                   DType q8_scale_dtype, RowSource source);

}  // namespace recur
