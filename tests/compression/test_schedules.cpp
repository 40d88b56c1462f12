// Sparsity schedules against nni-semantics §3.2 "Scheduled", §3.4 and §9.2 items 3 and 12: the
// AGP / Linear / LotteryTicket sequences as pure functions, the masks after every trigger of
// AGP/Linear bound to L1 and to Taylor (exact 0.75 at the end on SimpleTorchModel), what cannot
// be scheduled, and lottery-ticket iterations (nested masks, rewound weights).
#include <cmath>

#include <boost/test/unit_test.hpp>

#include "compression/pruning/lottery_ticket.h"
#include "compression/pruning/movement_pruner.h"
#include "compression/pruning/norm_pruners.h"
#include "compression/pruning/scheduled_pruners.h"
#include "compression/pruning/slim_pruner.h"
#include "compression/pruning/taylor_pruner.h"
#include "compression/simple_model.h"

using namespace shrink;
using namespace shrink::compression;
using namespace shrink::testing;
namespace tt = boost::test_tools;

namespace {

boost::json::value cfg(const char* text) { return boost::json::parse(text); }

template <typename F>
void check_error(F&& f, const std::string& needle) {
  try {
    f();
    BOOST_ERROR("no error; expected one containing: " + needle);
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()).find(needle) != std::string::npos, e.what());
  }
}

