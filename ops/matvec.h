// Matrix-vector product for every weight type: the decode-time workhorse (one token, every
// projection). Memory-bound: the kernel streams W once and keeps x in L1.
#pragma once

#include <cstddef>

#include "ops/types.h"

namespace recur::ops {

// y[r] = W[r, :] . x + bias[r] for r in [row_begin, row_end); other entries of y are untouched,
// so threads may each take a row range of the same y.
// w: [rows, cols] of any WeightType, x: [cols], bias: [rows] or null, y: [rows].
// Requires row_begin <= row_end <= w.rows; q8_0 requires cols % kQ8Block == 0.
// q8_0: x is first rounded per block of kQ8Block to int16 at scale max|x_block| / 32767 (an error
// of at most 2^-16 of the block's largest |x|, 1/256 of the weights' own), so the products are
// exact in int32; ops::MatMul rounds X the same way. An x holding inf or NaN is used as it is.
// Dispatches to the best Highway target once per call.
//
// source says where W is, which decides the order the kernel reads rows in and how it prefetches;
// the result is the same bits for every source. kMemory (decode on one thread: W streams from
// DRAM to this core alone): one row after the other, so W is one ascending stream. kMemoryShared
// (decode split over threads: other cores stream W too): the same order, with software prefetch
// for every weight type, where kMemory leaves f32 to the hardware prefetchers. kCache (the caller
// has just read these rows, as a batched decode has for every vector after the first): rows side
// by side, sharing each load of x, which is what bounds a matvec from cache.
enum class MatVecSource { kMemory, kMemoryShared, kCache };
void MatVec(const WeightView& w, const float* x, const float* bias, float* y, size_t row_begin,
            size_t row_end, MatVecSource source = MatVecSource::kMemory);

}  // namespace recur::ops
