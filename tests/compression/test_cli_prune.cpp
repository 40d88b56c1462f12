// `shrink prune` end to end: the JSON on stdout, the mask file, and bad input exit codes.
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "compression/cli_run.h"
#include "compression/pruning/mask_io.h"
#include "framework/data/fashion_mnist.h"

namespace fs = std::filesystem;

namespace {
shrink::testing::CliResult run(const std::string& args) { return shrink::testing::run_cli("prune", args); }

}  // namespace

BOOST_AUTO_TEST_SUITE(cli_prune)

BOOST_AUTO_TEST_CASE(json_and_mask_file) {
  if (!shrink::testing::have_fashion_mnist()) {
    BOOST_TEST_MESSAGE("skipped: Fashion-MNIST not installed");
    return;
  }
  fs::path dir = fs::temp_directory_path() / ("shrink_prune_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "cfg.json")
      << R"([{"op_types": ["Conv2d"], "exclude_op_names": ["conv1"], "sparse_ratio": 0.5}])";
  const std::string masks = (dir / "masks.safetensors").string();
  shrink::testing::CliResult r = run("--model lenet5 --config " + (dir / "cfg.json").string() +
                 " --pruner l1 --limit 256 --finetune-epochs 1 --save-masks " + masks + " --json");
  BOOST_REQUIRE_EQUAL(r.status, 0);
  boost::json::value v = boost::json::parse(r.out);  // exactly one JSON object on stdout
  const auto& t = v.at("targets").as_object();
  BOOST_TEST(t.size() == 2u);  // conv2.weight and its aligned bias
  BOOST_TEST(t.at("conv2.weight").at("sparsity").to_number<double>() == 0.5);
  BOOST_TEST(t.at("conv2.weight").at("shape").as_array().size() == 4u);
  auto loaded = shrink::compression::load_masks(masks);
  BOOST_TEST(loaded.at("conv2.weight").shape() == (shrink::Shape{16, 6, 5, 5}));
  BOOST_TEST(loaded.at("conv2.bias").shape() == (shrink::Shape{16}));
  // An invalid config: status 2, nothing on stdout.
  std::ofstream(dir / "bad.json") << R"([{"op_types": ["Conv2d"], "sparse_ratio": 1}])";
  shrink::testing::CliResult bad = run("--model lenet5 --config " + (dir / "bad.json").string() +
                   " --pruner l1 --save-masks " + masks + " --json");
  BOOST_TEST(bad.status == 2);
  BOOST_TEST(bad.out.empty());
  fs::remove_all(dir);
}

// --auto-dependency-groups on resnet20: the stem and layer1's conv2s feed the same residual sum, so
// they keep the same output channels.
BOOST_AUTO_TEST_CASE(automatic_dependency_groups) {
  if (!shrink::testing::have_fashion_mnist()) {
    BOOST_TEST_MESSAGE("skipped: Fashion-MNIST not installed");
    return;
  }
  fs::path dir = fs::temp_directory_path() / ("shrink_prune_dep_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "cfg.json") << R"([{"op_types": ["Conv2d"], "sparse_ratio": 0.5, "granularity": "out_channel"}])";
  const std::string masks = (dir / "masks.safetensors").string();
  auto r = run("--model resnet20 --config " + (dir / "cfg.json").string() +
               " --pruner l1 --limit 64 --auto-dependency-groups --save-masks " + masks + " --json");
  BOOST_REQUIRE_EQUAL(r.status, 0);
  auto loaded = shrink::compression::load_masks(masks);
  auto kept = [&](const std::string& key) {
    const shrink::Tensor& m = loaded.at(key);
    std::vector<float> v = m.to_vector(), rows;
    const size_t per = v.size() / static_cast<size_t>(m.size(0));
    for (size_t o = 0; o < static_cast<size_t>(m.size(0)); ++o) rows.push_back(v[o * per]);
    return rows;
  };
  for (const char* k : {"layer1.0.conv2.weight", "layer1.1.conv2.weight", "layer1.2.conv2.weight"})
    BOOST_TEST(kept(k) == kept("conv1.weight"), k);
  BOOST_TEST(kept("layer2.0.downsample.0.weight") == kept("layer2.2.conv2.weight"));
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(unknown_pruner_is_an_error) {
  shrink::testing::CliResult r = run("--model lenet5 --config /nonexistent.json --pruner nope --save-masks /tmp/x.safetensors");
  BOOST_TEST(r.status != 0);
}

BOOST_AUTO_TEST_SUITE_END()
