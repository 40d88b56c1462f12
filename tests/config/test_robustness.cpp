// No crash on any input: truncated, deeply nested, wrongly typed and randomly mutated configs all
// end in a ConfigError (or a valid result), never in another exception.
#include <random>

#include "compression/config/explain.h"
#include "config_test_util.h"

using namespace shrink;
using namespace shrink::config_test;

namespace {
const char* const kValidConfigs[] = {
    R"([{"op_types": ["Linear"], "sparse_ratio": 0.8}])",
    R"([{"op_names": ["fc1", "fc2"], "target_names": ["weight", "bias"],
         "target_settings": {"weight": {"sparse_ratio": 0.8, "max_sparse_ratio": null, "granularity": [1, 4]},
                             "bias": {"align": {"target_name": "weight", "dims": [0]}, "apply_method": "mul"}}}])",
    R"([{"op_names_re": ["fc[12]"], "exclude_op_types": ["Conv2d"], "global_group_id": "g", "sparse_ratio": 0.5}])",
    R"([{"op_types": ["Conv2d", "Linear"]}, {"exclude": true, "op_names": ["fc2"]}])",
    R"([{"op_types": ["Linear"], "total_sparsity": 0.5, "max_sparsity_per_layer": 0.9}])",
    R"([{"op_types": ["Linear"], "quant_types": ["input", "weight"], "quant_bits": {"input": 8, "weight": 4}}])",
    R"([{"op_types": ["Linear"], "target_names": ["_input_", "_output_"], "quant_dtype": "uint8", "fuse_names": [["fc1", "relu1"]]}])",
    R"([{"op_names": ["fc1"], "lambda": 1, "link": ["fc1"], "apply_method": "kl"}])",
};

// Every way parse may end on hostile input: a result or a ConfigError.
void parse_anything(const nn::Module& model, const std::string& text) {
  for (CompressorKind kind : {kPruning, kQuantization, kDistillation}) {
    try {
      std::vector<std::string> warnings;
      auto targets = compression::config::parse_config_list_json(model, text, kind, &warnings);
      compression::config::explain_json_text(targets, warnings);  // and what explain prints of it
    } catch (const ConfigError&) {
    } catch (const std::exception& e) {
      BOOST_ERROR("not a ConfigError: " << e.what() << "\n  for " << text);
    }
  }
}

std::vector<json::value> odd_values() {
  return {nullptr, true, false, 0, 1, -1, 0.5, 1.5, -0.0, 1e300, "", "x", "default", "int8",
          json::array{}, json::array{1}, json::array{"fc1"}, json::array{json::array{"fc1", "fc2"}},
          json::object{}, json::object{{"weight", json::object{}}}, json::object{{"target_name", "weight"}, {"dims", 1}},
          18446744073709551615ull, -9223372036854775807ll - 1};
}

// Every key of both formats and all kinds, the align sub-keys, target names, and one unknown key.
const std::vector<std::string> kEveryKey = {
    "op_types", "op_names", "op_names_re", "exclude_op_names", "exclude_op_names_re", "exclude_op_types",
    "target_names", "target_settings", "sparse_ratio", "max_sparse_ratio", "min_sparse_ratio", "sparse_threshold",
    "global_group_id", "dependency_group_id", "granularity", "internal_metric_block", "apply_method", "align",
    "quant_dtype", "quant_scheme", "fuse_names", "lambda", "link", "exclude", "op_partial_names", "sparsity",
    "sparsity_per_layer", "total_sparsity", "max_sparsity_per_layer", "quant_types", "quant_bits", "quant_start_step",
    "module_name", "target_name", "dims", "weight", "bias", "_input_", "_output_0", "no_such_key"};

