// What the Hugging Face family mappings (formats/hf_<family>.cc) share: the whole config.json as
// JSON, and the tokenizer.json that comes with a checkpoint. Internal to the importers.
#pragma once

#include <nlohmann/json.hpp>

#include "formats/convert.h"
#include "formats/recur_generated.h"
#include "formats/status.h"

namespace recur {

// config.json in full, for what HfConfig's flat getters do not reach (nested objects such as a
// state-spaces ssm_cfg, arrays). Python's Infinity/NaN are accepted; nesting is bounded.
Result<nlohmann::json> ReadHfConfigJson(const HfConfig& config);

// Imports tokenizer.json from config.json's folder when there is one; the bos/eos/pad ids that
// config.json names override the tokenizer's guesses (they are what the model was trained with).
// A tokenizer.json that cannot be imported fails the conversion, with a hint.
Status AttachHfTokenizer(const HfConfig& config, fb::ModelT* model);

}  // namespace recur
