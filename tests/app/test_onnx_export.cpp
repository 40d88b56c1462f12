// ONNX export (compression/export/onnx_export.h): zoo models and a sped-up one as float graphs, a
// PTQ-calibrated one as QDQ, each checked by libonnx's checker and shape inference and — where
// python3-onnx and numpy are installed (./run installs them) — run by an independent numpy
// evaluator of the ONNX operator spec (onnx_numpy_eval.py) against shrink's own forward.
#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "compression/export/onnx_export.h"
#include "compression/quantization/ptq_quantizer.h"
#include "compression/speedup/speedup.h"
#include "framework/core/autograd.h"
#include "framework/core/random.h"
#include "framework/io/atomic_file.h"
#include "framework/ops/ops.h"
#include "models/zoo.h"

#ifdef SHRINK_HAVE_ONNX
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>
#endif

namespace fs = std::filesystem;
using namespace shrink;

namespace {

struct Dir {
  fs::path path = fs::temp_directory_path() / ("shrink_onnx_" + std::to_string(::getpid()));
  Dir() {
    fs::remove_all(path);  // a reused pid's leftovers
    fs::create_directories(path);
  }
  ~Dir() { fs::remove_all(path); }
  std::string operator/(const std::string& n) const { return (path / n).string(); }
};

// python3 with onnx and numpy, or "".
std::string python_with_onnx() {
  for (const char* py : {"/usr/bin/python3", "python3"})
    if (std::system((std::string(py) + " -c 'import onnx, numpy' >/dev/null 2>&1").c_str()) == 0) return py;
  return "";
}

void write_f32(const std::string& path, const Tensor& t) {
  const std::vector<float> v = t.to_vector();
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * 4));
}

// The numpy evaluator's output for `x`, or an undefined tensor (with a message) without Python.
Tensor numpy_run(const Dir& d, const std::string& onnx_path, const Tensor& x, const Shape& out_shape) {
  const std::string py = python_with_onnx();
  if (py.empty()) {
    BOOST_TEST_MESSAGE("numpy evaluation skipped: python3-onnx / python3-numpy not installed");
    return Tensor();
  }
  write_f32(d / "in.f32", x);
  std::string cmd = py + " " + SHRINK_TEST_DATA_DIR + "/../app/onnx_numpy_eval.py " + onnx_path + " " + (d / "in.f32") +
                    " " + (d / "out.f32");
  for (int64_t s : x.shape()) cmd += " " + std::to_string(s);
  BOOST_REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, "the ONNX check or evaluation failed: " << cmd);
  const std::string bytes = io::read_file(d / "out.f32");
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), v.size() * 4);
  BOOST_REQUIRE_EQUAL(static_cast<int64_t>(v.size()), shape_numel(out_shape));
  return Tensor::from_vector(v, out_shape);
}

bool exporter_missing() {
  if (compression::onnx_export_available()) return false;
  BOOST_TEST_MESSAGE("skipped: built without libonnx-dev");
  return true;
}

// The model's output in eval mode, without gradients.
Tensor eval_forward(nn::Module& model, const Tensor& x) {
  NoGradGuard ng;
  model.eval();
  return model(x);
}

double max_abs(const Tensor& a) {
  double m = 0;
  for (float v : a.to_vector()) m = std::max(m, static_cast<double>(std::abs(v)));
  return m;
}

// libonnx's own checks: the full checker, then strict shape inference; returns the model.
void check_with_libonnx(const std::string& path, const Shape& out_shape) {
#ifdef SHRINK_HAVE_ONNX
  onnx::ModelProto m;
  std::ifstream f(path, std::ios::binary);
  BOOST_REQUIRE(m.ParseFromIstream(&f));
  BOOST_CHECK_NO_THROW(onnx::checker::check_model(m));
  onnx::ShapeInferenceOptions opts{true, 1, false};  // check types, strict errors
  BOOST_CHECK_NO_THROW(onnx::shape_inference::InferShapes(m, onnx::OpSchemaRegistry::Instance(), opts));
  const auto& dims = m.graph().output(0).type().tensor_type().shape();
  BOOST_REQUIRE_EQUAL(dims.dim_size(), static_cast<int>(out_shape.size()));
  BOOST_TEST(dims.dim(0).dim_param() == "N");
  for (size_t i = 1; i < out_shape.size(); ++i) BOOST_TEST(dims.dim(static_cast<int>(i)).dim_value() == out_shape[i]);
#else
  (void)path;
  (void)out_shape;
#endif
}

}  // namespace

BOOST_AUTO_TEST_SUITE(onnx_export)

