// Legacy config lists: the Examples section of config-spec-v3.rst, every key of
// config-spec-v2-legacy.rst and the v1 overview's example, translated with DECISIONS rows 2-6.
#include "config_test_util.h"

using namespace shrink;
using namespace shrink::config_test;

namespace {
const std::set<std::string> kConvsAndFc1 = {"conv1", "conv2", "fc1"};
}

BOOST_AUTO_TEST_SUITE(legacy_examples)

// "The above two config lists are equivalent to the model we want to compress, they both use
// conv1, conv2, and fc1 as compression targets."
BOOST_AUTO_TEST_CASE(both_example_lists_select_conv1_conv2_fc1) {
  SpecExampleModel model;
  const std::string by_type_and_name = R"([{"op_types": ["Conv2d"]}, {"op_names": ["fc1"]}])";
  const std::string with_exclude = R"([{"op_types": ["Conv2d", "Linear"]}, {"exclude": true, "op_names": ["fc2"]}])";
  for (CompressorKind kind : {kPruning, kQuantization, kDistillation}) {
    BOOST_TEST_CONTEXT(compression::config::to_string(kind)) {
      std::vector<std::string> warnings;
      BOOST_TEST(modules_of(parse(model, by_type_and_name, kind, &warnings)) == kConvsAndFc1);
      BOOST_TEST(modules_of(parse(model, with_exclude, kind, &warnings)) == kConvsAndFc1);
      BOOST_TEST(warnings.empty());
    }
  }
  // Same targets and settings both ways for pruning (no legacy setting keys are involved).
  auto a = parse(model, by_type_and_name, kPruning), b = parse(model, with_exclude, kPruning);
  BOOST_TEST_REQUIRE(a.size() == b.size());
  for (const auto& t : a) BOOST_TEST(find(b, t.module_name, t.target_name).settings == t.settings);
  BOOST_TEST(find(b, "fc1", "weight").config_index == 0u);
}

BOOST_AUTO_TEST_CASE(total_sparsity_example) {
  SpecExampleModel model;
  auto t = parse(model, R"([{"op_types": ["Conv2d"], "total_sparsity": 0.5},
                            {"op_names": ["fc1"], "total_sparsity": 0.8}])", kPruning);
  BOOST_TEST(modules_of(t) == kConvsAndFc1);
  const json::object& conv1 = find(t, "conv1", "weight").settings;
  const json::object& conv2 = find(t, "conv2", "weight").settings;
  const json::object& fc1 = find(t, "fc1", "weight").settings;
  BOOST_TEST(conv1.at("sparse_ratio") == 0.5);
  BOOST_TEST(fc1.at("sparse_ratio") == 0.8);
  // One global group per sub-config (DECISIONS row 4).
  BOOST_TEST(!conv1.at("global_group_id").is_null());
  BOOST_TEST(conv1.at("global_group_id") == conv2.at("global_group_id"));
  BOOST_TEST(conv1.at("global_group_id") != fc1.at("global_group_id"));
  BOOST_TEST(find(t, "conv1", "bias").settings == pruning_bias_defaults());
}

BOOST_AUTO_TEST_CASE(quantization_example) {
  SpecExampleModel model;
  auto t = parse(model, R"([{"op_types": ["Conv2d"], "quant_types": ["input", "weight"], "quant_bits": {"input": 8, "weight": 8}},
                            {"op_names": ["fc1"], "quant_types": ["input", "weight"], "quant_bits": {"input": 8, "weight": 8}}])",
                 kQuantization);
  BOOST_TEST(modules_of(t) == kConvsAndFc1);
  json::object expected = obj(R"({"quant_dtype": "uint8", "quant_scheme": "affine", "granularity": "default", "apply_method": "clamp_round"})");
  for (const auto& m : kConvsAndFc1) {
    BOOST_TEST(target_names_of(t, m) == (std::vector<std::string>{"_input_0", "weight"}));
    BOOST_TEST(find(t, m, "_input_0").settings == expected);
    BOOST_TEST(find(t, m, "weight").settings == expected);
  }
}

