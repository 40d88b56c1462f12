// NNI's own config tests as nni-semantics.md §9 lists them: the shared configs of
// test/algo/compression/assets/common.py on SimpleTorchModel (§9.1), the canonicalization cases of
// base/test_setting.py (§9.2 item 2) and the validation cases that must be rejected (§9.2 item 13).
#include "config_test_util.h"

using namespace shrink;
using namespace shrink::config_test;

namespace {
// NNI's SimpleTorchModel: conv1(1->16), bn1, conv2(16->32, groups 4), bn2, conv3(16->32), bn3, fc1, fc2.
class SimpleTorchModel : public nn::Module {
 public:
  SimpleTorchModel() {
    register_module("conv1", std::make_shared<nn::Conv2d>(1, 16, 3));
    register_module("bn1", std::make_shared<nn::BatchNorm2d>(16));
    register_module("conv2", std::make_shared<nn::Conv2d>(16, 32, 3, 1, 0, 1, 4));
    register_module("bn2", std::make_shared<nn::BatchNorm2d>(32));
    register_module("conv3", std::make_shared<nn::Conv2d>(16, 32, 3));
    register_module("bn3", std::make_shared<nn::BatchNorm2d>(32));
    register_module("fc1", std::make_shared<nn::Linear>(32 * 24 * 24, 100));
    register_module("fc2", std::make_shared<nn::Linear>(100, 10));
  }
  std::string type_name() const override { return "SimpleTorchModel"; }

 protected:
  nn::Value forward(const std::vector<nn::Value>& in) override { return in.at(0); }
};
}  // namespace

BOOST_AUTO_TEST_SUITE(nni_cases)

BOOST_AUTO_TEST_CASE(common_pruning_config) {
  SimpleTorchModel model;
  auto t = parse(model, R"([{"op_types": ["Linear"], "exclude_op_names": ["fc2"], "sparse_ratio": 0.75, "granularity": "out_channel"},
                            {"op_names": ["conv1", "conv2", "conv3"], "sparse_ratio": 0.75, "granularity": "out_channel"}])",
                 kPruning);
  BOOST_TEST(modules_of(t) == (std::set<std::string>{"fc1", "conv1", "conv2", "conv3"}));
  json::object weight = pruning_weight_defaults();
  weight["sparse_ratio"] = 0.75;
  weight["granularity"] = "out_channel";
  for (const char* m : {"fc1", "conv1", "conv2", "conv3"}) {
    BOOST_TEST(find(t, m, "weight").settings == weight);
    BOOST_TEST(find(t, m, "bias").settings == pruning_bias_defaults());
  }
  // What auto_set_denpendency_group_ids adds: a group id for every Conv/Linear, conv2 and conv3
  // sharing one, an internal metric block for the grouped convolutions.
  auto u = parse(model, R"([{"op_names": ["conv1"], "sparse_ratio": 0.75, "granularity": "out_channel", "dependency_group_id": 0, "internal_metric_block": 4},
                            {"op_names": ["conv2", "conv3"], "sparse_ratio": 0.75, "granularity": "out_channel", "dependency_group_id": 1, "internal_metric_block": 4},
                            {"op_names": ["fc1"], "sparse_ratio": 0.75, "granularity": "out_channel", "dependency_group_id": 2}])",
                 kPruning);
  BOOST_TEST(find(u, "conv3", "weight").settings.at("dependency_group_id") == 1);
  BOOST_TEST(find(u, "conv3", "weight").settings.at("internal_metric_block") == 4);
}

BOOST_AUTO_TEST_CASE(common_quantization_and_distillation_configs) {
  SimpleTorchModel model;
  auto q = parse(model, R"([{"op_names": ["fc1", "fc2"], "target_names": ["weight"], "quant_dtype": "int8",
                             "quant_scheme": "affine", "granularity": "in_channel"},
                            {"op_names": ["conv1", "conv2", "conv3"], "target_names": ["_input_", "weight", "_output_"],
                             "quant_dtype": "int8", "quant_scheme": "affine",
                             "fuse_names": [["conv1", "bn1"], ["conv2", "bn2"], ["conv3", "bn3"]]}])",
                 kQuantization);
  BOOST_TEST(q.size() == 2u + 9u);
  BOOST_TEST(find(q, "fc2", "weight").settings.at("granularity") == "in_channel");
  BOOST_TEST(find(q, "conv2", "_output_0").fused_modules == (std::vector<std::string>{"conv2", "bn2"}));
  BOOST_TEST(find(q, "fc1", "weight").fused_modules.empty());
  auto d = parse(model, R"([{"op_names": ["fc2"], "lambda": 0.75, "link": "fc2", "apply_method": "mse"}])", kDistillation);
  BOOST_TEST(find(d, "fc2", "_output_0").settings == obj(R"({"lambda": 0.75, "link": ["fc2"], "apply_method": "mse"})"));
}

