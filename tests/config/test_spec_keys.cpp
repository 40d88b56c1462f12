// config-spec-v3.rst, the pruning, quantization and distillation keys: each accepted value lands
// in the canonical settings, each wrong type or out-of-range value is an error naming its path.
#include "config_test_util.h"

using namespace shrink;
using namespace shrink::config_test;

namespace {
// The weight settings of fc1 after `{"op_names": ["fc1"], <key>: <value>}`.
json::object fc1_setting(CompressorKind kind, const std::string& key_and_value, const std::string& target = "weight") {
  Linears model(1);
  auto t = parse(model, R"([{"op_names": ["fc1"], )" + key_and_value + "}]", kind);
  return find(t, "fc1", target).settings;
}

void reject_value(CompressorKind kind, const std::string& key, const std::string& value, const std::string& fragment = "") {
  Linears model(1);
  expect_rejected(model, R"([{"op_names": ["fc1"], ")" + key + "\": " + value + "}]", kind, "config[0]." + key, fragment);
  // The same value inside target_settings reports the full path.
  expect_rejected(model, R"([{"op_names": ["fc1"], "target_settings": {"weight": {")" + key + "\": " + value + "}}}]",
                  kind, "config[0].target_settings.weight." + key, fragment);
}
}  // namespace

BOOST_AUTO_TEST_SUITE(spec_pruning_keys)

BOOST_AUTO_TEST_CASE(sparse_ratio) {
  BOOST_TEST(fc1_setting(kPruning, R"("sparse_ratio": 0.8)").at("sparse_ratio") == 0.8);
  BOOST_TEST(fc1_setting(kPruning, R"("sparse_ratio": 0.0)").at("sparse_ratio") == 0.0);
  BOOST_TEST(fc1_setting(kPruning, R"("sparse_ratio": 1.0)").at("sparse_ratio") == 1.0);
  BOOST_TEST(fc1_setting(kPruning, R"("sparse_ratio": null)").at("sparse_ratio").is_null());
  reject_value(kPruning, "sparse_ratio", "1", "write 1.0");  // an integer, as NNI's schema (§1.7)
  reject_value(kPruning, "sparse_ratio", "1.5", "[0.0, 1.0]");
  reject_value(kPruning, "sparse_ratio", "-0.1", "[0.0, 1.0]");
  reject_value(kPruning, "sparse_ratio", "\"0.5\"", "expected a float");
  reject_value(kPruning, "sparse_ratio", "true", "expected a float");
  reject_value(kPruning, "sparse_ratio", "[0.5]", "expected a float");
}

BOOST_AUTO_TEST_CASE(max_and_min_sparse_ratio) {
  auto s = fc1_setting(kPruning, R"("sparse_threshold": 0.01, "max_sparse_ratio": 1.0, "min_sparse_ratio": 0.0)");
  BOOST_TEST(s.at("max_sparse_ratio") == 1.0);
  BOOST_TEST(s.at("min_sparse_ratio") == 0.0);
  reject_value(kPruning, "max_sparse_ratio", "0.0", "(0.0, 1.0]");
  reject_value(kPruning, "max_sparse_ratio", "1", "expected a float");
  reject_value(kPruning, "min_sparse_ratio", "1.0", "[0.0, 1.0)");
  reject_value(kPruning, "min_sparse_ratio", "\"low\"", "expected a float");
  Linears model(1);
  expect_rejected(model, R"([{"op_names": ["fc1"], "min_sparse_ratio": 0.6, "max_sparse_ratio": 0.4}])", kPruning,
                  "config[0].min_sparse_ratio", "above max_sparse_ratio");
  // Across levels: the shorthand min with a per-target max.
  expect_rejected(model, R"([{"op_names": ["fc1"], "min_sparse_ratio": 0.6,
                              "target_settings": {"weight": {"max_sparse_ratio": 0.4}}}])",
                  kPruning, "config[0].min_sparse_ratio", "config[0].target_settings.weight.max_sparse_ratio");
}

