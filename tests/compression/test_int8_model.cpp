// Int8Model (compression/quantization/int8_model.h): a model calibrated by PTQ, run with the
// integer kernels, against the same model fake-quantized by the quantizer itself — the reference
// the conversion must reproduce (up to float rounding of the sums, which can move a requantized
// value by one step of its grid).
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <filesystem>
#include <unistd.h>

#include "compression/cli_run.h"
#include "compression/quantization/calibration_io.h"
#include "compression/quantization/int8_model.h"
#include "compression/quantization/ptq_quantizer.h"
#include "compression/quantization/quantizer_factory.h"
#include "framework/core/autograd.h"
#include "framework/io/safetensors.h"
#include "framework/shrink.h"
#include "models/zoo.h"

using namespace shrink;
using namespace shrink::compression;

namespace {

// Batch norms with statistics of their own (fresh ones are the identity, which folds trivially).
void randomize_norms(nn::Module& model) {
  for (auto& [name, m] : model.named_modules())
    if (m->type_name() == "BatchNorm2d" || m->type_name() == "BatchNorm1d") {
      const int64_t c = m->buffer("running_mean").numel();
      m->buffer("running_mean").copy_(mul(randn({c}), 0.2f));
      m->buffer("running_var").copy_(add(rand({c}), 0.5f));
      m->parameter("weight").copy_(add(rand({c}), 0.5f));
      m->parameter("bias").copy_(mul(randn({c}), 0.2f));
    }
}

Shape input_shape(const std::string&) { return Shape{8, 1, 28, 28}; }

struct Compared {
  float max_diff = 0.f, output_range = 0.f;
  double argmax_agree = 0.0;
  Int8Report report;
};

Compared compare(const std::string& model_name, const std::string& config) {
  manual_seed(5);
  auto model = models::make_model(model_name);
  randomize_norms(*model);
  model->eval();
  const Tensor x = randn(input_shape(model_name));
  Tensor fq;
  CalibrationConfig calibration;
  {
    PtqQuantizer q(model, boost::json::parse(config));
    for (int i = 0; i < 3; ++i) q.calibrate({nn::Value(randn(input_shape(model_name)))});
    q.calibrate({nn::Value(x)});
    calibration = q.finish_calibration();
    NoGradGuard ng;
    fq = (*model)(x);
  }
  Compared c;
  NoGradGuard ng;
  const Tensor fl = (*model)(x);  // the quantizer is gone: float again
  {
    Int8Model int8(*model, calibration, {nn::Value(x)});
    c.report = int8.report();
    const Tensor got = (*model)(x);
    c.max_diff = max(abs(sub(got, fq))).item();
    c.output_range = max(abs(fq)).item();
    const std::vector<int64_t> a = argmax(got, 1).to_vector_i64(), b = argmax(fq, 1).to_vector_i64();
    for (size_t i = 0; i < a.size(); ++i) c.argmax_agree += a[i] == b[i];
    c.argmax_agree /= static_cast<double>(a.size());
  }
  // Destroying the Int8Model restores the float model exactly.
  BOOST_CHECK_EQUAL(max(abs(sub((*model)(x), fl))).item(), 0.f);
  return c;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

const char* kWeightsAndInputs = R"([{"op_types": ["Conv2d", "Linear"], "target_names": ["weight", "_input_"],
    "quant_dtype": "int8", "target_settings": {"weight": {"granularity": "out_channel"}}}])";

}  // namespace

BOOST_AUTO_TEST_SUITE(int8_model)

BOOST_AUTO_TEST_CASE(every_zoo_cnn_runs_int8_as_its_fake_quantized_self) {
  for (const std::string name : {"mlp", "lenet5", "vgg_small", "resnet20"}) {
    const Compared c = compare(name, kWeightsAndInputs);
    BOOST_TEST_MESSAGE(name << ": " << c.report.converted.size() << " int8 layers, " << c.report.folded.size()
                            << " folded, max |int8 - fake-quant| " << c.max_diff << " of " << c.output_range);
    BOOST_CHECK_MESSAGE(c.report.kept_float.empty(),
                        name << ": kept float: " << (c.report.kept_float.empty() ? "" : c.report.kept_float[0].first));
    BOOST_CHECK_LT(c.max_diff, 2e-3f * std::max(1.f, c.output_range));
    BOOST_CHECK_EQUAL(c.argmax_agree, 1.0);
  }
}

