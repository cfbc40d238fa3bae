// y_i = W x_i (+ bias) for the n streams of a batch, with W read from memory once.
//
// The rows of W are taken in blocks small enough to stay in L1/L2 (kBatchBlockBytes), and each
// block is multiplied by all n vectors with ops::MatVec before the next block is read: the first
// vector streams the block from memory, the others find it in cache. ops::MatVec computes each
// row's sum the same way whatever row range and MatVecSource it is given, so every y_i is
// bit-identical to the single-token step's MatVec of x_i: a batch gives exactly the logits of
// separate steps.
#pragma once

#include <algorithm>
#include <cstddef>

#include "ops/matvec.h"
#include "ops/types.h"

namespace recur {

// Bytes of W per block: the block is re-read n - 1 times from cache, so it must stay in the
// first cache levels while the n x vectors (a few KiB each) stream past. On mamba-130m shapes
// at 8 streams (one thread, a busy 2-core machine) 16 and 32 KiB measured alike and 64 or
// 128 KiB a third slower; prefetching the next block during the cached passes gained ~10-20%.
inline constexpr size_t kBatchBlockBytes = 32768;

// Bytes of W's data (quants only, for q8_0) per row: what the next block's prefetch covers.
inline size_t DataRowBytes(const ops::WeightView& w) {
  switch (w.type) {
    case ops::WeightType::kF32: return w.cols * 4;
    case ops::WeightType::kF16:
    case ops::WeightType::kBF16: return w.cols * 2;
    case ops::WeightType::kQ8_0: return w.cols;
  }
  return 0;
}

// Rows [begin, end) of y_i = W x_i + bias, i < n; x_i = x + i * x_stride, y_i = y + i * y_stride.
inline void BatchMatVec(const ops::WeightView& w, const float* x, size_t x_stride, size_t n,
                        const float* bias, float* y, size_t y_stride, size_t begin, size_t end) {
  const size_t row_bytes = std::max<size_t>(ops::RowBytes(w), 1);
  // A multiple of 8 rows (the matvec kernels' row groups), at least one group.
  const size_t block = std::max<size_t>(8, kBatchBlockBytes / row_bytes / 8 * 8);
  const auto* data = static_cast<const char*>(w.data);
  const size_t data_row = DataRowBytes(w);
  // With two or more vectors every block but the first is prefetched while the previous one is
  // re-read, so the kernels read from cache: rows side by side, sharing x (ops/matvec.h). On
  // mamba-130m at 16 streams that is 309 tokens/s against 277 reading row by row.
  const ops::MatVecSource source = n > 1 ? ops::MatVecSource::kCache : ops::MatVecSource::kMemory;
  for (size_t r0 = begin; r0 < end; r0 += block) {
    const size_t r1 = std::min(end, r0 + block);
    // Only the first vector's pass reads the block from memory; while the others run from
    // cache, the next block is prefetched (into L2) a slice per pass, so memory stays busy.
    const char* next = data + r1 * data_row;
    const size_t next_lines = (std::min(end, r1 + block) - r1) * data_row / 64;
    const size_t per_pass = n > 1 ? (next_lines + n - 2) / (n - 1) : 0;
    for (size_t i = 0; i < n; ++i) {
      ops::MatVec(w, x + i * x_stride, bias, y + i * y_stride, r0, r1, source);
      if (i + 1 < n) {
        const size_t l_end = std::min(next_lines, (i + 1) * per_pass);
        for (size_t l = i * per_pass; l < l_end; ++l) __builtin_prefetch(next + l * 64, 0, 2);
      }
    }
  }
}

}  // namespace recur
