// The native JSON spec: how a user brings weights from their own training code.
//
// A spec names the dimensions, the input and output kinds, the final norm and the list of
// layers (each a block kind from formats/recur.fbs with that kind's fields), plus the
// safetensors file (or sharded index) holding the weights under recur's canonical tensor names
// (formats/block_tensors.h). docs/native-spec.md documents every key. Parsing is strict: an
// unknown key, a wrong type or an out-of-range value is an error that names its JSON path
// ("layers[2].d_ff: expected a positive integer, got 0").
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "formats/recur_generated.h"
#include "formats/status.h"

namespace recur {

// The newest spec "version" this build reads.
inline constexpr int kNativeSpecVersion = 1;
// The value of the optional "format" key.
inline constexpr const char* kNativeSpecFormat = "recur-spec";

struct NativeSpec {
  fb::ModelT model;     // Everything but the tensor table.
  std::string weights;  // The weights' path, resolved against the spec's folder.
};

// Reads and parses the spec at `path`.
Result<NativeSpec> LoadNativeSpec(const std::string& path);
// Parses spec text; `spec_path` names it in messages and anchors a relative "weights" path.
Result<NativeSpec> ParseNativeSpec(std::string_view text, const std::string& spec_path);

// The names accepted for "layers[i].kind" and "architecture", for messages and docs.
const std::vector<std::string>& NativeSpecBlockKinds();
const std::vector<std::string>& NativeSpecArchitectures();
// Metadata keys the converter writes itself, so a spec may not set them.
const std::vector<std::string>& ReservedMetadataKeys();

}  // namespace recur