BOOST_AUTO_TEST_CASE(float_models_match_shrink) {
  if (exporter_missing()) return;
  Dir d;
  for (const char* name : {"mlp", "lenet5", "vgg_small", "resnet20"}) {
    BOOST_TEST_CONTEXT(name) {
      manual_seed(11);
      auto model = models::make_model(name);
      model->eval();
      // Non-trivial batch-norm statistics, so that the export must carry them.
      for (auto& [n, b] : model->named_buffers())
        if (n.find("running_var") != std::string::npos) b.copy_(add(rand(b.shape()), 0.5f));
        else if (n.find("running_mean") != std::string::npos) b.copy_(randn(b.shape()) * 0.1f);
      const Tensor x = randn({3, 1, 28, 28});
      const Tensor expected = eval_forward(*model, x);
      const std::string path = d / (std::string(name) + ".onnx");
      compression::OnnxExportReport r = compression::export_onnx(*model, path, {{1, 1, 28, 28}});
      BOOST_TEST(r.nodes > 0);
      check_with_libonnx(path, expected.shape());
      Tensor got = numpy_run(d, path, x, expected.shape());
      if (got.defined()) BOOST_TEST(max_abs(sub(got, expected)) <= 1e-4 * std::max(1.0, max_abs(expected)));
    }
  }
}

BOOST_AUTO_TEST_CASE(a_sped_up_model_exports_its_new_sizes) {
  if (exporter_missing()) return;
  Dir d;
  manual_seed(5);
  auto model = models::make_model("vgg_small");
  const Tensor probe = randn({2, 1, 28, 28});
  compression::Masks masks;
  Tensor m = Tensor::ones({32, 1, 3, 3});
  for (int64_t o = 0; o < 32; o += 2) slice(m, 0, o, o + 1).fill_(0.f);  // every other filter of conv1
  masks["features.conv1.weight"] = m;
  compression::speedup_model(*model, masks, {nn::Value(probe)});
  const Tensor expected = eval_forward(*model, probe);
  compression::export_onnx(*model, d / "small.onnx", {{1, 1, 28, 28}});
#ifdef SHRINK_HAVE_ONNX
  onnx::ModelProto p;
  std::ifstream f(d / "small.onnx", std::ios::binary);
  BOOST_REQUIRE(p.ParseFromIstream(&f));
  bool found = false;
  for (const auto& init : p.graph().initializer())
    if (init.name() == "features.conv2.weight") {
      found = true;
      BOOST_TEST(init.dims(1) == 16);  // conv2 sees 16 of 32 channels
    }
  BOOST_TEST(found);
#endif
  Tensor got = numpy_run(d, d / "small.onnx", probe, expected.shape());
  if (got.defined()) BOOST_TEST(max_abs(sub(got, expected)) <= 1e-4 * std::max(1.0, max_abs(expected)));
}

BOOST_AUTO_TEST_CASE(a_calibrated_model_exports_qdq_pairs_that_compute_its_fake_quantization) {
  if (exporter_missing()) return;
  Dir d;
  manual_seed(7);
  auto model = models::make_model("lenet5");
  // int8 symmetric per-output-channel weights (narrow range [-127, 127]: the exporter must clamp),
  // uint8 affine inputs per tensor and one output.
  const boost::json::value config = boost::json::parse(R"([
    {"op_types": ["Conv2d", "Linear"], "target_names": ["weight"], "quant_dtype": "int8", "quant_scheme": "symmetric", "granularity": "out_channel"},
    {"op_types": ["Conv2d", "Linear"], "target_names": ["_input_0"], "quant_dtype": "uint8", "quant_scheme": "affine"},
    {"op_names": ["fc1"], "target_names": ["_output_0"], "quant_dtype": "uint8", "quant_scheme": "affine"}])");
  compression::PtqQuantizer q(model, config);
  for (int i = 0; i < 3; ++i) q.calibrate({nn::Value(randn({16, 1, 28, 28}))});
  const compression::CalibrationConfig calibration = q.finish_calibration();
  const Tensor x = randn({4, 1, 28, 28});
  const Tensor expected = eval_forward(*model, x);
  q.unwrap();
  compression::OnnxExportOptions o{{1, 1, 28, 28}, &calibration};
  const compression::OnnxExportReport r = compression::export_onnx(*model, d / "q.onnx", o);
  BOOST_TEST(r.qdq.size() == 5u + 5u + 1u);
  BOOST_TEST(r.kept_float.empty());
  check_with_libonnx(d / "q.onnx", expected.shape());

  // A 4-bit target has no QDQ form: it stays float, and the report says why.
  compression::CalibrationConfig with_int4 = calibration;
  compression::TargetCalibration int4 = calibration.at("fc1._output_0");
  int4.module = "fc2";
  int4.quant_dtype = "uint4";
  int4.quant_bits = 4;
  int4.qmax = 15;
  with_int4["fc2._output_0"] = int4;
  compression::OnnxExportOptions o4{{1, 1, 28, 28}, &with_int4};
  const compression::OnnxExportReport r4 = compression::export_onnx(*model, d / "q4.onnx", o4);
  BOOST_TEST(r4.qdq.size() == r.qdq.size());
  BOOST_REQUIRE_EQUAL(r4.kept_float.size(), 1u);
  BOOST_TEST(r4.kept_float[0].first == "fc2._output_0");
  BOOST_TEST(r4.kept_float[0].second.find("uint4") != std::string::npos);
  check_with_libonnx(d / "q4.onnx", expected.shape());
  Tensor got = numpy_run(d, d / "q.onnx", x, expected.shape());
  if (got.defined()) {
    // The same grids and rounding: equal up to float summation order (measured 1.5e-8 of 0.17;
    // an activation landing exactly on a rounding tie could differ by one step, these inputs have none).
    BOOST_TEST(max_abs(sub(got, expected)) <= 1e-5 * std::max(1.0, max_abs(expected)));
  }
}

