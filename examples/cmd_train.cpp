// `shrink train`: trains a zoo model on Fashion-MNIST with SGD (momentum 0.9) and prints one line
// per epoch; --json makes the last stdout line a JSON object for scripts and benchmarks.
#include <boost/program_options.hpp>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "examples/cli.h"
#include "examples/fashion_session.h"
#include "framework/core/parallel.h"
#include "framework/core/random.h"
#include "framework/io/safetensors.h"
#include "models/zoo.h"

namespace po = boost::program_options;

namespace shrink::cli {

int cmd_train(const std::vector<std::string>& args) {
  std::string model_name, save;
  int64_t epochs;
  TrainOptions opts;
  po::options_description desc("shrink train options");
  desc.add_options()
      ("help,h", "show this help")
      ("model", po::value(&model_name)->required(), "mlp | lenet5 | vgg_small | resnet20 | tiny_transformer")
      ("epochs", po::value(&epochs)->default_value(3), "training epochs")
      ("save", po::value(&save), "write the trained weights to this .safetensors file")
      ("json", "print a JSON summary as the last line of stdout");
  add_train_options(desc, opts);
  add_checkpoint_options(desc, opts);
  po::variables_map vm;
  if (auto status = parse_args(args, desc, vm, "train")) return *status;
  if (epochs < 0) {
    std::cerr << "shrink train: --epochs must be >= 0\n";
    return 2;
  }
  const Device device = apply_runtime_options(opts);
  const bool json = vm.count("json") > 0;

  manual_seed(opts.seed);
  FashionSession s = make_fashion_session(models::make_model(model_name), opts, device, epochs, std::cout);
  std::cout << "training " << model_name << " on Fashion-MNIST (" << s.train_set->size()
            << " images), " << epochs << " epochs, batch " << opts.batch << ", lr " << opts.lr
            << ", seed " << opts.seed << ", " << num_threads() << " threads" << ranks_note(*s.trainer) << "\n";
  double first_loss = NAN;  // the loss of step 1: a device-independent check of the first forward
  s.trainer->on_after_step([&first_loss](train::Trainer& t) {
    if (t.global_step() == 1) first_loss = t.current_loss().item();
  });
  auto history = s.trainer->train(epochs);
  double test_acc = history.empty() ? s.trainer->evaluate().accuracy : history.back().test_accuracy;
  double sps = 0.0;
  for (auto& h : history) sps += h.samples_per_s;
  if (!history.empty()) sps /= static_cast<double>(history.size());
  if (!save.empty()) {
    s.model->to(Device::CPU);
    io::save_safetensors(save, s.model->state_dict());
    std::cout << "saved weights to " << save << "\n";
  }
  if (json) {
    std::cout << "{\"model\": \"" << model_name << "\", \"epochs\": " << epochs
              << ", \"seed\": " << opts.seed << ", \"batch\": " << opts.batch
              << ", \"test_acc\": " << json_number(test_acc)
              << ", \"first_loss\": " << json_number(first_loss)
              << ", \"final_loss\": " << json_number(history.empty() ? NAN : history.back().loss)
              << ", \"train_samples_per_s\": " << json_number(sps) << "}\n";
  }
  return 0;
}

}  // namespace shrink::cli
