// `shrink quantize`: quantizes a zoo model with a config list and one of the quantizers, and saves
// the calibration (compression/quantization/calibration_io.h).
//   PTQ:    --steps eval-mode forwards over the calibration batches, then scale/zero point once.
//   QAT:    one tracking forward (track_forward) on the first batch in train mode, then --steps
//           SGD steps (--lr; plain SGD unless --momentum/--weight-decay) over the batches in
//           order, as NNI's compress(max_steps).
//   others: --steps training steps (or --epochs on Fashion-MNIST); naive needs no data.
// Calibration batches: --calib-data (safetensors "calib_x.<i>" [+ "calib_y.<i>" int64 labels], in
// that order; labels are needed to train) or else the Fashion-MNIST training set (seeded order).
// --eval-input FILE (tensor "x"): one eval-mode forward afterwards; --save-outputs writes
// "fq_out" (quantized) and "float_out" (the same model unquantized).
#include <boost/json.hpp>
#include <boost/program_options.hpp>
#include <iomanip>
#include <iostream>

#include "compression/config/config_error.h"
#include "compression/quantization/calibration_io.h"
#include "compression/quantization/ptq_quantizer.h"
#include "compression/quantization/quantizer_factory.h"
#include "examples/cli.h"
#include "examples/compression_run.h"
#include "examples/fashion_session.h"
#include "framework/core/random.h"
#include "framework/io/atomic_file.h"
#include "framework/io/safetensors.h"
#include "framework/ops/ops.h"
#include "models/zoo.h"

namespace po = boost::program_options;