// compressor-v1-overview.md: LevelPruner on every default type at 0.8; then default types at 0.8,
// op_name1/op_name2 at 0.6, op_name3 excluded.
BOOST_AUTO_TEST_CASE(v1_overview_examples) {
  auto lenet = models::make_model("lenet5");
  auto level = parse(*lenet, R"([{"sparsity": 0.8, "op_types": ["default"]}])", kPruning);
  BOOST_TEST(modules_of(level) == (std::set<std::string>{"conv1", "conv2", "fc1", "fc2", "fc3"}));
  for (const auto& ts : level)
    if (ts.target_name == "weight") BOOST_TEST(ts.settings == with(pruning_weight_defaults(), "sparse_ratio", 0.8));
  auto t = parse(*lenet, R"([{"sparsity": 0.8, "op_types": ["default"]},
                             {"sparsity": 0.6, "op_names": ["conv1", "fc1"]},
                             {"exclude": true, "op_names": ["fc3"]}])", kPruning);
  BOOST_TEST(modules_of(t) == (std::set<std::string>{"conv1", "conv2", "fc1", "fc2"}));
  BOOST_TEST(find(t, "conv1", "weight").settings.at("sparse_ratio") == 0.6);
  BOOST_TEST(find(t, "fc1", "weight").config_index == 1u);
  BOOST_TEST(find(t, "conv2", "weight").settings.at("sparse_ratio") == 0.8);
  BOOST_TEST(find(t, "fc2", "weight").config_index == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(legacy_keys)

BOOST_AUTO_TEST_CASE(sparsity_keys_are_per_layer_sparse_ratio) {
  auto lenet = models::make_model("lenet5");
  for (const char* key : {"sparsity", "sparsity_per_layer"}) {
    auto t = parse(*lenet, std::string(R"([{"op_types": ["Linear"], ")") + key + R"(": 0.25}])", kPruning);
    BOOST_TEST(find(t, "fc2", "weight").settings == with(pruning_weight_defaults(), "sparse_ratio", 0.25));
    BOOST_TEST(find(t, "fc2", "bias").settings == pruning_bias_defaults());
  }
  expect_rejected(*lenet, R"([{"op_types": ["Linear"], "sparsity": "0.2"}])", kPruning, "config[0].sparsity", "float");
  expect_rejected(*lenet, R"([{"op_types": ["Linear"], "sparsity": 1.6}])", kPruning, "config[0].sparsity", "[0.0, 1.0)");
  expect_rejected(*lenet, R"([{"op_types": ["Linear"], "sparsity": 1.0}])", kPruning, "config[0].sparsity", "[0.0, 1.0)");
  expect_rejected(*lenet, R"([{"op_types": ["Linear"], "sparsity_per_layer": 0}])", kPruning, "config[0].sparsity_per_layer", "float");
  expect_rejected(*lenet, R"([{"op_types": ["Linear"], "sparsity": 0.5, "total_sparsity": 0.5}])", kPruning,
                  "config[0].total_sparsity", "'sparsity'");
  expect_rejected(*lenet, R"([{"op_types": "default", "sparsity": 0.5}])", kPruning, "config[0].op_types", "list");
  expect_rejected(*lenet, R"([{"op_names": "abc", "sparsity": 0.5}])", kPruning, "config[0].op_names", "list");
}

BOOST_AUTO_TEST_CASE(max_sparsity_per_layer_is_max_sparse_ratio) {
  auto lenet = models::make_model("lenet5");
  auto t = parse(*lenet, R"([{"op_types": ["Linear"], "total_sparsity": 0.5, "max_sparsity_per_layer": 0.9}])", kPruning);
  BOOST_TEST(find(t, "fc1", "weight").settings.at("max_sparse_ratio") == 0.9);
  expect_rejected(*lenet, R"([{"op_types": ["Linear"], "total_sparsity": 0.5, "max_sparsity_per_layer": 0.0}])",
                  kPruning, "config[0].max_sparsity_per_layer", "(0.0, 1.0]");
}

BOOST_AUTO_TEST_CASE(op_partial_names_selects_names_containing_the_part) {
  auto resnet = models::make_model("resnet20");
  // "downsample." leaves out the Sequential "layer2.0.downsample", which has no pruning defaults.
  auto t = parse(*resnet, R"([{"op_partial_names": ["downsample."], "sparsity": 0.5}])", kPruning);
  BOOST_TEST(modules_of(t) == (std::set<std::string>{"layer2.0.downsample.0", "layer2.0.downsample.1",
                                                     "layer3.0.downsample.0", "layer3.0.downsample.1"}));
  // With op_types the names are narrowed to those types; regex characters are plain text.
  auto u = parse(*resnet, R"([{"op_partial_names": ["0.down"], "op_types": ["Conv2d"], "sparsity": 0.5}])", kPruning);
  BOOST_TEST(modules_of(u) == (std::set<std::string>{"layer2.0.downsample.0", "layer3.0.downsample.0"}));
  BOOST_TEST(parse(*resnet, R"([{"op_partial_names": ["layer.*"], "sparsity": 0.5}])", kPruning).empty());
  expect_rejected(*resnet, R"([{"op_partial_names": ["downsample"], "sparsity": 0.5}])", kPruning, "config[0]",
                  "selects 'layer2.0.downsample': module type 'Sequential'");
}

BOOST_AUTO_TEST_CASE(exclude_is_exclusive_with_compression_keys) {
  auto lenet = models::make_model("lenet5");
  expect_rejected(*lenet, R"([{"op_types": ["Linear"], "exclude": true, "sparsity": 0.5}])", kPruning,
                  "config[0].sparsity", "'exclude'");
  expect_rejected(*lenet, R"([{"op_types": ["Linear"], "exclude": true, "quant_types": ["weight"], "quant_bits": 8}])",
                  kQuantization, "config[0].quant_types", "'exclude'");
  expect_rejected(*lenet, R"([{"op_types": ["Linear"], "exclude": "yes"}])", kPruning, "config[0].exclude", "true or false");
  expect_rejected(*lenet, R"([{"exclude": true}])", kPruning, "config[0]", "op_partial_names");
  // exclude: false is an ordinary sub-config.
  BOOST_TEST(modules_of(parse(*lenet, R"([{"op_names": ["fc1"], "exclude": false}])", kPruning)) ==
             (std::set<std::string>{"fc1"}));
}

BOOST_AUTO_TEST_CASE(quant_types_and_quant_bits) {
  auto lenet = models::make_model("lenet5");
  // quant_types as a string, quant_bits as an integer for every type.
  auto t = parse(*lenet, R"([{"op_names": ["fc1"], "quant_types": "output", "quant_bits": 4}])", kQuantization);
  BOOST_TEST(target_names_of(t, "fc1") == (std::vector<std::string>{"_output_0"}));
  BOOST_TEST(find(t, "fc1", "_output_0").settings.at("quant_dtype") == "uint4");
  // Per-type bits.
  auto u = parse(*lenet, R"([{"op_types": ["Conv2d"], "quant_types": ["weight", "input", "output"],
                             "quant_bits": {"weight": 4, "input": 8, "output": 6}}])", kQuantization);
  BOOST_TEST(target_names_of(u, "conv2") == (std::vector<std::string>{"weight", "_input_0", "_output_0"}));
  BOOST_TEST(find(u, "conv2", "weight").settings.at("quant_dtype") == "uint4");
  BOOST_TEST(find(u, "conv2", "_input_0").settings.at("quant_dtype") == "uint8");
  BOOST_TEST(find(u, "conv2", "_output_0").settings.at("quant_dtype") == "uint6");
  // v1's quantizer validation cases (§1.7), and the keys' pairing.
  expect_rejected(*lenet, R"([{"op_types": ["Linear"], "quant_types": ["weight"], "quant_bits": 8, "bad_key": 1}])",
                  kQuantization, "config[0].bad_key", "unknown key");
  expect_rejected(*lenet, R"([{"op_types": ["Linear"], "quant_types": "abc", "quant_bits": 8}])", kQuantization,
                  "config[0].quant_types", "'input', 'weight' or 'output'");
  expect_rejected(*lenet, R"([{"op_types": ["Linear"], "quant_types": ["weight", "bias"], "quant_bits": 8}])",
                  kQuantization, "config[0].quant_types[1]", "'input', 'weight' or 'output'");
  expect_rejected(*lenet, R"([{"op_types": ["Linear"], "quant_types": ["weight"], "quant_bits": 34}])", kQuantization,
                  "config[0].quant_bits", "1..32");
  expect_rejected(*lenet, R"([{"op_types": ["Linear"], "quant_types": ["weight"], "quant_bits": {"abc": 123}}])",
                  kQuantization, "config[0].quant_bits.abc", "unknown quantization type");
  expect_rejected(*lenet, R"([{"op_types": ["Linear"], "quant_types": ["weight"], "quant_bits": {"input": 8}}])",
                  kQuantization, "config[0].quant_bits.input", "not in quant_types");
  expect_rejected(*lenet, R"([{"op_types": ["Linear"], "quant_types": ["weight", "input"], "quant_bits": {"weight": 8}}])",
                  kQuantization, "config[0].quant_bits", "'input'");
  expect_rejected(*lenet, R"([{"op_types": ["Linear"], "quant_types": ["weight"], "quant_bits": {"weight": 8.0}}])",
                  kQuantization, "config[0].quant_bits.weight", "1..32");
  expect_rejected(*lenet, R"([{"op_types": ["Linear"], "quant_types": ["weight"]}])", kQuantization,
                  "config[0].quant_types", "needs quant_bits");
  expect_rejected(*lenet, R"([{"op_types": ["Linear"], "quant_bits": 8}])", kQuantization, "config[0].quant_bits",
                  "needs quant_types");
  // A quantized weight needs a module with a weight.
  expect_rejected(*lenet, R"([{"op_types": ["ReLU"], "quant_types": ["weight"], "quant_bits": 8}])", kQuantization,
                  "config[0].quant_types[0]", "has no target 'weight'");
}

