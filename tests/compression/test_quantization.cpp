// Quantizers against hand-computed values: nni-semantics §9.2 items 8 (QAT scale/zero point and
// EMA) and 9 (the dtype/scheme table), DECISIONS rows 13, 14, 15 and 20, per-channel and block
// granularity, PTQ's running range, QAT's start step, LSQ/LSQ+/DoReFa/BNN/Naive behaviour and the
// calibration file round trip.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "compression/quantization/binary_quantizers.h"
#include "compression/quantization/calibration_io.h"
#include "compression/quantization/histogram.h"
#include "compression/quantization/lsq_quantizer.h"
#include "compression/quantization/ptq_quantizer.h"
#include "compression/quantization/qat_quantizer.h"
#include "framework/shrink.h"

using namespace shrink;
using namespace shrink::compression;
namespace tt = boost::test_tools;

namespace {

boost::json::value cfg(const std::string& text) { return boost::json::parse(text); }

std::shared_ptr<train::Trainer> trainer_for(std::shared_ptr<nn::Module> model, Shape shape, int64_t classes) {
  auto ds = std::make_shared<data::TensorDataset>(data::make_synthetic_classification(8, shape, classes, 3));
  auto loader = std::make_shared<data::DataLoader>(ds, 4, false, 0);
  auto opt = std::make_shared<optim::SGD>(model->parameters(), 0.01f);
  return std::make_shared<train::Trainer>(model, opt, loader);
}

// A model with one Linear "fc" (2 -> 2) whose weight is `w`, followed by a ReLU "relu".
struct LinearModel {
  std::shared_ptr<nn::Sequential> model = std::make_shared<nn::Sequential>();
  std::shared_ptr<nn::Linear> fc = std::make_shared<nn::Linear>(2, 2);
  LinearModel(std::vector<float> w) {
    model->push_back("fc", fc);
    model->push_back("relu", std::make_shared<nn::ReLU>());
    fc->parameter("weight").copy_(Tensor::from_vector(w, {2, 2}));
    fc->parameter("bias").copy_(Tensor::zeros({2}));
  }
};

float item(const Tensor& t) { return t.to_vector().at(0); }

void expect_close(const std::vector<float>& got, const std::vector<float>& want, float tol, const std::string& what) {
  BOOST_TEST_REQUIRE(got.size() == want.size(), what);
  for (size_t i = 0; i < got.size(); ++i)
    BOOST_TEST(std::fabs(got[i] - want[i]) <= tol * std::max(1.f, std::fabs(want[i])),
               what << " [" << i << "]: " << got[i] << " vs " << want[i]);
}

std::vector<float> arange18() {
  std::vector<float> w(18);
  for (int i = 0; i < 18; ++i) w[i] = static_cast<float>(i + 1);
  return w;
}

// A model with one Conv2d(1, 2, 3) "conv" holding arange(1, 19).view(2, 1, 3, 3).
std::shared_ptr<nn::Sequential> conv_model() {
  auto model = std::make_shared<nn::Sequential>();
  auto conv = std::make_shared<nn::Conv2d>(1, 2, 3);
  model->push_back("conv", conv);
  conv->parameter("weight").copy_(Tensor::from_vector(arange18(), {2, 1, 3, 3}));
  return model;
}

TargetCalibration ptq_weight(std::shared_ptr<nn::Sequential> model, const std::string& config) {
  PtqQuantizer q(model, cfg(config));
  q.calibrate({nn::Value(Tensor::ones({1, 1, 3, 3}))});
  return q.finish_calibration().at("conv.weight");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(quantization)

// §9.2 item 8, weights: uint8 affine. [[1,2],[3,5]]: range [0, 5] -> s = 5/255, z = 0.
// [[-1,2],[3,5]]: s = 6/255, z = 0 - round(-1 / (6/255)) = round(42.5) = 42 (half to even).
BOOST_AUTO_TEST_CASE(qat_weight_scale_zero_point) {
  const std::string c = R"([{"op_names": ["fc"], "target_names": ["weight"], "quant_dtype": "uint8",
                             "quant_scheme": "affine"}])";
  const std::vector<std::vector<float>> weights = {{1, 2, 3, 5}, {-1, 2, 3, 5}};
  const float scales[] = {5.f / 255.f, 6.f / 255.f}, zeros[] = {0.f, 42.f};
  for (size_t k = 0; k < 2; ++k) {
    LinearModel m(weights[k]);
    auto trainer = trainer_for(m.model, {2}, 2);
    QATQuantizer q(m.model, cfg(c), *trainer);
    q.track_forward({nn::Value(Tensor::ones({1, 2}))});
    CalibrationConfig calib = q.get_calibration_config();
    BOOST_TEST(item(calib.at("fc.weight").scale) == scales[k], tt::tolerance(1e-6f));
    BOOST_TEST(item(calib.at("fc.weight").zero_point) == zeros[k]);
    BOOST_TEST(calib.at("fc.weight").qmax == 255.f);
  }
}

