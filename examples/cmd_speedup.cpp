// `shrink speedup`: turns a zoo model and its masks into a physically smaller model
// (compression/speedup/speedup.h) and saves it as a model file (models/model_file.h) that
// `shrink eval --model-file` loads without the original class sizes. The check input is the first
// --check-batch Fashion-MNIST test images (random images without the dataset). --json prints one
// object: params and MACs before/after, per-layer channels kept, the measured deviation from the
// masked model, the layers where it is not exact, and per Conv2d/Linear layer the params and MACs of
// the dense, masked (unmasked weights only) and sped-up model.
#include <boost/json.hpp>
#include <boost/program_options.hpp>
#include <filesystem>
#include <iomanip>
#include <iostream>

#include "compression/pruning/mask_io.h"
#include "compression/speedup/speedup.h"
#include "examples/cli.h"
#include "framework/core/random.h"
#include "framework/data/fashion_mnist.h"
#include "models/model_file.h"

namespace po = boost::program_options;

namespace shrink::cli {

int cmd_speedup(const std::vector<std::string>& args) {
  std::string model_name, weights, masks_path, save, data_dir = data::default_fashion_mnist_dir();
  int64_t check_batch;
  po::options_description desc("shrink speedup options");
  desc.add_options()
      ("help,h", "show this help")
      ("model", po::value(&model_name)->required(), "mlp | lenet5 | vgg_small | resnet20 | tiny_transformer")
      ("weights", po::value(&weights), "the model's weights (.safetensors)")
      ("masks", po::value(&masks_path)->required(), "masks from shrink prune / fuse (.safetensors)")
      ("save", po::value(&save)->required(), "write the sped-up model file here (.safetensors)")
      ("check-batch", po::value(&check_batch)->default_value(16), "test images used to trace and check")
      ("data", po::value(&data_dir)->default_value(data_dir), "Fashion-MNIST directory")
      ("json", "print one JSON object on stdout");
  po::variables_map vm;
  if (auto status = parse_args(args, desc, vm, "speedup")) return *status;
  const bool json = vm.count("json") > 0;
  std::ostream& log = json ? std::cerr : std::cout;
  manual_seed(1);
  auto model = load_model(model_name, weights);
  const compression::Masks masks = compression::load_masks(masks_path);
  Tensor x;
  if (std::filesystem::exists(data_dir + "/t10k-images-idx3-ubyte.gz")) {
    auto test = data::load_fashion_mnist(data_dir, false, check_batch);
    x = test->inputs();
  } else {
    log << "Fashion-MNIST not found in " << data_dir << ": checking on random images\n";
    x = randn({check_batch, 1, 28, 28});
  }
  const std::vector<std::string> refused = compression::speedup_preflight(*model, masks, {nn::Value(x)});
  if (!refused.empty()) {
    std::cerr << "shrink speedup: refused, nothing was written:\n";
    for (const auto& r : refused) std::cerr << "  " << r << "\n";
    return 2;
  }
  compression::SpeedupReport r = compression::speedup_model(*model, masks, {nn::Value(x)});
  model->to(Device::CPU);
  models::save_model_file(save, *model, model_name);
  log << std::fixed << std::setprecision(3) << "params " << r.params_before << " -> " << r.params_after << ", MACs "
      << r.macs_before << " -> " << r.macs_after << ", deviation from the masked model " << std::scientific
      << r.deviation << "\n";
  for (const auto& l : r.layers)
    log << "  " << l.module << " (" << l.type << "): in " << l.in_before << " -> " << l.in_after << ", out "
        << l.out_before << " -> " << l.out_after << "\n";
  for (const auto& m : r.inexact)
    log << "  not exact: " << m << " (a removed channel's constant meets zero padding)\n";
  for (const auto& n : r.notes) log << "  note: " << n << "\n";
  log << "saved " << save << "\n";
  if (json) {
    boost::json::object layers;
    for (const auto& l : r.layers)
      layers[l.module] = {{"type", l.type}, {"in_before", l.in_before}, {"in_after", l.in_after},
                          {"out_before", l.out_before}, {"out_after", l.out_after}};
    boost::json::object counts;  // per layer: dense, masked and sped-up params and MACs
    for (const auto& c : r.counts_before)
      counts[c.module] = {{"params", c.params}, {"macs", c.macs}, {"masked_params", c.masked_params},
                          {"masked_macs", c.masked_macs}};
    for (const auto& c : r.counts_after)
      if (counts.contains(c.module)) {
        counts[c.module].as_object()["sped_up_params"] = c.params;
        counts[c.module].as_object()["sped_up_macs"] = c.macs;
      }
    boost::json::array inexact;
    for (const auto& m : r.inexact) inexact.push_back(boost::json::value(m));
    boost::json::array notes;
    for (const auto& n : r.notes) notes.push_back(boost::json::value(n));
    boost::json::object out{{"params_before", r.params_before}, {"params_after", r.params_after},
                            {"macs_before", r.macs_before},     {"macs_after", r.macs_after},
                            {"deviation", r.deviation},         {"layers", layers},
                            {"inexact", inexact},               {"notes", notes},
                            {"counts", counts}};
    std::cout << boost::json::serialize(out) << "\n";
  }
  return 0;
}

}  // namespace shrink::cli
