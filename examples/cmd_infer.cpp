// `shrink infer`: a model's Fashion-MNIST test accuracy and samples/s as deployed — in float, fake-
// quantized as a saved calibration says (--calibration, or the one attached to an export bundle
// given as --model-file; --float ignores that), or with real int8 kernels (--int8:
// compression/quantization/int8_model.h). The int8 run lists the layers it converted, the batch
// norms and ReLUs it folded, and why any Conv2d or Linear stayed in float.
#include <boost/json.hpp>
#include <boost/program_options.hpp>
#include <iomanip>
#include <iostream>

#include "compression/quantization/calibration_io.h"
#include "compression/quantization/int8_model.h"
#include "compression/quantization/quantizer_factory.h"
#include "examples/cli.h"
#include "examples/compress/bundle.h"
#include "examples/fashion_session.h"
#include "framework/core/random.h"
#include "framework/data/fashion_mnist.h"
#include "framework/io/safetensors.h"

namespace po = boost::program_options;

namespace shrink::cli {

int cmd_infer(const std::vector<std::string>& args) {
  ModelSource source;
  std::string calibration_path, predictions_path;
  TrainOptions topts;
  po::options_description desc("shrink infer options");
  desc.add_options()("help,h", "show this help");
  add_model_source_options(desc, source);
  desc.add_options()
      ("calibration", po::value(&calibration_path), "a calibration from shrink quantize: run fake-quantized (default: an export bundle's own)")
      ("float", "ignore an export bundle's calibration: run in float")
      ("int8", "run the calibrated layers with int8 kernels (needs a calibration; CPU only)")
      ("save-predictions", po::value(&predictions_path), "write each test image's predicted class (int64 'pred')")
      ("json", "print one JSON object on stdout");
  add_train_options(desc, topts);
  po::variables_map vm;
  if (auto status = parse_args(args, desc, vm, "infer")) return *status;
  const bool json = vm.count("json") > 0, int8 = vm.count("int8") > 0;
  std::ostream& log = json ? std::cerr : std::cout;
  if (int8 && vm.count("float")) {
    std::cerr << "shrink infer: give --int8 or --float, not both\n";
    return 2;
  }
  const Device device = apply_runtime_options(topts);
  if (int8 && device != Device::CPU) {
    std::cerr << "shrink infer: --int8 runs on the CPU only\n";
    return 2;
  }
  manual_seed(topts.seed);
  std::shared_ptr<nn::Module> model = load_model_source(source, "infer");
  if (!model) return 2;
  compression::CalibrationConfig calibration;
  try {
    if (!calibration_path.empty()) calibration = compression::load_calibration(calibration_path);
    else if (!source.model_file.empty() && !vm.count("float"))  // an export bundle carries its own
      calibration = load_bundle_attachments(source.model_file).calibration;
  } catch (const Error& e) {
    std::cerr << "shrink infer: " << e.what() << "\n";
    return 2;
  }
  if (int8 && calibration.empty()) {
    std::cerr << "shrink infer: --int8 needs a calibration (--calibration, or a model file that holds one)\n";
    return 2;
  }
  model->to(device);
  model->eval();
  // One batch of test images to trace and (fake quantization) to set up the quantizer with.
  const Tensor probe = data::load_fashion_mnist(topts.data_dir, false, 8)->inputs().to(device);

  std::unique_ptr<compression::Quantizer> fake;
  std::unique_ptr<compression::Int8Model> converted;
  boost::json::object out;
  try {
    if (int8) {
      converted = std::make_unique<compression::Int8Model>(*model, calibration, std::vector<nn::Value>{probe});
      const compression::Int8Report& r = converted->report();
      boost::json::array layers, folded, linked;
      boost::json::object kept;
      for (const auto& name : r.converted) layers.push_back(boost::json::string(name));
      for (const auto& name : r.folded) folded.push_back(boost::json::string(name));
      for (const auto& [from, to] : r.linked) linked.push_back(boost::json::array{from.c_str(), to.c_str()});
      for (const auto& [name, why] : r.kept_float) {
        kept[name] = why;
        log << "kept in float: " << name << " (" << why << ")\n";
      }
      log << "int8: " << r.converted.size() << " layers, " << r.folded.size() << " batch norms and ReLUs folded, "
          << r.linked.size() << " convolutions handing bytes to the next\n";
      out["int8_layers"] = layers;
      out["folded"] = folded;
      out["linked"] = linked;
      out["kept_float"] = kept;
    } else if (!calibration.empty()) {
      fake = compression::quantizer_from_calibration(model, calibration, {probe});
    }
  } catch (const Error& e) {
    std::cerr << "shrink infer: " << e.what() << "\n";
    return 2;
  }
  const TestResult r = evaluate_test_set(*model, topts, device);
  if (!predictions_path.empty())
    io::save_safetensors(predictions_path,
                         {{"pred", Tensor::from_vector_i64(r.predictions, {static_cast<int64_t>(r.predictions.size())})}});
  const char* mode = int8 ? "int8" : (fake ? "fake_quant" : "float");
  log << mode << ": test accuracy " << std::fixed << std::setprecision(4) << r.accuracy << " on " << r.samples
      << " images, " << std::setprecision(0) << r.samples_per_s << " samples/s at batch " << topts.batch << "\n";
  if (json) {
    out["mode"] = mode;
    out["test_acc"] = r.accuracy;
    out["samples"] = r.samples;
    out["samples_per_s"] = r.samples_per_s;
    out["batch"] = topts.batch;
    std::cout << boost::json::serialize(out) << "\n";
  }
  return 0;
}

}  // namespace shrink::cli