// §9.2 item 8, input [[1,4],[2,1]] uint8 affine: s = 4/255, z = 0. EMA on the ReLU output:
// first batch's ReLU output [[0,0],[.1,.2]] -> (0, 0.2); next [[.2,.4],[.6,.8]] ->
// (0.99*0 + 0.01*0.2, 0.99*0.2 + 0.01*0.8) = (0.002, 0.206).
BOOST_AUTO_TEST_CASE(qat_input_and_ema_output) {
  LinearModel m({1, 0, 0, 1});  // identity, so the ReLU sees the input
  auto trainer = trainer_for(m.model, {2}, 2);
  QATQuantizer q(m.model, cfg(R"([{"op_names": ["fc"], "target_names": ["_input_"], "quant_dtype": "uint8",
                                    "quant_scheme": "affine"}])"),
                 *trainer);
  q.track_forward({nn::Value(Tensor::from_vector({1, 4, 2, 1}, {2, 2}))});
  CalibrationConfig c = q.get_calibration_config();
  BOOST_TEST(item(c.at("fc._input_0").scale) == 4.f / 255.f, tt::tolerance(1e-6f));
  BOOST_TEST(item(c.at("fc._input_0").zero_point) == 0.f);

  LinearModel r({1, 0, 0, 1});
  auto tr = trainer_for(r.model, {2}, 2);
  QATQuantizer ema(r.model, cfg(R"([{"op_names": ["relu"], "target_names": ["_output_"], "quant_dtype": "uint8",
                                      "quant_scheme": "affine"}])"),
                   *tr);
  ema.track_forward({nn::Value(Tensor::from_vector({-.2f, 0.f, .1f, .2f}, {2, 2}))});
  TargetState* t = ema.targets().at(0);
  BOOST_TEST(item(t->tracked_min) == 0.f);
  BOOST_TEST(item(t->tracked_max) == 0.2f, tt::tolerance(1e-6f));
  ema.track_forward({nn::Value(Tensor::from_vector({.2f, .4f, .6f, .8f}, {2, 2}))});
  BOOST_TEST(item(t->tracked_min) == 0.002f, tt::tolerance(1e-5f));
  BOOST_TEST(item(t->tracked_max) == 0.206f, tt::tolerance(1e-5f));
}

// §9.2 item 9 with DECISIONS rows 13 and 20: weight arange(1, 19).view(2, 1, 3, 3), 8 bits.
BOOST_AUTO_TEST_CASE(dtype_scheme_table) {
  struct Row {
    const char* keys;
    std::vector<float> scale;
    float zero;
  };
  const Row rows[] = {
      {R"("quant_dtype": "int8", "quant_scheme": "symmetric", "granularity": "out_channel")", {9.f / 127, 18.f / 127}, 0},
      {R"("quant_dtype": "int8", "quant_scheme": "symmetric")", {18.f / 127}, 0},
      {R"("quant_dtype": "int8", "quant_scheme": "affine", "granularity": "out_channel")", {9.f / 254, 18.f / 254}, -127},
      {R"("quant_dtype": "int8", "quant_scheme": "affine")", {18.f / 254}, -127},
      {R"("quant_dtype": "uint8", "quant_scheme": "affine")", {18.f / 255}, 0},
      {R"("quant_dtype": "uint8", "quant_scheme": "symmetric")", {18.f / 127.5f}, 128},  // v3: 128
      {R"("quant_dtype": "uint8")", {18.f / 127.5f}, 128},                                 // null scheme: symmetric
      {R"("quant_dtype": null)", {18.f / 127}, 0},                                         // DECISIONS 20: int8
  };
  for (const Row& row : rows) {
    const TargetCalibration t =
        ptq_weight(conv_model(), std::string(R"([{"op_names": ["conv"], "target_names": ["weight"], )") + row.keys + "}]");
    expect_close(t.scale.to_vector(), row.scale, 1e-6f, row.keys);
    for (float z : t.zero_point.to_vector()) BOOST_TEST(z == row.zero, row.keys);
  }
}

// DECISIONS row 14: a legacy v2 config with a symmetric uint scheme gets v2's zero point 127;
// v2's per_channel scheme is granularity out_channel for the weight. The v3 spelling gets 128.
BOOST_AUTO_TEST_CASE(legacy_uint_symmetric_zero_point) {
  const TargetCalibration v2 = ptq_weight(conv_model(), R"([{"op_types": ["Conv2d"], "quant_types": ["weight"],
      "quant_bits": 8, "quant_scheme": "per_channel_symmetric", "quant_dtype": "uint"}])");
  expect_close(v2.scale.to_vector(), {9.f / 127.5f, 18.f / 127.5f}, 1e-6f, "v2 scale");
  expect_close(v2.zero_point.to_vector(), {127.f, 127.f}, 0, "v2 zero point");
  const TargetCalibration v3 = ptq_weight(conv_model(), R"([{"op_types": ["Conv2d"], "target_names": ["weight"],
      "quant_dtype": "uint8", "quant_scheme": "symmetric", "granularity": "out_channel"}])");
  expect_close(v3.zero_point.to_vector(), {128.f, 128.f}, 0, "v3 zero point");
  // Legacy default (DECISIONS row 6): uint<bits>, affine.
  const TargetCalibration def = ptq_weight(conv_model(), R"([{"op_types": ["Conv2d"], "quant_types": ["weight"],
      "quant_bits": 8}])");
  BOOST_TEST(def.quant_dtype == "uint8");
  BOOST_TEST(def.quant_scheme == "affine");
}

// DECISIONS row 13: int4 is -7..7; rounding half to even after clamping; the range includes 0.
BOOST_AUTO_TEST_CASE(int4_range_and_rounding) {
  LinearModel m({0.5f, 1.f, 2.f, 7.f});  // all positive: the range is [0, 7] -> s = 7/7 = 1
  PtqQuantizer q(m.model, cfg(R"([{"op_names": ["fc"], "target_names": ["weight"], "quant_dtype": "int4"}])"));
  q.calibrate({nn::Value(Tensor::ones({1, 2}))});
  const TargetCalibration t = q.finish_calibration().at("fc.weight");
  BOOST_TEST(t.qmin == -7.f);
  BOOST_TEST(t.qmax == 7.f);
  BOOST_TEST(item(t.scale) == 1.f);
  q.bake();
  expect_close(m.fc->param("weight").to_vector(), {0.f, 1.f, 2.f, 7.f}, 0, "0.5 rounds to 0 (even)");
}

