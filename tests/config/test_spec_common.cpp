// config-spec-v3.rst, "Common Keys in Config": the shorthand example expands to exactly its
// standard_config, and each selection/target key selects what the document says.
#include "config_test_util.h"

using namespace shrink;
using namespace shrink::config_test;

namespace {
void check_same_targets(const std::vector<TargetSpace>& a, const std::vector<TargetSpace>& b) {
  BOOST_TEST_REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    BOOST_TEST(a[i].module_name == b[i].module_name);
    BOOST_TEST(a[i].target_name == b[i].target_name);
    BOOST_TEST((a[i].target_kind == b[i].target_kind));
    BOOST_TEST(a[i].settings == b[i].settings, json::serialize(a[i].settings) << " vs " << json::serialize(b[i].settings));
  }
}
}  // namespace

BOOST_AUTO_TEST_SUITE(spec_common_keys)

BOOST_AUTO_TEST_CASE(shorthand_example_expands_to_standard_config) {
  Linears model(2);
  const std::string shorthand = R"([{"op_types": ["Linear"], "sparse_ratio": 0.8}])";
  // The document's standard_config, Python's None spelled null.
  const std::string standard = R"([{
      "op_names": ["fc1", "fc2"],
      "target_names": ["weight", "bias"],
      "target_settings": {
        "weight": {"sparse_ratio": 0.8, "max_sparse_ratio": null, "min_sparse_ratio": null,
                   "sparse_threshold": null, "global_group_id": null, "dependency_group_id": null,
                   "granularity": "default", "internal_metric_block": null, "apply_method": "mul"},
        "bias": {"align": {"target_name": "weight", "dims": [0]}, "apply_method": "mul"}}}])";
  std::vector<std::string> warnings;
  auto expanded = parse(model, shorthand, kPruning, &warnings);
  BOOST_TEST(warnings.empty());
  check_same_targets(expanded, parse(model, standard, kPruning));
  BOOST_TEST((expanded == parse(model, standard, kPruning)));

  BOOST_TEST_REQUIRE(expanded.size() == 4u);
  const std::vector<std::pair<std::string, std::string>> order = {
      {"fc1", "weight"}, {"fc1", "bias"}, {"fc2", "weight"}, {"fc2", "bias"}};
  for (size_t i = 0; i < order.size(); ++i) {
    BOOST_TEST(expanded[i].module_name == order[i].first);
    BOOST_TEST(expanded[i].target_name == order[i].second);
    BOOST_TEST(expanded[i].module_type == "Linear");
    BOOST_TEST((expanded[i].target_kind == TargetKind::Parameter));
    BOOST_TEST(expanded[i].config_index == 0u);
  }
  // Exactly the standard_config's settings; align's omitted module_name is the aligned module itself.
  BOOST_TEST(find(expanded, "fc1", "weight").settings == with(pruning_weight_defaults(), "sparse_ratio", 0.8));
  BOOST_TEST(find(expanded, "fc2", "bias").settings == pruning_bias_defaults());
}

BOOST_AUTO_TEST_CASE(op_names_selects_by_full_name_and_ignores_missing_ones) {
  auto resnet = models::make_model("resnet20");
  std::vector<std::string> warnings;
  auto t = parse(*resnet, R"([{"op_names": ["layer1.0.conv1", "layer9.conv"], "sparse_ratio": 0.5}])", kPruning, &warnings);
  BOOST_TEST(modules_of(t) == (std::set<std::string>{"layer1.0.conv1"}));
  BOOST_TEST_REQUIRE(warnings.size() == 1u);
  BOOST_TEST(warnings[0].find("config[0].op_names") != std::string::npos);
  BOOST_TEST(warnings[0].find("layer9.conv") != std::string::npos);
  // A name must be the full dotted name, not a suffix.
  warnings.clear();
  BOOST_TEST(parse(*resnet, R"([{"op_names": ["conv2"]}])", kPruning, &warnings).empty());
  BOOST_TEST(warnings.size() == 1u);
}

BOOST_AUTO_TEST_CASE(op_names_re_matches_at_the_start_like_re_match) {
  auto resnet = models::make_model("resnet20");
  // re.match('conv', 'layer1.0.conv1') is None: only the top-level conv1 starts with "conv".
  BOOST_TEST(modules_of(parse(*resnet, R"([{"op_names_re": ["conv"]}])", kPruning)) ==
             (std::set<std::string>{"conv1"}));
  // A prefix match need not cover the whole name.
  BOOST_TEST(modules_of(parse(*resnet, R"([{"op_names_re": ["layer1\\.0\\.conv"]}])", kPruning)) ==
             (std::set<std::string>{"layer1.0.conv1", "layer1.0.conv2"}));
  BOOST_TEST(modules_of(parse(*resnet, R"([{"op_names_re": [".*downsample\\.0$"]}])", kPruning)) ==
             (std::set<std::string>{"layer2.0.downsample.0", "layer3.0.downsample.0"}));
  // Python's named groups are accepted.
  BOOST_TEST(modules_of(parse(*resnet, R"([{"op_names_re": ["(?P<stage>layer3)\\.2\\.conv(?P=stage)?2"]}])",
                              kPruning)) == (std::set<std::string>{"layer3.2.conv2"}));
  // With op_types the regex selection is narrowed to those types.
  auto t = parse(*resnet, R"([{"op_names_re": ["layer3\\.2\\."], "op_types": ["BatchNorm2d"]}])", kPruning);
  BOOST_TEST(modules_of(t) == (std::set<std::string>{"layer3.2.bn1", "layer3.2.bn2"}));
}

