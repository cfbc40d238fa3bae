// mamba2: the SSD mixer of Mamba-2 (MATH.md). The state of one layer is the conv window
// [d_conv - 1, conv_dim] with conv_dim = d_inner + 2 n_groups d_state, and the SSM state
// [n_heads, head_dim, d_state].
#include "runtime/blocks/block.h"

namespace recur {

LayerPlan PlanMamba2(const fb::Model& model, const fb::Mamba2Spec& spec, size_t tokens) {
  LayerPlan plan;
  const size_t d_inner = spec.d_inner(), d_state = spec.d_state(), d_conv = spec.d_conv();
  const size_t conv_dim = d_inner + 2 * static_cast<size_t>(spec.n_groups()) * d_state;
  plan.state_bytes = (static_cast<size_t>(spec.n_heads()) * spec.head_dim() * d_state +
                      conv_dim * (d_conv > 0 ? d_conv - 1 : 0)) *
                     sizeof(float);
  const size_t in_proj = 2 * d_inner + 2 * static_cast<size_t>(spec.n_groups()) * d_state + spec.n_heads();
  plan.scratch_bytes = tokens * (in_proj + conv_dim + d_inner) * sizeof(float);
  return plan;
}

}  // namespace recur
