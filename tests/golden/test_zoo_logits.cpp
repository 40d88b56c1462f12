// End-to-end golden test: weights trained in PyTorch load into shrink through safetensors and
// reproduce PyTorch's logits for every zoo model.
//
// The fixtures tests/data/zoo_<model>.safetensors.gz are made by tests/data/make_zoo_fixture.py
// (run with /usr/bin/python3) from the PyTorch twins in tests/data/torch_zoo.py. Each holds,
// gzip-compressed, a safetensors file with
//   <param>.__level (I8) and <param>.__scale (F32 []) for every float parameter; the weight is
//                   float32(level) * scale, multiplied in float32 on both sides so shrink and
//                   PyTorch see bit-identical weights;
//   <buffer>        every buffer as-is (running_mean / running_var F32, num_batches_tracked I64);
//   __input         F32 [3, 1, 28, 28], a fixed N(0, 1) batch;
//   __logits        F32 [3, 10], PyTorch's float32 eval-mode output for __input.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "framework/data/fashion_mnist.h"
#include "framework/io/safetensors.h"
#include "framework/shrink.h"
#include "models/zoo.h"

using namespace shrink;

namespace {

// Why 1e-4: both sides compute in float32 from bit-identical weights and inputs, so they differ
// only in rounding: summation order in dot products (PyTorch's blocked GEMM/conv kernels vs
// shrink's) and library exp/erf/sqrt. End to end the logits depend on ~1e5-term chains of
// multiply-adds (784-term MLP dot products feeding 256-term ones, 3x3x128 conv windows through
// six conv layers, twenty residual conv layers); float32 round-off there is ~sqrt(n) * 6e-8 times
// the partial sums, i.e. 1e-6..1e-5 on logits of magnitude up to ~10 (resnet20's). The fixture
// script measures float32 PyTorch vs float64 PyTorch at <= 3e-6, and shrink vs PyTorch comes out
// <= 1e-6. 1e-4 leaves an order of magnitude of headroom over that noise, while real math
// differences move some logit by far more (measured on these fixtures in PyTorch: batch instead
// of running statistics in eval 0.9-7.8, BatchNorm eps 1e-3 instead of 1e-5 0.02-0.19, a
// transposed attention projection 4e-3, 2 attention heads instead of 4 9e-3, transposed image /
// patch order 0.02-0.1, flipped conv kernels 0.02, one MLP weight matrix scaled by 1.001 3e-4).
// Too small to see at this tolerance: LayerNorm eps 1e-6 vs 1e-5 (2e-6) and tanh- vs erf-GELU
// (5e-5; tests/core/test_tensor.cpp pins gelu's erf form).
constexpr double kLogitTol = 1e-4;

const std::string kLevelSuffix = ".__level";
const std::string kScaleSuffix = ".__scale";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string join_keys(const std::set<std::string>& keys) {
  std::ostringstream os;
  for (const auto& k : keys) os << (os.tellp() > 0 ? ", " : "") << k;
  return os.str();
}

struct Fixture {
  std::map<std::string, Tensor> state;  // parameters (dequantised) and buffers, by dotted name
  std::set<std::string> param_names, buffer_names;
  Tensor input, logits;
};

Fixture load_fixture(const std::string& model) {
  const std::string path = std::string(SHRINK_TEST_DATA_DIR) + "/zoo_" + model + ".safetensors.gz";
  io::SafetensorsFile file = io::parse_safetensors(data::read_gzip_file(path), path);
  std::map<std::string, Tensor> raw(file.tensors.begin(), file.tensors.end());
  BOOST_REQUIRE_EQUAL(raw.size(), file.tensors.size());  // no duplicate names
  auto meta = file.metadata.find("model");
  BOOST_REQUIRE(meta != file.metadata.end());
  BOOST_REQUIRE_EQUAL(meta->second, model);

  Fixture fx;
  for (const auto& [name, t] : raw) {
    if (name == "__input") {
      fx.input = t;
    } else if (name == "__logits") {
      fx.logits = t;
    } else if (ends_with(name, kLevelSuffix)) {
      const std::string pname = name.substr(0, name.size() - kLevelSuffix.size());
      auto s = raw.find(pname + kScaleSuffix);
      BOOST_REQUIRE_MESSAGE(s != raw.end(), path << ": " << name << " has no " << kScaleSuffix);
      BOOST_REQUIRE_MESSAGE(t.dtype() == DType::I8, name << " is " << t.describe());
      BOOST_REQUIRE_MESSAGE(s->second.dtype() == DType::F32 && s->second.dim() == 0,
                            s->first << " is " << s->second.describe());
      const float scale = s->second.item();
      Tensor w = Tensor::empty(t.shape());
      const int8_t* level = t.data<int8_t>();
      float* out = w.data<float>();
      for (int64_t i = 0; i < t.numel(); ++i) out[i] = static_cast<float>(level[i]) * scale;
      fx.state[pname] = w;
      fx.param_names.insert(pname);
    } else if (ends_with(name, kScaleSuffix)) {
      const std::string pname = name.substr(0, name.size() - kScaleSuffix.size());
      BOOST_REQUIRE_MESSAGE(raw.count(pname + kLevelSuffix), path << ": " << name << " has no "
                                                                  << kLevelSuffix);
    } else {
      fx.state[name] = t;
      fx.buffer_names.insert(name);
    }
  }
  BOOST_REQUIRE_MESSAGE(fx.input.defined() && fx.logits.defined(), path << ": no __input/__logits");
  BOOST_REQUIRE_MESSAGE(fx.input.shape() == (Shape{3, 1, 28, 28}), "__input is " << fx.input.describe());
  BOOST_REQUIRE_MESSAGE(fx.logits.shape() == (Shape{3, 10}), "__logits is " << fx.logits.describe());
  return fx;
}

void check_model(const std::string& name) {
  BOOST_TEST_MESSAGE("model " << name);
  Fixture fx = load_fixture(name);
  std::shared_ptr<nn::Module> model = models::make_model(name);

  // Names must match PyTorch's exactly, split the same way into parameters and buffers.
  std::set<std::string> params, buffers, own_keys, fixture_keys;
  for (const auto& [n, p] : model->named_parameters()) params.insert(n);
  for (const auto& [n, b] : model->named_buffers()) buffers.insert(n);
  for (const auto& [n, t] : model->state_dict()) own_keys.insert(n);
  for (const auto& [n, t] : fx.state) fixture_keys.insert(n);
  BOOST_CHECK_MESSAGE(own_keys == fixture_keys, name << ": state_dict keys differ from PyTorch's\n  shrink:  "
                                                     << join_keys(own_keys) << "\n  pytorch: "
                                                     << join_keys(fixture_keys));
  BOOST_CHECK_MESSAGE(params == fx.param_names, name << ": parameter names differ from PyTorch's");
  BOOST_CHECK_MESSAGE(buffers == fx.buffer_names, name << ": buffer names differ from PyTorch's");

  // Dtypes must match too (load_state_dict checks names and shapes only).
  for (const auto& [n, t] : model->state_dict()) {
    auto it = fx.state.find(n);
    if (it != fx.state.end())
      BOOST_CHECK_MESSAGE(it->second.dtype() == t.dtype(),
                          name << ": " << n << " is " << t.dtype() << " in shrink but "
                               << it->second.dtype() << " in the fixture");
  }

  model->load_state_dict(fx.state, /*strict=*/true);
  // The values really landed, bit for bit (compare as floats; I64 counters via to_vector_i64).
  for (const auto& [n, t] : model->state_dict()) {
    const Tensor& want = fx.state.at(n);
    if (t.dtype() == DType::F32) {
      BOOST_CHECK_MESSAGE(t.to_vector() == want.to_vector(), name << ": " << n << " not loaded exactly");
    } else {
      BOOST_CHECK_MESSAGE(t.to_vector_i64() == want.to_vector_i64(), name << ": " << n << " not loaded exactly");
    }
  }

  model->eval();
  Tensor out;
  {
    NoGradGuard ng;
    out = (*model)(fx.input);
  }
  BOOST_REQUIRE_MESSAGE(out.shape() == fx.logits.shape(), name << ": output is " << out.describe());
  const std::vector<float> got = out.to_vector(), want = fx.logits.to_vector();
  double max_err = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
    max_err = std::max(max_err, std::isnan(err) ? INFINITY : err);
    BOOST_CHECK_MESSAGE(err <= kLogitTol, name << " logit [" << i / 10 << ", " << i % 10 << "]: shrink "
                                               << got[i] << ", pytorch " << want[i] << " (|diff| "
                                               << err << ")");
  }
  BOOST_TEST_MESSAGE(name << ": max |shrink - pytorch| logit error " << max_err);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(zoo_logits)

BOOST_AUTO_TEST_CASE(mlp) { check_model("mlp"); }
BOOST_AUTO_TEST_CASE(lenet5) { check_model("lenet5"); }
BOOST_AUTO_TEST_CASE(vgg_small) { check_model("vgg_small"); }
BOOST_AUTO_TEST_CASE(resnet20) { check_model("resnet20"); }
BOOST_AUTO_TEST_CASE(tiny_transformer) { check_model("tiny_transformer"); }

BOOST_AUTO_TEST_CASE(covers_every_zoo_model) {
  // A model added to the zoo needs a fixture (and a test case above).
  std::vector<std::string> names = models::model_names();
  BOOST_CHECK_EQUAL(names.size(), 5u);
  for (const auto& n : {"mlp", "lenet5", "vgg_small", "resnet20", "tiny_transformer"})
    BOOST_CHECK(std::find(names.begin(), names.end(), n) != names.end());
}

BOOST_AUTO_TEST_SUITE_END()
