// libFuzzer target: any bytes handed to the .recur loader give a model or a clean error, and a
// model's tensor views and canonical tensor list stay inside the buffer.
#include <cstddef>
#include <cstdint>

#include "formats/block_tensors.h"
#include "formats/recur_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = recur::RecurFile::FromBytes(data, size, "fuzz.recur");
  if (!file.ok()) {
    // Every refusal must say why.
    if (file.status().message().empty()) __builtin_trap();
    return 0;
  }
  volatile uint8_t sink = 0;
  for (const recur::TensorView& t : (*file)->tensors()) {
    for (size_t i = 0; i < t.size; i += 7) sink = sink + static_cast<uint8_t>(t.data[i]);
    if (t.size) sink = sink + static_cast<uint8_t>(t.data[t.size - 1]);
    if (t.scale_size) sink = sink + static_cast<uint8_t>(t.scales[t.scale_size - 1]);
    (void)(*file)->Find(t.name);
  }
  (void)recur::ExpectedTensors((*file)->model());
  (void)(*file)->Metadata("source");
  return 0;
}