BOOST_AUTO_TEST_CASE(narrow_grids_clip_activations_and_clamp_weights_as_fake_quantization_does) {
  if (exporter_missing()) return;
  Dir d;
  manual_seed(9);
  auto model = models::make_model("lenet5");
  // Symmetric int8 is [-127, 127], narrower than ONNX's saturation: inputs per tensor (conv1, fc
  // layers) and per channel (conv2) go through Min/Max; weights per output channel are clamped.
  compression::PtqQuantizer q(model, boost::json::parse(R"([
    {"op_names": ["conv2"], "target_names": ["_input_0"], "quant_dtype": "int8", "quant_scheme": "symmetric", "granularity": "per_channel"},
    {"op_types": ["Conv2d", "Linear"], "target_names": ["_input_0"], "quant_dtype": "int8", "quant_scheme": "symmetric"},
    {"op_types": ["Conv2d", "Linear"], "target_names": ["weight"], "quant_dtype": "int8", "quant_scheme": "symmetric", "granularity": "out_channel"}])"));
  q.calibrate({nn::Value(randn({8, 1, 28, 28}))});
  const compression::CalibrationConfig calibration = q.finish_calibration();
  BOOST_REQUIRE_EQUAL(calibration.at("conv2._input_0").scale.numel(), 6);  // one per channel
  {
    NoGradGuard ng;  // weights and inputs now reach past their grids: the clamps decide the result
    Tensor w = model->find("conv2")->param("weight");
    w.copy_(mul(w, 1.5f));
  }
  const Tensor x = mul(randn({4, 1, 28, 28}), 3.f);
  const Tensor expected = eval_forward(*model, x);
  q.unwrap();
  compression::OnnxExportOptions o{{1, 1, 28, 28}, &calibration};
  const compression::OnnxExportReport r = compression::export_onnx(*model, d / "n.onnx", o);
  BOOST_TEST(r.qdq.size() == 10u);
  check_with_libonnx(d / "n.onnx", expected.shape());
#ifdef SHRINK_HAVE_ONNX
  onnx::ModelProto p;
  std::ifstream f(d / "n.onnx", std::ios::binary);
  BOOST_REQUIRE(p.ParseFromIstream(&f));
  int min_nodes = 0;
  for (const auto& n : p.graph().node()) min_nodes += n.op_type() == "Min";
  BOOST_TEST(min_nodes == 5);  // one per calibrated input
#endif
  Tensor got = numpy_run(d, d / "n.onnx", x, expected.shape());
  if (got.defined()) BOOST_TEST(max_abs(sub(got, expected)) <= 1e-5 * std::max(1.0, max_abs(expected)));
}

BOOST_AUTO_TEST_CASE(weights_on_an_in_channel_grid_clamp_along_their_own_axis) {
  if (exporter_missing()) return;
  Dir d;
  manual_seed(8);
  auto model = models::make_model("mlp");
  // Symmetric int8 (range [-127, 127]) per input column of each Linear: the exporter clamps every
  // weight to its own column's range.
  compression::PtqQuantizer q(model, boost::json::parse(R"([{"op_types": ["Linear"], "target_names": ["weight"],
      "quant_dtype": "int8", "quant_scheme": "symmetric", "granularity": "in_channel"}])"));
  q.calibrate({nn::Value(randn({4, 1, 28, 28}))});
  const compression::CalibrationConfig calibration = q.finish_calibration();
  const Tensor x = randn({3, 1, 28, 28});
  const Tensor expected = eval_forward(*model, x);
  q.unwrap();
  compression::OnnxExportOptions o{{1, 1, 28, 28}, &calibration};
  const compression::OnnxExportReport r = compression::export_onnx(*model, d / "c.onnx", o);
  BOOST_TEST(r.qdq.size() == 3u);
  check_with_libonnx(d / "c.onnx", expected.shape());
  Tensor got = numpy_run(d, d / "c.onnx", x, expected.shape());
  if (got.defined()) BOOST_TEST(max_abs(sub(got, expected)) <= 1e-5 * std::max(1.0, max_abs(expected)));
}

BOOST_AUTO_TEST_CASE(what_cannot_be_exported_is_listed_and_nothing_is_written) {
  if (exporter_missing()) return;
  Dir d;
  auto model = models::make_model("tiny_transformer");
  try {
    compression::export_onnx(*model, d / "t.onnx", {{1, 1, 28, 28}});
    BOOST_FAIL("no error");
  } catch (const Error& e) {
    const std::string m = e.what();
    BOOST_TEST(m.find("ONNX export refused, nothing was written") != std::string::npos, m);
    BOOST_TEST(m.find("LayerNorm") != std::string::npos, m);
  }
  BOOST_TEST(!fs::exists(d / "t.onnx"));
}

BOOST_AUTO_TEST_SUITE_END()
