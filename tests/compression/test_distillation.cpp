// Distillers (nni-semantics §5): the trained loss equals origin_loss_lambda * CE + the distillation
// terms written out with the framework's plain ops (mse_loss; kl_div of log_softmax/softmax, which
// are tested against PyTorch on their own), DynamicLayerwise's min over links, Adaptive1d's
// adapters, DECISIONS row 19 (integer lambda), and that distilling moves the student to the teacher.
#include <boost/test/unit_test.hpp>
#include <cmath>

#include "compression/config/config_error.h"
#include "compression/distillation/distiller.h"
#include "framework/shrink.h"

using namespace shrink;
using namespace shrink::compression;

namespace {

boost::json::value cfg(const char* text) { return boost::json::parse(text); }

std::shared_ptr<nn::Sequential> linear_model(uint64_t seed, int64_t hidden = 0) {
  manual_seed(seed);
  auto m = std::make_shared<nn::Sequential>();
  if (hidden == 0) {
    m->push_back("fc", std::make_shared<nn::Linear>(3, 2));
  } else {
    m->push_back("fc1", std::make_shared<nn::Linear>(3, hidden));
    m->push_back("relu", std::make_shared<nn::ReLU>());
    m->push_back("fc2", std::make_shared<nn::Linear>(hidden, 2));
  }
  return m;
}

struct Setup {
  std::shared_ptr<data::TensorDataset> ds =
      std::make_shared<data::TensorDataset>(data::make_synthetic_classification(4, {3}, 2, 3));
  std::shared_ptr<train::Trainer> trainer_for(std::shared_ptr<nn::Module> m, float lr) {
    auto opt = std::make_shared<optim::SGD>(m->parameters(), lr);
    return std::make_shared<train::Trainer>(m, opt, std::make_shared<data::DataLoader>(ds, 4, false, 0));
  }
  data::Batch batch() const {
    data::DataLoader l(ds, 4, false, 0);
    data::Batch b;
    l.next(b);
    return b;
  }
};

// The loss of the first training step (weights are read before the update).
float first_step_loss(train::Trainer& trainer) {
  float loss = 0;
  trainer.on_after_step([&loss](train::Trainer& t) {
    if (t.global_step() == 1) loss = t.current_loss().item();
  });
  trainer.train(-1, 1);
  return loss;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(distillation)

BOOST_AUTO_TEST_CASE(dynamic_mse_loss_is_written_out) {
  Setup s;
  auto student = linear_model(1), teacher = linear_model(2);
  const data::Batch b = s.batch();
  float want;
  {
    NoGradGuard ng;
    Tensor out = (*student)(b.inputs), tout = (*teacher)(b.inputs);
    want = cross_entropy(out, b.labels).item() + 0.5f * mse_loss(out, tout).item();
  }
  auto trainer = s.trainer_for(student, 0.1f);
  DynamicLayerwiseDistiller d(student, cfg(R"([{"op_names": ["fc"], "lambda": 0.5}])"), *trainer, teacher);
  BOOST_TEST(first_step_loss(*trainer) == want, boost::test_tools::tolerance(1e-5f));
}

// kl with temperature 3, integer lambda 2 (DECISIONS row 19), origin_loss_lambda 0.25.
BOOST_AUTO_TEST_CASE(kl_temperature_and_origin_lambda) {
  Setup s;
  auto student = linear_model(1), teacher = linear_model(2);
  const data::Batch b = s.batch();
  float want;
  {
    NoGradGuard ng;
    Tensor out = (*student)(b.inputs), tout = (*teacher)(b.inputs);
    Tensor kl = kl_div(log_softmax(out / 3.f, 1), softmax(tout / 3.f, 1), Reduction::BatchMean);
    want = 0.25f * cross_entropy(out, b.labels).item() + 2.f * 9.f * kl.item();
  }
  auto trainer = s.trainer_for(student, 0.1f);
  DynamicLayerwiseDistiller d(student, cfg(R"([{"op_names": ["fc"], "lambda": 2, "apply_method": "kl"}])"), *trainer,
                              teacher, nullptr, 0.25f, 3.f);
  BOOST_TEST(first_step_loss(*trainer) == want, boost::test_tools::tolerance(1e-5f));
}

// A target linked to two teacher modules takes the smaller of the two terms.
BOOST_AUTO_TEST_CASE(dynamic_takes_min_over_links) {
  Setup s;
  auto student = linear_model(1);
  auto teacher = std::make_shared<nn::Sequential>();
  manual_seed(7);
  auto near = std::make_shared<nn::Linear>(3, 2), far = std::make_shared<nn::Linear>(3, 2);
  teacher->push_back("near", near);
  teacher->push_back("far", far);
  // near = the student's own layer (term 0 at step 1); far is scaled away from it.
  near->parameter("weight").copy_(student->find("fc")->param("weight"));
  near->parameter("bias").copy_(student->find("fc")->param("bias"));
  {
    NoGradGuard ng;
    far->parameter("weight").copy_(mul(near->param("weight"), 5.f));
  }
  const data::Batch b = s.batch();
  float ce;
  {
    NoGradGuard ng;
    ce = cross_entropy((*student)(b.inputs), b.labels).item();
  }
  auto trainer = s.trainer_for(student, 0.1f);
  DynamicLayerwiseDistiller d(student, cfg(R"([{"op_names": ["fc"], "link": ["far", "near"]}])"), *trainer,
                              teacher, [&](const data::Batch& batch, nn::Module&) {
                                (*near)(batch.inputs);
                                (*far)(batch.inputs);
                              });
  BOOST_TEST(first_step_loss(*trainer) == ce, boost::test_tools::tolerance(1e-5f));
}

BOOST_AUTO_TEST_CASE(adaptive1d_adapter) {
  Setup s;
  auto student = linear_model(1, 4), teacher = linear_model(2, 6);
  auto trainer = s.trainer_for(student, 0.1f);
  Adaptive1dLayerwiseDistiller d(student, cfg(R"([{"op_names": ["fc1"]}])"), *trainer, teacher);
  BOOST_CHECK_THROW(d.compress(1, -1), Error);  // adapters need track_forward first
  const data::Batch b = s.batch();
  d.track_forward({nn::Value(b.inputs)});
  auto adapter = d.adapter("fc1._output_0");
  BOOST_REQUIRE(adapter != nullptr);
  BOOST_TEST(adapter->param("weight").shape() == Shape({6, 4}));
  // NNI's patch_optim_param_group: the adapter joins the group of the student module's parameters.
  const auto& params = trainer->optimizer().param_groups().at(0).params;
  BOOST_TEST(trainer->optimizer().param_groups().size() == 1u);
  BOOST_TEST(std::any_of(params.begin(), params.end(),
                         [&](const Tensor& p) { return p.impl() == adapter->param("weight").impl(); }));
  float want;
  {
    NoGradGuard ng;
    Tensor h = (*student->find("fc1"))(b.inputs), th = (*teacher->find("fc1"))(b.inputs);
    want = cross_entropy((*student)(b.inputs), b.labels).item() + mse_loss((*adapter)(h), th).item();
  }
  BOOST_TEST(first_step_loss(*trainer) == want, boost::test_tools::tolerance(1e-5f));
}

// With only the distillation loss the student moves towards the teacher (mse and kl).
BOOST_AUTO_TEST_CASE(distilling_moves_the_student_to_the_teacher) {
  for (const char* method : {"mse", "kl"}) {
    Setup s;
    auto student = linear_model(1), teacher = linear_model(2);
    const data::Batch b = s.batch();
    auto gap = [&] {
      NoGradGuard ng;
      Tensor so = (*student)(b.inputs), to = (*teacher)(b.inputs);
      return std::string(method) == "mse" ? mse_loss(so, to).item()
                                          : kl_div(log_softmax(so, 1), softmax(to, 1), Reduction::BatchMean).item();
    };
    const float before = gap();
    auto trainer = s.trainer_for(student, 0.2f);
    DynamicLayerwiseDistiller d(student, cfg((std::string(R"([{"op_names": ["fc"], "apply_method": ")") + method + "\"}]").c_str()),
                                *trainer, teacher, nullptr, 0.f);
    d.compress(100, -1);
    BOOST_TEST(gap() < 0.1f * before, method << ": gap " << before << " -> " << gap());
  }
}

BOOST_AUTO_TEST_CASE(bad_links_are_config_errors) {
  Setup s;
  auto student = linear_model(1), teacher = linear_model(2);
  auto trainer = s.trainer_for(student, 0.1f);
  BOOST_CHECK_THROW(DynamicLayerwiseDistiller(student, cfg(R"([{"op_names": ["fc"], "link": "nope"}])"), *trainer,
                                              teacher),
                    config::ConfigError);
  auto wide = linear_model(3, 4);
  auto teacher2 = linear_model(4, 4);
  auto t2 = s.trainer_for(wide, 0.1f);
  BOOST_CHECK_THROW(Adaptive1dLayerwiseDistiller(wide, cfg(R"([{"op_names": ["fc1"], "link": ["fc1", "fc2"]}])"), *t2,
                                                 teacher2),
                    config::ConfigError);
  BOOST_CHECK_THROW(DynamicLayerwiseDistiller(student, cfg(R"([{"op_names": ["fc"]}])"), *trainer, student), Error);
}

// Offline teacher labels: with the cache the teacher runs only in the first epoch, and training
// is bit-identical to running it every step (shuffled batches, so rows must land by sample index).
BOOST_AUTO_TEST_CASE(teacher_cache_skips_later_epochs) {
  auto ds = std::make_shared<data::TensorDataset>(data::make_synthetic_classification(12, {3}, 2, 5));
  std::vector<float> final_weights[2];
  int64_t forwards[2];
  for (int cached = 0; cached < 2; ++cached) {
    auto student = linear_model(1), teacher = linear_model(2);
    auto opt = std::make_shared<optim::SGD>(student->parameters(), 0.1f);
    auto trainer = std::make_shared<train::Trainer>(student, opt, std::make_shared<data::DataLoader>(ds, 4, true, 9));
    DynamicLayerwiseDistiller d(student, cfg(R"([{"op_names": ["fc"], "apply_method": "kl"}])"), *trainer, teacher);
    if (cached) d.cache_teacher_outputs(ds->size());
    d.compress(-1, 3);
    forwards[cached] = d.teacher_forwards();
    final_weights[cached] = student->find("fc")->param("weight").to_vector();
  }
  BOOST_TEST(forwards[0] == 9);  // 3 batches x 3 epochs
  BOOST_TEST(forwards[1] == 3);  // the first epoch only
  BOOST_TEST(final_weights[1] == final_weights[0], boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