// PTQ: running min/max over every calibration forward (not EMA); bypass until finished.
BOOST_AUTO_TEST_CASE(ptq_running_range_and_switch) {
  LinearModel m({1, 0, 0, 1});
  PtqQuantizer q(m.model, cfg(R"([{"op_names": ["relu"], "target_names": ["_output_"], "quant_dtype": "uint8",
                                   "quant_scheme": "affine"}])"));
  const Tensor x1 = Tensor::from_vector({0.1f, 0.2f}, {1, 2}), x2 = Tensor::from_vector({0.3f, 0.05f}, {1, 2});
  q.calibrate({nn::Value(x1)});
  expect_close((*m.model)(x1).to_vector(), {0.1f, 0.2f}, 0, "bypass while calibrating");
  q.calibrate({nn::Value(x2)});
  TargetState* t = q.targets().at(0);
  BOOST_TEST(item(t->tracked_min) == 0.05f);
  BOOST_TEST(item(t->tracked_max) == 0.3f);
  q.finish_calibration();
  const float s = 0.3f / 255.f;  // [0, 0.3] over 255 levels
  BOOST_TEST((*m.model)(x1).to_vector().at(0) == std::nearbyint(0.1f / s) * s, tt::tolerance(1e-6f));
}

// Block granularity [1, 2] on a [2, 4] weight: one scale per pair of columns in each row.
BOOST_AUTO_TEST_CASE(block_granularity) {
  auto model = std::make_shared<nn::Sequential>();
  auto fc = std::make_shared<nn::Linear>(4, 2);
  model->push_back("fc", fc);
  fc->parameter("weight").copy_(Tensor::from_vector({1, -2, 3, 4, -5, 6, 7, -8}, {2, 4}));
  PtqQuantizer q(model, cfg(R"([{"op_names": ["fc"], "target_names": ["weight"], "quant_dtype": "int8",
                                 "granularity": [1, 2]}])"));
  q.calibrate({nn::Value(Tensor::ones({1, 4}))});
  const TargetCalibration t = q.finish_calibration().at("fc.weight");
  BOOST_TEST(t.scale.shape() == Shape({2, 2}));
  expect_close(t.scale.to_vector(), {2.f / 127, 4.f / 127, 6.f / 127, 8.f / 127}, 1e-6f, "block scales");
  q.bake();  // each value with its own block's scale: 1 / (2/127) = 63.5 -> 64 (half to even)
  const std::vector<float> w = {1, -2, 3, 4, -5, 6, 7, -8}, s = {2, 4, 6, 8};
  std::vector<float> want;
  for (size_t i = 0; i < w.size(); ++i) {
    const float si = s[i / 2] / 127.f;
    want.push_back(std::nearbyint(w[i] / si) * si);
  }
  expect_close(fc->param("weight").to_vector(), want, 1e-6f, "block fake quant");
}

// QAT: targets pass through until quant_start_step optimizer steps have run.
BOOST_AUTO_TEST_CASE(qat_start_step) {
  LinearModel m({0.3f, -0.7f, 1.1f, 0.2f});
  auto trainer = trainer_for(m.model, {2}, 2);
  QATQuantizer q(m.model, cfg(R"([{"op_names": ["fc"], "target_names": ["weight"], "quant_dtype": "int2"}])"),
                 *trainer, 2);
  TargetState* t = q.targets().at(0);
  auto method = [t] { return std::string(t->settings(CompressorKind::Quantization).at("apply_method").as_string()); };
  BOOST_TEST(method() == "bypass");
  q.compress(1, -1);
  BOOST_TEST(method() == "bypass");
  BOOST_TEST(!t->scale.defined());  // not computed before the start step
  q.compress(1, -1);
  BOOST_TEST(method() == "qat_clamp_round");
  q.compress(1, -1);
  BOOST_TEST(t->scale.defined());
  q.bake();  // int2: -1..1, so every weight is -s, 0 or s
  const float s = item(t->scale);
  for (float v : m.fc->param("weight").to_vector())
    BOOST_TEST((v == 0.f || std::fabs(std::fabs(v) - s) < 1e-6f), "weight " << v << " with s " << s);
}

// DECISIONS row 15: LSQ's scale starts at 2 * mean|x| / sqrt(qmax) and is learned.
BOOST_AUTO_TEST_CASE(lsq_init_and_learning) {
  LinearModel m({0.5f, -1.f, 1.5f, -2.f});
  auto trainer = trainer_for(m.model, {2}, 2);
  LsqQuantizer q(m.model, cfg(R"([{"op_names": ["fc"], "target_names": ["weight"], "quant_dtype": "int4"}])"),
                 *trainer);
  q.track_forward({nn::Value(Tensor::ones({1, 2}))});
  TargetState* t = q.targets().at(0);
  const float init = static_cast<float>(2.0 * 1.25 / std::sqrt(7.0));
  BOOST_TEST(item(t->scale) == init, tt::tolerance(1e-6f));
  BOOST_TEST(t->scale.requires_grad());
  q.compress(2, -1);
  BOOST_TEST(item(t->scale) != init);  // the optimizer moved it
}

