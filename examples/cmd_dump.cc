// recur dump MODEL --list | --tensor NAME -o FILE.npy: look at, and export, a model's tensors.
#include <cstdio>

#include "examples/commands.h"
#include "examples/npy.h"
#include "runtime/recur.hpp"

namespace recur::cli {

Action AddDump(CLI::App& app) {
  struct Opts {
    std::string model, tensor, output;
    bool list = false;
  };
  auto opts = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand(
      "dump", "List a model's tensors, or write one to a NumPy .npy file (f32, f16, f64 and "
              "integer tensors as stored; bf16 and q8_0 decoded to f32)");
  sub->add_option("MODEL", opts->model, "A .recur file")->required();
  auto* list = sub->add_flag("--list", opts->list, "List every tensor: name, dtype, shape, bytes");
  auto* tensor = sub->add_option("--tensor", opts->tensor, "The tensor to export");
  sub->add_option("-o,--output", opts->output, "The .npy file to write")->needs(tensor);
  tensor->needs(sub->get_option("--output"));
  list->excludes(tensor);
  return [opts] {
    if (!opts->list && opts->tensor.empty()) return Fail("dump needs --list or --tensor NAME -o FILE.npy");
    auto loaded = Model::Load(opts->model);
    if (!loaded.ok()) return Fail(loaded.status().ToString());
    const Model& model = **loaded;
    if (opts->list) {
      for (const TensorInfo& t : model.tensors()) {
        std::string shape = "[";
        for (size_t i = 0; i < t.shape.size(); ++i) shape += (i ? ", " : "") + std::to_string(t.shape[i]);
        std::printf("%-48s %-5s %-18s %12zu bytes\n", t.name.c_str(), t.dtype.c_str(),
                    (shape + "]").c_str(), t.bytes);
      }
      return 0;
    }
    const TensorInfo* t = model.FindTensor(opts->tensor);
    if (t == nullptr) return Fail(opts->model + ": no tensor '" + opts->tensor + "' (see --list)");
    static const std::pair<const char*, const char*> kStored[] = {
        {"f32", "<f4"}, {"f16", "<f2"}, {"f64", "<f8"}, {"i32", "<i4"}, {"i8", "|i1"}, {"u8", "|u1"}};
    for (const auto& [dtype, descr] : kStored) {
      if (t->dtype == dtype) {
        Status s = WriteNpy(opts->output, descr, t->shape, t->data, t->bytes);
        return s.ok() ? 0 : Fail(s.ToString());
      }
    }
    std::vector<float> decoded;
    Status s = model.TensorToF32(t->name, &decoded);
    if (s.ok()) s = WriteNpy(opts->output, "<f4", t->shape, decoded.data(), decoded.size() * 4);
    return s.ok() ? 0 : Fail(s.ToString());
  };
}

}  // namespace recur::cli
