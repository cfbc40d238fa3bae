// What the runtime knows about each block kind: how much state and scratch a layer of that kind
// needs. A block kind lives in one file, runtime/blocks/<kind>.cc, which defines its plan here
// (and, as the family issues land, its Step and Prefill).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "formats/recur_generated.h"

namespace recur {

struct LayerPlan {
  size_t state_bytes = 0;  // Per stream: what must be carried from one token to the next.
  size_t scratch_bytes = 0;  // Working memory for a chunk of `tokens` tokens.
  bool state_grows = false;  // KV-cache attention: state_bytes is per token of context.
  bool known = true;  // False for block kinds this build cannot run yet.
};

// The plan of a layer for a chunk of `tokens` tokens (1 for a step).
LayerPlan PlanLayer(const fb::Model& model, const fb::Layer& layer, size_t tokens);

// Each block file defines its plan function.
LayerPlan PlanMlp(const fb::Model& model, const fb::MlpSpec& spec, size_t tokens);
LayerPlan PlanMamba1(const fb::Model& model, const fb::Mamba1Spec& spec, size_t tokens);
LayerPlan PlanMamba2(const fb::Model& model, const fb::Mamba2Spec& spec, size_t tokens);

}  // namespace recur

namespace recur {
// "d_inner=128 d_state=16 d_conv=4 dt_rank=4": a layer's dimensions for `recur inspect`.
std::string DescribeLayer(const fb::Layer& layer);
}  // namespace recur