BOOST_AUTO_TEST_CASE(sparse_threshold_excludes_sparse_ratio) {
  BOOST_TEST(fc1_setting(kPruning, R"("sparse_threshold": 0.25)").at("sparse_threshold") == 0.25);
  BOOST_TEST(fc1_setting(kPruning, R"("sparse_threshold": -2.5)").at("sparse_threshold") == -2.5);
  reject_value(kPruning, "sparse_threshold", "3", "decimal point");
  reject_value(kPruning, "sparse_threshold", "\"high\"");
  Linears model(1);
  expect_rejected(model, R"([{"op_names": ["fc1"], "sparse_ratio": 0.5, "sparse_threshold": 0.1}])", kPruning,
                  "config[0].sparse_threshold", "'sparse_ratio'");
  expect_rejected(model, R"([{"op_names": ["fc1"], "target_settings": {"weight": {"sparse_threshold": 0.1, "sparse_ratio": 0.5}}}])",
                  kPruning, "config[0].target_settings.weight.sparse_threshold", "config[0].target_settings.weight.sparse_ratio");
  expect_rejected(model, R"([{"op_names": ["fc1"], "sparse_ratio": 0.5, "target_settings": {"weight": {"sparse_threshold": 0.1}}}])",
                  kPruning, "config[0].target_settings.weight.sparse_threshold", "config[0].sparse_ratio");
  // Both keys with one of them null, as the standard_config writes them, is fine; an explicit
  // null also lifts a shorthand ratio for one target.
  auto s = fc1_setting(kPruning, R"("sparse_ratio": 0.5, "target_settings": {"weight": {"sparse_ratio": null, "sparse_threshold": 0.1}})");
  BOOST_TEST(s.at("sparse_ratio").is_null());
  BOOST_TEST(s.at("sparse_threshold") == 0.1);
}

BOOST_AUTO_TEST_CASE(global_group_id_example) {
  Linears model(3);
  const std::string config = R"([{"op_names": ["fc1", "fc2"], "sparse_ratio": 0.5, "global_group_id": "linear_group_1"},
                                 {"op_names": ["fc3"], "sparse_ratio": 0.5, "global_group_id": "linear_group_1"}])";
  auto t = parse(model, config, kPruning);
  for (const char* fc : {"fc1", "fc2", "fc3"}) {
    BOOST_TEST(find(t, fc, "weight").settings.at("global_group_id") == "linear_group_1");
    BOOST_TEST(find(t, fc, "weight").settings.at("sparse_ratio") == 0.5);
    BOOST_TEST(find(t, fc, "bias").settings.contains("global_group_id") == false);
  }
  BOOST_TEST(find(t, "fc3", "weight").config_index == 1u);
  BOOST_TEST(fc1_setting(kPruning, R"("global_group_id": 3)").at("global_group_id") == 3);
  reject_value(kPruning, "global_group_id", "1.5", "an integer or a string");
  reject_value(kPruning, "global_group_id", "true", "an integer or a string");
  // "the sparse_ratio in the same global group should be the same"
  expect_rejected(model, R"([{"op_names": ["fc1", "fc2"], "sparse_ratio": 0.5, "global_group_id": "g"},
                             {"op_names": ["fc3"], "sparse_ratio": 0.6, "global_group_id": "g"}])",
                  kPruning, "config[1].sparse_ratio", "shares one sparse_ratio");
  // The id type matters: 1 and "1" are different groups.
  parse(model, R"([{"op_names": ["fc1"], "sparse_ratio": 0.5, "global_group_id": 1},
                   {"op_names": ["fc2"], "sparse_ratio": 0.6, "global_group_id": "1"}])", kPruning);
}

BOOST_AUTO_TEST_CASE(dependency_group_id) {
  auto resnet = models::make_model("resnet20");
  auto t = parse(*resnet, R"([{"op_names": ["layer1.0.conv2", "layer1.1.conv2"], "sparse_ratio": 0.5,
                               "dependency_group_id": 7, "granularity": "out_channel"}])", kPruning);
  BOOST_TEST(find(t, "layer1.1.conv2", "weight").settings.at("dependency_group_id") == 7);
  reject_value(kPruning, "dependency_group_id", "[1]", "an integer or a string");
  expect_rejected(*resnet, R"([{"op_names": ["layer1.0.conv2"], "sparse_ratio": 0.5, "dependency_group_id": "d"},
                               {"op_names": ["layer1.1.conv2"], "sparse_ratio": 0.25, "dependency_group_id": "d"}])",
                  kPruning, "config[1].sparse_ratio", "dependency_group_id");
}

