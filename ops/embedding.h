// Embedding lookup: one row of a [vocab, d] table, widened to f32 (Highway-dispatched; scalar
// twin in ops/reference/embedding.h). Works on every WeightType: f32 is a copy, f16 and bf16 are
// widened, q8_0 is dequantised (scale * quant per 32-element block).
#pragma once

#include <cstddef>
#include <cstdint>

#include "ops/types.h"

namespace recur::ops {

// out = table[row, :] as f32. Precondition: row < table.rows (the caller validates token ids).
// table: [vocab, d]; out: [d] (must not overlap the table)
void GatherRow(const WeightView& table, size_t row, float* out);

// out[t, :] = table[ids[t], :] for t < count, in one dispatch (prefill). Precondition: every
// ids[t] is in [0, table.rows).  table: [vocab, d]; ids: [count]; out: [count, d]
void GatherRows(const WeightView& table, const int32_t* ids, size_t count, float* out);

}  // namespace recur::ops