BOOST_AUTO_TEST_CASE(quant_start_step) {
  auto lenet = models::make_model("lenet5");
  auto t = parse(*lenet, R"([{"op_names": ["fc1"], "quant_types": ["weight"], "quant_bits": 8, "quant_start_step": 100}])",
                 kQuantization);
  BOOST_TEST(find(t, "fc1", "weight").settings ==
             obj(R"({"quant_dtype": "uint8", "quant_scheme": "affine", "granularity": "default",
                     "apply_method": "clamp_round", "quant_start_step": 100})"));
  expect_rejected(*lenet, R"([{"op_names": ["fc1"], "quant_types": ["weight"], "quant_bits": 8, "quant_start_step": -1}])",
                  kQuantization, "config[0].quant_start_step", ">= 0");
  expect_rejected(*lenet, R"([{"op_names": ["fc1"], "quant_types": ["weight"], "quant_bits": 8, "quant_start_step": 1.5}])",
                  kQuantization, "config[0].quant_start_step");
}

BOOST_AUTO_TEST_CASE(legacy_keys_of_another_kind_are_rejected) {
  auto lenet = models::make_model("lenet5");
  expect_rejected(*lenet, R"([{"op_types": ["Linear"], "sparsity": 0.5}])", kQuantization, "config[0].sparsity",
                  "legacy pruning key");
  expect_rejected(*lenet, R"([{"op_types": ["Linear"], "quant_types": ["weight"], "quant_bits": 8}])", kPruning,
                  "config[0].quant_types", "legacy quantization key");
  expect_rejected(*lenet, R"([{"op_types": ["Linear"], "quant_start_step": 5}])", kDistillation,
                  "config[0].quant_start_step", "legacy quantization key");
  // The selection keys work for every kind.
  BOOST_TEST(modules_of(parse(*lenet, R"([{"op_types": ["Linear"]}, {"exclude": true, "op_partial_names": ["fc3"]}])",
                              kDistillation)) == (std::set<std::string>{"fc1", "fc2"}));
}

BOOST_AUTO_TEST_SUITE_END()
