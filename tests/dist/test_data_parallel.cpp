// Data-parallel training against one process on the same global batches: the reduced gradients,
// the weights after some steps, the epoch's statistics and the evaluation.
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "dist_test_util.h"
#include "framework/core/error.h"
#include "framework/core/random.h"
#include "framework/nn/containers.h"
#include "framework/nn/layers.h"
#include "framework/data/dataloader.h"
#include "framework/dist/data_parallel.h"
#include "framework/dist/device_allreduce.h"
#include "framework/dist/sync_batch_norm.h"
#include "framework/ops/ops.h"
#include "framework/optim/optimizer.h"
#include "framework/train/trainer.h"
#include "models/zoo.h"

using namespace shrink;

namespace {

using Grads = std::map<std::string, std::vector<float>>;

struct Run {
  Grads first_grads;  // after step 1's reduction, as the after-backward callbacks see them
  Grads weights;      // after the run
  std::vector<train::EpochStats> stats;
  std::shared_ptr<train::Trainer> trainer;
  std::shared_ptr<nn::Module> model;
};

Grads values_of(const std::vector<std::pair<std::string, Tensor>>& named, bool grads) {
  Grads out;
  for (auto& [name, t] : named) out[name] = (grads ? t.grad() : t).to_vector();
  return out;
}

// Batch norms between smooth layers (tanh, no ReLU or max pool), so that rounding differences
// cannot flip a unit or a pooling window and the gradients stay comparable to 1e-5.
std::shared_ptr<nn::Module> smooth_bn_model() {
  auto m = std::make_shared<nn::Sequential>();
  m->push_back("conv1", std::make_shared<nn::Conv2d>(1, 4, 3, 1, 1, 1, 1, false));
  m->push_back("bn1", std::make_shared<nn::BatchNorm2d>(4));
  m->push_back("tanh1", std::make_shared<nn::Tanh>());
  m->push_back("conv2", std::make_shared<nn::Conv2d>(4, 8, 3, 2, 1, 1, 1, false));
  m->push_back("bn2", std::make_shared<nn::BatchNorm2d>(8));
  m->push_back("tanh2", std::make_shared<nn::Tanh>());
  m->push_back("flatten", std::make_shared<nn::Flatten>());
  m->push_back("fc1", std::make_shared<nn::Linear>(8 * 14 * 14, 16, false));  // a bias before a batch norm has no gradient
  m->push_back("bn3", std::make_shared<nn::BatchNorm1d>(16));
  m->push_back("tanh3", std::make_shared<nn::Tanh>());
  m->push_back("fc2", std::make_shared<nn::Linear>(16, 10));
  return m;
}

// lenet5 (no batch norm or dropout: its gradient does not depend on how the batch is split).
Run train_lenet(std::shared_ptr<dist::Communicator> comm, int64_t batch, int64_t steps, bool deterministic,
                int64_t samples = 256, std::string model_name = "lenet5", bool sync_bn = false) {
  Run r;
  manual_seed(3);
  r.model = model_name == "smooth_bn" ? smooth_bn_model() : models::make_model(model_name);
  auto opt = std::make_shared<optim::SGD>(r.model->parameters(), 0.05f, 0.9f, 1e-4f);
  auto loader = std::make_shared<data::DataLoader>(test::images(samples), batch, true, 5);
  r.trainer = std::make_shared<train::Trainer>(r.model, opt, loader);
  r.trainer->set_communicator(comm);
  r.trainer->set_deterministic_reduce(deterministic);
  if (sync_bn) BOOST_TEST(dist::sync_batch_norm(*r.model, comm) > 0);
  r.trainer->on_after_backward([&r](train::Trainer& t) {
    if (t.global_step() == 0) r.first_grads = values_of(t.model().named_parameters(), true);
  });
  r.stats = r.trainer->train(steps < 0 ? 1 : -1, steps);
  r.weights = values_of(r.model->named_parameters(), false);
  return r;
}

void check_close(const Grads& got, const Grads& want, double tol, const char* what) {
  BOOST_REQUIRE_EQUAL(got.size(), want.size());
  for (auto& [name, v] : want) {
    const double err = test::relative_error(got.at(name), v);
    BOOST_TEST(err <= tol, what << " of " << name << ": relative error " << err);
  }
}

void check_same_on_every_rank(dist::Communicator& comm, const Grads& values, const char* what) {
  for (auto& [name, v] : values)
    dist::check_identical(comm, std::string(what) + " " + name, v.data(), static_cast<int64_t>(v.size() * 4));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(data_parallel)

// A batch of 63 splits 31/32 on two ranks: each rank's mean-loss gradient is weighted by its
// share, so the sum is the gradient of the 63-sample mean. Two checks:
// - bit for bit, the same sum formed in one process from the two halves' gradients (each half's
//   gradient times its share, then added: what the all-reduce of two ranks computes);
// - against one process on the whole batch: 1e-6 relative over the model's gradient, and per
//   tensor 1e-6 except where the gradient is a sum with heavy cancellation (conv1's bias: 49k
//   terms of both signs), whose rounding differs by a few 1e-6 between any two groupings.
BOOST_AUTO_TEST_CASE(gradients_equal_one_process_on_the_global_batch) {
  auto w = test::world_or_note("gradients");
  Run one = train_lenet(std::make_shared<dist::SelfCommunicator>(), 63, 1, false);
  for (bool deterministic : {false, true}) {
    Run all = train_lenet(w, 63, 1, deterministic);
    check_same_on_every_rank(*w, all.first_grads, "the reduced gradient of");
    double diff = 0, norm = 0;
    for (auto& [name, g] : one.first_grads) {
      const std::vector<float>& d = all.first_grads.at(name);
      for (size_t i = 0; i < g.size(); ++i) {
        diff += (static_cast<double>(d[i]) - g[i]) * (static_cast<double>(d[i]) - g[i]);
        norm += static_cast<double>(g[i]) * g[i];
      }
      const double err = test::relative_error(d, g);
      BOOST_TEST(err <= (name == "conv1.bias" ? 5e-6 : 1e-6), name << ": relative error " << err);
    }
    BOOST_TEST(std::sqrt(diff / norm) <= 1e-6, "the whole gradient: relative error " << std::sqrt(diff / norm));
    if (w->size() != 2) continue;
    // The halves in this process: the first global batch of the same loader, split as the ranks do.
    data::DataLoader loader(test::images(256), 63, true, 5);
    data::Batch batch;
    BOOST_REQUIRE(loader.next(batch));
    manual_seed(3);
    auto model = models::make_model("lenet5");
    Grads half[2];  // each half's gradient times its share, rounded to float
    for (int64_t part = 0; part < 2; ++part) {
      const int64_t lo = 63 * part / 2, hi = 63 * (part + 1) / 2;
      Tensor x = slice(batch.inputs, 0, lo, hi), y = slice(batch.labels, 0, lo, hi);
      for (const Tensor& p : model->parameters()) p.zero_grad();
      cross_entropy((*model)(x), y).backward();
      const float share = static_cast<float>(static_cast<double>(hi - lo) / 63.0);  // as the trainer rounds it
      for (auto& [name, p] : model->named_parameters()) {
        std::vector<float> g = p.grad().to_vector();
        for (float& v : g) v *= share;
        half[part][name] = std::move(g);
      }
    }
    // Added in a loop of its own: with the multiply in the same expression the compiler may fuse
    // the two into one rounding (FMA), which no all-reduce does.
    for (auto& [name, g0] : half[0]) {
      std::vector<float> e = g0;
      const std::vector<float>& g1 = half[1].at(name);
      for (size_t i = 0; i < e.size(); ++i) e[i] += g1[i];
      BOOST_TEST((all.first_grads.at(name) == e), name << ": the ranks' sum differs from the halves' in one process");
    }
  }
}

BOOST_AUTO_TEST_CASE(weights_after_steps_match_and_agree_across_ranks) {
  auto w = test::world_or_note("weights");
  Run one = train_lenet(std::make_shared<dist::SelfCommunicator>(), 64, 4, false);
  Run all = train_lenet(w, 64, 4, false);
  check_close(all.weights, one.weights, 1e-5, "weight after 4 steps");
  check_same_on_every_rank(*w, all.weights, "the weight");
  if (w->size() > 1) BOOST_TEST(all.trainer->allreduce_steps() == 4);
}

BOOST_AUTO_TEST_CASE(deterministic_reduction_repeats_bit_for_bit) {
  auto w = test::world_or_note("deterministic");
  Run a = train_lenet(w, 32, 3, true);
  Run b = train_lenet(w, 32, 3, true);
  for (auto& [name, v] : a.weights) BOOST_TEST((v == b.weights.at(name)), name << " differs between repetitions");
}

// 200 samples in batches of 64: three full batches and one of 8 (4 per rank).
BOOST_AUTO_TEST_CASE(epoch_statistics_and_evaluation_cover_every_rank) {
  auto w = test::world_or_note("statistics");
  Run one = train_lenet(std::make_shared<dist::SelfCommunicator>(), 64, -1, false, 200);
  Run all = train_lenet(w, 64, -1, false, 200);
  BOOST_REQUIRE_EQUAL(all.stats.size(), 1u);
  BOOST_TEST(std::fabs(all.stats[0].loss - one.stats[0].loss) <= 1e-5 * std::fabs(one.stats[0].loss));
  BOOST_TEST(std::fabs(all.stats[0].train_accuracy - one.stats[0].train_accuracy) <= 1.0 / 200 + 1e-12);
  // The same model evaluated by every rank on its shard, and by this process alone.
  data::DataLoader eval_all(test::images(99), 10, false, 0), eval_one(test::images(99), 10, false, 0);
  const train::EvalResult sharded = all.trainer->evaluate(eval_all);
  BOOST_TEST(eval_all.shards() == 1);  // the caller's loader is given back unsharded
  all.trainer->set_communicator(std::make_shared<dist::SelfCommunicator>());
  const train::EvalResult alone = all.trainer->evaluate(eval_one);
  all.trainer->set_communicator(w);
  BOOST_TEST(sharded.samples == alone.samples);
  BOOST_TEST(sharded.accuracy == alone.accuracy);
  BOOST_TEST(std::fabs(sharded.loss - alone.loss) <= 1e-6 * std::fabs(alone.loss));
}

// Batch norm: batch statistics per rank, running statistics rank 0's once train() returns.
BOOST_AUTO_TEST_CASE(batch_norm_buffers_agree_after_training) {
  auto w = test::world_or_note("buffers");
  Run all = train_lenet(w, 16, 2, false, 64, "vgg_small");
  check_same_on_every_rank(*w, values_of(all.model->named_buffers(), false), "the buffer");
  check_same_on_every_rank(*w, all.weights, "the weight");
}

// Small buckets on lenet5: each bucket's all-reduce starts as soon as its parameters' gradients
// are in, while backward still computes the earlier layers' (leaf hooks run as each leaf
// completes); the averaged gradient is the same as with one bucket.
BOOST_AUTO_TEST_CASE(buckets_start_during_backward) {
  auto w = test::world_or_note("buckets");
  Grads averaged[2];
  for (int small = 0; small < 2; ++small) {
    manual_seed(3);
    auto model = models::make_model("lenet5");
    dist::GradReducer::Options o;
    if (small) o.bucket_bytes = 4096;
    dist::GradReducer reducer(w, model->named_parameters(), o);
    if (small) BOOST_TEST(reducer.num_buckets() >= 4);
    manual_seed(5);
    Tensor x = randn({8, 1, 28, 28});
    reducer.begin_step(0.5);
    cross_entropy((*model)(x), Tensor::from_vector_i64({1, 2, 3, 4, 5, 6, 7, 8}, {8})).backward();
    reducer.finish_step();
    if (small) BOOST_TEST(reducer.started_during_backward() >= reducer.num_buckets() - 1);
    averaged[small] = values_of(model->named_parameters(), true);
  }
  for (auto& [name, g] : averaged[0]) BOOST_TEST((averaged[1].at(name) == g), name);
}

// SyncBatchNorm: statistics over the global batch, so a data-parallel step computes one
// process's gradients and running statistics on the whole batch, batch norm included (BatchNorm2d
// and BatchNorm1d); with per-rank statistics (the default) the gradients differ far beyond
// rounding. (A model with ReLU and max pooling after its batch norms, e.g. vgg_small, agrees
// except where rounding flips a unit or a pooling window: a few 1e-3 in its first layers.)
BOOST_AUTO_TEST_CASE(sync_batch_norm_equals_one_process) {
  auto w = test::world_or_note("SyncBatchNorm");
  Run one = train_lenet(std::make_shared<dist::SelfCommunicator>(), 30, 1, false, 64, "smooth_bn");
  for (bool deterministic : {false, true}) {
    Run synced = train_lenet(w, 30, 1, deterministic, 64, "smooth_bn", true);
    check_close(synced.first_grads, one.first_grads, 1e-5, "SyncBatchNorm gradient");
    // Running means near 0 (of channel means near 0): 1e-6 of rounding relative to their size.
    check_close(values_of(synced.model->named_buffers(), false), values_of(one.model->named_buffers(), false), 1e-5,
                "SyncBatchNorm buffer");
    check_same_on_every_rank(*w, synced.first_grads, "the SyncBatchNorm gradient of");
  }
  // One process with SyncBatchNorm is plain batch norm (composite ops instead of the fused op).
  Run alone_synced = train_lenet(std::make_shared<dist::SelfCommunicator>(), 30, 1, false, 64, "smooth_bn", true);
  check_close(alone_synced.first_grads, one.first_grads, 1e-5, "one-rank SyncBatchNorm gradient");
  if (w->size() < 2) return;
  Run per_rank = train_lenet(w, 30, 1, false, 64, "smooth_bn");
  double worst = 0;
  for (auto& [name, g] : one.first_grads) worst = std::max(worst, test::relative_error(per_rank.first_grads.at(name), g));
  BOOST_TEST(worst > 1e-3, "per-rank batch statistics should change the gradient; worst relative difference " << worst);
}

// A data-parallel run stopped mid-epoch and resumed from its checkpoint (a directory every rank
// sees; rank 0 wrote it) ends with the uninterrupted run's weights, bit for bit (deterministic
// sums), and the same epoch statistics: the checkpoint holds every rank's running sums.
BOOST_AUTO_TEST_CASE(resumed_run_continues_the_run) {
  auto w = test::world_or_note("resume");
  int64_t pid = ::getpid();
  w->broadcast(&pid, sizeof pid, 0);
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("shrink_dist_resume_" + std::to_string(pid));
  if (w->is_writer()) std::filesystem::remove_all(dir);
  w->barrier();
  struct Stop {};
  auto make = [&](Run& r) {
    manual_seed(3);
    r.model = models::make_model("lenet5");
    auto opt = std::make_shared<optim::SGD>(r.model->parameters(), 0.05f, 0.9f, 1e-4f);
    r.trainer = std::make_shared<train::Trainer>(r.model, opt,
                                                 std::make_shared<data::DataLoader>(test::images(200), 32, true, 5));
    r.trainer->set_communicator(w);
    r.trainer->set_deterministic_reduce(true);
  };
  Run full;
  make(full);
  const std::vector<train::EpochStats> expected = full.trainer->train(2);  // 7 batches an epoch
  {
    Run first;
    make(first);
    first.trainer->set_checkpointing(dir.string(), 3);
    first.trainer->on_after_step([](train::Trainer& t) {
      if (t.global_step() == 11) throw Stop();
    });
    BOOST_CHECK_THROW(first.trainer->train(2), Stop);
  }
  w->barrier();
  Run second;
  make(second);
  BOOST_REQUIRE(second.trainer->resume_from(dir.string()));  // step 9, in the second epoch
  const std::vector<train::EpochStats> tail = second.trainer->train(2);
  BOOST_TEST(second.trainer->global_step() == 14);
  const Grads a = values_of(full.model->named_parameters(), false), b = values_of(second.model->named_parameters(), false);
  for (auto& [name, v] : a) BOOST_TEST((b.at(name) == v), name << " differs from the uninterrupted run's");
  BOOST_REQUIRE_EQUAL(tail.size(), 1u);
  BOOST_TEST(std::fabs(tail[0].loss - expected[1].loss) <= 1e-12 * std::fabs(expected[1].loss));
  BOOST_TEST(tail[0].train_accuracy == expected[1].train_accuracy);
  w->barrier();
  if (w->is_writer()) std::filesystem::remove_all(dir);
}

// A rank whose graph leaves a parameter out while another's uses it would drift apart.
BOOST_AUTO_TEST_CASE(a_parameter_used_on_some_ranks_only_stops_the_run) {
  auto w = test::world_or_note("unused parameter");
  if (w->size() < 2) return;
  manual_seed(1);
  auto a = std::make_shared<nn::Linear>(4, 3), b = std::make_shared<nn::Linear>(4, 3);
  Tensor x = randn({2, 4});
  std::vector<std::pair<std::string, Tensor>> params = {{"a.weight", a->param("weight")},
                                                        {"b.weight", b->param("weight")}};
  dist::GradReducer reducer(w, params, dist::GradReducer::Options());
  reducer.begin_step(0.5);
  Tensor loss = sum(w->rank() == 0 ? add((*a)(x), (*b)(x)) : (*a)(x));
  loss.backward();
  try {
    reducer.finish_step();
    BOOST_FAIL("the ranks' disagreement passed");
  } catch (const Error& e) {
    const std::string what = e.what();
    BOOST_TEST(what.find("'b.weight' received a gradient on 1 of 2 ranks") != std::string::npos, what);
  }
}

namespace {
// A DeviceAllReduce for the CPU that sums through the Communicator and counts its calls, so that
// the reducer's device path (buckets as tensors on the parameters' device, one sum queued per
// bucket) runs without a GPU. Registered for the test's duration only.
struct CountingAllReduce final : dist::DeviceAllReduce {
  explicit CountingAllReduce(dist::Communicator& c, int* calls) : comm(c), calls(calls) {}
  void sum(Tensor& buffer) override {
    ++*calls;
    comm.allreduce(buffer.data<float>(), buffer.numel(), dist::ReduceOp::Sum);
  }
  const char* name() const override { return "counting"; }
  dist::Communicator& comm;
  int* calls;
};
struct RegisteredForCpu {
  explicit RegisteredForCpu(int* calls) {
    dist::register_device_allreduce(Device::CPU, [calls](dist::Communicator& c) -> std::unique_ptr<dist::DeviceAllReduce> {
      return std::make_unique<CountingAllReduce>(c, calls);
    });
  }
  ~RegisteredForCpu() { dist::register_device_allreduce(Device::CPU, nullptr); }
};
}  // namespace

// The device path (NCCL's, for CUDA parameters) gives the host path's averaged gradients bit for
// bit: one sum per bucket, arrival slots included; and a deterministic reducer keeps to the host.
BOOST_AUTO_TEST_CASE(device_buckets_give_the_host_path_gradients) {
  auto w = test::world_or_note("device buckets");
  Grads averaged[2];
  int calls = 0;
  for (int on_device = 0; on_device < 2; ++on_device) {
    std::unique_ptr<RegisteredForCpu> reg = on_device ? std::make_unique<RegisteredForCpu>(&calls) : nullptr;
    manual_seed(3);
    auto model = models::make_model("lenet5");
    dist::GradReducer::Options o;
    o.bucket_bytes = 4096;
    dist::GradReducer reducer(w, model->named_parameters(), o);
    BOOST_TEST(reducer.transport() == (on_device ? "counting" : "host"));
    for (int step = 0; step < 2; ++step) {  // the second step starts from zeroed device buckets
      for (auto& [name, p] : model->named_parameters()) p.zero_grad();
      manual_seed(5 + step);
      Tensor x = randn({8, 1, 28, 28});
      reducer.begin_step(0.5);
      cross_entropy((*model)(x), Tensor::from_vector_i64({1, 2, 3, 4, 5, 6, 7, 8}, {8})).backward();
      reducer.finish_step();
    }
    averaged[on_device] = values_of(model->named_parameters(), true);
    if (on_device) {
      BOOST_TEST(calls == 2 * reducer.num_buckets());
      dist::GradReducer::Options ordered = o;
      ordered.deterministic = true;
      BOOST_TEST(dist::GradReducer(w, model->named_parameters(), ordered).transport() == "host");
    }
  }
  for (auto& [name, g] : averaged[0]) BOOST_TEST((averaged[1].at(name) == g), name);
}

BOOST_AUTO_TEST_SUITE_END()
