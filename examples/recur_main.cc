// recur: convert, inspect and run linear recurrent models on the CPU.
#include <cstdio>
#include <map>

#include "examples/commands.h"

namespace recur::cli {

int Fail(const std::string& message) {
  std::fprintf(stderr, "recur: error: %s\n", message.c_str());
  return 1;
}

}  // namespace recur::cli

int main(int argc, char** argv) {
  using namespace recur::cli;
  CLI::App app{
      "recur: a CPU runtime for linear recurrent models (Mamba, RWKV, S4/HiPPO, linear and\n"
      "softmax attention as RNNs), one token or frame at a time in constant memory.\n\n"
      "Examples:\n"
      "  recur convert model_dir/ -o model.recur --dtype q8_0\n"
      "  recur inspect model.recur\n"
      "  recur dump model.recur --tensor embed.weight -o embed.npy\n",
      "recur"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "recur 0.1.0");

  std::map<CLI::App*, Action> actions;
  auto add = [&](Action (*adder)(CLI::App&)) {
    const size_t before = app.get_subcommands({}).size();
    Action action = adder(app);
    actions[app.get_subcommands({})[before]] = std::move(action);
  };
  add(AddConvert);
  add(AddInspect);
  add(AddDump);
  add(AddLogits);
  add(AddGenerate);
  add(AddBench);
  add(AddSynth);
  add(AddHippo);
  add(AddStream);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (auto& [sub, action] : actions) {
      if (sub->parsed()) return action();
    }
  } catch (const std::exception& e) {
    // The library reports failures as Status; this is the last line of defence (out of memory).
    return Fail(std::string("unexpected failure: ") + e.what());
  }
  return Fail("no subcommand given; try --help");
}