// base/test_setting.py, and the spec's shorthand on a Linear (§9.2 item 2).
BOOST_AUTO_TEST_CASE(item2_setting_canonicalization) {
  Linears model(1);
  auto p = parse(model, R"([{"op_names": ["fc1"], "target_names": ["weight", "bias"], "sparse_ratio": 0.5,
                             "target_settings": {"bias": {"sparse_ratio": 0.6}}}])", kPruning);
  BOOST_TEST(find(p, "fc1", "weight").settings.at("sparse_ratio") == 0.5);
  BOOST_TEST(find(p, "fc1", "bias").settings.at("sparse_ratio") == 0.6);
  BOOST_TEST(find(p, "fc1", "bias").settings.at("align") == pruning_bias_defaults().at("align"));

  // NNI checks the quantization case through canonicalize_settings alone; the full schema, which
  // shrink always applies, refuses the pruning key in a quantization config.
  expect_rejected(model, R"([{"op_names": ["fc1"], "target_names": ["_input_", "weight", "_output_"], "quant_dtype": "uint6",
                              "sparse_ratio": 0.4, "target_settings": {"weight": {"sparse_ratio": 0.6}}}])",
                  kQuantization, "config[0].sparse_ratio", "pruning");
  auto q = parse(model, R"([{"op_names": ["fc1"], "target_names": ["_input_", "weight", "_output_"], "quant_dtype": "uint6"}])",
                 kQuantization);
  BOOST_TEST(target_names_of(q, "fc1") == (std::vector<std::string>{"_input_0", "weight", "_output_0"}));
  BOOST_TEST(!find(q, "fc1", "_input_0").settings.contains("sparse_ratio"));
  BOOST_TEST(find(q, "fc1", "weight").settings.at("quant_dtype") == "uint6");

  auto s = parse(model, R"([{"op_types": ["Linear"], "sparse_ratio": 0.8}])", kPruning);
  BOOST_TEST(find(s, "fc1", "weight").settings == with(pruning_weight_defaults(), "sparse_ratio", 0.8));
  BOOST_TEST(find(s, "fc1", "bias").settings == pruning_bias_defaults());
}

// §1.7's consequences and v1's test_torch_pruner_validation / test_torch_quantizer_validation.
BOOST_AUTO_TEST_CASE(item13_validation_rejects) {
  Linears model(2);
  struct Case {
    CompressorKind kind;
    const char* config;
    const char* path;
  };
  const Case cases[] = {
      {kPruning, R"([{"op_types": ["Linear"], "sparse_ratio": 1}])", "config[0].sparse_ratio"},
      {kPruning, R"([{"op_types": ["Linear"], "sparse_ratio": 0.5, "sparse_threshold": 0.5}])", "config[0].sparse_threshold"},
      {kQuantization, R"([{"op_types": ["Linear"], "quant_scheme": "per_tensor_affine"}])", "config[0].quant_scheme"},
      {kQuantization, R"([{"op_types": ["Linear"], "quant_dtype": "int"}])", "config[0].quant_dtype"},
      {kPruning, R"([{"op_types": ["Linear"], "granularity": [[1, 4], "front", 1]}])", "config[0].granularity[0]"},
      {kPruning, R"([{"op_types": ["Linear"], "fuse_names": [["fc1", "fc2"]]}])", "config[0].fuse_names"},
      {kPruning, R"([{"op_types": ["Linear"], "apply_method": "clamp_round"}])", "config[0].apply_method"},
      {kPruning, R"([{"op_types": ["Linear"], "internal_metric_block": "4"}])", "config[0].internal_metric_block"},
      {kPruning, R"([{"sparse_ratio": 0.5}])", "config[0]"},
      {kPruning, R"([{"op_types": ["Linear"], "sparsity": "0.2"}])", "config[0].sparsity"},
      {kPruning, R"([{"op_types": ["Linear"], "sparsity": 1.6}])", "config[0].sparsity"},
      {kPruning, R"([{"op_types": "default", "sparsity": 0.2}])", "config[0].op_types"},
      {kPruning, R"([{"op_names": "abc", "sparsity": 0.2}])", "config[0].op_names"},
      {kQuantization, R"([{"op_types": ["Linear"], "quant_types": ["weight"], "quant_bits": 8, "bad_key": 1}])", "config[0].bad_key"},
      {kQuantization, R"([{"op_types": ["Linear"], "quant_types": "abc", "quant_bits": 8}])", "config[0].quant_types"},
      {kQuantization, R"([{"op_types": ["Linear"], "quant_types": ["weight"], "quant_bits": 34}])", "config[0].quant_bits"},
      {kQuantization, R"([{"op_types": ["Linear"], "quant_types": ["weight"], "quant_bits": {"abc": 123}}])", "config[0].quant_bits.abc"},
  };
  for (const auto& c : cases) expect_rejected(model, c.config, c.kind, c.path);

  // An unregistered module type, with a message that says how to register it.
  WithThreeArgs custom;
  for (CompressorKind kind : {kPruning, kQuantization})
    expect_rejected(custom, R"([{"op_types": ["ThreeArgs"]}])", kind, "config[0]", "register_default_settings(");
  expect_rejected(*models::make_model("tiny_transformer"), R"([{"op_types": ["LayerNorm"], "sparse_ratio": 0.5}])",
                  kPruning, "config[0]", "module type 'LayerNorm' has no default pruning settings");
}

BOOST_AUTO_TEST_SUITE_END()
