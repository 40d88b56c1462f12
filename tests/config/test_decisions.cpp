// DECISIONS.md rows 1-8, 19 and 20: one test per row, where shrink departs from (or pins down)
// what NNI 3.0's code does.
#include "config_test_util.h"

using namespace shrink;
using namespace shrink::config_test;
using compression::config::default_weighted_types;
using compression::config::register_default_settings;
using compression::config::unregister_default_settings;

namespace {
// Conv2d, Linear, Embedding, BatchNorm2d, LayerNorm side by side.
class Mixed : public nn::Module {
 public:
  Mixed() {
    register_module("conv", std::make_shared<nn::Conv2d>(1, 2, 3));
    register_module("bn", std::make_shared<nn::BatchNorm2d>(2));
    register_module("emb", std::make_shared<nn::Embedding>(10, 4));
    register_module("norm", std::make_shared<nn::LayerNorm>(Shape{4}));
    register_module("fc", std::make_shared<nn::Linear>(4, 2));
  }
  std::string type_name() const override { return "Mixed"; }

 protected:
  nn::Value forward(const std::vector<nn::Value>& in) override { return in.at(0); }
};

// Registers ThreeArgs for quantization for the duration of a test.
struct ThreeArgsQuantizable {
  ThreeArgsQuantizable() {
    register_default_settings(kQuantization, "ThreeArgs",
                              obj(R"({"_input_": {"quant_dtype": null}, "_output_": {"quant_dtype": null}})"));
  }
  ~ThreeArgsQuantizable() { unregister_default_settings(kQuantization, "ThreeArgs"); }
};
}  // namespace

BOOST_AUTO_TEST_SUITE(decisions)

BOOST_AUTO_TEST_CASE(row1_v3_first_sub_config_keeps_a_target) {
  Linears model(2);
  std::vector<std::string> warnings;
  auto t = parse(model, R"([{"op_names": ["fc1"], "target_names": ["weight"], "sparse_ratio": 0.3},
                            {"op_types": ["Linear"], "sparse_ratio": 0.7}])", kPruning, &warnings);
  BOOST_TEST(find(t, "fc1", "weight").settings.at("sparse_ratio") == 0.3);
  BOOST_TEST(find(t, "fc1", "weight").config_index == 0u);
  // The later sub-config still adds the module's other target, and configures fc2.
  BOOST_TEST(find(t, "fc1", "bias").config_index == 1u);
  BOOST_TEST(find(t, "fc2", "weight").settings.at("sparse_ratio") == 0.7);
  BOOST_TEST(t.size() == 4u);
  BOOST_TEST_REQUIRE(warnings.size() == 1u);
  for (const char* part : {"config[1]", "config[0]", "'fc1'", "'weight'"})
    BOOST_TEST(warnings[0].find(part) != std::string::npos, warnings[0] << " lacks " << part);
  // The same for quantization, whose section of the spec says "later ones overwrite".
  warnings.clear();
  auto q = parse(model, R"([{"op_types": ["Linear"], "quant_dtype": "int8"},
                            {"op_names": ["fc1"], "quant_dtype": "int4"}])", kQuantization, &warnings);
  BOOST_TEST(find(q, "fc1", "weight").settings.at("quant_dtype") == "int8");
  BOOST_TEST(warnings.size() == 4u);  // _input_0, weight, bias, _output_0 of fc1
}

BOOST_AUTO_TEST_CASE(row2_legacy_last_sub_config_wins_and_exclude_looks_back) {
  Linears model(3);
  std::vector<std::string> warnings;
  // A legacy key anywhere (here only in the second sub-config) makes the list legacy.
  auto t = parse(model, R"([{"op_types": ["Linear"]}, {"op_names": ["fc1"], "sparsity": 0.8}])", kPruning, &warnings);
  BOOST_TEST(find(t, "fc1", "weight").settings.at("sparse_ratio") == 0.8);
  BOOST_TEST(find(t, "fc1", "bias").config_index == 1u);
  BOOST_TEST(find(t, "fc2", "weight").settings.at("sparse_ratio").is_null());
  BOOST_TEST(warnings.empty());
  // exclude removes modules from the sub-configs before it, not after it.
  auto u = parse(model, R"([{"op_types": ["Linear"], "sparsity": 0.5},
                            {"exclude": true, "op_names": ["fc1", "fc2"]},
                            {"op_names": ["fc2"], "sparsity": 0.2}])", kPruning);
  BOOST_TEST(modules_of(u) == (std::set<std::string>{"fc2", "fc3"}));
  BOOST_TEST(find(u, "fc2", "weight").settings.at("sparse_ratio") == 0.2);
  BOOST_TEST(find(u, "fc3", "weight").config_index == 0u);
  auto v = parse(model, R"([{"exclude": true, "op_names": ["fc1"]}, {"op_types": ["Linear"], "sparsity": 0.5}])", kPruning);
  BOOST_TEST(modules_of(v) == (std::set<std::string>{"fc1", "fc2", "fc3"}));
}

