// Target resolution: parameters, buffers, inputs by position or argument name, outputs by index
// or key, optional parameters that are absent, and the error naming a module's targets.
#include "config_test_util.h"

using namespace shrink;
using namespace shrink::config_test;
using compression::config::register_default_settings;
using compression::config::unregister_default_settings;

namespace {
// Registers ThreeArgs for pruning with a template on `scale` for the duration of a test.
struct ThreeArgsPrunable {
  ThreeArgsPrunable() {
    register_default_settings(kPruning, "ThreeArgs", obj(R"({"scale": {"sparse_ratio": null, "apply_method": "mul"}})"));
  }
  ~ThreeArgsPrunable() { unregister_default_settings(kPruning, "ThreeArgs"); }
};
}  // namespace

BOOST_AUTO_TEST_SUITE(targets)

BOOST_AUTO_TEST_CASE(parameters_buffers_inputs_outputs) {
  ThreeArgsPrunable registered;
  WithThreeArgs model;
  auto t = parse(model, R"([{"op_names": ["block"], "sparse_ratio": 0.5,
                             "target_names": ["scale", "running", "_input_", "_input_z", "_output_", "_output_prod", "_output_1"]}])",
                 kPruning);
  BOOST_TEST(target_names_of(t, "block") ==
             (std::vector<std::string>{"scale", "running", "_input_0", "_input_2", "_output_0", "_output_prod", "_output_1"}));
  BOOST_TEST((find(t, "block", "scale").target_kind == TargetKind::Parameter));
  BOOST_TEST((find(t, "block", "running").target_kind == TargetKind::Buffer));
  BOOST_TEST((find(t, "block", "_input_2").target_kind == TargetKind::Input));
  BOOST_TEST((find(t, "block", "_output_prod").target_kind == TargetKind::Output));
  BOOST_TEST(find(t, "block", "_input_2").input_index() == 2u);
  BOOST_CHECK_THROW(find(t, "block", "scale").input_index(), Error);
  // Targets outside the template start from every pruning key; the shorthand reaches them all.
  BOOST_TEST(find(t, "block", "running").settings == with(pruning_weight_defaults(), "sparse_ratio", 0.5));
  BOOST_TEST(find(t, "block", "scale").settings == obj(R"({"sparse_ratio": 0.5, "apply_method": "mul"})"));
  // Default targets: the template's.
  auto u = parse(model, R"([{"op_types": ["ThreeArgs"], "granularity": "out_channel"}])", kPruning);
  BOOST_TEST(target_names_of(u, "block") == (std::vector<std::string>{"scale"}));
  BOOST_TEST(!find(u, "block", "scale").settings.contains("granularity"));
}

BOOST_AUTO_TEST_CASE(unknown_target_names_the_module_and_its_targets) {
  ThreeArgsPrunable registered;
  WithThreeArgs model;
  try {
    parse(model, R"([{"op_names": ["block"], "target_names": ["scale", "weight"]}])", kPruning);
    BOOST_FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    BOOST_TEST(e.path() == "config[0].target_names[1]");
    std::string what = e.what();
    for (const char* part : {"'block'", "ThreeArgs", "'weight'", "scale", "running (buffer)", "_input_0 (_input_x)",
                             "_input_2 (_input_z)", "_output_"})
      BOOST_TEST(what.find(part) != std::string::npos, what << " lacks " << part);
  }
  expect_rejected(model, R"([{"op_names": ["block"], "target_names": ["_input_w"]}])", kPruning, "config[0].target_names[0]",
                  "no argument of that name");
  expect_rejected(model, R"([{"op_names": ["block"], "target_names": ["_input_3"]}])", kPruning, "config[0].target_names[0]",
                  "takes 3 arguments");
  expect_rejected(model, R"([{"op_names": ["block"], "target_names": ["_input_99999999999999999999"]}])", kPruning,
                  "config[0].target_names[0]", "takes 3 arguments");
  expect_rejected(model, R"([{"op_names": ["head"], "target_names": ["_input_1"]}])", kPruning,
                  "config[0].target_names[0]", "(Linear) has no target '_input_1'");
}