BOOST_AUTO_TEST_CASE(lsq_plus_learns_zero_point) {
  LinearModel m({0.5f, -1.f, 1.5f, -2.f});
  auto trainer = trainer_for(m.model, {2}, 2);
  LsqPlusQuantizer q(m.model, cfg(R"([{"op_names": ["fc"], "target_names": ["_output_"], "quant_dtype": "uint4",
                                       "quant_scheme": "affine"}])"),
                     *trainer);
  q.compress(3, -1);
  TargetState* t = q.targets().at(0);
  BOOST_TEST(t->zero_point.requires_grad());
  BOOST_TEST(trainer->optimizer().param_groups().size() == 2u);  // the model's and the learned (s, z)
}

// BNN: sign with sign(0) = +1; weights clamped to [-1, 1] after each step.
BOOST_AUTO_TEST_CASE(bnn_sign_and_clamp) {
  LinearModel m({3.f, -0.5f, 0.f, 2.f});
  auto trainer = trainer_for(m.model, {2}, 2);
  BNNQuantizer q(m.model, cfg(R"([{"op_names": ["fc"], "target_names": ["weight"], "quant_dtype": "int8"}])"),
                 *trainer);
  m.model->eval();
  // sign(W) = [[1, -1], [1, 1]]: x = [1, 10] -> [1 - 10, 1 + 10], then ReLU
  expect_close((*m.model)(Tensor::from_vector({1.f, 10.f}, {1, 2})).to_vector(), {0.f, 11.f}, 0, "bnn forward");
  m.model->train();
  q.compress(1, -1);
  for (float v : m.fc->param("weight").to_vector()) BOOST_TEST(std::fabs(v) <= 1.f);
}

// DoReFa: weights through tanh into [0, 1], with s = 1/(qmax - qmin), z = qmin.
BOOST_AUTO_TEST_CASE(dorefa_weight_values) {
  LinearModel m({0.5f, -1.f, 0.f, 2.f});
  auto trainer = trainer_for(m.model, {2}, 2);
  DoReFaQuantizer q(m.model, cfg(R"([{"op_names": ["fc"], "target_names": ["weight"], "quant_dtype": "uint2",
                                      "quant_scheme": "affine"}])"),
                    *trainer);
  q.bake();
  const float mx = std::tanh(2.f);
  std::vector<float> want;
  for (float w : {0.5f, -1.f, 0.f, 2.f}) {
    const float t = std::tanh(w) / (2 * mx) + 0.5f;
    want.push_back(2.f * std::nearbyint(t * 3.f) / 3.f - 1.f);
  }
  expect_close(m.fc->param("weight").to_vector(), want, 1e-6f, "dorefa weights");
  LinearModel m2({0.5f, -1.f, 0.f, 2.f});
  auto trainer2 = trainer_for(m2.model, {2}, 2);
  BOOST_CHECK_THROW(DoReFaQuantizer(m2.model, cfg(R"([{"op_names": ["fc"], "target_names": ["_output_"],
                        "quant_dtype": "uint2", "quant_scheme": "affine"}])"), *trainer2),
                    Error);  // outputs of activation modules only
}

// v1 NaiveQuantizer: s = max|w| / 127, w -> trunc(w / s) * s.
BOOST_AUTO_TEST_CASE(naive_truncates) {
  LinearModel m({1.f, -0.999f, 0.5f, 0.0099f});
  NaiveQuantizer q(m.model, cfg(R"([{"op_types": ["Linear"], "quant_types": ["weight"], "quant_bits": 8}])"));
  q.compress();
  q.bake();
  const float s = 1.f / 127.f;
  std::vector<float> want;
  for (float w : {1.f, -0.999f, 0.5f, 0.0099f}) want.push_back(std::trunc(w / s) * s);
  expect_close(m.fc->param("weight").to_vector(), want, 1e-6f, "naive");
}

BOOST_AUTO_TEST_CASE(calibration_file_round_trip) {
  LinearModel m({1.f, -2.f, 3.f, -4.f});
  PtqQuantizer q(m.model, cfg(R"([{"op_names": ["fc"], "target_names": ["weight", "_input_"], "quant_dtype": "int8",
                                   "granularity": "out_channel", "target_settings": {"_input_": {"granularity": "default",
                                   "quant_scheme": "affine"}}}])"));
  q.calibrate({nn::Value(Tensor::from_vector({-1.f, 3.f}, {1, 2}))});
  CalibrationConfig c = q.finish_calibration();
  const std::string path = (std::filesystem::temp_directory_path() / "shrink_calib_test.safetensors").string();
  save_calibration(path, c);
  CalibrationConfig back = load_calibration(path);
  BOOST_TEST(back.size() == 2u);
  expect_close(back.at("fc.weight").scale.to_vector(), c.at("fc.weight").scale.to_vector(), 0, "scale");
  BOOST_TEST(back.at("fc.weight").scale.shape() == Shape({2, 1}));
  BOOST_TEST(back.at("fc._input_0").quant_scheme == "affine");
  expect_close(back.at("fc._input_0").zero_point.to_vector(), c.at("fc._input_0").zero_point.to_vector(), 0, "zp");
  q.update_calibration_config(back);
  back.at("fc.weight").quant_scheme = "affine";
  BOOST_CHECK_THROW(q.update_calibration_config(back), Error);  // the target is symmetric
  // A sidecar from another save (a crash between the two writes) is refused, not misread.
  std::ofstream(calibration_sidecar_path(path)) << boost::json::serialize(calibration_json(back));
  BOOST_CHECK_THROW(load_calibration(path), Error);
  std::filesystem::remove(path);
  std::filesystem::remove(calibration_sidecar_path(path));
}

