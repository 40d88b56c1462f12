// The default-settings registry (nni-semantics.md §1.5): built-in entries per compressor kind and
// module type, registration of user types (checked like a config), and the unregistered-type error.
#include "config_test_util.h"

using namespace shrink;
using namespace shrink::config_test;
using compression::config::find_default_settings;
using compression::config::generic_target_settings;
using compression::config::register_default_settings;
using compression::config::registered_module_types;
using compression::config::registration_hint;
using compression::config::unregister_default_settings;

namespace {
std::vector<std::string> targets_of(CompressorKind kind, const std::string& type) {
  std::vector<std::string> out;
  auto found = find_default_settings(kind, type);
  if (found)
    for (const auto& kv : *found) out.emplace_back(kv.key());
  return out;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(registry)

BOOST_AUTO_TEST_CASE(built_in_pruning_settings) {
  for (const char* type : {"Linear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
                           "BatchNorm1d", "BatchNorm2d", "BatchNorm3d"}) {
    BOOST_TEST(targets_of(kPruning, type) == (std::vector<std::string>{"weight", "bias"}), type);
    auto found = find_default_settings(kPruning, type);
    BOOST_TEST(found->at("weight").as_object() == pruning_weight_defaults());
    // bias follows the weight's dim 0 (masked where the whole weight row is).
    BOOST_TEST(found->at("bias").as_object().at("align") ==
               obj(R"({"module_name": null, "target_name": "weight", "dims": [0]})"));
  }
  BOOST_TEST(targets_of(kPruning, "Embedding") == (std::vector<std::string>{"weight"}));
  for (const char* type : {"LayerNorm", "MultiheadAttention", "ReLU", "Sequential"})
    BOOST_TEST(!find_default_settings(kPruning, type).has_value(), type);
}

BOOST_AUTO_TEST_CASE(built_in_quantization_and_distillation_settings) {
  for (const char* type : {"Linear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose2d", "BatchNorm1d", "BatchNorm2d"})
    BOOST_TEST(targets_of(kQuantization, type) == (std::vector<std::string>{"_input_", "weight", "bias", "_output_"}), type);
  for (const char* type : {"ReLU", "ReLU6", "Hardtanh", "MaxPool2d"})
    BOOST_TEST(targets_of(kQuantization, type) == (std::vector<std::string>{"_input_", "_output_"}), type);
  for (const char* type : {"BatchNorm3d", "Embedding", "LayerNorm", "GELU", "Softmax"})
    BOOST_TEST(!find_default_settings(kQuantization, type).has_value(), type);
  // Distillation takes any module type.
  BOOST_TEST(targets_of(kDistillation, "AnythingAtAll") == (std::vector<std::string>{"_output_"}));
  BOOST_TEST(registered_module_types(kDistillation).empty());
}

BOOST_AUTO_TEST_CASE(registering_a_module_type) {
  auto tt = models::make_model("tiny_transformer");
  const std::string config = R"([{"op_types": ["LayerNorm"], "sparse_ratio": 0.5, "granularity": "out_channel"}])";
  expect_rejected(*tt, config, kPruning, "config[0]", "'layers.0.norm1'");
  register_default_settings(kPruning, "LayerNorm", {{"weight", generic_target_settings(kPruning)}});
  auto t = parse(*tt, config, kPruning);
  BOOST_TEST(t.size() == 4u);  // norm1, norm2 of two layers, weight only
  json::object expected = pruning_weight_defaults();
  expected["sparse_ratio"] = 0.5;
  expected["granularity"] = "out_channel";
  BOOST_TEST(find(t, "layers.1.norm2", "weight").settings == expected);
  // Registering again replaces the entry; unregistering restores the error.
  register_default_settings(kPruning, "LayerNorm", obj(R"({"bias": {"apply_method": "add"}})"));
  BOOST_TEST(target_names_of(parse(*tt, config, kPruning), "layers.0.norm1") == (std::vector<std::string>{"bias"}));
  BOOST_TEST(unregister_default_settings(kPruning, "LayerNorm"));
  BOOST_TEST(!unregister_default_settings(kPruning, "LayerNorm"));
  expect_rejected(*tt, config, kPruning, "config[0]", "has no default pruning settings");

  // A distillation registration overrides the automatic one.
  register_default_settings(kDistillation, "Linear", obj(R"({"_output_": {"lambda": 0.1, "link": null, "apply_method": "kl"}})"));
  auto d = parse(*tt, R"([{"op_names": ["head"]}])", kDistillation);
  BOOST_TEST(find(d, "head", "_output_0").settings == obj(R"({"lambda": 0.1, "link": ["head"], "apply_method": "kl"})"));
  unregister_default_settings(kDistillation, "Linear");
}

BOOST_AUTO_TEST_CASE(registrations_are_checked) {
  const std::string at = "register_default_settings(pruning, 'Gate')";
  expect_config_error([&] { register_default_settings(kPruning, "Gate", obj(R"({"weight": {"quant_dtype": "int8"}})")); },
                      at + ".weight.quant_dtype", "not a pruning setting");
  expect_config_error([&] { register_default_settings(kPruning, "Gate", obj(R"({"weight": {"sparse_ratio": 2.0}})")); },
                      at + ".weight.sparse_ratio", "[0.0, 1.0]");
  expect_config_error([&] { register_default_settings(kPruning, "Gate", obj(R"({"a.b": {}})")); }, at + ".a.b",
                      "not a target name");
  expect_config_error([&] { register_default_settings(kPruning, "Gate", obj(R"({"weight": 1})")); }, at + ".weight",
                      "an object");
  expect_config_error([&] { register_default_settings(kPruning, "", json::object{}); }, "register_default_settings(pruning, '')",
                      "empty");
  BOOST_TEST(!find_default_settings(kPruning, "Gate").has_value());
  // A registered template naming a target the module lacks fails when the module is selected.
  register_default_settings(kPruning, "ReLU", obj(R"({"gamma": {"apply_method": "mul"}})"));
  expect_rejected(*models::make_model("mlp"), R"([{"op_types": ["ReLU"]}])", kPruning,
                  "config[0] (default pruning settings of ReLU)", "has no target 'gamma'");
  unregister_default_settings(kPruning, "ReLU");
}

BOOST_AUTO_TEST_CASE(the_unregistered_type_error_says_how_to_register) {
  std::string hint = registration_hint(kQuantization, "Softmax");
  for (const char* part : {"'Softmax'", "register_default_settings(CompressorKind::Quantization, \"Softmax\"",
                           "exclude", "registered types:", "Linear"})
    BOOST_TEST(hint.find(part) != std::string::npos, hint << " lacks " << part);
  auto tt = models::make_model("tiny_transformer");
  expect_rejected(*tt, R"([{"op_types": ["MultiheadAttention"], "quant_dtype": "int8"}])", kQuantization, "config[0]",
                  "selects 'layers.0.attn': module type 'MultiheadAttention' has no default quantization settings");
}

BOOST_AUTO_TEST_SUITE_END()