BOOST_AUTO_TEST_CASE(absent_optional_parameters_give_no_target) {
  auto vgg = models::make_model("vgg_small");  // convolutions without bias
  auto t = parse(*vgg, R"([{"op_types": ["Conv2d"], "sparse_ratio": 0.5}])", kPruning);
  BOOST_TEST(target_names_of(t, "features.conv1") == (std::vector<std::string>{"weight"}));
  auto u = parse(*vgg, R"([{"op_names": ["features.conv1"], "target_names": ["weight", "bias"], "sparse_ratio": 0.5}])", kPruning);
  BOOST_TEST(target_names_of(u, "features.conv1") == (std::vector<std::string>{"weight"}));
  auto q = parse(*vgg, R"([{"op_names": ["features.conv1", "classifier.fc1"]}])", kQuantization);
  BOOST_TEST(target_names_of(q, "features.conv1") == (std::vector<std::string>{"_input_0", "weight", "_output_0"}));
  BOOST_TEST(target_names_of(q, "classifier.fc1") == (std::vector<std::string>{"_input_0", "weight", "bias", "_output_0"}));
}

BOOST_AUTO_TEST_CASE(batch_norm_targets_and_buffers) {
  auto resnet = models::make_model("resnet20");
  auto t = parse(*resnet, R"([{"op_names": ["bn1"], "sparse_ratio": 0.25}])", kPruning);
  BOOST_TEST(target_names_of(t, "bn1") == (std::vector<std::string>{"weight", "bias"}));
  BOOST_TEST(find(t, "bn1", "weight").settings.at("sparse_ratio") == 0.25);
  auto u = parse(*resnet, R"([{"op_names": ["bn1"], "target_names": ["running_mean", "num_batches_tracked"]}])", kDistillation);
  BOOST_TEST((find(u, "bn1", "running_mean").target_kind == TargetKind::Buffer));
  // A scalar buffer cannot take a channel granularity.
  expect_rejected(*resnet, R"([{"op_names": ["bn1"], "target_names": ["num_batches_tracked"], "granularity": "out_channel"}])",
                  kPruning, "config[0].granularity", "has 0");
}

BOOST_AUTO_TEST_CASE(input_and_output_settings_by_bare_name) {
  Linears model(1);
  // A bare "_input_" entry configures every input target; a specific entry goes on top.
  auto t = parse(model, R"([{"op_names": ["fc1"], "target_names": ["_input_0", "_output_0"],
                             "target_settings": {"_input_": {"quant_dtype": "int4", "quant_scheme": "affine"},
                                                 "_input_input": {"quant_dtype": "int2"},
                                                 "_output_": {"granularity": "per_channel"}}}])", kQuantization);
  BOOST_TEST(find(t, "fc1", "_input_0").settings.at("quant_dtype") == "int2");
  BOOST_TEST(find(t, "fc1", "_input_0").settings.at("quant_scheme") == "affine");
  BOOST_TEST(find(t, "fc1", "_output_0").settings.at("granularity") == "per_channel");
  // Repeated spellings of one target in target_names make one target.
  auto u = parse(model, R"([{"op_names": ["fc1"], "target_names": ["_input_", "_input_0", "_input_input", "weight"]}])",
                 kQuantization);
  BOOST_TEST(target_names_of(u, "fc1") == (std::vector<std::string>{"_input_0", "weight"}));
}

BOOST_AUTO_TEST_CASE(distillation_targets_any_module) {
  WithThreeArgs model;
  auto t = parse(model, R"([{"op_names": ["block", "head", ""]}])", kDistillation);
  BOOST_TEST(t.size() == 3u);
  BOOST_TEST(find(t, "", "_output_0").module_type == "WithThreeArgs");
  auto u = parse(model, R"([{"op_names": ["block"], "target_names": ["_output_sum", "_input_y"], "lambda": 0.5}])", kDistillation);
  BOOST_TEST(find(u, "block", "_input_1").settings.at("lambda") == 0.5);
}

BOOST_AUTO_TEST_SUITE_END()