namespace {

// conv (2 -> 3, k3, pad 1) -> bn -> relu with known batch-norm state.
struct ConvBnRelu {
  std::shared_ptr<nn::Sequential> model = std::make_shared<nn::Sequential>();
  std::shared_ptr<nn::Conv2d> conv = std::make_shared<nn::Conv2d>(2, 3, 3, 1, 1);
  std::shared_ptr<nn::BatchNorm2d> bn = std::make_shared<nn::BatchNorm2d>(3);
  Tensor x;
  ConvBnRelu() {
    manual_seed(5);
    conv = std::make_shared<nn::Conv2d>(2, 3, 3, 1, 1);
    model->push_back("conv", conv);
    model->push_back("bn", bn);
    model->push_back("relu", std::make_shared<nn::ReLU>());
    bn->parameter("weight").copy_(Tensor::from_vector({1.5f, -0.5f, 2.f}, {3}));
    bn->parameter("bias").copy_(Tensor::from_vector({0.1f, 0.2f, -0.3f}, {3}));
    bn->buffer("running_mean").copy_(Tensor::from_vector({0.05f, -0.1f, 0.2f}, {3}));
    bn->buffer("running_var").copy_(Tensor::from_vector({0.5f, 2.f, 1.2f}, {3}));
    Generator g(9);
    x = randn({2, 2, 5, 5}, g);
  }
  // W' and b' written out by hand (double precision).
  std::pair<Tensor, Tensor> folded() {
    std::vector<float> w = conv->param("weight").to_vector(), b = conv->param("bias").to_vector();
    const float gamma[] = {1.5f, -0.5f, 2.f}, beta[] = {0.1f, 0.2f, -0.3f}, mu[] = {0.05f, -0.1f, 0.2f},
                var[] = {0.5f, 2.f, 1.2f};
    for (int c = 0; c < 3; ++c) {
      const double g = gamma[c] / std::sqrt(static_cast<double>(var[c]) + 1e-5);
      for (int k = 0; k < 18; ++k) w[c * 18 + k] = static_cast<float>(w[c * 18 + k] * g);
      b[c] = static_cast<float>((b[c] - mu[c]) * g + beta[c]);
    }
    return {Tensor::from_vector(w, {3, 2, 3, 3}), Tensor::from_vector(b, {3})};
  }
};

}  // namespace

// §2.7: conv + bn + relu fused. The weight is folded, then quantized per output channel; the ReLU
// runs before the output is quantized; the batch norm itself is the identity.
BOOST_AUTO_TEST_CASE(fused_conv_bn_relu) {
  ConvBnRelu m;
  m.model->eval();
  auto [fw, fb] = m.folded();
  PtqQuantizer q(m.model, cfg(R"([{"op_names": ["conv"], "target_names": ["weight", "_output_"], "quant_dtype": "int8",
                                   "target_settings": {"weight": {"granularity": "out_channel"}},
                                   "fuse_names": [["conv", "bn", "relu"]]}])"));
  q.calibrate({nn::Value(m.x)});
  CalibrationConfig c = q.finish_calibration();
  // The weight's range is the folded weight's, per output channel.
  Tensor amax = max(abs(reshape(fw, {3, 18})), 1);
  expect_close(c.at("conv.weight").scale.to_vector(), (amax / 127.f).to_vector(), 1e-6f, "folded weight scale");
  // The output's range is relu(conv(x, W', b')) (0 included).
  Conv2dOptions o;
  o.pad_h = o.pad_w = 1;
  Tensor y_float = relu(conv2d(m.x, fw, fb, o));
  BOOST_TEST(item(c.at("conv._output_0").tracked_max) == item(max(y_float)), tt::tolerance(1e-5f));
  // Forward: relu(conv(x, Q(W'), b')) then the output's fake quantization.
  Tensor wq = fake_quantize(fw, c.at("conv.weight").scale, c.at("conv.weight").zero_point, -127, 127, false);
  Tensor want = fake_quantize(relu(conv2d(m.x, wq, fb, o)), c.at("conv._output_0").scale,
                              c.at("conv._output_0").zero_point, -127, 127, false);
  expect_close((*m.model)(m.x).to_vector(), want.to_vector(), 1e-5f, "fused forward");
  // Bake: the batch norm leaves the model and the plain model computes relu(conv(x, Q(W'), b')).
  q.bake();
  q.unwrap();
  BOOST_TEST(m.model->find("bn")->type_name() == "Identity");
  expect_close((*m.model)(m.x).to_vector(), relu(conv2d(m.x, wq, fb, o)).to_vector(), 1e-5f, "baked model");
}