// Runs `sched` for interval 2 x 3 times and returns fc1's weight sparsity after every step.
std::vector<double> fc1_sparsity_per_step(ScheduledPruner& sched, train::Trainer& trainer) {
  std::vector<double> seen;
  trainer.on_after_step([&](train::Trainer&) {
    seen.push_back(sparsity(sched.bound().get_masks().at("fc1.weight")));
  });
  Masks m = sched.compress(6);
  check_simple_masks(m, sched.bound().model());
  return seen;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(schedules)

// §9.2 item 12.
BOOST_AUTO_TEST_CASE(agp_sequence) {
  std::vector<double> s = AGPPruner::sparsity_sequence(0.75, 10);
  BOOST_REQUIRE_EQUAL(s.size(), 10u);
  BOOST_TEST(s[0] == 0.2033, tt::tolerance(1e-3));
  BOOST_TEST(s[1] == 0.3660, tt::tolerance(1e-3));
  BOOST_TEST(s[4] == 0.6563, tt::tolerance(1e-3));
  BOOST_TEST(s[9] == 0.75);
  for (size_t i = 1; i < s.size(); ++i) BOOST_TEST(s[i] > s[i - 1]);
}

BOOST_AUTO_TEST_CASE(linear_sequence) {
  std::vector<double> s = LinearPruner::sparsity_sequence(0.75, 10);
  BOOST_REQUIRE_EQUAL(s.size(), 10u);
  for (int t = 1; t <= 10; ++t) BOOST_TEST(s[t - 1] == 0.075 * t, tt::tolerance(1e-12));
  BOOST_TEST(s[9] == 0.75);
}

BOOST_AUTO_TEST_CASE(lottery_ticket_sequence) {
  std::vector<double> s = LotteryTicketPruner::target_sequence(0.8, 5);
  std::vector<double> want = {0.2752, 0.4747, 0.6193, 0.7241, 0.8};
  BOOST_REQUIRE_EQUAL(s.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) BOOST_TEST(s[i] == want[i], tt::tolerance(2e-4));
  BOOST_TEST(s[4] == 0.8, tt::tolerance(1e-12));
}

// AGP on L1, interval 2, 3 times: goals x 0, then x (1 - (1 - t/3)^3) = 0.7037, 0.9630, 1 at
// steps 2, 4, 6. fc1 (100 rows, goal 0.75) prunes floor(100 * 0.75 * fraction) rows:
// 52, 72, 75. The end state is §9.2 item 3.
BOOST_AUTO_TEST_CASE(agp_on_l1_simple_model) {
  SimpleSetup s = make_simple_setup();
  L1NormPruner l1(s.model, cfg(kSimpleConfig));
  AGPPruner agp(l1, 2, 3, s.trainer.get());
  check_error([&] { agp.compress(5); }, "stops before the last trigger");
  std::vector<double> seen = fc1_sparsity_per_step(agp, *s.trainer);
  BOOST_TEST(seen == (std::vector<double>{0, 0.52, 0.52, 0.72, 0.72, 0.75}), tt::per_element());
  BOOST_TEST(agp.times_done() == 3);
  BOOST_TEST(agp.current_fraction() == 1.0);
}

// Linear on L1: fractions 1/3, 2/3, 1 -> 25, 50, 75 rows of fc1.
BOOST_AUTO_TEST_CASE(linear_on_l1_simple_model) {
  SimpleSetup s = make_simple_setup();
  L1NormPruner l1(s.model, cfg(kSimpleConfig));
  LinearPruner linear(l1, 2, 3, s.trainer.get());
  std::vector<double> seen = fc1_sparsity_per_step(linear, *s.trainer);
  BOOST_TEST(seen == (std::vector<double>{0, 0.25, 0.25, 0.5, 0.5, 0.75}), tt::per_element());
  // Exhausted: further steps (the weights keep changing) leave the masks alone.
  const std::vector<float> before = l1.get_masks().at("conv1.weight").to_vector();
  const std::vector<float> w = s.model->conv1->parameter("weight").to_vector();
  s.trainer->train(-1, 4);
  BOOST_TEST(s.model->conv1->parameter("weight").to_vector() != w);
  BOOST_TEST(l1.get_masks().at("conv1.weight").to_vector() == before);
  BOOST_TEST(linear.times_done() == 3);
}

// Bound to Taylor (training_steps 2 = interval): the trainer comes from the bound pruner, the
// scores are gathered anew in each interval, and the masks follow the schedule.
BOOST_AUTO_TEST_CASE(agp_on_taylor_simple_model) {
  SimpleSetup s = make_simple_setup();
  TaylorPruner taylor(s.model, cfg(kSimpleConfig), *s.trainer, 2);
  AGPPruner agp(taylor, 2, 3);
  std::vector<double> seen = fc1_sparsity_per_step(agp, *s.trainer);
  BOOST_TEST(seen == (std::vector<double>{0, 0.52, 0.52, 0.72, 0.72, 0.75}), tt::per_element());
}

BOOST_AUTO_TEST_CASE(linear_on_taylor_simple_model) {
  SimpleSetup s = make_simple_setup();
  TaylorPruner taylor(s.model, cfg(kSimpleConfig), *s.trainer, 1);  // 1 of each 2 steps gathered
  LinearPruner linear(taylor, 2, 3);
  std::vector<double> seen = fc1_sparsity_per_step(linear, *s.trainer);
  BOOST_TEST(seen == (std::vector<double>{0, 0.25, 0.25, 0.5, 0.5, 0.75}), tt::per_element());
}

BOOST_AUTO_TEST_CASE(linear_on_slim_simple_model) {
  SimpleSetup s = make_simple_setup();
  SlimPruner slim(s.model, cfg(kSimpleConfig), *s.trainer, 2);
  LinearPruner linear(slim, 2, 3);
  std::vector<double> seen = fc1_sparsity_per_step(linear, *s.trainer);
  BOOST_TEST(seen == (std::vector<double>{0, 0.25, 0.25, 0.5, 0.5, 0.75}), tt::per_element());
}

BOOST_AUTO_TEST_CASE(what_cannot_be_scheduled) {
  SimpleSetup s = make_simple_setup();
  {
    L1NormPruner l1(s.model, cfg(kSimpleConfig));
    check_error([&] { AGPPruner(l1, 2, 3); }, "has no trainer");
  }
  {
    TaylorPruner taylor(s.model, cfg(kSimpleConfig), *s.trainer, 3);
    check_error([&] { AGPPruner(taylor, 2, 3); }, "shorter than training_steps 3");
  }
  {
    MovementPruner movement(s.model, cfg(kSimpleConfig), *s.trainer, 1, 3);
    check_error([&] { LinearPruner(movement, 2, 3); }, "schedules its own sparsity");
  }
}

// Lottery ticket, level, goal 0.75 on 128 weights in 3 iterations: s_i = 1 - 0.25^(i/3) ->
// 47, 77, 96 weights pruned; masks nested; weights rewound to their initial values each time.
BOOST_AUTO_TEST_CASE(lottery_ticket_iterations) {
  for (bool reset : {true, false}) {
    manual_seed(5);
    auto model = std::make_shared<nn::Sequential>();
    auto fc = std::make_shared<nn::Linear>(16, 8);
    model->push_back("flatten", std::make_shared<nn::Flatten>());
    model->push_back("fc", fc);
    auto ds = std::make_shared<data::TensorDataset>(data::make_synthetic_classification(16, {1, 4, 4}, 8, 2));
    auto loader = std::make_shared<data::DataLoader>(ds, 4, true, 1);
    auto opt = std::make_shared<optim::SGD>(model->parameters(), 0.1f);
    train::Trainer trainer(model, opt, loader);
    const std::vector<float> w0 = fc->parameter("weight").to_vector();
    LotteryTicketPruner lt(model, cfg(R"([{"op_names": ["fc"], "sparse_ratio": 0.75}])"), trainer, 3, reset);
    std::vector<float> prev(128, 1.f);
    const int want[] = {47, 77, 96};
    for (int i = 0; i < 3; ++i) {
      lt.run_iteration(2);
      std::vector<float> m = lt.get_masks().at("fc.weight").to_vector();
      int pruned = 0;
      for (size_t j = 0; j < m.size(); ++j) {
        pruned += m[j] == 0.f;
        if (prev[j] == 0.f) BOOST_TEST(m[j] == 0.f);  // nested
      }
      BOOST_TEST(pruned == want[i]);
      prev = m;
      const std::vector<float> w = fc->parameter("weight").to_vector();
      if (reset) {
        BOOST_TEST(w == w0, tt::per_element());
      } else {
        for (size_t j = 0; j < m.size(); ++j)
          if (m[j] == 0.f) BOOST_TEST(w[j] == 0.f);  // pruned weights were written as 0
      }
    }
    BOOST_TEST(trainer.global_step() == 6);
    check_error([&] { lt.run_iteration(1); }, "all 3 iterations are done");
  }
}

BOOST_AUTO_TEST_CASE(lottery_ticket_rejects) {
  auto model = std::make_shared<nn::Sequential>();
  model->push_back("fc", std::make_shared<nn::Linear>(4, 4));
  auto ds = std::make_shared<data::TensorDataset>(data::make_synthetic_classification(4, {4}, 4, 2));
  train::Trainer trainer(model, std::make_shared<optim::SGD>(model->parameters(), 0.1f),
                         std::make_shared<data::DataLoader>(ds, 4, false, 0));
  check_error([&] {
    LotteryTicketPruner(model, cfg(R"([{"op_names": ["fc"], "sparse_threshold": 0.1}])"), trainer, 2);
  }, "only sparse_ratio goals");
  check_error([&] {
    LotteryTicketPruner(model, cfg(R"([{"op_names": ["fc"], "sparse_ratio": 0.5}])"), trainer, 2, true, "taylor");
  }, "unknown base pruner 'taylor'");
}

BOOST_AUTO_TEST_SUITE_END()
