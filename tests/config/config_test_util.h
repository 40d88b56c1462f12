// Shared pieces of the config-spec tests: small purpose-built models (the spec's example model, a
// module with named arguments x, y, z returning a dict, a custom unregistered type), a parse
// helper, lookups into the resulting TargetSpaces, and an error check that compares the path.
#pragma once
#include <boost/test/unit_test.hpp>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "compression/config/config_list.h"
#include "compression/config/settings.h"
#include "framework/shrink.h"
#include "models/zoo.h"

namespace shrink::config_test {

namespace json = boost::json;
using compression::config::CompressorKind;
using compression::config::ConfigError;
using compression::config::TargetKind;
using compression::config::TargetSpace;
constexpr CompressorKind kPruning = CompressorKind::Pruning;
constexpr CompressorKind kQuantization = CompressorKind::Quantization;
constexpr CompressorKind kDistillation = CompressorKind::Distillation;

// The model of config-spec-v3.rst's Examples section: conv1, conv2, dropout1, dropout2, fc1, fc2.
class SpecExampleModel : public nn::Module {
 public:
  SpecExampleModel() {
    conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(1, 32, 3, 1));
    conv2 = register_module("conv2", std::make_shared<nn::Conv2d>(32, 64, 3, 1));
    dropout1 = register_module("dropout1", std::make_shared<nn::Dropout>(0.25f));
    dropout2 = register_module("dropout2", std::make_shared<nn::Dropout>(0.5f));
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(9216, 128));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(128, 10));
  }
  std::string type_name() const override { return "Model"; }
  std::shared_ptr<nn::Conv2d> conv1, conv2;
  std::shared_ptr<nn::Dropout> dropout1, dropout2;
  std::shared_ptr<nn::Linear> fc1, fc2;

 protected:
  nn::Value forward(const std::vector<nn::Value>& in) override {
    Tensor x = relu((*conv2)(relu((*conv1)(input_tensor(in, 0)))));
    x = (*dropout1)(flatten(max_pool2d(x, 2, 2, 0), 1));
    return (*fc2)((*dropout2)(relu((*fc1)(x))));
  }
};

// `count` Linear layers fc1..fc<count> (the spec's two- and three-Linear examples).
class Linears : public nn::Module {
 public:
  explicit Linears(int count) {
    for (int i = 1; i <= count; ++i)
      layers.push_back(register_module("fc" + std::to_string(i), std::make_shared<nn::Linear>(8, 8)));
  }
  std::string type_name() const override { return "Linears"; }
  std::vector<std::shared_ptr<nn::Linear>> layers;

 protected:
  nn::Value forward(const std::vector<nn::Value>& in) override {
    Tensor x = input_tensor(in, 0);
    for (auto& l : layers) x = (*l)(x);
    return x;
  }
};

// forward(x, y, z) returning {"sum": x + y + z, "prod": x * y}; type "ThreeArgs", unregistered.
class ThreeArgs : public nn::Module {
 public:
  ThreeArgs() {
    register_parameter("scale", Tensor::ones({4}));
    register_buffer("running", Tensor::zeros({4}));
  }
  std::string type_name() const override { return "ThreeArgs"; }
  std::vector<std::string> arg_names() const override { return {"x", "y", "z"}; }

 protected:
  nn::Value forward(const std::vector<nn::Value>& in) override {
    const Tensor &x = input_tensor(in, 0), &y = input_tensor(in, 1), &z = input_tensor(in, 2);
    return nn::Value::dict({{"sum", add(add(x, y), z)}, {"prod", mul(mul(x, y), param("scale"))}});
  }
};

// A container holding a ThreeArgs "block" and a Linear "head".
class WithThreeArgs : public nn::Module {
 public:
  WithThreeArgs() {
    block = register_module("block", std::make_shared<ThreeArgs>());
    head = register_module("head", std::make_shared<nn::Linear>(4, 2));
  }
  std::string type_name() const override { return "WithThreeArgs"; }
  std::shared_ptr<ThreeArgs> block;
  std::shared_ptr<nn::Linear> head;