// In training the batch norm's running statistics are updated once per forward, from the leader's
// unquantized output, exactly as the batch norm alone would (then used for folding).
BOOST_AUTO_TEST_CASE(fused_bn_running_stats_in_training) {
  ConvBnRelu fused, plain;
  plain.conv->parameter("weight").copy_(fused.conv->param("weight"));
  plain.conv->parameter("bias").copy_(fused.conv->param("bias"));
  auto trainer = trainer_for(fused.model, {2, 5, 5}, 3);
  QATQuantizer q(fused.model, cfg(R"([{"op_names": ["conv"], "target_names": ["weight"], "quant_dtype": "int8",
                                       "fuse_names": [["conv", "bn"]]}])"),
                 *trainer);
  (*fused.model)(fused.x);
  {
    NoGradGuard ng;
    (*plain.bn)((*plain.conv)(plain.x));
  }
  expect_close(fused.bn->param("running_mean").to_vector(), plain.bn->param("running_mean").to_vector(), 1e-6f, "mean");
  expect_close(fused.bn->param("running_var").to_vector(), plain.bn->param("running_var").to_vector(), 1e-6f, "var");
  BOOST_TEST(fused.bn->param("num_batches_tracked").to_vector_i64().at(0) == 1);
  // Gradients reach the batch norm's gamma and beta through the folded weight and bias.
  sum((*fused.model)(fused.x)).backward();
  BOOST_TEST(fused.bn->param("weight").grad().defined());
  BOOST_TEST(fused.bn->param("bias").grad().defined());
  q.unwrap();  // the batch norm runs as itself again (not the identity)
  fused.bn->eval();
  const Tensor ones = Tensor::ones({1, 3, 1, 1});
  BOOST_TEST(std::fabs((*fused.bn)(ones).to_vector().at(0) - 1.f) > 0.1f);
}

// Blocks as rows: a [2, 4] weight with blocks [1, 2] is 4 rows of 2, in shrunk-shape order.
BOOST_AUTO_TEST_CASE(blocks_as_rows_order) {
  Tensor w = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8}, {2, 4});
  Tensor rows = blocks_as_rows(w, Scaling::from_blocks({1, 2}));
  BOOST_TEST(rows.shape() == Shape({4, 2}));
  expect_close(rows.to_vector(), {1, 2, 3, 4, 5, 6, 7, 8}, 0, "row-major blocks");
  Tensor cols = blocks_as_rows(w, Scaling::from_granularity("in_channel"));  // one row per column
  expect_close(cols.to_vector(), {1, 5, 2, 6, 3, 7, 4, 8}, 0, "in_channel rows");
}

// Percentile: |x| = 1..1000, p = 99 -> the clip is 990 to within one bin (1000 / 2048).
BOOST_AUTO_TEST_CASE(percentile_observer) {
  std::vector<float> v(1000);
  for (int i = 0; i < 1000; ++i) v[i] = static_cast<float>(i % 2 ? i + 1 : -(i + 1));
  AbsHistogram h;
  h.add(Tensor::from_vector(v, {1, 1000}));
  const float amax = h.amax(RangeObserver::Percentile, 99.0, {127.0}).at(0);
  BOOST_TEST(std::fabs(amax - 990.f) <= 1000.f / 2048.f + 1e-3f, "amax " << amax);
  // A later, larger value extends the histogram with bins of the same width.
  h.add(Tensor::from_vector({0.f, 2000.f}, {1, 2}));
  BOOST_TEST(h.counts(0).size() == 4096u);
  BOOST_TEST(h.width(0) == 1000.f / 2048.f);
}

// MSE on N(0, 1) with 15 levels (int4): the histogram search must find the clip that a brute
// force over the raw samples finds (the squared error of symmetric round-to-nearest quantization,
// clip grid 0.01), to within the histogram's resolution; both clip well inside the max.
BOOST_AUTO_TEST_CASE(mse_matches_brute_force_on_samples) {
  Generator g(4);
  std::vector<float> v(20000);
  float mx = 0;
  for (auto& x : v) {
    x = g.normal();
    mx = std::max(mx, std::fabs(x));
  }
  double best = 1e300, best_clip = 0;
  for (double clip = 0.5; clip <= mx; clip += 0.01) {
    const double step = clip / 7.0;
    double err = 0;
    for (float x : v) {
      const double q = std::max(-7.0, std::min(7.0, std::nearbyint(x / step))) * step;
      err += (x - q) * (x - q);
    }
    if (err < best) {
      best = err;
      best_clip = clip;
    }
  }
  AbsHistogram h;
  h.add(Tensor::from_vector(v, {1, 20000}));
  const float amax = h.amax(RangeObserver::Mse, 0, {7.0}).at(0);
  BOOST_TEST(std::fabs(amax - best_clip) < 0.1, "histogram mse " << amax << " vs brute force " << best_clip);
  BOOST_TEST(amax < 0.8f * mx);
}

// KL (entropy calibration) where it is meant to work: 100000 values of N(0, 1) and ten far
// outliers at 50. Keeping the outliers leaves the bulk ~11 of the 127 levels; clipping near the
// bulk costs only the outliers' tiny mass. So the clip lands near the bulk, far below 50.
BOOST_AUTO_TEST_CASE(kl_clips_far_outliers) {
  Generator g(5);
  std::vector<float> v(100010);
  for (int i = 0; i < 100000; ++i) v[i] = g.normal();
  for (int i = 100000; i < 100010; ++i) v[i] = 50.f;
  AbsHistogram h;
  h.add(Tensor::from_vector(v, {1, 100010}));
  const float amax = h.amax(RangeObserver::Kl, 0, {127.0}).at(0);
  BOOST_TEST((amax > 3.f && amax < 10.f), "kl amax " << amax);
  // After a ReLU half the values are exact zeros. That spike must not drag the clip down to the
  // narrowest candidate: |N(0, 1)| plus as many zeros clips where the Gaussian alone does.
  std::vector<float> relu(v.begin(), v.begin() + 100000);
  relu.resize(200000, 0.f);
  AbsHistogram hr;
  hr.add(Tensor::from_vector(relu, {1, 200000}));
  AbsHistogram hg;
  hg.add(Tensor::from_vector(std::vector<float>(v.begin(), v.begin() + 100000), {1, 100000}));
  const float with_zeros = hr.amax(RangeObserver::Kl, 0, {127.0}).at(0), without = hg.amax(RangeObserver::Kl, 0, {127.0}).at(0);
  BOOST_TEST(std::fabs(with_zeros - without) < 0.25f * without, "kl with zeros " << with_zeros << " without " << without);
}

