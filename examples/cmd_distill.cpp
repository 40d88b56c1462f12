// `shrink distill`: trains a zoo student on Fashion-MNIST with a distillation loss from a zoo
// teacher (compression/distillation/distiller.h). The config list selects the student's targets
// and links them to teacher modules; --json prints one object with test_acc, teacher_test_acc
// and train_samples_per_s (progress on stderr).
#include <boost/json.hpp>
#include <boost/program_options.hpp>
#include <iomanip>
#include <iostream>

#include "compression/config/config_error.h"
#include "compression/distillation/distiller.h"
#include "examples/cli.h"
#include "examples/fashion_session.h"
#include "framework/core/random.h"
#include "framework/io/safetensors.h"

namespace po = boost::program_options;

namespace shrink::cli {

int cmd_distill(const std::vector<std::string>& args) {
  std::string model_name, weights, teacher_name, teacher_weights, config_path, distiller, save;
  float origin_lambda, temperature;
  bool cache_teacher = false;
  int64_t epochs;
  TrainOptions topts;
  po::options_description desc("shrink distill options");
  desc.add_options()
      ("help,h", "show this help")
      ("model", po::value(&model_name)->required(), "the student: mlp | lenet5 | vgg_small | resnet20 | tiny_transformer")
      ("weights", po::value(&weights), "load the student's weights (.safetensors) first")
      ("teacher-model", po::value(&teacher_name)->required(), "the teacher (a zoo model)")
      ("teacher-weights", po::value(&teacher_weights)->required(), "the teacher's trained weights (.safetensors)")
      ("config", po::value(&config_path)->required(), "config list (JSON file): student targets and their links")
      ("distiller", po::value(&distiller)->default_value("dynamic"), "dynamic | adaptive1d")
      ("origin-loss-lambda", po::value(&origin_lambda)->default_value(1.f), "weight of the student's own loss")
      ("temperature", po::value(&temperature)->default_value(2.f), "softmax temperature of kl targets")
      ("epochs", po::value(&epochs)->default_value(3), "training epochs")
      ("cache-teacher", po::bool_switch(&cache_teacher), "keep the teacher's outputs per training sample: later epochs skip its forward")
      ("save", po::value(&save), "write the student's weights here (.safetensors)")
      ("json", "print one JSON object on stdout");
  add_train_options(desc, topts);
  add_checkpoint_options(desc, topts);
  po::variables_map vm;
  if (auto status = parse_args(args, desc, vm, "distill")) return *status;
  const bool json = vm.count("json") > 0;
  std::ostream& log = json ? std::cerr : std::cout;
  const Device device = apply_runtime_options(topts);
  manual_seed(topts.seed);
  auto student = load_model(model_name, weights);
  auto teacher = load_model(teacher_name, teacher_weights);
  teacher->to(device);
  std::optional<boost::json::value> config = read_config_file(config_path, "distill");
  if (!config) return 2;
  FashionSession session = make_fashion_session(student, topts, device, epochs, log);
  // The teacher's accuracy, before its wrappers exist (an evaluation needs a Trainer; this one
  // never steps its optimizer).
  train::Trainer teacher_eval(teacher, session.optimizer, session.trainer->train_loader(),
                              session.trainer->eval_loader());
  teacher_eval.set_device(device);
  const double teacher_acc = teacher_eval.evaluate().accuracy;
  log << "teacher " << teacher_name << ": test accuracy " << std::fixed << std::setprecision(4) << teacher_acc << "\n";

  std::unique_ptr<compression::Distiller> d;
  try {
    d = compression::make_distiller(distiller, student, *config, *session.trainer, teacher, origin_lambda, temperature);
  } catch (const compression::config::ConfigError& e) {
    std::cerr << "shrink distill: " << e.what() << "\n";
    return 2;
  } catch (const Error& e) {
    std::cerr << "shrink distill: " << e.what() << "\n";
    return 2;
  }
  for (const auto& w : d->warnings()) log << "warning: " << w << "\n";
  if (cache_teacher) d->cache_teacher_outputs(session.train_set->size());
  if (distiller == "adaptive1d") {
    data::Batch b;
    session.trainer->train_loader()->start_epoch();
    session.trainer->train_loader()->next(b);
    d->track_forward({nn::Value(b.inputs.to(device))});
  }
  auto history = session.trainer->train(epochs);
  d->unwrap();
  const double test_acc = session.trainer->evaluate().accuracy;
  double sps = 0.0;
  for (const auto& h : history) sps += h.samples_per_s;
  if (!history.empty()) sps /= static_cast<double>(history.size());
  if (!save.empty()) {
    student->to(Device::CPU);
    io::save_safetensors(save, student->state_dict());
  }
  log << "distilled " << model_name << " from " << teacher_name << ": test accuracy " << std::fixed
      << std::setprecision(4) << test_acc << "\n";
  if (json) {
    boost::json::object out{{"test_acc", test_acc}, {"teacher_test_acc", teacher_acc},
                            {"train_samples_per_s", sps}, {"epochs", epochs}, {"seed", topts.seed}};
    std::cout << boost::json::serialize(out) << "\n";
  }
  return 0;
}

}  // namespace shrink::cli
