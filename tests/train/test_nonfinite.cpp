// Non-finite values (the reliability issue): a NaN/Inf loss or gradient stops training with an error
// naming the step, the first op that made one, forward or backward, and its module; anomaly mode
// finds it as it happens; --allow-nonfinite (set_check_finite(false)) trains on; the checks change
// no result.
#include <boost/test/unit_test.hpp>

#include "framework/core/autograd.h"
#include "framework/data/dataloader.h"
#include "framework/data/dataset.h"
#include "framework/shrink.h"
#include "framework/train/trainer.h"
#include "models/zoo.h"

using namespace shrink;

namespace {

// A parameter-free module applying `fn` (named, so errors can name it).
class Apply : public nn::Module {
 public:
  explicit Apply(std::function<Tensor(const Tensor&)> fn) : fn_(std::move(fn)) {}
  std::string type_name() const override { return "Apply"; }

 protected:
  nn::Value forward(const std::vector<nn::Value>& in) override { return fn_(input_tensor(in, 0)); }

 private:
  std::function<Tensor(const Tensor&)> fn_;
};

std::unique_ptr<train::Trainer> trainer_for(std::shared_ptr<nn::Module> model) {
  auto ds = std::make_shared<data::TensorDataset>(data::make_synthetic_classification(32, {4}, 3, 1));
  auto opt = std::make_shared<optim::SGD>(model->parameters(), 0.1f);
  return std::make_unique<train::Trainer>(model, opt, std::make_shared<data::DataLoader>(ds, 8, false, 0));
}

std::shared_ptr<nn::Sequential> model_with(const char* name, std::function<Tensor(const Tensor&)> fn) {
  manual_seed(1);
  auto m = std::make_shared<nn::Sequential>();
  m->push_back("fc", std::make_shared<nn::Linear>(4, 3));
  m->push_back(name, std::make_shared<Apply>(std::move(fn)));
  return m;
}

std::string error_of(train::Trainer& t) {
  try {
    t.train(1);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_SUITE(nonfinite)

BOOST_AUTO_TEST_CASE(forward_nan_names_the_op_and_module) {
  // log of a negative logit is NaN.
  auto t = trainer_for(model_with("log", [](const Tensor& x) { return log(x); }));
  const std::string e = error_of(*t);
  BOOST_TEST(contains(e, "step 1:"), e);
  BOOST_TEST(contains(e, "the loss is nan"), e);
  BOOST_TEST(contains(e, "output of Log"), e);
  BOOST_TEST(contains(e, "forward of module 'log'"), e);
}

BOOST_AUTO_TEST_CASE(backward_inf_names_the_op_and_module) {
  // sqrt(0 * x) is finite, but its gradient at 0 is infinite.
  auto t = trainer_for(model_with("sqrt", [](const Tensor& x) { return sqrt(mul(x, 0.f)); }));
  const std::string e = error_of(*t);
  BOOST_TEST(contains(e, "step 1:"), e);
  BOOST_TEST(contains(e, "gradient of fc."), e);
  BOOST_TEST(contains(e, "backward of Sqrt"), e);
  BOOST_TEST(contains(e, "module 'sqrt'"), e);
}

BOOST_AUTO_TEST_CASE(allow_nonfinite_trains_on_and_anomaly_mode_throws_at_once) {
  auto t = trainer_for(model_with("log", [](const Tensor& x) { return log(x); }));
  t->set_check_finite(false);
  auto h = t->train(1);
  BOOST_TEST(std::isnan(h.back().loss));
  auto a = trainer_for(model_with("log", [](const Tensor& x) { return log(x); }));
  a->set_check_finite(false);
  a->set_detect_anomaly(true);
  const std::string e = error_of(*a);
  BOOST_TEST(contains(e, "output of Log"), e);
  BOOST_TEST(contains(e, "module 'log'"), e);
  // A caller's own AnomalyGuard stays on inside train().
  auto c = trainer_for(model_with("log", [](const Tensor& x) { return log(x); }));
  c->set_check_finite(false);
  AnomalyGuard on;
  BOOST_TEST(contains(error_of(*c), "output of Log"));
}

// The checks observe only: a healthy run gives bit-identical weights with and without them.
BOOST_AUTO_TEST_CASE(checks_change_nothing) {
  auto run = [](bool check, bool anomaly) {
    manual_seed(2);
    auto model = models::make_model("lenet5");
    auto ds = std::make_shared<data::TensorDataset>(data::make_synthetic_classification(64, {1, 28, 28}, 10, 2));
    auto opt = std::make_shared<optim::SGD>(model->parameters(), 0.05f, 0.9f);
    train::Trainer t(model, opt, std::make_shared<data::DataLoader>(ds, 16, true, 3));
    t.set_check_finite(check);
    t.set_detect_anomaly(anomaly);
    t.train(1);
    return model->find("conv2")->param("weight").to_vector();
  };
  const auto plain = run(false, false);
  BOOST_TEST(run(true, false) == plain);
  BOOST_TEST(run(true, true) == plain);
  BOOST_TEST(!AnomalyMode::enabled());  // restored
}

BOOST_AUTO_TEST_SUITE_END()