// PTQ with the percentile observer, per channel: each output channel clipped on its own.
BOOST_AUTO_TEST_CASE(ptq_percentile_per_channel) {
  auto model = std::make_shared<nn::Sequential>();
  auto fc = std::make_shared<nn::Linear>(100, 2);
  model->push_back("fc", fc);
  std::vector<float> w(200);
  for (int i = 0; i < 100; ++i) {
    w[i] = static_cast<float>(i + 1) / 100.f;      // row 0: 0.01 .. 1
    w[100 + i] = static_cast<float>(i + 1) * 10.f;  // row 1: 10 .. 1000
  }
  fc->parameter("weight").copy_(Tensor::from_vector(w, {2, 100}));
  PtqQuantizer q(model, cfg(R"([{"op_names": ["fc"], "target_names": ["weight"], "quant_dtype": "int8",
                                 "granularity": "out_channel"}])"),
                 nullptr, PtqOptions{RangeObserver::Percentile, 90.0, false});
  q.calibrate({nn::Value(Tensor::ones({1, 100}))});
  const TargetCalibration t = q.finish_calibration().at("fc.weight");
  // 90% of each row lies within 0.90 and 900 (one bin: 1/2048 and 1000/2048 of the row's max).
  std::vector<float> tmax = t.tracked_max.to_vector();
  BOOST_TEST(std::fabs(tmax[0] - 0.90f) <= 1.f / 2048 + 1e-4f, "row 0 clip " << tmax[0]);
  BOOST_TEST(std::fabs(tmax[1] - 900.f) <= 1000.f / 2048 + 1e-2f, "row 1 clip " << tmax[1]);
  expect_close(t.scale.to_vector(), {tmax[0] / 127.f, tmax[1] / 127.f}, 1e-6f, "scales from the clipped range");
}

// Bias correction, per output channel of a convolution: 1x1 conv 1 -> 2 with weights 1.0 and 0.3,
// int4 per tensor (s = 1/7): 0.3 becomes 2/7, so on an all-ones input channel 1 is short by
// 0.3 - 2/7 everywhere and channel 0 not at all. The correction moves bias[1] by exactly that.
BOOST_AUTO_TEST_CASE(ptq_bias_correction_per_channel) {
  auto model = std::make_shared<nn::Sequential>();
  auto conv = std::make_shared<nn::Conv2d>(1, 2, 1);
  model->push_back("conv", conv);
  conv->parameter("weight").copy_(Tensor::from_vector({1.f, 0.3f}, {2, 1, 1, 1}));
  conv->parameter("bias").copy_(Tensor::from_vector({0.5f, -0.5f}, {2}));
  PtqQuantizer q(model, cfg(R"([{"op_names": ["conv"], "target_names": ["weight"], "quant_dtype": "int4"}])"),
                 nullptr, PtqOptions{RangeObserver::MinMax, 99.99, true});
  const Tensor x = Tensor::ones({2, 1, 3, 3});
  q.calibrate({nn::Value(x)});
  q.finish_calibration();
  q.measure_bias_error({nn::Value(x)});
  BOOST_TEST(q.apply_bias_correction() == std::vector<std::string>{"conv"});
  expect_close(conv->param("bias").to_vector(), {0.5f, -0.5f + (0.3f - 2.f / 7.f)}, 1e-6f, "corrected bias");
  // The quantized model now reproduces the float output on this input.
  BOOST_TEST((*model)(x).to_vector().at(9 + 4) == -0.5f + 0.3f, tt::tolerance(1e-5f));  // image 0, channel 1
}

// KL calibrates activations only: under it a weight keeps its exact min/max, while the output's
// far outliers are clipped.
BOOST_AUTO_TEST_CASE(ptq_kl_leaves_weights_exact) {
  auto model = std::make_shared<nn::Sequential>();
  auto fc = std::make_shared<nn::Linear>(1, 1, false);
  model->push_back("fc", fc);
  fc->parameter("weight").copy_(Tensor::from_vector({2.f}, {1, 1}));
  PtqQuantizer q(model, cfg(R"([{"op_names": ["fc"], "target_names": ["weight", "_output_"], "quant_dtype": "int8"}])"),
                 nullptr, PtqOptions{RangeObserver::Kl, 99.99, false});
  Generator g(6);
  std::vector<float> x(20010);
  for (int i = 0; i < 20000; ++i) x[i] = g.normal();
  for (int i = 20000; i < 20010; ++i) x[i] = 50.f;
  q.calibrate({nn::Value(Tensor::from_vector(x, {20010, 1}))});
  CalibrationConfig c = q.finish_calibration();
  BOOST_TEST(item(c.at("fc.weight").tracked_max) == 2.f);
  BOOST_TEST(item(c.at("fc._output_0").tracked_max) < 40.f);  // 100 = 2 * 50 clipped
}

