// `shrink compress` end to end on Fashion-MNIST (installed by ./run; skipped without it): a recipe
// of every stage kind on LeNet-5, what it leaves in the output directory, the report's numbers
// against independent counts, the bundle as a model file, --resume giving the same bytes, and bad
// recipes and directories exiting with 2 and writing nothing.
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "app/chromium.h"
#include "compression/cli_run.h"
#include "compression/export/onnx_export.h"
#include "compression/pruning/mask_io.h"
#include "compression/quantization/calibration_io.h"
#include "examples/compress/bundle.h"
#include "framework/io/atomic_file.h"
#include "models/model_file.h"

namespace fs = std::filesystem;
using namespace shrink;

namespace {

testing::CliResult compress(const std::string& args) { return testing::run_cli("compress", args); }

const char* kRecipe = R"({"model": "lenet5", "seed": 3, "threads": 2,
 "data": {"train_limit": 256, "test_limit": 300, "batch": 64},
 "stages": [
  {"stage": "train", "name": "dense", "epochs": 1},
  {"stage": "prune", "pruner": "l1", "config_list": [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}],
   "finetune_epochs": 1, "auto_dependency_groups": true},
  {"stage": "speedup"},
  {"stage": "fuse", "quantize": {"quantizer": "qat", "config_list": [{"op_types": ["Conv2d", "Linear"],
     "target_names": ["weight", "_input_0"], "quant_dtype": "int8"}]},
   "distill": {"config_list": [{"op_names": ["fc3"], "apply_method": "kl"}], "teacher": "dense"}, "epochs": 1, "lr": 0.01},
  {"stage": "evaluate", "int8": true},
  {"stage": "export", "formats": ["safetensors", "onnx"]}]})";