BOOST_AUTO_TEST_CASE(batch_norms_and_relus_fold_where_they_alone_follow_a_layer) {
  const Compared vgg = compare("vgg_small", kWeightsAndInputs);
  BOOST_CHECK(contains(vgg.report.folded, "features.bn1"));
  BOOST_CHECK(contains(vgg.report.folded, "features.relu1"));
  // A residual block's ReLU module runs twice per forward: it stays a module of its own. The
  // batch norm before the shortcut's sum still folds into its convolution; the stem's ReLU runs
  // once and folds.
  const Compared res = compare("resnet20", kWeightsAndInputs);
  BOOST_CHECK(contains(res.report.folded, "bn1"));
  BOOST_CHECK(contains(res.report.folded, "relu"));
  BOOST_CHECK(contains(res.report.folded, "layer1.0.bn1"));
  BOOST_CHECK(contains(res.report.folded, "layer1.0.bn2"));
  BOOST_CHECK(!contains(res.report.folded, "layer1.0.relu"));
}

BOOST_AUTO_TEST_CASE(layers_hand_bytes_to_the_int8_layer_they_alone_feed) {
  using Link = std::pair<std::string, std::string>;
  auto linked = [](const Int8Report& r, const Link& l) {
    return std::find(r.linked.begin(), r.linked.end(), l) != r.linked.end();
  };
  const Compared vgg = compare("vgg_small", kWeightsAndInputs);
  BOOST_CHECK(linked(vgg.report, {"features.conv1", "features.conv2"}));
  BOOST_CHECK(linked(vgg.report, {"features.conv2", "features.conv3"}));  // through a max pooling
  BOOST_CHECK(linked(vgg.report, {"classifier.fc1", "classifier.fc2"}));  // Linear rows, through its ReLU
  BOOST_CHECK_EQUAL(vgg.report.linked.size(), 6u);  // conv6 feeds the flatten: floats
  // Inside a residual block, through the block's ReLU module (which also runs after the sum, in
  // float). The block's second convolution meets the shortcut: floats.
  const Compared res = compare("resnet20", kWeightsAndInputs);
  BOOST_CHECK(linked(res.report, {"layer1.0.conv1", "layer1.0.conv2"}));
  BOOST_CHECK(!linked(res.report, {"layer1.0.conv2", "layer1.1.conv1"}));
  BOOST_CHECK_EQUAL(res.report.linked.size(), 9u);
  // Linear layers: lenet5's fc1 -> fc2 -> fc3, each through a folded ReLU; its convolutions stop at
  // the flatten.
  const Compared le = compare("lenet5", kWeightsAndInputs);
  BOOST_CHECK(le.report.linked == (std::vector<Link>{{"conv1", "conv2"}, {"fc1", "fc2"}, {"fc2", "fc3"}}));
}

BOOST_AUTO_TEST_CASE(requantized_outputs_and_per_tensor_weights) {
  // Per-tensor weights, uint8 affine inputs, and an _output_ grid requantized in the epilogue.
  const Compared c = compare("lenet5", R"([{"op_types": ["Conv2d", "Linear"], "target_names": ["weight"],
      "quant_dtype": "int8"}, {"op_types": ["Conv2d", "Linear"], "target_names": ["_input_", "_output_"],
      "quant_dtype": "uint8", "quant_scheme": "affine"}])");
  BOOST_CHECK_EQUAL(c.report.converted.size(), 5u);
  // An output on the boundary of two grid steps may round the other way: at most one step.
  BOOST_CHECK_LT(c.max_diff, 0.05f * std::max(1.f, c.output_range));
  BOOST_CHECK_GE(c.argmax_agree, 0.875);
}

BOOST_AUTO_TEST_CASE(layers_that_cannot_run_int8_say_why) {
  const Compared c = compare("lenet5", R"([{"op_names": ["conv1", "conv2"], "target_names": ["weight", "_input_"],
      "quant_dtype": "int8"}, {"op_names": ["fc1"], "target_names": ["weight"], "quant_dtype": "int8"},
      {"op_names": ["fc2"], "target_names": ["weight", "_input_"], "quant_dtype": "int16"}])");
  std::map<std::string, std::string> why(c.report.kept_float.begin(), c.report.kept_float.end());
  BOOST_CHECK(contains(c.report.converted, "conv1"));
  BOOST_CHECK_EQUAL(why.count("fc1"), 1u);
  BOOST_CHECK_EQUAL(why["fc1"], "no _input_0 calibration");
  BOOST_CHECK_MESSAGE(why["fc2"].find("does not fit in int8") != std::string::npos, why["fc2"]);
  BOOST_CHECK_EQUAL(why["fc3"], "no weight calibration");
  BOOST_CHECK_LT(c.max_diff, 2e-3f * std::max(1.f, c.output_range));
}