json::value nested_array(size_t depth) {
  json::value v = json::array{};
  for (size_t i = 0; i < depth; ++i) v = json::array{std::move(v)};
  return v;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(robustness)

BOOST_AUTO_TEST_CASE(truncated_json_is_an_error) {
  auto lenet = models::make_model("lenet5");
  for (const char* valid : kValidConfigs) {
    std::string text(valid);
    for (size_t n = 0; n < text.size(); ++n) {
      std::string prefix = text.substr(0, n);
      if (prefix.find_first_not_of(" \n") == std::string::npos && n > 0) continue;
      expect_config_error([&] { parse(*lenet, prefix, kPruning); }, "config", "invalid JSON");
    }
  }
  expect_config_error([&] { parse(*lenet, "[{'op_types': ['Linear'], 'sparse_ratio': 0.5}]", kPruning); }, "config",
                      "true/false/null");
  expect_config_error([&] { parse(*lenet, "[{\"op_types\": [\"Linear\"]}] trailing", kPruning); }, "config", "line 1");
  expect_config_error([&] { parse(*lenet, "[\n{\"op_types\": [\"Linear\"],\n \"sparse_ratio\": True}]", kPruning); },
                      "config", "line 3");
  expect_config_error([&] { parse(*lenet, std::string("[\"\xff\"]"), kPruning); }, "config", "invalid JSON");
  expect_config_error([&] { parse(*lenet, "", kPruning); }, "config", "invalid JSON");
}

BOOST_AUTO_TEST_CASE(deeply_nested_json_is_an_error) {
  auto lenet = models::make_model("lenet5");
  expect_config_error([&] { parse(*lenet, std::string(100000, '['), kPruning); }, "config", "invalid JSON");
  expect_config_error([&] { parse(*lenet, std::string(50, '[') + std::string(50, ']'), kPruning); }, "config[0]",
                      "an array");
  // Values built in memory, deeper than any parser would allow, in every nested position.
  const json::value deep = nested_array(5000);
  auto config_with = [&](const std::string& key) {
    json::object sub{{"op_types", json::array{"Linear"}}};
    sub[key] = deep;
    return json::value(json::array{sub});
  };
  for (const char* key : {"op_names", "op_names_re", "target_names", "target_settings", "granularity", "align", "sparse_ratio"}) {
    BOOST_TEST_CONTEXT(key) {
      BOOST_CHECK_THROW(compression::config::parse_config_list(*lenet, config_with(key), kPruning), ConfigError);
    }
  }
  json::value in_align = json::parse(R"([{"op_types": ["Linear"], "target_settings": {"bias": {"align": {"target_name": "weight", "dims": [0]}}}}])");
  in_align.as_array()[0].as_object()["target_settings"].as_object()["bias"].as_object()["align"].as_object()["dims"] = deep;
  expect_config_error([&] { compression::config::parse_config_list(*lenet, in_align, kPruning); },
                      "config[0].target_settings.bias.align.dims[0]", "integer dimension");
  expect_config_error([&] { compression::config::parse_config_list(*lenet, json::array{deep}, kPruning); }, "config[0]",
                      "an array");
  expect_config_error([&] { compression::config::parse_config_list(*lenet, deep, kPruning); }, "config[0]", "");
}

BOOST_AUTO_TEST_CASE(wrongly_typed_values_for_every_key_are_errors_or_valid) {
  auto lenet = models::make_model("lenet5");
  for (const auto& key : kEveryKey)
    for (const auto& value : odd_values()) {
      json::object sub{{"op_names", json::array{"fc1", "conv1"}}};
      sub[key] = value;
      parse_anything(*lenet, json::serialize(json::array{sub}));
      json::object nested{{"op_names", json::array{"fc1"}}, {"target_settings", json::object{{"weight", json::object{{key, value}}}}}};
      parse_anything(*lenet, json::serialize(json::array{nested}));
    }
  // Whole configs of the wrong shape.
  for (const auto& value : odd_values()) {
    parse_anything(*lenet, json::serialize(value));
    parse_anything(*lenet, json::serialize(json::array{value}));
  }
}

BOOST_AUTO_TEST_CASE(randomly_mutated_configs_are_errors_or_valid) {
  auto lenet = models::make_model("lenet5");
  std::mt19937 rng(20240611);
  const std::vector<json::value> values = odd_values();
  auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  for (int iteration = 0; iteration < 4000; ++iteration) {
    json::value config = json::parse(kValidConfigs[pick(std::size(kValidConfigs))]);
    // Walk to a random object or array inside and change one thing there.
    json::value* node = &config;
    for (size_t depth = pick(5); depth > 0; --depth) {
      if (node->is_array() && !node->get_array().empty()) node = &node->get_array()[pick(node->get_array().size())];
      else if (node->is_object() && !node->get_object().empty()) node = &(node->get_object().begin() + pick(node->get_object().size()))->value();
    }
    if (json::object* o = node->if_object(); o && !o->empty()) {
      auto it = o->begin() + pick(o->size());
      switch (pick(3)) {
        case 0: it->value() = values[pick(values.size())]; break;
        case 1: o->erase(it); break;
        default: (*o)[kEveryKey[pick(kEveryKey.size())]] = values[pick(values.size())]; break;
      }
    } else if (json::array* a = node->if_array(); a && !a->empty()) {
      (*a)[pick(a->size())] = values[pick(values.size())];
    } else {
      *node = values[pick(values.size())];
    }
    parse_anything(*lenet, json::serialize(config));
  }
  // Random bytes.
  const std::string alphabet = "[]{}\",:0123456789.eE-+truefalsnl \\\xc3\xa9";
  for (int iteration = 0; iteration < 300; ++iteration) {
    std::string text;
    for (size_t n = pick(40); n > 0; --n) text += alphabet[pick(alphabet.size())];
    parse_anything(*lenet, text);
  }
}

BOOST_AUTO_TEST_CASE(pathological_regular_expressions_are_errors) {
  auto lenet = models::make_model("lenet5");
  expect_rejected(*lenet, R"([{"op_names_re": ["(?P<n>fc"]}])", kPruning, "config[0].op_names_re[0]", "invalid regular expression");
  expect_rejected(*lenet, R"([{"op_names_re": ["\\"]}])", kPruning, "config[0].op_names_re[0]", "invalid regular expression");
  // Catastrophic backtracking either finishes or is reported at the pattern.
  try {
    parse(*lenet, R"json([{"op_names_re": ["(a*)*b", "((x+x+)+y)"]}])json", kPruning);
  } catch (const ConfigError& e) {
    BOOST_TEST(std::string(e.what()).find("config[0].op_names_re") == 0u);
  }
}

BOOST_AUTO_TEST_SUITE_END()
