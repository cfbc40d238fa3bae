#include "ops/types.h"

namespace recur::ops {

size_t RowBytes(const WeightView& w) {
  switch (w.type) {
    case WeightType::kF32: return w.cols * 4;
    case WeightType::kF16:
    case WeightType::kBF16: return w.cols * 2;
    case WeightType::kQ8_0:
      return w.cols + (w.cols / kQ8Block) * (w.scale_type == ScaleType::kF16 ? 2 : 4);
  }
  return 0;
}

}  // namespace recur::ops