// Linear + BatchNorm1d: the fold is per output feature of the Linear (dim 0 of its weight).
BOOST_AUTO_TEST_CASE(fused_linear_bn) {
  auto model = std::make_shared<nn::Sequential>();
  auto fc = std::make_shared<nn::Linear>(3, 2);
  auto bn = std::make_shared<nn::BatchNorm1d>(2);
  model->push_back("fc", fc);
  model->push_back("bn", bn);
  fc->parameter("weight").copy_(Tensor::from_vector({1, 2, 3, -1, 0.5f, 2}, {2, 3}));
  fc->parameter("bias").copy_(Tensor::from_vector({0.1f, -0.2f}, {2}));
  bn->parameter("weight").copy_(Tensor::from_vector({2.f, 0.5f}, {2}));
  bn->parameter("bias").copy_(Tensor::from_vector({1.f, -1.f}, {2}));
  bn->buffer("running_mean").copy_(Tensor::from_vector({0.3f, 0.1f}, {2}));
  bn->buffer("running_var").copy_(Tensor::from_vector({4.f, 0.25f}, {2}));
  model->eval();
  const Tensor x = Tensor::from_vector({0.5f, -1.f, 2.f}, {1, 3});
  Tensor want;
  {
    NoGradGuard ng;
    want = (*model)(x);  // the unfused float model
  }
  // int16: quantization error far below the tolerance, so the fused model must match the float one.
  PtqQuantizer q(model, cfg(R"([{"op_names": ["fc"], "target_names": ["weight"], "quant_dtype": "int16",
                                 "fuse_names": [["fc", "bn"]]}])"));
  q.calibrate({nn::Value(x)});
  const TargetCalibration c = q.finish_calibration().at("fc.weight");
  // Folded rows: row 0 * 2/sqrt(4 + 1e-5), row 1 * 0.5/sqrt(0.25 + 1e-5): max |.| = 3 and 2.
  BOOST_TEST(item(c.tracked_max) == static_cast<float>(3.0 * 2.0 / std::sqrt(4.0 + 1e-5)), tt::tolerance(1e-5f));
  expect_close((*model)(x).to_vector(), want.to_vector(), 1e-3f, "fused linear + bn vs float");
}

// per_channel on an activation: one range per channel (dim 1), over batch and space.
BOOST_AUTO_TEST_CASE(per_channel_activation) {
  auto model = std::make_shared<nn::Sequential>();
  model->push_back("relu", std::make_shared<nn::ReLU>());
  PtqQuantizer q(model, cfg(R"([{"op_names": ["relu"], "target_names": ["_output_"], "quant_dtype": "uint8",
                                 "quant_scheme": "affine", "granularity": "per_channel"}])"));
  // [N=2, C=2, 2]: channel 0 peaks at 4, channel 1 at 0.5.
  q.calibrate({nn::Value(Tensor::from_vector({1, 4, 0.5f, 0.1f, 2, 3, 0.2f, 0.3f}, {2, 2, 2}))});
  const TargetCalibration c = q.finish_calibration().at("relu._output_0");
  BOOST_TEST(c.scale.shape() == Shape({1, 2, 1}));
  expect_close(c.scale.to_vector(), {4.f / 255.f, 0.5f / 255.f}, 1e-6f, "per-channel activation scales");
}

// int1 has one level (0): quantizers that need a scale refuse it up front, naming the config key;
// BNN, which ignores quant_dtype, takes it.
BOOST_AUTO_TEST_CASE(single_level_dtype) {
  LinearModel m({1, 2, 3, 4});
  const auto c = cfg(R"([{"op_names": ["fc"], "target_names": ["weight"], "quant_dtype": "int1"}])");
  try {
    PtqQuantizer q(m.model, c);
    BOOST_FAIL("int1 accepted");
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()).find("config[0].quant_dtype") != std::string::npos, e.what());
  }
  auto trainer = trainer_for(m.model, {2}, 2);
  BNNQuantizer bnn(m.model, c, *trainer);
  BOOST_TEST(bnn.targets().size() == 1u);
}

// A calibration loaded into a fresh LSQ quantizer is what it learns from (it stays trainable).
BOOST_AUTO_TEST_CASE(lsq_learns_from_a_loaded_calibration) {
  LinearModel m({0.5f, -1.f, 1.5f, -2.f});
  auto trainer = trainer_for(m.model, {2}, 2);
  LsqQuantizer q(m.model, cfg(R"([{"op_names": ["fc"], "target_names": ["weight"], "quant_dtype": "int4"}])"),
                 *trainer);
  TargetCalibration c;
  c.quant_dtype = "int4";
  c.quant_scheme = "symmetric";
  c.scale = Tensor::scalar(0.3f);
  c.zero_point = Tensor::scalar(0.f);
  q.update_calibration_config({{"fc.weight", c}});
  TargetState* t = q.targets().at(0);
  BOOST_TEST(item(t->scale) == 0.3f);
  BOOST_TEST(t->scale.requires_grad());
  q.compress(2, -1);
  BOOST_TEST(item(t->scale) != 0.3f);  // learned from the loaded value, not re-initialised
}

// A block whose range grows by orders of magnitude merges bins instead of growing without bound.
BOOST_AUTO_TEST_CASE(histogram_growth_is_bounded) {
  AbsHistogram h;
  h.add(Tensor::from_vector({1e-6f, -1e-6f}, {1, 2}));
  h.add(Tensor::from_vector({1.f}, {1, 1}));
  BOOST_TEST(static_cast<int64_t>(h.counts(0).size()) <= AbsHistogram::kMaxBins);
  double total = 0;
  for (double v : h.counts(0)) total += v;
  BOOST_TEST(total == 3.0);  // every value still counted once
  BOOST_TEST(h.width(0) * static_cast<float>(h.counts(0).size()) >= 1.f);
}

BOOST_AUTO_TEST_SUITE_END()