// A hook on a container the linked value leaves (here a Sequential ending in the first Linear's
// ReLU) keeps the link from forming; a hook on a container holding both layers does not. The hook
// sees floats either way, and the int8 model still computes its fake-quantized self.
BOOST_AUTO_TEST_CASE(hooks_on_containers_the_value_crosses_keep_floats) {
  class Split : public nn::Module {
   public:
    Split() {
      first = register_module("first", std::make_shared<nn::Sequential>());
      first->push_back("fc", std::make_shared<nn::Linear>(12, 16));
      first->push_back("relu", std::make_shared<nn::ReLU>());
      second = register_module("second", std::make_shared<nn::Linear>(16, 4));
    }
    std::string type_name() const override { return "Split"; }
    std::shared_ptr<nn::Sequential> first;
    std::shared_ptr<nn::Linear> second;

   protected:
    nn::Value forward(const std::vector<nn::Value>& in) override {
      return (*second)(std::vector<nn::Value>{(*first)(in)});
    }
  };
  manual_seed(6);
  auto model = std::make_shared<Split>();
  model->eval();
  const Tensor x = randn({5, 12});
  CalibrationConfig calibration;
  {
    PtqQuantizer q(model, boost::json::parse(kWeightsAndInputs));
    q.calibrate({nn::Value(x)});
    calibration = q.finish_calibration();
  }
  for (const char* where : {"first", ""}) {
    std::vector<DType> seen;
    nn::HookHandle hook = model->find(where)->register_forward_hook(
        [&](nn::Module&, const std::vector<nn::Value>&, const nn::Value& out) -> std::optional<nn::Value> {
          seen.push_back(out.tensor().dtype());
          return std::nullopt;
        });
    {
      Int8Model int8(*model, calibration, {nn::Value(x)});
      NoGradGuard ng;
      (*model)(x);
      const bool linked = !int8.report().linked.empty();
      BOOST_TEST(linked == (std::string(where) == ""), "hook on '" << where << "'");
    }
    hook.remove();
    BOOST_REQUIRE(!seen.empty());
    for (DType d : seen) BOOST_TEST((d == DType::F32));
  }
}

// A hook between two convolutions keeps their link from forming (it would see bytes); a model in
// training mode is refused, and the refusal leaves the model as it was.
BOOST_AUTO_TEST_CASE(hooks_see_floats_and_training_mode_is_refused) {
  manual_seed(4);
  auto model = models::make_model("vgg_small");
  model->eval();
  const Tensor x = randn({2, 1, 28, 28});
  CalibrationConfig calibration;
  {
    PtqQuantizer q(model, boost::json::parse(kWeightsAndInputs));
    q.calibrate({nn::Value(x)});
    calibration = q.finish_calibration();
  }
  std::vector<DType> seen;
  nn::HookHandle hook = model->find("features.pool1")->register_forward_hook(
      [&](nn::Module&, const std::vector<nn::Value>& in, const nn::Value&) -> std::optional<nn::Value> {
        seen.push_back(in.at(0).tensor().dtype());
        return std::nullopt;
      });
  {
    Int8Model int8(*model, calibration, {nn::Value(x)});
    const auto& links = int8.report().linked;
    BOOST_CHECK(std::find(links.begin(), links.end(), std::make_pair(std::string("features.conv2"),
                                                                     std::string("features.conv3"))) == links.end());
    BOOST_CHECK_EQUAL(links.size(), 5u);
    NoGradGuard ng;
    (*model)(x);
  }
  hook.remove();
  BOOST_REQUIRE(!seen.empty());
  for (DType d : seen) BOOST_CHECK(d == DType::F32);

  NoGradGuard ng;
  const Tensor before = (*model)(x);
  model->train();
  try {
    Int8Model int8(*model, calibration, {nn::Value(x)});
    BOOST_ERROR("a model in training mode was converted");
  } catch (const Error& e) {
    BOOST_CHECK(std::string(e.what()).find("training mode") != std::string::npos);
  }
  model->eval();
  BOOST_CHECK((*model)(x).to_vector() == before.to_vector());
}

