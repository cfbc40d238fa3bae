// mamba1: the selective SSM mixer of Mamba-1 (MATH.md). The state of one layer is the conv
// window [d_conv - 1, d_inner] and the SSM state [d_inner, d_state].
#include "runtime/blocks/block.h"

namespace recur {

LayerPlan PlanMamba1(const fb::Model& model, const fb::Mamba1Spec& spec, size_t tokens) {
  LayerPlan plan;
  const size_t d_inner = spec.d_inner(), d_state = spec.d_state(), d_conv = spec.d_conv();
  plan.state_bytes = d_inner * (d_state + (d_conv > 0 ? d_conv - 1 : 0)) * sizeof(float);
  // in_proj output (x, z), conv output, x_proj output (dt_low, B, C), dt, y.
  const size_t per_token = 2 * d_inner + d_inner + (spec.dt_rank() + 2 * d_state) + d_inner + d_inner;
  plan.scratch_bytes = tokens * per_token * sizeof(float);
  return plan;
}

}  // namespace recur
