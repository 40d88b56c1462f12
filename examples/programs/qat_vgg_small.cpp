// Example: quantization-aware training of vgg_small, then real int8 inference.
//
//   build/bin/example_qat_vgg_small [--epochs 1] [--limit N]
//
// 1. train vgg_small for one epoch;
// 2. QAT: int8 weights per output channel (symmetric), uint8 layer inputs per tensor; the
//    quantizer refreshes its scales on every training forward and trains through the rounding;
// 3. the calibration it returns drives the int8 kernels (Int8Model): the same accuracy, faster;
// 4. check that the int8 model agrees with the fake-quantized one.
#include <boost/json.hpp>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <string>

#include "compression/quantization/int8_model.h"
#include "compression/quantization/qat_quantizer.h"
#include "compression/quantization/quantizer_factory.h"
#include "examples/programs/example_args.h"
#include "framework/core/random.h"
#include "framework/data/fashion_mnist.h"
#include "framework/ops/ops.h"
#include "framework/optim/optimizer.h"
#include "framework/train/trainer.h"
#include "models/zoo.h"

using namespace shrink;

int main(int argc, char** argv) {
  const int64_t epochs = examples::int_arg(argc, argv, "--epochs", 1);
  const int64_t limit = examples::int_arg(argc, argv, "--limit", -1);
  const std::string dir = examples::fashion_mnist_dir();
  if (dir.empty()) return 77;

  // 1. The float model.
  manual_seed(1);
  auto model = models::make_model("vgg_small");
  auto optimizer = std::make_shared<optim::SGD>(model->parameters(), 0.05f, 0.9f, 5e-4f);
  auto train_loader = std::make_shared<data::DataLoader>(data::load_fashion_mnist(dir, true, limit), 64, true, 1);
  auto test_set = data::load_fashion_mnist(dir, false, 2000);
  auto test_loader = std::make_shared<data::DataLoader>(test_set, 256, false, 1);
  train::Trainer trainer(model, optimizer, train_loader, test_loader);
  trainer.train(1);
  std::cout << std::fixed << std::setprecision(4) << "float:      test accuracy " << trainer.evaluate().accuracy << "\n";

  // 2. QAT at a tenth of the learning rate.
  optimizer->set_lr(0.005f);
  const boost::json::value config = boost::json::parse(R"([
    {"op_types": ["Conv2d", "Linear"], "target_names": ["weight"], "quant_dtype": "int8",
     "quant_scheme": "symmetric", "granularity": "out_channel"},
    {"op_types": ["Conv2d", "Linear"], "target_names": ["_input_0"], "quant_dtype": "uint8",
     "quant_scheme": "affine"}
  ])");
  auto quantizer = std::make_unique<compression::QATQuantizer>(model, config, trainer);
  const compression::CalibrationConfig calibration = quantizer->compress(-1, epochs);
  const double fake_quant = trainer.evaluate().accuracy;
  std::cout << "QAT:        test accuracy " << fake_quant << " (fake-quantized, " << calibration.size()
            << " targets calibrated)\n";
  quantizer.reset();  // the float model again, with its trained weights

  // 3. Int8 kernels from the calibration (eval mode, CPU).
  model->eval();
  const Tensor probe = slice(test_set->inputs(), 0, 0, 8);
  compression::Int8Model int8(*model, calibration, {nn::Value(probe)});
  std::cout << "int8:       " << int8.report().converted.size() << " layers on int8 kernels, "
            << int8.report().folded.size() << " batch norms and ReLUs folded into them\n";
  const double int8_accuracy = trainer.evaluate().accuracy;
  std::cout << "int8:       test accuracy " << int8_accuracy << "\n";

  // 4. Integer arithmetic computes what fake quantization computes (up to float rounding).
  return std::abs(int8_accuracy - fake_quant) <= 0.003 ? 0 : 1;
}
