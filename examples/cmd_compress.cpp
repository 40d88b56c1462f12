// `shrink compress --recipe FILE --out DIR [--resume] [--json]`: runs a recipe's stages (train,
// prune, speedup, quantize, distill, fuse, evaluate, export) into DIR and writes the report
// (examples/compress/: recipe.h for the recipe, runner.h for the directory, report.h for the
// report). A bad recipe or an unusable DIR exits with 2 and one error line, before anything is
// written; a stage whose config list does not fit the model exits with 2 and leaves the stages
// before it, which --resume continues after. --json prints report.json's object on stdout.
#include <unistd.h>

#include <boost/json.hpp>
#include <boost/program_options.hpp>
#include <iostream>

#include "examples/cli.h"
#include "examples/compress/recipe.h"
#include "examples/compress/runner.h"
#include "framework/dist/communicator.h"

namespace po = boost::program_options;

namespace shrink::cli {

int cmd_compress(const std::vector<std::string>& args) {
  std::string recipe_path, out_dir;
  po::options_description desc("shrink compress options");
  desc.add_options()
      ("help,h", "show this help")
      ("recipe", po::value(&recipe_path)->required(), "the recipe (JSON file; README: \"Recipes\")")
      ("out", po::value(&out_dir)->required(), "output directory (new or empty, or the one to --resume)")
      ("resume", "continue the run in --out after its last complete stage")
      ("json", "print the report as one JSON object on stdout");
  po::variables_map vm;
  if (auto status = parse_args(args, desc, vm, "compress")) return *status;
  recipe::RunOptions options;
  options.out_dir = out_dir;
  options.resume = vm.count("resume") > 0;
  static std::ostream quiet(nullptr);  // the other ranks of an mpirun job: rank 0 tells
  const bool writer = dist::world()->is_writer();
  options.log = writer ? &std::cerr : &quiet;
  options.tty = draws_progress(STDERR_FILENO);
  try {
    const recipe::Recipe r = recipe::load_recipe(recipe_path);
    const recipe::Report report = recipe::run_recipe(r, options);
    if (writer) std::cerr << "report: " << out_dir << "/report.html (and report.md, report.json)\n";
    if (vm.count("json")) std::cout << boost::json::serialize(recipe::to_json(report)) << "\n";
  } catch (const recipe::RecipeError& e) {
    std::cerr << "shrink compress: " << e.what() << "\n";
    return 2;
  }
  return 0;
}

}  // namespace shrink::cli
