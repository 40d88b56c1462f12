// Checkpoints and resume: a run stopped at any step and resumed from its newest checkpoint ends
// bit-identical to the run that never stopped (weights, optimizer momentum, learning-rate
// schedule, dropout stream, data order, the epoch statistics).
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdlib>

#include "framework/data/dataloader.h"
#include "framework/data/dataset.h"
#include "framework/nn/containers.h"
#include "framework/nn/layers.h"
#include "framework/shrink.h"
#include "framework/train/trainer.h"

using namespace shrink;

namespace {

struct Stop {};  // thrown by a callback: the run dies at that step

struct Run {
  std::shared_ptr<nn::Sequential> model;
  std::shared_ptr<optim::SGD> opt;
  std::shared_ptr<train::Trainer> trainer;
};

// 200 examples in batches of 32: 7 batches an epoch, the last one short.
Run make_run(int64_t extra_layer = 0) {
  manual_seed(5);
  Run r;
  r.model = std::make_shared<nn::Sequential>();
  r.model->push_back(std::make_shared<nn::Flatten>());
  r.model->push_back(std::make_shared<nn::Linear>(64, 24));
  r.model->push_back(std::make_shared<nn::ReLU>());
  r.model->push_back(std::make_shared<nn::Dropout>(0.3f, 9));
  r.model->push_back(std::make_shared<nn::Linear>(24, 4));
  if (extra_layer) r.model->push_back(std::make_shared<nn::Linear>(4, 4));
  auto ds = std::make_shared<data::TensorDataset>(data::make_synthetic_classification(200, {1, 8, 8}, 4, 3));
  auto loader = std::make_shared<data::DataLoader>(ds, 32, true, 11);
  auto eval = std::make_shared<data::DataLoader>(ds, 64, false, 11);
  r.opt = std::make_shared<optim::SGD>(r.model->parameters(), 0.05f, 0.9f, 1e-3f, true);
  r.trainer = std::make_shared<train::Trainer>(r.model, r.opt, loader, eval);
  r.trainer->set_scheduler(std::make_shared<optim::CosineAnnealingLR>(*r.opt, 3));
  return r;
}

std::string fresh_dir(const std::string& name) {
  std::string dir = "/tmp/shrink_test_resume_" + std::to_string(::getpid()) + "_" + name;
  BOOST_REQUIRE(std::system(("rm -rf '" + dir + "'").c_str()) == 0);
  return dir;
}

std::map<std::string, std::vector<float>> weights(const Run& r) {
  std::map<std::string, std::vector<float>> out;
  for (auto& [n, t] : r.model->state_dict()) out[n] = t.to_vector();
  return out;
}

void same_epochs(const std::vector<train::EpochStats>& full, const std::vector<train::EpochStats>& tail) {
  BOOST_REQUIRE(tail.size() <= full.size());
  BOOST_REQUIRE(!tail.empty());
  const size_t off = full.size() - tail.size();
  for (size_t i = 0; i < tail.size(); ++i) {
    BOOST_TEST(tail[i].epoch == full[off + i].epoch);
    BOOST_TEST(tail[i].loss == full[off + i].loss);  // the epoch's running sums were restored
    BOOST_TEST(tail[i].train_accuracy == full[off + i].train_accuracy);
    BOOST_TEST(tail[i].test_accuracy == full[off + i].test_accuracy);
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(resume)

// (checkpoint every, the step the run dies at): mid-epoch, across an epoch boundary, right
// after a checkpoint at an epoch's end, and in the last epoch.
BOOST_AUTO_TEST_CASE(resumed_run_is_bit_identical) {
  Run full = make_run();
  auto full_history = full.trainer->train(3);
  const auto expected = weights(full);
  BOOST_TEST(full.trainer->global_step() == 21);

  for (auto [every, die] : std::vector<std::pair<int64_t, int64_t>>{{4, 6}, {4, 14}, {7, 15}, {7, 8}, {5, 21}}) {
    const int64_t die_at = die;  // (a lambda cannot capture a structured binding in C++17)
    const std::string dir = fresh_dir("e" + std::to_string(every) + "_" + std::to_string(die_at));
    {
      Run first = make_run();
      first.trainer->set_checkpointing(dir, every);
      first.trainer->on_after_step([die_at](train::Trainer& t) {
        if (t.global_step() == die_at) throw Stop();
      });
      BOOST_CHECK_THROW(first.trainer->train(3), Stop);
    }
    Run second = make_run();
    BOOST_REQUIRE(second.trainer->resume_from(dir));
    second.trainer->set_checkpointing(dir, every);
    auto history = second.trainer->train(3);
    BOOST_TEST(second.trainer->global_step() == 21);
    BOOST_TEST((weights(second) == expected), "every " << every << ", died at step " << die_at);
    same_epochs(full_history, history);
    BOOST_TEST(second.opt->lr() == full.opt->lr());
  }
}

// A run that trains twice (a pruner's training, then fine-tuning): a checkpoint of the second
// call makes the first return at once and the second continue.
BOOST_AUTO_TEST_CASE(a_checkpoint_of_a_later_call_skips_the_earlier_ones) {
  auto two_calls = [](Run& r) {
    r.trainer->train(-1, 10);
    return r.trainer->train(2);
  };
  Run full = make_run();
  two_calls(full);
  const std::string dir = fresh_dir("calls");
  {
    Run first = make_run();
    first.trainer->set_checkpointing(dir, 3);
    first.trainer->on_after_step([](train::Trainer& t) {
      if (t.global_step() == 17) throw Stop();
    });
    BOOST_CHECK_THROW(two_calls(first), Stop);
  }
  Run second = make_run();
  BOOST_REQUIRE(second.trainer->resume_from(dir));
  BOOST_TEST(second.trainer->train(-1, 10).empty());
  second.trainer->train(2);
  BOOST_TEST(second.trainer->global_step() == full.trainer->global_step());
  BOOST_TEST((weights(second) == weights(full)));
}

BOOST_AUTO_TEST_CASE(no_checkpoint_starts_afresh_and_a_different_model_is_refused) {
  Run r = make_run();
  std::ostringstream log;
  r.trainer->set_log(&log, false);
  BOOST_TEST(!r.trainer->resume_from(fresh_dir("empty")));
  BOOST_TEST(log.str().find("starting afresh") != std::string::npos, log.str());

  const std::string dir = fresh_dir("other_model");
  Run a = make_run();
  a.trainer->set_checkpointing(dir, 2);
  a.trainer->train(-1, 2);
  Run c = make_run();
  c.trainer = std::make_shared<train::Trainer>(
      c.model, c.opt, std::make_shared<data::DataLoader>(
                            std::make_shared<data::TensorDataset>(data::make_synthetic_classification(200, {1, 8, 8}, 4, 3)),
                            16, true, 11));
  BOOST_REQUIRE(c.trainer->resume_from(dir));
  BOOST_CHECK_THROW(c.trainer->train(1), Error);  // batches of 16, not 32
  Run b = make_run(/*extra_layer=*/1);
  BOOST_REQUIRE(b.trainer->resume_from(dir));
  try {
    b.trainer->train(1);
    BOOST_FAIL("a checkpoint of another model was loaded");
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()).find("no tensor 'model.5.") != std::string::npos, e.what());
  }
}

BOOST_AUTO_TEST_SUITE_END()
