// The `recur` CLI: one function per subcommand, each a few lines over library calls.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace recur::cli {

// Each subcommand registers itself on the app and returns the action to run when chosen; the
// action returns the process exit code.
using Action = std::function<int()>;
Action AddInspect(CLI::App& app);
Action AddDump(CLI::App& app);
Action AddConvert(CLI::App& app);
Action AddLogits(CLI::App& app);
Action AddGenerate(CLI::App& app);
Action AddBench(CLI::App& app);
Action AddSynth(CLI::App& app);
Action AddHippo(CLI::App& app);
Action AddStream(CLI::App& app);

// Prints "recur: error: <message>" to stderr and returns exit code 1.
int Fail(const std::string& message);

}  // namespace recur::cli