BOOST_AUTO_TEST_CASE(row3_legacy_and_v3_keys_cannot_mix) {
  Linears model(2);
  expect_rejected(model, R"([{"op_types": ["Linear"], "sparsity": 0.5, "target_names": ["weight"]}])", kPruning,
                  "config[0].target_names", "'sparsity'");
  expect_rejected(model, R"([{"op_types": ["Linear"], "sparse_ratio": 0.5}, {"exclude": true, "op_names": ["fc1"]}])",
                  kPruning, "config[0].sparse_ratio", "legacy key 'exclude' (config[1].exclude)");
  expect_rejected(model, R"([{"op_names_re": ["fc"]}, {"op_partial_names": ["fc1"], "sparsity": 0.5}])", kPruning,
                  "config[0].op_names_re", "'op_partial_names'");
  expect_rejected(model, R"([{"op_types": ["Linear"], "quant_types": ["weight"], "quant_bits": 8, "quant_dtype": "int8"}])",
                  kQuantization, "config[0].quant_dtype", "'quant_types'");
}

BOOST_AUTO_TEST_CASE(row4_total_sparsity_is_one_global_group_per_sub_config) {
  Linears model(3);
  auto t = parse(model, R"([{"op_names": ["fc1", "fc2"], "total_sparsity": 0.6, "max_sparsity_per_layer": 0.9},
                            {"op_names": ["fc3"], "total_sparsity": 0.6}])", kPruning);
  const json::object &fc1 = find(t, "fc1", "weight").settings, &fc2 = find(t, "fc2", "weight").settings,
                     &fc3 = find(t, "fc3", "weight").settings;
  BOOST_TEST(fc1.at("global_group_id") == fc2.at("global_group_id"));
  BOOST_TEST(fc1.at("global_group_id") != fc3.at("global_group_id"));
  BOOST_TEST(fc1.at("sparse_ratio") == 0.6);
  BOOST_TEST(fc1.at("max_sparse_ratio") == 0.9);
  BOOST_TEST(fc3.at("max_sparse_ratio").is_null());
  // sparsity (per layer) makes no group.
  auto u = parse(model, R"([{"op_names": ["fc1", "fc2"], "sparsity": 0.6}])", kPruning);
  BOOST_TEST(find(u, "fc1", "weight").settings.at("global_group_id").is_null());
}

BOOST_AUTO_TEST_CASE(row5_default_op_types_are_the_weighted_types) {
  Mixed model;
  BOOST_TEST(modules_of(parse(model, R"([{"op_types": ["default"], "sparsity": 0.5}])", kPruning)) ==
             (std::set<std::string>{"conv", "emb", "fc"}));
  BOOST_TEST(modules_of(parse(model, R"([{"op_types": ["default"], "quant_types": ["weight"], "quant_bits": 8}])",
                              kQuantization)) == (std::set<std::string>{"conv", "fc"}));
  // 'default' may sit beside other types, and also stands for them in a v3 list.
  BOOST_TEST(modules_of(parse(model, R"([{"op_types": ["default", "BatchNorm2d"], "sparse_ratio": 0.5}])", kPruning)) ==
             (std::set<std::string>{"conv", "bn", "emb", "fc"}));
  std::vector<std::string> pruning = default_weighted_types(kPruning);
  for (const char* type : {"Conv1d", "Conv2d", "Linear", "Embedding"})
    BOOST_TEST((std::find(pruning.begin(), pruning.end(), type) != pruning.end()), type);
}

