// recur convert SRC -o OUT.recur [--dtype ...]: wired to formats/convert.h when the importer lands.
#include "examples/commands.h"

namespace recur::cli {

Action AddConvert(CLI::App& app) {
  CLI::App* sub = app.add_subcommand("convert", "Convert a model to .recur");
  sub->allow_extras();
  return [] { return Fail("convert is not wired yet"); };
}

}  // namespace recur::cli
