#include "formats/row_fill.h"

#include <span>

#include "formats/dtype_convert.h"

namespace recur {

Result<uint64_t> AddTensorFromRows(RecurWriter& writer, const std::string& name,
                                   const std::vector<int64_t>& shape, DType dtype,
                                   DType q8_scale_dtype, RowSource source) {
  uint64_t numel = 1;
  for (int64_t d : shape) numel *= static_cast<uint64_t>(d);
  const size_t cols = shape.empty() ? 1 : static_cast<size_t>(shape.back());
  const size_t rows = cols == 0 ? 0 : static_cast<size_t>(numel / cols);
  if (dtype == DType::kQ8_0) {
    // Quants and scales are filled in two passes; each quantises the rows again.
    auto fill = [name, source, rows, cols, q8_scale_dtype](bool want_quants) -> FillFn {
      return [=](std::span<std::byte> out) -> Status {
        const size_t scale_row_bytes = cols / kQ8BlockSize * DTypeSize(q8_scale_dtype);
        std::vector<float> row(cols);
        std::vector<int8_t> quants(cols);
        std::vector<std::byte> scales(scale_row_bytes);
        RowFn next = source();
        for (size_t r = 0; r < rows; ++r) {
          RECUR_RETURN_IF_ERROR(next(r, row.data()));
          int8_t* q =
              want_quants ? reinterpret_cast<int8_t*>(out.data()) + r * cols : quants.data();
          void* s = want_quants ? static_cast<void*>(scales.data())
                                : static_cast<void*>(out.data() + r * scale_row_bytes);
          Status status = QuantizeQ8Row(row.data(), cols, q, q8_scale_dtype, s);
          if (!status.ok()) return status.Prepend(name + ": row " + std::to_string(r) + ": ");
        }
        return Status::Ok();
      };
    };
    RECUR_RETURN_IF_ERROR(writer.AddQ8Tensor(name, shape, q8_scale_dtype, fill(true), fill(false)));
    return numel + numel / kQ8BlockSize * DTypeSize(q8_scale_dtype);
  }
  RECUR_RETURN_IF_ERROR(
      writer.AddTensor(name, dtype, shape, [source, rows, cols, dtype](std::span<std::byte> out) {
        std::vector<float> row(cols);
        RowFn next = source();
        const size_t row_bytes = cols * DTypeSize(dtype);
        for (size_t r = 0; r < rows; ++r) {
          RECUR_RETURN_IF_ERROR(next(r, row.data()));
          RECUR_RETURN_IF_ERROR(
              ConvertRow(DType::kF32, row.data(), dtype, out.data() + r * row_bytes, cols));
        }
        return Status::Ok();
      }));
  return numel * DTypeSize(dtype);
}

}  // namespace recur