BOOST_AUTO_TEST_CASE(row6_legacy_quantization_is_uint_affine) {
  auto lenet = models::make_model("lenet5");
  auto t = parse(*lenet, R"([{"op_types": ["Conv2d"], "quant_types": ["input", "weight", "output"], "quant_bits": 8,
                              "quant_start_step": 10}])", kQuantization);
  BOOST_TEST(target_names_of(t, "conv1") == (std::vector<std::string>{"_input_0", "weight", "_output_0"}));
  for (const auto& ts : t) {
    BOOST_TEST(ts.settings.at("quant_dtype") == "uint8");
    BOOST_TEST(ts.settings.at("quant_scheme") == "affine");
    BOOST_TEST(ts.settings.at("quant_start_step") == 10);
  }
  // A legacy quantization sub-config without bits gets v1/v2's defaults too.
  auto u = parse(*lenet, R"([{"op_types": ["Linear"]}, {"exclude": true, "op_names": ["fc3"]}])", kQuantization);
  BOOST_TEST(find(u, "fc1", "bias").settings.at("quant_dtype") == "uint8");
  BOOST_TEST(find(u, "fc1", "bias").settings.at("quant_scheme") == "affine");
  BOOST_TEST(modules_of(u) == (std::set<std::string>{"fc1", "fc2"}));
}

BOOST_AUTO_TEST_CASE(row7_missing_op_names_are_ignored_with_a_warning) {
  auto lenet = models::make_model("lenet5");
  std::vector<std::string> warnings;
  auto t = parse(*lenet, R"([{"op_names": ["fc1", "fc9"], "sparse_ratio": 0.5}])", kPruning, &warnings);
  BOOST_TEST(modules_of(t) == (std::set<std::string>{"fc1"}));
  BOOST_TEST_REQUIRE(warnings.size() == 1u);
  BOOST_TEST(warnings[0].find("'fc9'") != std::string::npos);
  warnings.clear();
  BOOST_TEST(parse(*lenet, R"([{"op_names": ["fc9"], "op_types": ["Linear"]}])", kPruning, &warnings).empty());
  BOOST_TEST(warnings.size() == 1u);
  // Warnings are optional to collect.
  BOOST_TEST(parse(*lenet, R"([{"op_names": ["fc9"]}])", kPruning).empty());
}

BOOST_AUTO_TEST_CASE(row8_input_targets_by_argument_name_or_position) {
  ThreeArgsQuantizable registered;
  WithThreeArgs model;
  auto t = parse(model, R"([{"op_names": ["block"], "target_names": ["_input_x", "_input_1", "_input_z", "_output_sum"]}])",
                 kQuantization);
  BOOST_TEST(target_names_of(t, "block") == (std::vector<std::string>{"_input_0", "_input_1", "_input_2", "_output_sum"}));
  BOOST_TEST(find(t, "block", "_input_2").input_index() == 2u);
  // Settings given under one spelling reach the target named by the other.
  auto u = parse(model, R"([{"op_names": ["block"], "target_names": ["_input_y"],
                             "target_settings": {"_input_1": {"quant_dtype": "int4"}}}])", kQuantization);
  BOOST_TEST(find(u, "block", "_input_1").settings.at("quant_dtype") == "int4");
  expect_rejected(model, R"([{"op_names": ["block"], "target_names": ["_input_y"],
                              "target_settings": {"_input_1": {"quant_dtype": "int4"}, "_input_y": {"quant_dtype": "int2"}}}])",
                  kQuantization, "config[0].target_settings._input_y", "same target");
  // MultiheadAttention's forward(query, key, value).
  auto tt = models::make_model("tiny_transformer");
  auto v = parse(*tt, R"([{"op_types": ["MultiheadAttention"], "target_names": ["_input_key", "_output_1"]}])", kDistillation);
  BOOST_TEST(target_names_of(v, "layers.0.attn") == (std::vector<std::string>{"_input_1", "_output_1"}));
}

BOOST_AUTO_TEST_CASE(row19_integer_lambda_is_a_float) {
  Linears model(1);
  auto t = parse(model, R"([{"op_names": ["fc1"], "lambda": 2}])", kDistillation);
  const json::value& lambda = find(t, "fc1", "_output_0").settings.at("lambda");
  BOOST_TEST(lambda.is_double());
  BOOST_TEST(lambda.get_double() == 2.0);
}

BOOST_AUTO_TEST_CASE(row20_missing_quant_dtype_is_int8) {
  Linears model(1);
  auto t = parse(model, R"([{"op_names": ["fc1"], "quant_scheme": "symmetric",
                             "target_settings": {"weight": {"granularity": "out_channel"}, "bias": {"quant_dtype": null}}}])",
                 kQuantization);
  for (const auto& ts : t) BOOST_TEST(ts.settings.at("quant_dtype") == "int8");
  BOOST_TEST(find(t, "fc1", "weight").settings.at("quant_scheme") == "symmetric");
}

BOOST_AUTO_TEST_SUITE_END()
