// `shrink quantize` end to end on explicit calibration batches (no dataset needed): the JSON, the
// calibration files, --eval-input/--save-outputs, and bad input exit codes. The expectations come
// from the weights the test wrote (per-channel scales by hand) and from the same PTQ run in process.
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "compression/cli_run.h"
#include "compression/quantization/calibration_io.h"
#include "compression/quantization/ptq_quantizer.h"
#include "framework/io/safetensors.h"
#include "framework/shrink.h"
#include "models/zoo.h"

namespace fs = std::filesystem;
using namespace shrink;

namespace {

shrink::testing::CliResult run(const std::string& args) { return shrink::testing::run_cli("quantize", args); }

const char* kConfig = R"([{"op_types": ["Conv2d", "Linear"], "target_names": ["weight", "_output_"],
                           "quant_dtype": "int8", "target_settings": {"weight": {"granularity": "out_channel"}}}])";

struct Files {
  fs::path dir = fs::temp_directory_path() / ("shrink_quantize_" + std::to_string(::getpid()));
  std::string weights, calib, config, eval, outputs, calibration;
  std::vector<Tensor> batches;
  Tensor x;
  Files() {
    fs::create_directories(dir);
    weights = (dir / "w.safetensors").string();
    calib = (dir / "calib.safetensors").string();
    config = (dir / "cfg.json").string();
    eval = (dir / "x.safetensors").string();
    outputs = (dir / "out.safetensors").string();
    calibration = (dir / "calibration.safetensors").string();
    manual_seed(7);
    auto model = models::make_model("lenet5");
    io::save_safetensors(weights, model->state_dict());
    Generator g(3);
    batches = {randn({4, 1, 28, 28}, g), randn({4, 1, 28, 28}, g)};
    io::save_safetensors(calib, {{"calib_x.0", batches[0]}, {"calib_x.1", batches[1]}});
    x = randn({3, 1, 28, 28}, g);
    io::save_safetensors(eval, {{"x", x}});
    std::ofstream(config) << kConfig;
  }
  ~Files() { fs::remove_all(dir); }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(cli_quantize)

BOOST_AUTO_TEST_CASE(ptq_calibration_and_outputs) {
  Files f;
  shrink::testing::CliResult r = run("--model lenet5 --weights " + f.weights + " --config " + f.config + " --quantizer ptq --calib-data " +
                 f.calib + " --steps 2 --save-calibration " + f.calibration + " --eval-input " + f.eval +
                 " --save-outputs " + f.outputs + " --json");
  BOOST_REQUIRE_EQUAL(r.status, 0);
  boost::json::value v = boost::json::parse(r.out);
  BOOST_TEST(v.at("targets").as_object().size() == 10u);  // 5 Conv2d/Linear x (weight, _output_0)
  BOOST_TEST(fs::exists(compression::calibration_sidecar_path(f.calibration)));
  compression::CalibrationConfig c = compression::load_calibration(f.calibration);

  // conv1.weight: one scale per output channel, max|w_c| / 127.
  auto model = models::make_model("lenet5");
  model->load_state_dict(io::load_tensors(f.weights));
  Tensor w = model->find("conv1")->param("weight");
  std::vector<float> wv = w.to_vector(), scale = c.at("conv1.weight").scale.to_vector();
  const int64_t per = w.numel() / w.size(0);
  BOOST_REQUIRE_EQUAL(static_cast<int64_t>(scale.size()), w.size(0));
  for (int64_t o = 0; o < w.size(0); ++o) {
    float amax = 0;
    for (int64_t i = 0; i < per; ++i) amax = std::max(amax, std::fabs(wv[o * per + i]));
    BOOST_TEST(scale[o] == amax / 127.f, boost::test_tools::tolerance(1e-6f));
  }

  // The same PTQ in process over the same batches gives the same activation ranges, bit for bit.
  compression::PtqQuantizer q(model, boost::json::parse(kConfig));
  for (const Tensor& b : f.batches) q.calibrate({nn::Value(b)});
  compression::CalibrationConfig mine = q.finish_calibration();
  BOOST_TEST(mine.at("fc3._output_0").scale.to_vector() == c.at("fc3._output_0").scale.to_vector(),
             boost::test_tools::per_element());

  // float_out is the unquantized model; fq_out the quantized one (close to it at int8, not equal).
  auto out = io::load_tensors(f.outputs);
  model->eval();
  Tensor fq_mine;
  {
    NoGradGuard ng;
    fq_mine = (*model)(f.x);
  }
  BOOST_TEST(out.at("fq_out").to_vector() == fq_mine.to_vector(), boost::test_tools::per_element());
  q.unwrap();
  Tensor float_mine;
  {
    NoGradGuard ng;
    float_mine = (*model)(f.x);
  }
  BOOST_TEST(out.at("float_out").to_vector() == float_mine.to_vector(), boost::test_tools::per_element());
  double diff = 0, norm = 0;
  std::vector<float> a = out.at("fq_out").to_vector(), b = out.at("float_out").to_vector();
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (a[i] - b[i]) * (a[i] - b[i]);
    norm += b[i] * b[i];
  }
  BOOST_TEST(diff > 0.0);
  BOOST_TEST(std::sqrt(diff / norm) < 0.05);
}

BOOST_AUTO_TEST_CASE(bad_input_exits_2) {
  Files f;
  const std::string base = "--model lenet5 --config " + f.config + " --calib-data " + f.calib +
                           " --save-calibration " + f.calibration;
  BOOST_TEST(run(base + " --quantizer nope").status == 2);
  BOOST_TEST(run(base + " --quantizer qat --observer kl").status == 2);  // observers are PTQ's
  BOOST_TEST(run(base + " --quantizer qat").status == 2);                // training needs calib_y labels
  BOOST_TEST(run(base + " --quantizer ptq --observer median").status == 2);
  std::ofstream(f.config) << R"([{"op_types": ["Conv2d"], "quant_dtype": "int99"}])";
  BOOST_TEST(run(base + " --quantizer ptq").status == 2);
  BOOST_TEST(!fs::exists(f.calibration));  // nothing written on failure
}

BOOST_AUTO_TEST_SUITE_END()
