// `shrink fuse`: prune, quantize and distil a zoo model in one training run on Fashion-MNIST
// (fusion compression, compression/common/compressor.h). Each part is optional, at least one is
// given; they are built in NNI's chain order — distiller, then pruner, then quantizer — so the
// quantizer (or the newest present) drives the run:
//   loss = origin_loss_lambda * (CE + pruner terms) + distillation.
// The teacher defaults to the model itself as loaded (distillation from the uncompressed model).
// --json prints one object: float_test_acc (as loaded), test_acc (compressed, masks and fake
// quantization active), drop, per-target sparsity, train_samples_per_s.
#include <boost/json.hpp>
#include <boost/program_options.hpp>
#include <chrono>
#include <iomanip>
#include <iostream>

#include "compression/config/config_error.h"
#include "compression/pruning/mask_io.h"
#include "compression/quantization/calibration_io.h"
#include "examples/cli.h"
#include "examples/compression_run.h"
#include "examples/fashion_session.h"
#include "framework/core/random.h"
#include "framework/io/safetensors.h"

namespace po = boost::program_options;

namespace shrink::cli {

int cmd_fuse(const std::vector<std::string>& args) {
  std::string model_name, weights, prune_cfg, quant_cfg, distill_cfg, teacher_name, teacher_weights, distiller_name;
  std::string save, masks_out, calib_out;
  float origin_lambda, temperature;
  bool cache_teacher = false;
  int64_t epochs;
  compression::PrunerOptions popts;
  compression::QuantizerOptions qopts;
  TrainOptions topts;
  po::options_description desc("shrink fuse options");
  desc.add_options()
      ("help,h", "show this help")
      ("model", po::value(&model_name)->required(), "mlp | lenet5 | vgg_small | resnet20 | tiny_transformer")
      ("weights", po::value(&weights), "load the model's weights (.safetensors) first")
      ("pruner", po::value(&popts.pruner)->default_value("l1"), "level | l1 | l2 | fpgm | slim | taylor | movement | apoz | mean_activation")
      ("prune-config", po::value(&prune_cfg), "pruning config list (JSON file)")
      ("training-steps", po::value(&popts.training_steps)->default_value(100), "slim/taylor: steps before the masks; movement: cooldown step")
      ("quantizer", po::value(&qopts.name)->default_value("qat"), "qat | lsq | lsq_plus | ptq | dorefa | bnn")
      ("quant-config", po::value(&quant_cfg), "quantization config list (JSON file)")
      ("quant-start-step", po::value(&qopts.start_step)->default_value(0), "qat: steps before quantization starts")
      ("distill-config", po::value(&distill_cfg), "distillation config list (JSON file): student targets and links")
      ("teacher-model", po::value(&teacher_name), "the teacher (default: --model)")
      ("teacher-weights", po::value(&teacher_weights), "the teacher's weights (default: --weights)")
      ("distiller", po::value(&distiller_name)->default_value("dynamic"), "dynamic | adaptive1d")
      ("origin-loss-lambda", po::value(&origin_lambda)->default_value(1.f), "weight of the model's own loss")
      ("temperature", po::value(&temperature)->default_value(2.f), "softmax temperature of kl targets")
      ("cache-teacher", po::bool_switch(&cache_teacher), "keep the teacher's outputs per training sample")
      ("epochs", po::value(&epochs)->default_value(2), "training epochs of the fused run")
      ("save", po::value(&save), "write the model's weights here (.safetensors; masks and fake quantization not baked)")
      ("save-masks", po::value(&masks_out), "write the masks here (.safetensors)")
      ("save-calibration", po::value(&calib_out), "write the calibration here (.safetensors + .json)")
      ("json", "print one JSON object on stdout");
  add_train_options(desc, topts);
  add_checkpoint_options(desc, topts);
  po::variables_map vm;
  if (auto status = parse_args(args, desc, vm, "fuse")) return *status;
  if (prune_cfg.empty() && quant_cfg.empty() && distill_cfg.empty()) {
    std::cerr << "shrink fuse: give at least one of --prune-config, --quant-config, --distill-config\n";
    return 2;
  }
  if (!masks_out.empty() && prune_cfg.empty()) {
    std::cerr << "shrink fuse: --save-masks needs --prune-config\n";
    return 2;
  }
  if (!calib_out.empty() && quant_cfg.empty()) {
    std::cerr << "shrink fuse: --save-calibration needs --quant-config\n";
    return 2;
  }
  if (!quant_cfg.empty() && (qopts.name == "ptq" || qopts.name == "naive")) {
    std::cerr << "shrink fuse: --quantizer " << qopts.name << " does not train; a fused run needs qat, lsq, "
              << "lsq_plus, dorefa or bnn (use shrink quantize for " << qopts.name << ")\n";
    return 2;
  }
  const bool json = vm.count("json") > 0;
  std::ostream& log = json ? std::cerr : std::cout;
  std::optional<boost::json::value> pcfg, qcfg, dcfg;
  if (!prune_cfg.empty() && !(pcfg = read_config_file(prune_cfg, "fuse"))) return 2;
  if (!quant_cfg.empty() && !(qcfg = read_config_file(quant_cfg, "fuse"))) return 2;
  if (!distill_cfg.empty() && !(dcfg = read_config_file(distill_cfg, "fuse"))) return 2;

  const Device device = apply_runtime_options(topts);
  manual_seed(topts.seed);
  auto model = load_model(model_name, weights);
  FashionSession session = make_fashion_session(model, topts, device, epochs, log);
  train::Trainer& trainer = *session.trainer;
  const double float_acc = trainer.evaluate().accuracy;
  log << model_name << " as loaded: test accuracy " << std::fixed << std::setprecision(4) << float_acc << "\n";

  FusedParts parts;
  parts.prune = popts;
  parts.quant = qopts;
  parts.prune_config = pcfg ? &*pcfg : nullptr;
  parts.quant_config = qcfg ? &*qcfg : nullptr;
  parts.distill_config = dcfg ? &*dcfg : nullptr;
  parts.distiller = distiller_name;
  parts.origin_lambda = origin_lambda;
  parts.temperature = temperature;
  parts.cache_teacher_samples = cache_teacher ? session.train_set->size() : 0;
  std::unique_ptr<FusedRun> fused;
  try {
    if (dcfg) {
      parts.teacher = load_model(teacher_name.empty() ? model_name : teacher_name,
                                 teacher_name.empty() && teacher_weights.empty() ? weights : teacher_weights);
      parts.teacher->to(device);
    }
    fused = std::make_unique<FusedRun>(model, trainer, parts, log);
  } catch (const compression::config::ConfigError& e) {
    std::cerr << "shrink fuse: " << e.what() << "\n";
    return 2;
  } catch (const Error& e) {
    std::cerr << "shrink fuse: " << e.what() << "\n";
    return 2;
  }

  const auto t0 = std::chrono::steady_clock::now();
  const int64_t steps_before = trainer.global_step();
  const compression::CalibrationConfig calib = fused->run(epochs);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double sps = static_cast<double>((trainer.global_step() - steps_before) * topts.batch) / seconds;
  const double test_acc = trainer.evaluate().accuracy;

  boost::json::object sparsity;
  compression::Masks masks;
  if (compression::Pruner* pruner = fused->pruner()) {
    masks = pruner->get_masks();
    for (const auto& [key, m] : masks) sparsity[key] = mask_sparsity(m);
    if (!masks_out.empty()) compression::save_masks(masks_out, masks);
  }
  if (fused->quantizer() && !calib_out.empty()) compression::save_calibration(calib_out, calib);
  fused->unwrap();  // the model as it was built (its trained weights), without the wrappers' buffers
  if (!save.empty()) {
    model->to(Device::CPU);
    io::save_safetensors(save, model->state_dict());
  }
  log << "fused " << model_name << ": test accuracy " << std::fixed << std::setprecision(4) << test_acc << " (float "
      << float_acc << ", drop " << (float_acc - test_acc) * 100.0 << " pt)\n";
  if (json) {
    boost::json::object out{{"float_test_acc", float_acc}, {"test_acc", test_acc},
                            {"drop_pt", (float_acc - test_acc) * 100.0}, {"epochs", epochs},
                            {"seed", topts.seed}, {"sparsity", sparsity},
                            {"quantized_targets", static_cast<int64_t>(calib.size())},
                            {"train_samples_per_s", sps}};
    std::cout << boost::json::serialize(out) << "\n";
  }
  return 0;
}

}  // namespace shrink::cli