struct Dir {
  fs::path path;
  explicit Dir(const std::string& tag)
      : path(fs::temp_directory_path() / ("shrink_compress_" + tag + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~Dir() { fs::remove_all(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

boost::json::value read_json(const std::string& path) { return boost::json::parse(io::read_file(path)); }

const boost::json::object& stage(const boost::json::value& report, const std::string& name) {
  for (const auto& s : report.at("stages").as_array())
    if (s.at("name").as_string() == name) return s.as_object();
  BOOST_FAIL("no stage " << name);
  static boost::json::object none;
  return none;
}
const boost::json::object& layer(const boost::json::object& stage, const std::string& name) {
  for (const auto& l : stage.at("layers").as_array())
    if (l.at("name").as_string() == name) return l.as_object();
  BOOST_FAIL("no layer " << name);
  static boost::json::object none;
  return none;
}

std::vector<std::string> files_under(const fs::path& root) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file()) out.push_back(fs::relative(e.path(), root).string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cli_compress)

BOOST_AUTO_TEST_CASE(every_stage_kind_on_lenet5) {
  if (!testing::have_fashion_mnist()) {
    BOOST_TEST_MESSAGE("skipped: Fashion-MNIST not installed");
    return;
  }
  Dir d("run");
  std::ofstream(d / "recipe.json") << kRecipe;
  testing::CliResult r = compress("--recipe " + (d / "recipe.json") + " --out " + (d / "out") + " --json");
  BOOST_REQUIRE_EQUAL(r.status, 0);
  const boost::json::value report = boost::json::parse(r.out);
  BOOST_TEST(report == read_json(d / "out/report.json"));
  BOOST_REQUIRE_EQUAL(report.at("stages").as_array().size(), 7u);  // initial + 6

  // LeNet-5's parameters, counted by hand: 6*25+6, 16*6*25+16, 400*120+120, 120*84+84, 84*10+10.
  const boost::json::object& initial = stage(report, "initial");
  BOOST_TEST(initial.at("params").as_int64() == 156 + 2416 + 48120 + 10164 + 850);
  BOOST_TEST(initial.at("size_bytes").to_number<double>() == 4.0 * 61706);
  // conv1 pads by 2 (28x28 out), conv2 does not (10x10 out of the pooled 14x14).
  BOOST_TEST(initial.at("macs").as_int64() == 6 * 28 * 28 * 25 + 16 * 10 * 10 * 150 + 400 * 120 + 120 * 84 + 84 * 10);

  // Pruning half of each convolution's channels, with the dependency groups found automatically.
  const boost::json::object& pruned = stage(report, "1-prune");
  BOOST_TEST(layer(pruned, "conv1").at("live_channels").as_int64() == 3);
  BOOST_TEST(layer(pruned, "conv2").at("live_channels").as_int64() == 8);
  const compression::Masks masks = compression::load_masks(d / "out/stages/1-prune/masks.safetensors");
  BOOST_TEST(masks.size() == 4u);  // weight and bias of both convolutions
  BOOST_TEST(masks.at("conv2.bias").sum().item() == 8.f);

  // The speedup makes it so: conv2 keeps 8 of 16 filters over 3 of 6 inputs, fc1 200 of 400 inputs.
  const boost::json::object& small = stage(report, "2-speedup");
  BOOST_TEST(layer(small, "conv2").at("params").as_int64() == 8 * 3 * 25 + 8);
  BOOST_TEST(layer(small, "fc1").at("params").as_int64() == 200 * 120 + 120);
  // The sped-up model computes the masked one (deviation ~1e-7): at most one of 300 images may
  // land on the other side of an argmax tie.
  BOOST_TEST(std::abs(small.at("accuracy").to_number<double>() - pruned.at("accuracy").to_number<double>()) <=
             1.0 / 300 + 1e-12);
  auto sped = models::load_model_file(d / "out/stages/2-speedup/model.safetensors");
  int64_t params = 0;
  for (const auto& [name, p] : sped->named_parameters()) params += p.numel();
  BOOST_TEST(small.at("params").as_int64() == params);
  BOOST_TEST(!fs::exists(d / "out/stages/2-speedup/masks.safetensors"));

  // Quantized: 8-bit weights, the size counts them at a byte, int8 inference agrees.
  const boost::json::object& fused = stage(report, "3-fuse");
  for (const char* l : {"conv1", "conv2", "fc1", "fc2", "fc3"}) BOOST_TEST(layer(fused, l).at("bits").as_int64() == 8, l);
  int64_t bias = 0;
  for (const auto& [name, p] : sped->named_parameters()) bias += name.find("bias") != std::string::npos ? p.numel() : 0;
  BOOST_TEST(fused.at("size_bytes").to_number<double>() == static_cast<double>(params - bias) + 4.0 * bias);
  const boost::json::object& evaluated = stage(report, "4-evaluate");
  BOOST_REQUIRE(evaluated.contains("int8_accuracy"));
  // Within 0.3 pt of the fake-quantized model (issue's bound), i.e. at most one of these 300 images.
  BOOST_TEST(std::abs(evaluated.at("int8_accuracy").to_number<double>() - evaluated.at("accuracy").to_number<double>()) <=
             1.0 / 300 + 1e-12);

  // The bundle is a model file, with the masks and calibration attached.
  const std::string bundle = d / "out/stages/5-export/bundle.safetensors";
  auto loaded = models::load_model_file(bundle);
  BOOST_TEST(loaded->find("conv2")->param("weight").size(0) == 8);
  cli::BundleAttachments att = cli::load_bundle_attachments(bundle);
  BOOST_TEST(att.masks.empty());  // applied by the speedup
  const auto calibration = compression::load_calibration(d / "out/stages/3-fuse/calibration.safetensors");
  BOOST_REQUIRE_EQUAL(att.calibration.size(), calibration.size());
  for (const auto& [key, c] : calibration) {
    BOOST_TEST(att.calibration.at(key).scale.to_vector() == c.scale.to_vector(), key);
    BOOST_TEST(att.calibration.at(key).quant_bits == c.quant_bits, key);
  }
  // shrink infer takes the bundle's own calibration: fake-quantized and int8 as the report says.
  testing::CliResult fq = testing::run_cli("infer", "--model-file " + bundle + " --limit 300 --json");
  BOOST_REQUIRE_EQUAL(fq.status, 0);
  BOOST_TEST(boost::json::parse(fq.out).at("mode").as_string() == "fake_quant");
  BOOST_TEST(boost::json::parse(fq.out).at("test_acc").to_number<double>() ==
             evaluated.at("accuracy").to_number<double>());
  testing::CliResult i8 = testing::run_cli("infer", "--model-file " + bundle + " --int8 --limit 300 --json");
  BOOST_REQUIRE_EQUAL(i8.status, 0);
  BOOST_TEST(boost::json::parse(i8.out).at("test_acc").to_number<double>() ==
             evaluated.at("int8_accuracy").to_number<double>());
  testing::CliResult eval = testing::run_cli("eval", "--model-file " + bundle + " --limit 300 --json");
  BOOST_REQUIRE_EQUAL(eval.status, 0);
  BOOST_TEST(boost::json::parse(eval.out).at("test_acc").to_number<double>() ==
             stage(report, "5-export").at("float_accuracy").to_number<double>());

  // ONNX beside it, with the calibration as quantize/dequantize pairs (the exporter's own tests
  // check the graphs), when this build has the exporter.
  if (compression::onnx_export_available()) {
    BOOST_TEST(fs::file_size(d / "out/stages/5-export/model.onnx") > 0u);
    bool listed = false;
    for (const auto& n : stage(report, "5-export").at("notes").as_array())
      listed |= std::string(n.as_string()).find("10 quantize/dequantize pairs") != std::string::npos;
    BOOST_TEST(listed);  // weight and _input_0 of five layers
  }

  // The reports.
  const std::string md = io::read_file(d / "out/report.md");
  BOOST_TEST(md.find("| 2-speedup | speedup |") != std::string::npos);
  BOOST_TEST(md.find("| conv2 | Conv2d | [16x6x5x5] -> [8x3x5x5] |") != std::string::npos, md);
  if (!testing::chromium_binary().empty()) {
    std::string html = io::read_file(d / "out/report.html");
    html.insert(html.rfind("</body>"), testing::plot_check_script());
    std::ofstream(d / "check.html") << html;
    const std::string dom = testing::chromium_dump_dom(d / "check.html");
    BOOST_TEST(dom.find("PLOTS sparsity:5:5 accuracy-size:7:7 latency:10:10 END") != std::string::npos,
               dom.substr(dom.find("PLOTS") == std::string::npos ? 0 : dom.find("PLOTS"), 200));
  }

  // --resume after the speedup: the remaining stages again, byte for byte.
  fs::copy(d.path / "out", d.path / "again", fs::copy_options::recursive);
  for (const char* s : {"3-fuse", "4-evaluate", "5-export"}) fs::remove_all(d.path / "again/stages" / s);
  BOOST_REQUIRE_EQUAL(compress("--recipe " + (d / "recipe.json") + " --out " + (d / "again") + " --resume").status, 0);
  const std::vector<std::string> files = files_under(d.path / "out");
  BOOST_REQUIRE(files == files_under(d.path / "again"));
  for (const std::string& f : files)
    if (f.find(".safetensors") != std::string::npos || f.find("calibration.json") != std::string::npos ||
        f.find(".onnx") != std::string::npos)
      BOOST_TEST(io::read_file(d / ("out/" + f)) == io::read_file(d / ("again/" + f)), f);

  // The same directory again without --resume, or with another recipe: refused, nothing touched.
  BOOST_TEST(compress("--recipe " + (d / "recipe.json") + " --out " + (d / "out")).status == 2);
  std::string other = kRecipe;
  other.replace(other.find("\"seed\": 3"), 9, "\"seed\": 4");
  std::ofstream(d / "other.json") << other;
  BOOST_TEST(compress("--recipe " + (d / "other.json") + " --out " + (d / "out") + " --resume").status == 2);
  BOOST_TEST(files_under(d.path / "out") == files);
}

BOOST_AUTO_TEST_CASE(a_stage_that_does_not_fit_the_model_leaves_the_stages_before) {
  if (!testing::have_fashion_mnist()) {
    BOOST_TEST_MESSAGE("skipped: Fashion-MNIST not installed");
    return;
  }
  Dir d("misfit");
  // Valid for the schema, but LeNet-5's convolutions have no parameter "gain".
  std::ofstream(d / "recipe.json") << R"({"model": "lenet5", "data": {"train_limit": 128, "test_limit": 100},
    "stages": [{"stage": "train", "epochs": 1},
               {"stage": "prune", "pruner": "l1", "config_list": [{"op_types": ["Conv2d"], "target_names": ["gain"], "sparse_ratio": 0.5}]}]})";
  BOOST_TEST(compress("--recipe " + (d / "recipe.json") + " --out " + (d / "out")).status == 2);
  BOOST_TEST(fs::exists(d / "out/stages/0-train/stage.json"));
  BOOST_TEST(!fs::exists(d / "out/stages/1-prune"));
  BOOST_TEST(!fs::exists(d / "out/stages/.1-prune.tmp"));
}

BOOST_AUTO_TEST_CASE(bad_recipes_and_directories_exit_2_writing_nothing) {
  Dir d("bad");
  const std::string good = R"({"model": "lenet5", "stages": [{"stage": "train", "epochs": 1}]})";
  std::ofstream(d / "good.json") << good;
  std::ofstream(d / "unknown.json") << R"({"model": "lenet5", "stages": [{"stage": "bake"}]})";
  std::ofstream(d / "type.json") << R"({"model": "lenet5", "stages": [{"stage": "train", "epochs": "one"}]})";
  std::ofstream(d / "weights.json") << R"({"model": "lenet5", "weights": "gone.safetensors", "stages": [{"stage": "train", "epochs": 1}]})";
  for (const char* bad : {"unknown.json", "type.json", "weights.json", "absent.json"}) {
    BOOST_TEST(compress("--recipe " + (d / bad) + " --out " + (d / "out")).status == 2, bad);
    BOOST_TEST(!fs::exists(d / "out"), bad);
  }
  std::ofstream(d / "file") << "x";
  BOOST_TEST(compress("--recipe " + (d / "good.json") + " --out " + (d / "file/out")).status == 2);  // unwritable
  BOOST_TEST(compress("--recipe " + (d / "good.json") + " --out " + (d / "nowhere") + " --resume").status == 2);
  BOOST_TEST(!fs::exists(d / "nowhere"));
  BOOST_TEST(compress("--recipe " + (d / "good.json")).status == 2);  // no --out
}

BOOST_AUTO_TEST_SUITE_END()