BOOST_AUTO_TEST_CASE(op_types_alone_selects_every_module_of_the_types) {
  auto resnet = models::make_model("resnet20");
  auto t = parse(*resnet, R"([{"op_types": ["Conv2d"], "sparse_ratio": 0.5}])", kPruning);
  // conv1, 9 blocks x 2 convs, 2 downsample convs; their convs have no bias, so only weights.
  BOOST_TEST(modules_of(t).size() == 21u);
  BOOST_TEST(t.size() == 21u);
  BOOST_TEST(has(t, "layer2.0.downsample.0", "weight"));
  for (const auto& ts : t) BOOST_TEST(ts.target_name == "weight");
  // Several types; the model's own order.
  auto lenet = models::make_model("lenet5");
  auto u = parse(*lenet, R"([{"op_types": ["Linear", "Conv2d"], "target_names": ["weight"]}])", kPruning);
  std::vector<std::string> order;
  for (const auto& ts : u) order.push_back(ts.module_name);
  BOOST_TEST(order == (std::vector<std::string>{"conv1", "conv2", "fc1", "fc2", "fc3"}));
}

BOOST_AUTO_TEST_CASE(op_types_with_op_names_selects_the_intersection) {
  auto lenet = models::make_model("lenet5");
  auto t = parse(*lenet, R"([{"op_types": ["Conv2d"], "op_names": ["conv1", "fc1"]}])", kPruning);
  BOOST_TEST(modules_of(t) == (std::set<std::string>{"conv1"}));
}

BOOST_AUTO_TEST_CASE(exclude_keys_remove_modules_from_the_selection) {
  auto lenet = models::make_model("lenet5");
  BOOST_TEST(modules_of(parse(*lenet, R"([{"op_types": ["Linear"], "exclude_op_names": ["fc2"]}])", kPruning)) ==
             (std::set<std::string>{"fc1", "fc3"}));
  BOOST_TEST(modules_of(parse(*lenet, R"([{"op_names_re": ["fc", "conv"], "exclude_op_names_re": ["fc[12]"]}])",
                              kPruning)) == (std::set<std::string>{"conv1", "conv2", "fc3"}));
  BOOST_TEST(modules_of(parse(*lenet, R"([{"op_names": ["conv1", "fc1"], "exclude_op_types": ["Linear"]}])",
                              kPruning)) == (std::set<std::string>{"conv1"}));
  // Excluding is local to its sub-config.
  auto t = parse(*lenet, R"([{"op_types": ["Linear"], "exclude_op_names": ["fc2"]}, {"op_names": ["fc2"]}])", kPruning);
  BOOST_TEST(modules_of(t) == (std::set<std::string>{"fc1", "fc2", "fc3"}));
  BOOST_TEST(find(t, "fc2", "weight").config_index == 1u);
}

BOOST_AUTO_TEST_CASE(target_names_and_target_settings) {
  Linears model(1);
  auto t = parse(model, R"([{"op_names": ["fc1"], "target_names": ["_input_", "weight", "_output_"],
                             "quant_dtype": "int4",
                             "target_settings": {"_output_": {"quant_dtype": "uint8", "quant_scheme": "affine"}}}])",
                 kQuantization);
  BOOST_TEST(target_names_of(t, "fc1") == (std::vector<std::string>{"_input_0", "weight", "_output_0"}));
  BOOST_TEST((find(t, "fc1", "_input_0").target_kind == TargetKind::Input));
  BOOST_TEST((find(t, "fc1", "_output_0").target_kind == TargetKind::Output));
  BOOST_TEST(find(t, "fc1", "_input_0").settings == with(quantization_defaults(), "quant_dtype", "int4"));
  BOOST_TEST(find(t, "fc1", "_output_0").settings ==
             with(with(quantization_defaults(), "quant_dtype", "uint8"), "quant_scheme", "affine"));
  // A target_settings entry for a target that is not selected configures nothing.
  auto u = parse(model, R"([{"op_names": ["fc1"], "target_names": ["weight"],
                             "target_settings": {"bias": {"apply_method": "add"}}}])", kPruning);
  BOOST_TEST(target_names_of(u, "fc1") == (std::vector<std::string>{"weight"}));
}

