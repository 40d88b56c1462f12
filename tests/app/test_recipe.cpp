// Recipe parsing (examples/compress/recipe.h): defaults, relative paths, and one error per kind
// of mistake, each naming the recipe key where it was made.
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "examples/compress/recipe.h"

namespace fs = std::filesystem;
using namespace shrink::cli::recipe;

namespace {

fs::path temp_dir() {
  fs::path d = fs::temp_directory_path() / ("shrink_recipe_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

// The message of the RecipeError that parsing `text` throws ("" when it parses).
std::string error_of(const std::string& text, const std::string& base = ".") {
  try {
    parse_recipe(boost::json::parse(text), base);
  } catch (const RecipeError& e) {
    return e.what();
  }
  return "";
}

const char* kPrune = R"({"stage": "prune", "pruner": "l1", "config_list": [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}]})";
const char* kQuant = R"({"stage": "quantize", "quantizer": "ptq", "config_list": [{"op_types": ["Conv2d"], "target_names": ["weight"]}]})";

std::string recipe(const std::string& stages, const std::string& top = R"("model": "lenet5")") {
  return "{" + top + R"(, "stages": [)" + stages + "]}";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(recipe_parsing)

BOOST_AUTO_TEST_CASE(defaults_names_and_relative_paths) {
  const fs::path dir = temp_dir();
  std::ofstream(dir / "prune.json") << R"([{"op_types": ["Linear"], "sparse_ratio": 0.25}])";
  std::ofstream(dir / "w.safetensors") << "x";  // only its existence is checked here
  const Recipe r = parse_recipe(boost::json::parse(R"({"model": "mlp", "weights": "w.safetensors",
      "data": {"train_limit": 100},
      "stages": [{"stage": "train", "epochs": 1},
                 {"stage": "prune", "pruner": "agp", "config_list": "prune.json", "finetune_epochs": 2, "total_times": 4},
                 {"stage": "speedup", "name": "small"},
                 {"stage": "evaluate"}]})"), dir.string());
  BOOST_TEST(r.weights == (dir / "w.safetensors").string());
  BOOST_TEST(r.seed == 1u);
  BOOST_TEST(r.batch == 64);
  BOOST_TEST(r.train_limit == 100);
  BOOST_TEST(r.test_limit == -1);
  BOOST_REQUIRE_EQUAL(r.stages.size(), 4u);
  BOOST_TEST(r.stages[0].name == "0-train");
  BOOST_TEST(r.stages[0].training.epochs == 1);
  BOOST_TEST(r.stages[0].training.lr == 0.05);
  BOOST_TEST(r.stages[1].name == "1-prune");
  BOOST_TEST(r.stages[1].training.epochs == 2);  // finetune_epochs
  BOOST_TEST(r.stages[1].prune->total_times == 4);
  BOOST_TEST(r.stages[1].prune->config_list.at(0).at("sparse_ratio").as_double() == 0.25);  // read from the file
  BOOST_TEST(r.stages[2].name == "small");
  BOOST_TEST((r.stages[2].kind == StageKind::Speedup));
  BOOST_TEST(r.stages[3].int8 == false);
  // The resolved recipe (what --resume compares) holds the list itself and absolute paths.
  BOOST_TEST(r.resolved.at("stages").at(1).at("config_list").at(0).at("sparse_ratio").as_double() == 0.25);
  BOOST_TEST(r.resolved.at("weights").as_string() == fs::absolute(dir / "w.safetensors").lexically_normal().string());
  BOOST_TEST(r.source.at("stages").at(1).at("config_list").as_string() == "prune.json");
  // Integers may be written with a point.
  BOOST_TEST(parse_recipe(boost::json::parse(recipe(R"({"stage": "train", "epochs": 2.0})")), ".").stages[0].training.epochs == 2);
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(every_mistake_names_its_key) {
  struct Case {
    std::string text, expected;
  };
  const std::vector<Case> cases = {
      {recipe(kPrune, R"("model": "lenet5", "colour": 1)"), "recipe.colour: unknown key"},
      {recipe(kPrune, R"("model": "lenet6")"), "recipe.model: 'lenet6' is not a zoo model"},
      {recipe(kPrune, R"("seed": 1)"), "recipe.model: missing"},
      {recipe(kPrune, R"("model": "lenet5", "model_file": "m.safetensors")"), "recipe.model_file: give model"},
      {recipe(kPrune, R"("model": "lenet5", "weights": "nowhere.safetensors")"), "recipe.weights: no such file"},
      {recipe(kPrune, R"("model": "lenet5", "data": {"batch": 0})"), "recipe.data.batch: must be at least 1, got 0"},
      {recipe(kPrune, R"("model": "lenet5", "data": {"test_limit": 0})"), "recipe.data.test_limit: must be positive"},
      {R"({"model": "lenet5", "stages": []})", "recipe.stages: must be a non-empty array of stages, got an empty array"},
      {R"({"model": "lenet5", "stages": {}})", "recipe.stages: must be a non-empty array of stages, got an object"},
      {recipe(R"({"stage": "bake"})"), "recipe.stages[0].stage: 'bake' is not one of train, prune"},
      {recipe(R"({"epochs": 1})"), "recipe.stages[0].stage: missing"},
      {recipe(R"({"stage": "train", "epochs": "2"})"), "recipe.stages[0].epochs: must be an integer, got a string"},
      {recipe(R"({"stage": "train", "epochs": 1.5})"), "recipe.stages[0].epochs: must be an integer, got a fraction"},
      {recipe(R"({"stage": "train"})"), "recipe.stages[0].epochs: missing"},
      {recipe(R"({"stage": "train", "epochs": 1, "lr": 0})"), "recipe.stages[0].lr: must be greater than 0"},
      {recipe(R"({"stage": "train", "epochs": 1, "pruner": "l1"})"), "recipe.stages[0].pruner: unknown key"},
      {recipe(R"({"stage": "train", "epochs": 1, "name": "a/b"})"), "recipe.stages[0].name: 'a/b' may hold only"},
      {recipe(R"({"stage": "train", "epochs": 1, "name": "x"}, {"stage": "train", "epochs": 1, "name": "x"})"),
       "recipe.stages[1].name: 'x' names an earlier stage too"},
      {recipe(R"({"stage": "prune", "pruner": "l3", "config_list": []})"), "recipe.stages[0].pruner: 'l3' is not one of"},
      {recipe(R"({"stage": "prune", "pruner": "l1"})"), "recipe.stages[0].config_list: missing"},
      {recipe(R"({"stage": "prune", "pruner": "l1", "config_list": [{"op_types": ["Conv2d"], "sparse_ratio": 1.5}]})"),
       "recipe.stages[0].config_list[0].sparse_ratio:"},
      {recipe(R"({"stage": "prune", "pruner": "l1", "config_list": [{"op_types": ["Conv2d"], "quant_dtype": "int8"}]})"),
       "recipe.stages[0].config_list[0].quant_dtype:"},
      {recipe(R"({"stage": "prune", "pruner": "l1", "config_list": "missing.json"})"),
       "recipe.stages[0].config_list: cannot read"},
      {recipe(R"({"stage": "prune", "pruner": "l1", "epochs": 2, "config_list": [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}]})"),
       "recipe.stages[0].epochs: a prune stage trains for finetune_epochs"},
      {recipe(R"({"stage": "speedup"})"), "recipe.stages[0].stage: a speedup stage needs the masks"},
      {recipe(std::string(kPrune) + R"(, {"stage": "speedup"}, {"stage": "speedup"})"),
       "recipe.stages[2].stage: a speedup stage needs the masks"},
      {recipe(std::string(kPrune) + "," + kQuant + R"(, {"stage": "speedup"})"),
       "recipe.stages[2].stage: speedup changes the layers an earlier stage calibrated"},
      {recipe(R"({"stage": "evaluate", "int8": true})"), "recipe.stages[0].int8: int8 inference needs the calibration"},
      {recipe(R"({"stage": "evaluate", "int8": 1})"), "recipe.stages[0].int8: must be true or false, got a number"},
      {recipe(std::string(kQuant) + R"(, {"stage": "quantize", "quantizer": "qat", "observer": "kl", "config_list": []})"),
       "recipe.stages[1].observer: applies to the ptq quantizer only"},
      {recipe(R"({"stage": "distill", "epochs": 1, "config_list": [{"op_names": ["fc3"]}], "teacher": "later"},
                 {"stage": "train", "epochs": 1, "name": "later"})"),
       "recipe.stages[0].teacher: 'later' is not \"initial\" or an earlier stage"},
      {recipe(R"({"stage": "fuse", "epochs": 1})"), "recipe.stages[0]: a fuse stage needs at least one of"},
      {recipe(R"({"stage": "fuse", "quantize": {"quantizer": "ptq", "config_list": []}})"),
       "recipe.stages[0].quantize.quantizer: 'ptq' is not one of qat"},
      {recipe(R"({"stage": "fuse", "prune": {"pruner": "agp", "config_list": []}})"),
       "recipe.stages[0].prune.pruner: 'agp' is not one of"},
      {recipe(R"({"stage": "fuse", "epochs": 1, "distill": {"config_list": [{"op_names": ["fc3"]}], "teacher": "x"}})"),
       "recipe.stages[0].distill.teacher: 'x' is not"},
      {recipe(R"({"stage": "fuse", "distill": {"config_list": [{"op_names": ["fc3"]}], "extra": 1}})"),
       "recipe.stages[0].distill.extra: unknown key"},
      {recipe(R"({"stage": "export", "formats": ["onnx", "zip"]})"), "recipe.stages[0].formats[1]: 'zip' is not a format"},
      {recipe(R"({"stage": "export", "formats": []})"), "recipe.stages[0].formats: must be a non-empty array"},
      {"[1, 2]", "recipe: must be an object, got an array"},
      {recipe(R"({"stage": "train", "epochs": 0})"), "recipe.stages[0].epochs: missing or 0"},
      {recipe(R"({"stage": "train", "epochs": 1, "lr": 1e999})"), "recipe.stages[0].lr: must be finite"},
      {recipe(R"({"stage": "train", "epochs": 1, "momentum": 1.5})"), "recipe.stages[0].momentum: must be at most 1"},
      {recipe(R"({"stage": "distill", "config_list": [{"op_names": ["fc3"]}]})"), "recipe.stages[0].epochs: missing or 0"},
      {recipe(R"({"stage": "fuse", "prune": {"pruner": "l1", "config_list": [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}]}})"),
       "recipe.stages[0].epochs: missing or 0"},
      {recipe(R"({"stage": "quantize", "quantizer": "ptq", "epochs": 1, "config_list": [{"op_types": ["Conv2d"]}]})"),
       "recipe.stages[0].epochs: the ptq quantizer does not train"},
      {recipe(R"({"stage": "quantize", "quantizer": "qat", "bias_correction": true, "config_list": [{"op_types": ["Conv2d"]}]})"),
       "recipe.stages[0].bias_correction: applies to the ptq quantizer only"},
      {recipe(R"({"stage": "quantize", "quantizer": "ptq", "observer": "percentile", "percentile": 101, "config_list": [{"op_types": ["Conv2d"]}]})"),
       "recipe.stages[0].percentile: must be at most 100"},
      {recipe(R"({"stage": "quantize", "quantizer": "ptq", "percentile": 99, "config_list": [{"op_types": ["Conv2d"]}]})"),
       "recipe.stages[0].percentile: applies to the percentile observer only"},
      {recipe(R"({"stage": "quantize", "quantizer": "qat", "config_list": [{"op_types": ["Conv2d"], "fuse_names": [["conv1", "relu1"]]}]})"),
       "recipe.stages[0].config_list[0].fuse_names: module fusion"},
      {recipe(R"({"stage": "prune", "pruner": "l1", "config_list": [{"op_types": ["Conv2d"], "target_names": ["weight", "_output_0"], "sparse_ratio": 0.5}]})"),
       "recipe.stages[0].config_list[0].target_names[1]: '_output_0': a recipe prunes parameters only"},
      {recipe(R"({"stage": "quantize", "quantizer": "dorefa", "config_list": [{"op_types": ["Conv2d"]}]}, {"stage": "evaluate", "int8": true})"),
       "recipe.stages[1].int8: the dorefa quantizer's calibration does not describe its transform"},
      {recipe(R"({"stage": "quantize", "quantizer": "naive", "config_list": [{"op_types": ["Conv2d"]}]}, {"stage": "export", "formats": ["onnx"]})"),
       "recipe.stages[1].formats[0]: the naive quantizer's calibration does not describe its transform"},
      // A stage that trains after the calibration leaves it behind.
      {recipe(std::string(kQuant) + R"(, {"stage": "train", "epochs": 1}, {"stage": "evaluate", "int8": true})"),
       "recipe.stages[2].int8: int8 inference needs the calibration"},
  };
  for (const Case& c : cases) {
    const std::string got = error_of(c.text);
    BOOST_TEST_CONTEXT(c.text) {
      BOOST_TEST(got.rfind(c.expected, 0) == 0, "expected '" << c.expected << "...', got '" << got << "'");
    }
  }
}

BOOST_AUTO_TEST_CASE(a_file_that_is_not_json_is_named_with_its_position) {
  const fs::path dir = temp_dir();
  std::ofstream(dir / "r.json") << "{\"model\": \"lenet5\",\n \"stages\": [{'stage': 'train'}]}";
  try {
    load_recipe((dir / "r.json").string());
    BOOST_FAIL("no error");
  } catch (const RecipeError& e) {
    const std::string m = e.what();
    BOOST_TEST(m.find("recipe: " + (dir / "r.json").string()) == 0u, m);
    BOOST_TEST(m.find("line 2") != std::string::npos, m);
  }
  BOOST_CHECK_THROW(load_recipe((dir / "none.json").string()), RecipeError);
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_SUITE_END()
