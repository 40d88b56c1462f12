// Runs a recipe (recipe.h) stage by stage into an output directory:
//
//   OUT/recipe.json                   the recipe as given (--resume refuses a different one)
//   OUT/stages/initial/stage.json     what the starting model measures
//   OUT/stages/<name>/stage.json      each stage's measurements (report.h), written last
//   OUT/stages/<name>/model.safetensors        the model after the stage (a model file: any
//                                               architecture, sped-up ones included)
//   OUT/stages/<name>/masks.safetensors        masks still carried (until a speedup applies them)
//   OUT/stages/<name>/calibration.safetensors  (+ .json) the calibration, once a stage made one
//   OUT/stages/<name>/bundle.safetensors       export: weights, architecture, masks, calibration
//   OUT/report.json, report.md, report.html    rewritten after every stage
//
// A stage is built in "stages/.<name>.tmp" and renamed into place when complete, so the directory
// only ever holds whole stages. Every stage starts from the files of the stage before (never from
// memory) with its own seed (recipe seed + stage index + 1), so --resume, which continues after
// the last complete stage, gives bit-identical results.
//
// Between stages, masks are baked into the weights; stages that train keep masked weights at zero
// after every optimizer step, so a later stage cannot regrow what was pruned.
#pragma once
#include <iosfwd>
#include <string>

#include "examples/compress/recipe.h"
#include "examples/compress/report.h"

namespace shrink::cli::recipe {

struct RunOptions {
  std::string out_dir;
  bool resume = false;
  std::ostream* log = nullptr;  // progress and stage lines (stderr in the CLI)
  bool tty = false;             // live progress bars when the log is a terminal
};

// Throws RecipeError when the output directory cannot be used (not empty without --resume,
// resumed with another recipe, not writable) before anything is written, and for a stage whose
// config list does not fit the model (that stage leaves nothing behind); shrink::Error for other
// failures.
Report run_recipe(const Recipe& recipe, const RunOptions& options);

}  // namespace shrink::cli::recipe
