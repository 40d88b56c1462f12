// `shrink train`: trains a zoo model on Fashion-MNIST with SGD (momentum 0.9) and prints one line
// per epoch; --json makes the last stdout line a JSON object for scripts and benchmarks.
#include <unistd.h>

#include <boost/program_options.hpp>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "examples/cli.h"
#include "framework/core/backend.h"
#include "framework/core/parallel.h"
#include "framework/core/random.h"
#include "framework/data/fashion_mnist.h"
#include "framework/io/safetensors.h"
#include "framework/train/trainer.h"
#include "models/zoo.h"

namespace po = boost::program_options;

namespace shrink::cli {

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  std::ostringstream os;
  os << std::setprecision(10) << v;
  return os.str();
}

int cmd_train(const std::vector<std::string>& args) {
  std::string model_name, save, device_name, data_dir;
  int64_t epochs, batch, limit;
  double lr, momentum, weight_decay;
  uint64_t seed;
  int threads;
  po::options_description desc("shrink train options");
  desc.add_options()
      ("help,h", "show this help")
      ("model", po::value(&model_name)->required(), "mlp | lenet5 | vgg_small | resnet20 | tiny_transformer")
      ("epochs", po::value(&epochs)->default_value(3), "training epochs")
      ("batch", po::value(&batch)->default_value(64), "batch size")
      ("lr", po::value(&lr)->default_value(0.05), "learning rate (SGD)")
      ("momentum", po::value(&momentum)->default_value(0.9), "SGD momentum")
      ("weight-decay", po::value(&weight_decay)->default_value(5e-4), "weight decay")
      ("seed", po::value(&seed)->default_value(1), "random seed (init, shuffle, dropout)")
      ("save", po::value(&save), "write the trained weights to this .safetensors file")
      ("device", po::value(&device_name)->default_value("cpu"), "cpu | cuda")
      ("threads", po::value(&threads)->default_value(0), "worker threads (0 = all cores)")
      ("limit", po::value(&limit)->default_value(-1), "use only the first N training images")
      ("data", po::value(&data_dir)->default_value(data::default_fashion_mnist_dir()), "Fashion-MNIST directory")
      ("json", "print a JSON summary as the last line of stdout");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(desc).run(), vm);
    if (vm.count("help")) {
      std::cout << desc << "\n";
      return 0;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "shrink train: " << e.what() << "\n" << desc << "\n";
    return 2;
  }
  if (epochs < 0 || batch <= 0 || lr <= 0) {
    std::cerr << "shrink train: --epochs must be >= 0, --batch and --lr positive\n";
    return 2;
  }
  Device device = Device::CPU;
  if (device_name == "cuda") {
    SHRINK_CHECK(backend_available(Device::CUDA),
                 "--device cuda: no CUDA device (this build has no CUDA backend or no GPU was found)");
    device = Device::CUDA;
  } else if (device_name != "cpu") {
    std::cerr << "shrink train: --device must be cpu or cuda\n";
    return 2;
  }
  if (threads > 0) set_num_threads(threads);
  const bool json = vm.count("json") > 0;

  manual_seed(seed);
  auto model = models::make_model(model_name);
  model->to(device);
  auto train_set = data::load_fashion_mnist(data_dir, true, limit);
  auto test_set = data::load_fashion_mnist(data_dir, false);
  auto train_loader = std::make_shared<data::DataLoader>(train_set, batch, true, seed);
  auto test_loader = std::make_shared<data::DataLoader>(test_set, 256, false, seed);
  auto opt = std::make_shared<optim::SGD>(model->parameters(), static_cast<float>(lr),
                                          static_cast<float>(momentum),
                                          static_cast<float>(weight_decay));
  train::Trainer trainer(model, opt, train_loader, test_loader);
  trainer.set_device(device);
  trainer.set_log(&std::cout, isatty(STDOUT_FILENO) != 0);
  if (epochs > 0)
    trainer.set_scheduler(std::make_shared<optim::CosineAnnealingLR>(*opt, epochs));

  std::cout << "training " << model_name << " on Fashion-MNIST (" << train_set->size()
            << " images), " << epochs << " epochs, batch " << batch << ", lr " << lr << ", seed "
            << seed << ", " << num_threads() << " threads\n";
  trainer.on_epoch_end([&](train::Trainer&, const train::EpochStats& s) {
    std::cout << "epoch " << s.epoch + 1 << "/" << epochs << "  loss " << std::fixed
              << std::setprecision(4) << s.loss << "  train_acc " << s.train_accuracy
              << "  test_acc " << s.test_accuracy << "  " << std::setprecision(0)
              << s.samples_per_s << " samples/s  " << std::setprecision(1) << s.seconds << "s\n"
              << std::flush;
  });
  auto history = trainer.train(epochs);
  double test_acc = history.empty() ? trainer.evaluate().accuracy : history.back().test_accuracy;
  double sps = 0.0;
  for (auto& h : history) sps += h.samples_per_s;
  if (!history.empty()) sps /= static_cast<double>(history.size());
  if (!save.empty()) {
    model->to(Device::CPU);
    io::save_safetensors(save, model->state_dict());
    std::cout << "saved weights to " << save << "\n";
  }
  if (json) {
    std::cout << "{\"model\": \"" << model_name << "\", \"epochs\": " << epochs
              << ", \"seed\": " << seed << ", \"batch\": " << batch
              << ", \"test_acc\": " << json_number(test_acc)
              << ", \"final_loss\": " << json_number(history.empty() ? NAN : history.back().loss)
              << ", \"train_samples_per_s\": " << json_number(sps) << "}\n";
  }
  return 0;
}

}  // namespace shrink::cli