BOOST_AUTO_TEST_CASE(granularity) {
  for (const char* g : {"default", "in_channel", "out_channel", "per_channel"})
    BOOST_TEST(fc1_setting(kPruning, std::string(R"("granularity": ")") + g + "\"").at("granularity") == g);
  BOOST_TEST(fc1_setting(kPruning, R"("granularity": [4, 4])").at("granularity") == json::array({4, 4}));
  BOOST_TEST(fc1_setting(kPruning, R"("granularity": [1, -1])").at("granularity") == json::array({1, -1}));
  // The spec's output-channel example on every Conv2d.
  auto lenet = models::make_model("lenet5");
  auto t = parse(*lenet, R"([{"op_types": ["Conv2d"], "sparse_ratio": 0.5, "granularity": "out_channel"}])", kPruning);
  BOOST_TEST(find(t, "conv2", "weight").settings.at("granularity") == "out_channel");
  BOOST_TEST(find(t, "conv2", "bias").settings.contains("granularity") == false);
  reject_value(kPruning, "granularity", "\"channel\"", "'default', 'in_channel'");
  reject_value(kPruning, "granularity", "null", "'default'");
  reject_value(kPruning, "granularity", "[]", "at least one block");
  reject_value(kPruning, "granularity", "4", "block sizes");
  Linears model(1);
  expect_rejected(model, R"([{"op_names": ["fc1"], "granularity": [4, 0]}])", kPruning, "config[0].granularity[1]",
                  "positive block size");
  expect_rejected(model, R"([{"op_names": ["fc1"], "granularity": [[4, 4], "pad", 1]}])", kPruning,
                  "config[0].granularity[0]");
  // in_channel/out_channel are parameter dims; inputs and outputs use per_channel.
  expect_rejected(model, R"([{"op_names": ["fc1"], "target_names": ["_output_"], "granularity": "out_channel"}])",
                  kPruning, "config[0].granularity", "per_channel");
  expect_rejected(model, R"([{"op_names": ["fc1"], "target_names": ["_input_"],
                              "target_settings": {"_input_": {"granularity": "in_channel"}}}])",
                  kPruning, "config[0].target_settings._input_.granularity", "per_channel");
  // No more block dimensions than the parameter has (Linear weight is 2-D, its bias 1-D).
  expect_rejected(model, R"([{"op_names": ["fc1"], "granularity": [2, 2, 2]}])", kPruning, "config[0].granularity",
                  "has 2");
  expect_rejected(model, R"([{"op_names": ["fc1"], "target_settings": {"bias": {"granularity": "in_channel"}}}])",
                  kPruning, "config[0].target_settings.bias.granularity", "has 1");
}

BOOST_AUTO_TEST_CASE(internal_metric_block) {
  BOOST_TEST(fc1_setting(kPruning, R"("internal_metric_block": 4)").at("internal_metric_block") == 4);
  reject_value(kPruning, "internal_metric_block", "0", "positive integer");
  reject_value(kPruning, "internal_metric_block", "4.0", "positive integer");
}

BOOST_AUTO_TEST_CASE(apply_method) {
  for (const char* m : {"mul", "add", "bypass"})
    BOOST_TEST(fc1_setting(kPruning, std::string(R"("apply_method": ")") + m + "\"").at("apply_method") == m);
  reject_value(kPruning, "apply_method", "\"clamp_round\"", "'mul', 'add' or 'bypass'");
  reject_value(kPruning, "apply_method", "null", "'mul'");
}

BOOST_AUTO_TEST_CASE(align) {
  json::object bias = fc1_setting(kPruning, R"("target_settings": {"bias": {"align": {"module_name": "fc1", "target_name": "weight", "dims": [0]}}})", "bias");
  BOOST_TEST(bias.at("align") == obj(R"({"module_name": "fc1", "target_name": "weight", "dims": [0]})"));
  // Shorthand align reaches bias (its template has align), not weight.
  json::object shorthand = fc1_setting(kPruning, R"("align": {"target_name": "weight", "dims": [-2]})", "bias");
  BOOST_TEST(shorthand.at("align") == obj(R"({"module_name": null, "target_name": "weight", "dims": [-2]})"));
  BOOST_TEST(fc1_setting(kPruning, R"("align": null)", "bias").at("align").is_null());
  Linears model(2);
  expect_rejected(model, R"([{"op_names": ["fc1"], "align": {"dims": [0]}}])", kPruning, "config[0].align", "target_name");
  expect_rejected(model, R"([{"op_names": ["fc1"], "align": {"target_name": "weight"}}])", kPruning, "config[0].align", "dims");
  expect_rejected(model, R"([{"op_names": ["fc1"], "align": {"target_name": "weight", "dims": [0, 0]}}])", kPruning,
                  "config[0].align.dims[1]", "twice");
  expect_rejected(model, R"([{"op_names": ["fc1"], "align": {"target_name": "weight", "dims": [0], "mode": 1}}])",
                  kPruning, "config[0].align.mode", "unknown key");
  expect_rejected(model, R"([{"op_names": ["fc1"], "align": [0]}])", kPruning, "config[0].align");
  // The followed mask must exist: its module, its target, and as a target of this compressor.
  expect_rejected(model, R"([{"op_names": ["fc1"], "target_settings": {"bias": {"align": {"module_name": "fc9", "target_name": "weight", "dims": [0]}}}}])",
                  kPruning, "config[0].target_settings.bias.align.module_name", "fc9");
  expect_rejected(model, R"([{"op_names": ["fc1"], "target_settings": {"bias": {"align": {"module_name": "fc2", "target_name": "weight", "dims": [0]}}}}])",
                  kPruning, "config[0].target_settings.bias.align", "not a pruning target");
  expect_rejected(model, R"([{"op_names": ["fc1"], "target_names": ["bias"]}])", kPruning, "config[0]",
                  "not a pruning target");
  parse(model, R"([{"op_names": ["fc2"], "target_names": ["weight"]},
                   {"op_names": ["fc1"], "target_settings": {"bias": {"align": {"module_name": "fc2", "target_name": "weight", "dims": [0]}}}}])",
        kPruning);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(spec_quantization_keys)

