// `shrink fuse` end to end (needs Fashion-MNIST, installed by ./run; skipped without it): a pruner,
// a quantizer and a distiller (teacher: the model as loaded) in one run; the JSON on stdout, the
// saved masks, calibration and weights, and bad input exit codes.
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>

#include "compression/cli_run.h"
#include "compression/pruning/mask_io.h"
#include "compression/quantization/calibration_io.h"
#include "framework/data/fashion_mnist.h"
#include "framework/io/safetensors.h"
#include "framework/shrink.h"
#include "models/zoo.h"

namespace fs = std::filesystem;
using namespace shrink;

namespace {
testing::CliResult run(const std::string& args) { return testing::run_cli("fuse", args); }

}  // namespace

BOOST_AUTO_TEST_SUITE(cli_fuse)

BOOST_AUTO_TEST_CASE(prune_quantize_distil_in_one_run) {
  if (!shrink::testing::have_fashion_mnist()) {
    BOOST_TEST_MESSAGE("skipped: Fashion-MNIST not installed");
    return;
  }
  fs::path dir = fs::temp_directory_path() / ("shrink_fuse_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  manual_seed(3);
  io::save_safetensors((dir / "w.safetensors").string(), models::make_model("lenet5")->state_dict());
  std::ofstream(dir / "prune.json") << R"([{"op_names": ["conv2"], "sparse_ratio": 0.5, "granularity": "out_channel"}])";
  std::ofstream(dir / "quant.json") << R"([{"op_types": ["Conv2d", "Linear"], "target_names": ["weight"]}])";
  std::ofstream(dir / "distill.json") << R"([{"op_names": ["fc3"], "apply_method": "kl"}])";
  const std::string p = dir.string() + "/";
  const std::string base = "--model lenet5 --weights " + p + "w.safetensors --limit 256 --epochs 1 --threads 1 ";
  const std::string configs =
      "--prune-config " + p + "prune.json --quant-config " + p + "quant.json --distill-config " + p + "distill.json ";
  testing::CliResult r = run(base + configs + "--save " + p + "out.safetensors --save-masks " + p +
                             "masks.safetensors --save-calibration " + p + "calib.safetensors --json");
  BOOST_REQUIRE_EQUAL(r.status, 0);
  boost::json::value v = boost::json::parse(r.out);
  for (const char* key : {"float_test_acc", "test_acc", "drop_pt", "train_samples_per_s"})
    BOOST_TEST(v.as_object().contains(key), key);
  BOOST_TEST(v.at("sparsity").at("conv2.weight").to_number<double>() == 0.5);
  BOOST_TEST(v.at("quantized_targets").to_number<int64_t>() == 5);  // 2 conv + 3 linear weights
  auto masks = compression::load_masks(p + "masks.safetensors");
  BOOST_TEST(masks.count("conv2.weight") == 1u);
  auto calib = compression::load_calibration(p + "calib.safetensors");
  BOOST_TEST(calib.count("fc3.weight") == 1u);
  auto saved = io::load_tensors(p + "out.safetensors");
  BOOST_TEST(saved.count("conv2.weight") == 1u);
  BOOST_TEST(saved.count("conv2.weight_mask") == 0u);  // the model's own names only

  BOOST_TEST(run(base).status == 2);                                           // nothing to do
  BOOST_TEST(run(base + "--quant-config " + p + "quant.json --save-masks " + p + "m.safetensors").status == 2);
  std::ofstream(dir / "bad.json") << R"([{"op_names": ["conv2"], "sparse_ratio": 2}])";
  BOOST_TEST(run(base + "--prune-config " + p + "bad.json").status == 2);
  BOOST_TEST(run(base + "--quant-config " + p + "quant.json --quantizer nope").status == 2);
  BOOST_TEST(run(base + "--quant-config " + p + "quant.json --quantizer ptq").status == 2);  // does not train
  // A one-shot pruner alone: masks once, then the fine-tuning epochs.
  testing::CliResult alone = run(base + "--prune-config " + p + "prune.json --json");
  BOOST_REQUIRE_EQUAL(alone.status, 0);
  BOOST_TEST(boost::json::parse(alone.out).at("sparsity").at("conv2.weight").to_number<double>() == 0.5);
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_SUITE_END()