 protected:
  nn::Value forward(const std::vector<nn::Value>& in) override {
    const Tensor& x = input_tensor(in, 0);
    return (*head)(block->operator()({x, x, x}).at("sum").tensor());
  }
};

inline std::vector<TargetSpace> parse(const nn::Module& model, const std::string& text, CompressorKind kind,
                                      std::vector<std::string>* warnings = nullptr) {
  return compression::config::parse_config_list_json(model, text, kind, warnings);
}

// The target space for (module, target); fails the test when absent.
inline const TargetSpace& find(const std::vector<TargetSpace>& targets, const std::string& module,
                               const std::string& target) {
  for (const auto& t : targets)
    if (t.module_name == module && t.target_name == target) return t;
  BOOST_FAIL("no target '" + target + "' of '" + module + "'");
  throw std::logic_error("unreachable");
}

inline bool has(const std::vector<TargetSpace>& targets, const std::string& module, const std::string& target) {
  for (const auto& t : targets)
    if (t.module_name == module && t.target_name == target) return true;
  return false;
}

inline std::set<std::string> modules_of(const std::vector<TargetSpace>& targets) {
  std::set<std::string> out;
  for (const auto& t : targets) out.insert(t.module_name);
  return out;
}

inline std::vector<std::string> target_names_of(const std::vector<TargetSpace>& targets, const std::string& module) {
  std::vector<std::string> out;
  for (const auto& t : targets)
    if (t.module_name == module) out.push_back(t.target_name);
  return out;
}

inline json::object obj(const std::string& text) { return json::parse(text).as_object(); }

// Runs `f`, which must throw ConfigError at `path` with a message containing `fragment`.
inline void expect_config_error(const std::function<void()>& f, const std::string& path,
                                const std::string& fragment = "") {
  try {
    f();
  } catch (const ConfigError& e) {
    BOOST_TEST(e.path() == path, "error path: got '" << e.path() << "' want '" << path << "' (" << e.what() << ")");
    BOOST_TEST(std::string(e.what()).rfind(path + ": ", 0) == 0, e.what());
    BOOST_TEST(std::string(e.what()).find(fragment) != std::string::npos,
               "message '" << e.what() << "' lacks '" << fragment << "'");
    return;
  } catch (const std::exception& e) {
    BOOST_FAIL("expected ConfigError at " + path + ", got another exception: " + e.what());
  }
  BOOST_FAIL("expected ConfigError at " + path + ", nothing was thrown");
}

// parse() of `text` on `model` must fail at `path` with `fragment` in the message.
inline void expect_rejected(const nn::Module& model, const std::string& text, CompressorKind kind,
                            const std::string& path, const std::string& fragment = "") {
  BOOST_TEST_CONTEXT("config " << text) {
    expect_config_error([&] { parse(model, text, kind); }, path, fragment);
  }
}

// Every key of the pruning weight template with its default, as the spec's standard_config.
inline json::object pruning_weight_defaults() {
  return obj(R"({"sparse_ratio": null, "max_sparse_ratio": null, "min_sparse_ratio": null,
                 "sparse_threshold": null, "global_group_id": null, "dependency_group_id": null,
                 "granularity": "default", "internal_metric_block": null, "apply_method": "mul"})");
}
inline json::object pruning_bias_defaults() {
  return obj(R"({"align": {"module_name": null, "target_name": "weight", "dims": [0]}, "apply_method": "mul"})");
}
inline json::object quantization_defaults() {
  return obj(R"({"quant_dtype": "int8", "quant_scheme": null, "granularity": "default", "apply_method": "clamp_round"})");
}

inline json::object with(json::object base, const std::string& key, json::value value) {
  base[key] = std::move(value);
  return base;
}

}  // namespace shrink::config_test