BOOST_AUTO_TEST_CASE(shorthand_reaches_only_targets_whose_template_has_the_key) {
  Linears model(1);
  // apply_method is in both templates; sparse_ratio only in weight's; bias gains it explicitly.
  auto t = parse(model, R"([{"op_names": ["fc1"], "apply_method": "add", "sparse_ratio": 0.3,
                             "target_settings": {"bias": {"sparse_ratio": 0.6}}}])", kPruning);
  BOOST_TEST(find(t, "fc1", "weight").settings.at("apply_method") == "add");
  BOOST_TEST(find(t, "fc1", "bias").settings.at("apply_method") == "add");
  BOOST_TEST(find(t, "fc1", "weight").settings.at("sparse_ratio") == 0.3);
  BOOST_TEST(find(t, "fc1", "bias").settings.at("sparse_ratio") == 0.6);
  // An explicit target setting beats the shorthand.
  auto u = parse(model, R"([{"op_names": ["fc1"], "sparse_ratio": 0.3,
                             "target_settings": {"weight": {"sparse_ratio": 0.9}}}])", kPruning);
  BOOST_TEST(find(u, "fc1", "weight").settings.at("sparse_ratio") == 0.9);
  // A named target the template lacks starts from every key of the kind.
  auto v = parse(model, R"([{"op_names": ["fc1"], "target_names": ["_output_"], "sparse_ratio": 0.4,
                             "granularity": "per_channel", "apply_method": "add"}])", kPruning);
  json::object expected = pruning_weight_defaults();
  expected["sparse_ratio"] = 0.4;
  expected["granularity"] = "per_channel";
  expected["apply_method"] = "add";
  BOOST_TEST(find(v, "fc1", "_output_0").settings == expected);
}

BOOST_AUTO_TEST_CASE(selection_keys_are_checked) {
  Linears model(2);
  expect_rejected(model, R"([{"sparse_ratio": 0.5}])", kPruning, "config[0]", "op_types, op_names or op_names_re");
  expect_rejected(model, R"([{"op_types": "Linear"}])", kPruning, "config[0].op_types", "list of strings");
  expect_rejected(model, R"([{"op_names": "fc1"}])", kPruning, "config[0].op_names", "list of strings");
  expect_rejected(model, R"([{"op_names": ["fc1", 2]}])", kPruning, "config[0].op_names[1]", "expected a string");
  expect_rejected(model, R"([{"op_names_re": ["fc(1"]}])", kPruning, "config[0].op_names_re[0]",
                  "invalid regular expression");
  expect_rejected(model, R"([{"op_types": ["Linear"], "exclude_op_names_re": ["[z-a]"]}])", kPruning,
                  "config[0].exclude_op_names_re[0]", "invalid regular expression");
  expect_rejected(model, R"([{"op_types": ["Linear"], "exclude_op_types": [null]}])", kPruning,
                  "config[0].exclude_op_types[0]");
  expect_rejected(model, R"([{"op_types": ["Linear"], "exclude_op_names": {}}])", kPruning,
                  "config[0].exclude_op_names");
  expect_rejected(model, R"([{"op_types": ["Linear"], "target_names": []}])", kPruning, "config[0].target_names",
                  "no targets");
  expect_rejected(model, R"([{"op_types": ["Linear"], "target_names": ["weight.data"]}])", kPruning,
                  "config[0].target_names[0]", "not a target name");
  expect_rejected(model, R"([{"op_types": ["Linear"], "target_names": ["_input_x-y"]}])", kPruning,
                  "config[0].target_names[0]", "input target");
  expect_rejected(model, R"([{"op_types": ["Linear"], "target_settings": ["weight"]}])", kPruning,
                  "config[0].target_settings", "expected an object");
  expect_rejected(model, R"([{"op_types": ["Linear"], "target_settings": {"weight": 0.5}}])", kPruning,
                  "config[0].target_settings.weight", "expected an object");
  expect_rejected(model, R"([{"op_types": ["Linear"], "target_settings": {"weight": {"op_names": ["fc1"]}}}])",
                  kPruning, "config[0].target_settings.weight.op_names", "top level");
  expect_rejected(model, R"([{"op_types": ["Linear"], "sparse_rato": 0.5}])", kPruning, "config[0].sparse_rato",
                  "did you mean 'sparse_ratio'");
  expect_rejected(model, R"([{"op_types": ["Linear"]}, {"op_types": ["Linear"], "bad_key": 1}])", kPruning,
                  "config[1].bad_key", "unknown key");
}

BOOST_AUTO_TEST_CASE(the_model_itself_is_named_empty) {
  Linears model(1);
  // re.match('.*', '') matches, so the root is selected too, and its type has no defaults.
  expect_rejected(model, R"([{"op_names_re": [".*"], "sparse_ratio": 0.5}])", kPruning, "config[0]",
                  "'Linears' has no default pruning settings");
  auto t = parse(model, R"([{"op_names_re": [".*"], "exclude_op_names": [""], "sparse_ratio": 0.5}])", kPruning);
  BOOST_TEST(modules_of(t) == (std::set<std::string>{"fc1"}));
}

BOOST_AUTO_TEST_SUITE_END()