// A quantizer rebuilt from a calibration alone fake-quantizes exactly as the one that made it, for
// every granularity a quantizer writes: per tensor, out_channel (weights and 1-d biases) and
// per_channel activations.
BOOST_AUTO_TEST_CASE(a_quantizer_rebuilt_from_its_calibration_computes_the_same) {
  manual_seed(9);
  auto model = models::make_model("lenet5");
  model->eval();
  const Tensor x = randn({4, 1, 28, 28});
  Tensor want;
  CalibrationConfig calibration;
  {
    PtqQuantizer q(model, boost::json::parse(R"([{"op_types": ["Conv2d"], "target_names": ["weight", "bias", "_input_"],
        "quant_dtype": "int8", "target_settings": {"weight": {"granularity": "out_channel"},
        "bias": {"granularity": "out_channel"}, "_input_": {"granularity": "per_channel"}}},
        {"op_types": ["Linear"], "target_names": ["weight", "_output_"], "quant_dtype": "uint8", "quant_scheme": "affine"}])"));
    q.calibrate({nn::Value(x)});
    calibration = q.finish_calibration();
    NoGradGuard ng;
    want = (*model)(x);
  }
  BOOST_REQUIRE_EQUAL(calibration.at("conv1.bias").scale.dim(), 1);
  auto rebuilt = quantizer_from_calibration(model, calibration, {nn::Value(randn({4, 1, 28, 28}))});
  NoGradGuard ng;
  BOOST_TEST((*model)(x).to_vector() == want.to_vector(), boost::test_tools::per_element());
}

// shrink infer: float, fake-quantized from the saved calibration, and int8 — the last two make the
// same prediction for each of the first 256 test images (an untrained lenet5: its predictions
// still depend on every layer's output).
BOOST_AUTO_TEST_CASE(shrink_infer_runs_a_calibration_fake_quantized_and_int8) {
  if (!testing::have_fashion_mnist()) {
    BOOST_TEST_MESSAGE("skipped: Fashion-MNIST is not installed");
    return;
  }
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("shrink_infer_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  manual_seed(2);
  auto model = models::make_model("lenet5");
  io::save_safetensors((dir / "w.safetensors").string(), model->state_dict());
  {
    PtqQuantizer q(model, boost::json::parse(kWeightsAndInputs));
    for (int i = 0; i < 2; ++i) q.calibrate({nn::Value(rand({32, 1, 28, 28}))});
    save_calibration((dir / "cal.safetensors").string(), q.finish_calibration());
  }
  const std::string base = "--model lenet5 --weights " + (dir / "w.safetensors").string() + " --limit 256 --json";
  const std::string cal = " --calibration " + (dir / "cal.safetensors").string();
  auto run = [&](const std::string& extra, const std::string& predictions) {
    const testing::CliResult r =
        testing::run_cli("infer", base + extra + " --save-predictions " + (dir / predictions).string());
    BOOST_REQUIRE_EQUAL(r.status, 0);
    return boost::json::parse(r.out);  // with --json, stdout holds the one object
  };
  const boost::json::value fl = run("", "fl"), fq = run(cal, "fq"), i8 = run(cal + " --int8", "i8");
  const std::vector<int64_t> fq_pred = io::load_tensors((dir / "fq").string()).at("pred").to_vector_i64();
  const std::vector<int64_t> i8_pred = io::load_tensors((dir / "i8").string()).at("pred").to_vector_i64();
  BOOST_REQUIRE_EQUAL(i8_pred.size(), 256u);
  BOOST_TEST(i8_pred == fq_pred, boost::test_tools::per_element());
  BOOST_TEST(fl.at("mode").as_string() == "float");
  BOOST_TEST(fq.at("mode").as_string() == "fake_quant");
  BOOST_TEST(i8.at("mode").as_string() == "int8");
  BOOST_TEST(i8.at("int8_layers").as_array().size() == 5u);
  BOOST_TEST(i8.at("kept_float").as_object().empty());
  BOOST_TEST(i8.at("samples").to_number<int64_t>() == 256);
  BOOST_TEST(i8.at("test_acc").to_number<double>() == fq.at("test_acc").to_number<double>());
  BOOST_TEST(testing::run_cli("infer", base + " --int8").status == 2);  // --int8 needs a calibration
  BOOST_TEST(testing::run_cli("infer", base + " --calibration " + (dir / "none.safetensors").string()).status == 2);
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_SUITE_END()
