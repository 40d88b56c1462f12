// Example: distil LeNet-5 from vgg_small.
//
//   build/bin/example_distill_lenet5 [--epochs 2] [--limit N]
//
// 1. train the teacher (vgg_small) for one epoch;
// 2. train a fresh LeNet-5 with loss = cross-entropy + KL(student logits || teacher logits) at
//    temperature 2, the student's fc3 linked to the teacher's classifier.fc2 (NNI's layer-wise
//    distiller; the teacher runs on the same batch);
// 3. compare with the same student trained without the teacher, same seed and data order.
#include <boost/json.hpp>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <string>

#include "compression/distillation/distiller.h"
#include "examples/programs/example_args.h"
#include "framework/core/random.h"
#include "framework/data/fashion_mnist.h"
#include "framework/optim/optimizer.h"
#include "framework/train/trainer.h"
#include "models/zoo.h"

using namespace shrink;

// A model of the zoo trained by `fit` on Fashion-MNIST with SGD (seed 2 for the data order).
struct Run {
  std::shared_ptr<nn::Module> model;
  std::shared_ptr<train::Trainer> trainer;
};
static Run make_run(const std::string& name, const std::string& dir, int64_t limit) {
  Run r;
  r.model = models::make_model(name);
  auto optimizer = std::make_shared<optim::SGD>(r.model->parameters(), 0.05f, 0.9f, 5e-4f);
  auto train_loader = std::make_shared<data::DataLoader>(data::load_fashion_mnist(dir, true, limit), 64, true, 2);
  auto test_loader = std::make_shared<data::DataLoader>(data::load_fashion_mnist(dir, false), 256, false, 2);
  r.trainer = std::make_shared<train::Trainer>(r.model, optimizer, train_loader, test_loader);
  return r;
}

int main(int argc, char** argv) {
  const int64_t epochs = examples::int_arg(argc, argv, "--epochs", 2);
  const int64_t limit = examples::int_arg(argc, argv, "--limit", -1);
  const std::string dir = examples::fashion_mnist_dir();
  if (dir.empty()) return 77;

  // 1. The teacher.
  manual_seed(1);
  Run teacher = make_run("vgg_small", dir, limit);
  teacher.trainer->train(1);
  teacher.model->eval();
  std::cout << std::fixed << std::setprecision(4) << "teacher vgg_small:        test accuracy "
            << teacher.trainer->evaluate().accuracy << "\n";

  // 2. The student, distilled.
  manual_seed(3);
  Run student = make_run("lenet5", dir, limit);
  const boost::json::value config = boost::json::parse(R"([
    {"op_names": ["fc3"], "link": ["classifier.fc2"], "apply_method": "kl", "lambda": 1.0}
  ])");
  compression::DynamicLayerwiseDistiller distiller(student.model, config, *student.trainer, teacher.model,
                                                   nullptr, /*origin_loss_lambda=*/1.f, /*temperature=*/2.f);
  distiller.compress(-1, epochs);
  const double distilled = student.trainer->evaluate().accuracy;
  std::cout << "student lenet5, distilled: test accuracy " << distilled << "\n";

  // 3. The same student alone.
  manual_seed(3);
  Run alone = make_run("lenet5", dir, limit);
  alone.trainer->train(epochs);
  std::cout << "student lenet5, alone:     test accuracy " << alone.trainer->evaluate().accuracy << "\n";
  return 0;
}