BOOST_AUTO_TEST_CASE(quant_dtype) {
  for (const char* d : {"int1", "int8", "int32", "uint2", "uint8", "uint32"})
    BOOST_TEST(fc1_setting(kQuantization, std::string(R"("quant_dtype": ")") + d + "\"").at("quant_dtype") == d);
  for (const char* bad : {"\"int0\"", "\"int33\"", "\"uint64\"", "\"int08\"", "\"int\"", "\"float16\"", "\"int8 \"", "8"})
    reject_value(kQuantization, "quant_dtype", bad, "'int<N>' or 'uint<N>'");
}

BOOST_AUTO_TEST_CASE(quant_scheme) {
  BOOST_TEST(fc1_setting(kQuantization, R"("quant_scheme": "affine")").at("quant_scheme") == "affine");
  BOOST_TEST(fc1_setting(kQuantization, R"("quant_scheme": "symmetric")").at("quant_scheme") == "symmetric");
  BOOST_TEST(fc1_setting(kQuantization, R"("quant_dtype": "int8")").at("quant_scheme").is_null());  // the quantizer's choice
  reject_value(kQuantization, "quant_scheme", "\"per_tensor_affine\"", "'affine' or 'symmetric'");  // §1.7
  reject_value(kQuantization, "quant_scheme", "1", "'affine' or 'symmetric'");
}

BOOST_AUTO_TEST_CASE(granularity_and_apply_method) {
  BOOST_TEST(fc1_setting(kQuantization, R"("target_names": ["weight"], "granularity": "out_channel")").at("granularity") == "out_channel");
  BOOST_TEST(fc1_setting(kQuantization, R"("target_names": ["_output_"], "granularity": "per_channel")", "_output_0").at("granularity") == "per_channel");
  BOOST_TEST(fc1_setting(kQuantization, R"("target_names": ["weight"], "granularity": [1, 4])").at("granularity") ==
             json::array({1, 4}));
  for (const char* m : {"clamp_round", "qat_clamp_round", "bypass"})
    BOOST_TEST(fc1_setting(kQuantization, std::string(R"("apply_method": ")") + m + "\"").at("apply_method") == m);
  reject_value(kQuantization, "apply_method", "\"mul\"", "'clamp_round'");
  Linears model(1);
  expect_rejected(model, R"([{"op_names": ["fc1"], "granularity": [[4], "back", -1]}])", kQuantization,
                  "config[0].granularity[0]", "block size");
  // A channel granularity as shorthand also reaches _input_/_output_, which cannot take it.
  expect_rejected(model, R"([{"op_names": ["fc1"], "granularity": "in_channel"}])", kQuantization,
                  "config[0].granularity", "per_channel");
}

BOOST_AUTO_TEST_CASE(defaults_on_every_target) {
  Linears model(1);
  auto t = parse(model, R"([{"op_types": ["Linear"]}])", kQuantization);
  BOOST_TEST(target_names_of(t, "fc1") == (std::vector<std::string>{"_input_0", "weight", "bias", "_output_0"}));
  for (const auto& ts : t) BOOST_TEST(ts.settings == quantization_defaults());
}

