// mlp: a position-wise feed-forward block, down(act(up(x))) or, gated, down(act(gate(x)) * up(x)).
#include "runtime/blocks/block.h"

namespace recur {

LayerPlan PlanMlp(const fb::Model& model, const fb::MlpSpec& spec, size_t tokens) {
  LayerPlan plan;
  // No state: an mlp sees one position at a time. Scratch holds up (and gate) activations.
  const size_t hidden = static_cast<size_t>(spec.d_ff()) * (spec.glu() ? 2 : 1);
  plan.scratch_bytes = tokens * hidden * sizeof(float);
  return plan;
}

}  // namespace recur