namespace shrink::cli {

namespace {

struct CalibData {
  std::vector<Tensor> x, y;
};

CalibData load_calib_data(const std::string& path) {
  std::map<std::string, Tensor> t = io::load_tensors(path);
  CalibData d;
  for (size_t i = 0;; ++i) {
    auto x = t.find("calib_x." + std::to_string(i));
    if (x == t.end()) break;
    d.x.push_back(x->second);
    auto y = t.find("calib_y." + std::to_string(i));
    if (y != t.end()) {
      SHRINK_CHECK(y->second.dtype() == DType::I64, path, ": calib_y.", i, " must be int64 labels");
      d.y.push_back(y->second);
    }
  }
  SHRINK_CHECK(!d.x.empty(), path, ": no tensor 'calib_x.0'");
  SHRINK_CHECK(d.y.empty() || d.y.size() == d.x.size(), path, ": calib_y.<i> must be given for every calib_x.<i>");
  return d;
}

boost::json::array values(const Tensor& t) {
  boost::json::array a;
  for (float v : t.to_vector()) a.push_back(boost::json::parse(json_number(v)));
  return a;
}

}  // namespace

int cmd_quantize(const std::vector<std::string>& args) {
  std::string model_name, weights, config_path, calib_path, calib_out, eval_path, outputs_path;
  compression::QuantizerOptions choice;
  std::string& quantizer_name = choice.name;
  int64_t steps, epochs;
  TrainOptions topts;
  po::options_description desc("shrink quantize options");
  desc.add_options()
      ("help,h", "show this help")
      ("model", po::value(&model_name)->required(), "mlp | lenet5 | vgg_small | resnet20 | tiny_transformer")
      ("weights", po::value(&weights), "load these weights (.safetensors) first")
      ("config", po::value(&config_path)->required(), "config list (JSON file)")
      ("quantizer", po::value(&quantizer_name)->required(), compression::quantizer_names_help())
      ("observer", po::value(&choice.observer)->default_value("minmax"), "ptq range observer: minmax | percentile | mse | kl")
      ("percentile", po::value(&choice.percentile)->default_value(99.99), "the percentile observer's p")
      ("bias-correction", po::bool_switch(&choice.bias_correction), "ptq: correct each bias for its weight's quantization error")
      ("calib-data", po::value(&calib_path), "calibration batches (safetensors calib_x.<i> [, calib_y.<i>])")
      ("steps", po::value(&steps)->default_value(10), "calibration forwards (ptq) or training steps")
      ("epochs", po::value(&epochs)->default_value(0), "training quantizers: epochs on Fashion-MNIST instead")
      ("quant-start-step", po::value(&choice.start_step)->default_value(0), "qat: steps before quantization starts")
      ("save-calibration", po::value(&calib_out)->required(), "write the calibration here (.safetensors + .json)")
      ("eval-input", po::value(&eval_path), "a safetensors tensor 'x' to run once after quantizing")
      ("save-outputs", po::value(&outputs_path), "write fq_out and float_out of --eval-input here")
      ("json", "print one JSON object on stdout");
  // Quantizers train with plain SGD at --lr (NNI's compress(max_steps) with the user's optimizer);
  // --momentum and --weight-decay add to it.
  topts.lr = 0.01;
  topts.momentum = 0.0;
  topts.weight_decay = 0.0;
  add_train_options(desc, topts);
  add_checkpoint_options(desc, topts);
  po::variables_map vm;
  if (auto status = parse_args(args, desc, vm, "quantize")) return *status;
  const bool json = vm.count("json") > 0;
  std::ostream& log = json ? std::cerr : std::cout;
  if (choice.observer != "minmax" && quantizer_name != "ptq") {
    std::cerr << "shrink quantize: --observer applies to --quantizer ptq only\n";
    return 2;
  }
  if (!outputs_path.empty() && eval_path.empty()) {
    std::cerr << "shrink quantize: --save-outputs needs --eval-input\n";
    return 2;
  }
  const Device device = apply_runtime_options(topts);
  manual_seed(topts.seed);
  auto model = load_model(model_name, weights);
  std::optional<boost::json::value> read = read_config_file(config_path, "quantize");
  if (!read) return 2;
  const boost::json::value& config = *read;

  // The trainer: on the calibration batches in order, or on Fashion-MNIST.
  std::shared_ptr<train::Trainer> trainer;
  FashionSession session;
  const bool fashion = calib_path.empty();
  Tensor first_batch;
  if (fashion) {
    // Training for --epochs follows a cosine learning-rate schedule over them, as shrink prune's
    // fine-tuning does.
    session = make_fashion_session(model, topts, device, quantizer_name == "ptq" ? 0 : epochs, log);
    trainer = session.trainer;
    data::Batch b;
    trainer->train_loader()->start_epoch();
    trainer->train_loader()->next(b);
    first_batch = b.inputs.to(device);
  } else {
    CalibData d = load_calib_data(calib_path);
    first_batch = d.x.front().to(device);
    model->to(device);
    Tensor xs = cat(d.x, 0);
    Tensor ys = d.y.empty() ? Tensor::zeros({xs.size(0)}, DType::I64) : cat(d.y, 0);
    auto ds = std::make_shared<data::TensorDataset>(xs, ys);
    auto loader = std::make_shared<data::DataLoader>(ds, d.x.front().size(0), false, topts.seed);
    auto opt = std::make_shared<optim::SGD>(model->parameters(), static_cast<float>(topts.lr),
                                            static_cast<float>(topts.momentum), static_cast<float>(topts.weight_decay));
    trainer = std::make_shared<train::Trainer>(model, opt, loader);
    trainer->set_device(device);
    trainer->set_log(&log, false);
    apply_checkpoint_options(*trainer, topts);
    const bool trains = quantizer_name != "ptq" && quantizer_name != "naive";
    if (trains && d.y.empty()) {
      std::cerr << "shrink quantize: " << calib_path << ": --quantizer " << quantizer_name
                << " trains and needs labels calib_y.<i>\n";
      return 2;
    }
  }

  std::unique_ptr<compression::Quantizer> q;
  try {
    q = compression::make_quantizer(choice, model, config, *trainer);
  } catch (const compression::config::ConfigError& e) {
    std::cerr << "shrink quantize: " << e.what() << "\n";
    return 2;
  } catch (const Error& e) {
    std::cerr << "shrink quantize: " << e.what() << "\n";
    return 2;
  }
  for (const auto& w : q->warnings()) log << "warning: " << w << "\n";

  const compression::CalibrationConfig calib =
      run_quantizer(*q, quantizer_name, *model, first_batch, steps, fashion ? epochs : 0);
  compression::save_calibration(calib_out, calib);
  log << "quantized with " << quantizer_name << ": " << calib.size() << " targets; calibration saved to " << calib_out
      << "\n";

  const double acc = fashion ? trainer->evaluate().accuracy : -1.0;
  if (!eval_path.empty()) {
    std::map<std::string, Tensor> in = io::load_tensors(eval_path);
    SHRINK_CHECK(in.count("x"), eval_path, ": no tensor 'x'");
    Tensor x = in.at("x").to(device);
    model->eval();
    NoGradGuard ng;
    Tensor fq = (*model)(x).to(Device::CPU);
    q->unwrap();
    Tensor fl = (*model)(x).to(Device::CPU);
    if (!outputs_path.empty()) io::save_safetensors(outputs_path, {{"fq_out", fq}, {"float_out", fl}});
  }

  if (json) {
    boost::json::object targets;
    for (const auto& [key, c] : calib)
      targets[key] = boost::json::object{{"quant_dtype", c.quant_dtype}, {"quant_scheme", c.quant_scheme},
                                         {"qmin", c.qmin}, {"qmax", c.qmax}, {"scale", values(c.scale)},
                                         {"zero_point", values(c.zero_point)}};
    boost::json::object out{{"targets", targets}, {"quantizer", quantizer_name}};
    if (acc >= 0) out["test_acc"] = acc;
    std::cout << boost::json::serialize(out) << "\n";
  } else if (acc >= 0) {
    std::cout << "test accuracy " << std::fixed << std::setprecision(4) << acc << "\n";
  }
  return 0;
}

}  // namespace shrink::cli