BOOST_AUTO_TEST_CASE(fuse_names) {
  auto vgg = models::make_model("vgg_small");
  auto t = parse(*vgg, R"([{"op_names": ["features.conv1"], "target_names": ["_input_", "weight", "_output_"],
                            "quant_dtype": "int8", "fuse_names": [["features.conv1", "features.bn1", "features.relu1"]]}])",
                 kQuantization);
  BOOST_TEST(find(t, "features.conv1", "weight").fused_modules ==
             (std::vector<std::string>{"features.conv1", "features.bn1", "features.relu1"}));
  BOOST_TEST(modules_of(t) == (std::set<std::string>{"features.conv1"}));
  const std::string head = R"([{"op_names": ["features.conv1"], "target_names": ["_input_", "weight", "_output_"], )";
  expect_rejected(*vgg, head + R"("fuse_names": [["features.conv1"]]}])", kQuantization, "config[0].fuse_names[0]", "2 or 3");
  expect_rejected(*vgg, head + R"("fuse_names": [["features.conv1", "features.bn9"]]}])", kQuantization,
                  "config[0].fuse_names[0][1]", "features.bn9");
  expect_rejected(*vgg, head + R"("fuse_names": [["features.conv2", "features.bn2"]]}])", kQuantization,
                  "config[0].fuse_names[0][0]", "not selected");
  expect_rejected(*vgg, head + R"("fuse_names": [["features.conv1", "features.pool1"]]}])", kQuantization,
                  "config[0].fuse_names[0]", "cannot fuse (Conv2d, MaxPool2d)");
  expect_rejected(*vgg, head + R"("fuse_names": "features.conv1"}])", kQuantization, "config[0].fuse_names");
  // A fused-away module cannot be quantized itself.
  expect_rejected(*vgg, R"([{"op_names": ["features.conv1", "features.bn1"], "fuse_names": [["features.conv1", "features.bn1"]]}])",
                  kQuantization, "config[0]", "fused into 'features.conv1'");
  // Folding a batch norm needs the weight, a fused ReLU the output among the leader's targets.
  expect_rejected(*vgg, R"([{"op_names": ["features.conv1"], "target_names": ["_input_"], "fuse_names": [["features.conv1", "features.bn1"]]}])",
                  kQuantization, "config[0].fuse_names[0]", "'weight'");
  expect_rejected(*vgg, R"([{"op_names": ["features.conv1"], "target_names": ["weight"], "fuse_names": [["features.conv1", "features.bn1", "features.relu1"]]}])",
                  kQuantization, "config[0].fuse_names[0]", "'_output_'");
  // fuse_names is a quantization key (§1.7).
  expect_rejected(*vgg, R"([{"op_names": ["features.conv1"], "fuse_names": [["features.conv1", "features.bn1"]]}])",
                  kPruning, "config[0].fuse_names", "quantization key");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(spec_distillation_keys)

BOOST_AUTO_TEST_CASE(lambda_link_apply_method) {
  auto lenet = models::make_model("lenet5");
  auto t = parse(*lenet, R"([{"op_names": ["fc3"], "lambda": 0.75, "link": "fc3", "apply_method": "kl"},
                             {"op_names": ["conv2"], "link": ["conv2", "conv1"]},
                             {"op_types": ["ReLU"]}])", kDistillation);
  BOOST_TEST(find(t, "fc3", "_output_0").settings == obj(R"({"lambda": 0.75, "link": ["fc3"], "apply_method": "kl"})"));
  // Defaults: lambda 1.0, link the student module's own name ('auto'), mse.
  BOOST_TEST(find(t, "conv2", "_output_0").settings == obj(R"({"lambda": 1.0, "link": ["conv2", "conv1"], "apply_method": "mse"})"));
  BOOST_TEST(find(t, "relu3", "_output_0").settings == obj(R"({"lambda": 1.0, "link": ["relu3"], "apply_method": "mse"})"));
  BOOST_TEST(t.size() == 6u);  // every module type may be distilled
  reject_value(kDistillation, "lambda", "\"1\"", "a number");
  reject_value(kDistillation, "lambda", "-0.5", ">= 0");
  reject_value(kDistillation, "link", "[]", "teacher module name");
  Linears fc(1);
  expect_rejected(fc, R"([{"op_names": ["fc1"], "link": ["fc1", 2]}])", kDistillation, "config[0].link[1]",
                  "teacher module name");
  reject_value(kDistillation, "apply_method", "\"mul\"", "'mse' or 'kl'");
  // Keys of the other kinds are refused (§1.7), shorthand or per target.
  Linears model(1);
  expect_rejected(model, R"([{"op_names": ["fc1"], "sparse_ratio": 0.5}])", kDistillation, "config[0].sparse_ratio",
                  "the distillation compressor does not accept");
  expect_rejected(model, R"([{"op_names": ["fc1"], "lambda": 0.5}])", kPruning, "config[0].lambda", "distillation");
  expect_rejected(model, R"([{"op_names": ["fc1"], "target_settings": {"weight": {"quant_dtype": "int8"}}}])", kPruning,
                  "config[0].target_settings.weight.quant_dtype", "quantization");
}

BOOST_AUTO_TEST_SUITE_END()
