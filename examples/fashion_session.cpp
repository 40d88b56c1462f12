#include "examples/fashion_session.h"

#include <unistd.h>

#include <chrono>
#include <iomanip>
#include <iostream>
#include <thread>

#include "examples/cli.h"
#include "framework/core/autograd.h"
#include "framework/core/backend.h"
#include "framework/core/parallel.h"
#include "framework/data/fashion_mnist.h"
#include "framework/dist/communicator.h"
#include "framework/dist/sync_batch_norm.h"
#include "framework/io/checkpoint.h"
#include "framework/ops/ops.h"

namespace po = boost::program_options;

namespace shrink::cli {

void add_train_options(po::options_description& desc, TrainOptions& o) {
  o.data_dir = data::default_fashion_mnist_dir();
  desc.add_options()
      ("batch", po::value(&o.batch)->default_value(o.batch), "batch size")
      ("lr", po::value(&o.lr)->default_value(o.lr), "learning rate (SGD)")
      ("momentum", po::value(&o.momentum)->default_value(o.momentum), "SGD momentum")
      ("weight-decay", po::value(&o.weight_decay)->default_value(o.weight_decay), "weight decay")
      ("seed", po::value(&o.seed)->default_value(1), "random seed (init, shuffle, dropout)")
      ("limit", po::value(&o.limit)->default_value(-1), "use only the first N training images")
      ("threads", po::value(&o.threads)->default_value(0), "worker threads (0 = all cores, shared between the ranks of an mpirun job on this machine)")
      ("data", po::value(&o.data_dir)->default_value(o.data_dir), "Fashion-MNIST directory")
      ("device", po::value(&o.device)->default_value("cpu"), "cpu | cuda")
      ("allow-nonfinite", po::bool_switch(&o.allow_nonfinite), "train on when the loss or a gradient is NaN/Inf (default: stop with an error naming the op)")
      ("detect-anomaly", po::bool_switch(&o.detect_anomaly), "check every op's output and gradient for NaN/Inf as it is made (slower)")
      ("deterministic", po::bool_switch(&o.deterministic), "under mpirun: sum gradients in rank order, so that repeated runs are bit-identical (no overlap with backward)")
      ("sync-bn", po::bool_switch(&o.sync_bn), "under mpirun: batch norm statistics over the global batch (SyncBatchNorm) instead of each rank's part");
}

void add_checkpoint_options(po::options_description& desc, TrainOptions& o) {
  desc.add_options()
      ("checkpoint", po::value(&o.checkpoint_dir), "write the run's whole state to DIR every --checkpoint-every steps (the newest two kept)")
      ("checkpoint-every", po::value(&o.checkpoint_every)->default_value(o.checkpoint_every), "optimizer steps between checkpoints")
      ("resume", po::value(&o.resume_dir), "continue from the newest complete checkpoint in DIR (same command otherwise; starts afresh when there is none) and go on checkpointing there");
}

void apply_thread_count(int threads) {
  if (threads > 0) {
    set_num_threads(threads);
  } else if (dist::local_size() > 1) {
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    set_num_threads(std::max(1, static_cast<int>(cores) / dist::local_size()));
  }
}

Device apply_runtime_options(const TrainOptions& o) {
  SHRINK_CHECK(o.batch > 0 && o.lr > 0, "--batch and --lr must be positive");
  SHRINK_CHECK(o.checkpoint_dir.empty() || o.resume_dir.empty(), "give --checkpoint or --resume, not both (--resume ",
               "goes on writing checkpoints to its directory)");
  SHRINK_CHECK(o.checkpoint_every > 0, "--checkpoint-every must be positive, got ", o.checkpoint_every);
  apply_thread_count(o.threads);
  if (o.device == "cpu") return Device::CPU;
  SHRINK_CHECK(o.device == "cuda", "--device must be cpu or cuda, got '", o.device, "'");
  SHRINK_CHECK(backend_available(Device::CUDA),
               "--device cuda: no CUDA device (this build has no CUDA backend or no GPU was found)");
  return Device::CUDA;
}

void apply_checkpoint_options(train::Trainer& trainer, const TrainOptions& o) {
  if (!o.resume_dir.empty()) {
    trainer.resume_from(o.resume_dir);
    trainer.set_checkpointing(o.resume_dir, o.checkpoint_every);
  } else if (!o.checkpoint_dir.empty()) {
    const std::vector<std::string> old = io::list_checkpoints(o.checkpoint_dir);
    SHRINK_CHECK(old.empty(), "--checkpoint ", o.checkpoint_dir, ": the directory already holds checkpoints (newest ",
                 old.empty() ? "" : old.front(), "); continue that run with --resume ", o.checkpoint_dir,
                 ", or choose another directory");
    trainer.set_checkpointing(o.checkpoint_dir, o.checkpoint_every);
  }
}

std::string ranks_note(train::Trainer& trainer) {
  const int ranks = trainer.communicator().size();
  if (ranks == 1) return "";
  const int64_t batch = trainer.train_loader()->batch_size();
  return " each, on " + std::to_string(ranks) + " ranks (" + trainer.communicator().backend() + ", about " +
         std::to_string(batch / ranks) + " samples of each batch per rank)";
}

FashionSession make_fashion_session(std::shared_ptr<nn::Module> model, const TrainOptions& o,
                                    Device device, int64_t schedule_epochs, std::ostream& log) {
  FashionSession s;
  s.model = std::move(model);
  s.model->to(device);
  s.train_set = data::load_fashion_mnist(o.data_dir, true, o.limit);
  auto test_set = data::load_fashion_mnist(o.data_dir, false, o.test_limit);
  auto train_loader = std::make_shared<data::DataLoader>(s.train_set, o.batch, true, o.seed);
  auto test_loader = std::make_shared<data::DataLoader>(test_set, 256, false, o.seed);
  s.optimizer = std::make_shared<optim::SGD>(s.model->parameters(), static_cast<float>(o.lr),
                                             static_cast<float>(o.momentum),
                                             static_cast<float>(o.weight_decay));
  s.trainer = std::make_shared<train::Trainer>(s.model, s.optimizer, train_loader, test_loader);
  s.trainer->set_device(device);
  s.trainer->set_check_finite(!o.allow_nonfinite);
  s.trainer->set_detect_anomaly(o.detect_anomaly);
  s.trainer->set_deterministic_reduce(o.deterministic);
  if (o.sync_bn && s.trainer->communicator().size() > 1)  // one process: the fused op is the same
    dist::sync_batch_norm(*s.model, s.trainer->communicator_ptr());
  s.trainer->set_log(&log, &log == &std::cout && draws_progress(STDOUT_FILENO));
  if (schedule_epochs > 0)
    s.trainer->set_scheduler(std::make_shared<optim::CosineAnnealingLR>(*s.optimizer, schedule_epochs));
  apply_checkpoint_options(*s.trainer, o);
  s.trainer->on_epoch_end([&log](train::Trainer&, const train::EpochStats& st) {
    log << "epoch " << st.epoch + 1 << "  loss " << std::fixed << std::setprecision(4)
              << st.loss << "  train_acc " << st.train_accuracy << "  test_acc "
              << st.test_accuracy << "  " << std::setprecision(0) << st.samples_per_s
              << " samples/s  " << std::setprecision(1) << st.seconds << "s\n"
              << std::flush;
  });
  return s;
}

TestResult evaluate_test_set(nn::Module& model, const TrainOptions& o, Device device) {
  model.eval();
  auto test = data::load_fashion_mnist(o.data_dir, false, o.limit);
  data::DataLoader loader(test, o.batch, false, o.seed);
  loader.start_epoch();
  data::Batch b;
  int64_t correct = 0;
  TestResult r;
  NoGradGuard ng;
  const auto t0 = std::chrono::steady_clock::now();
  while (loader.next(b)) {
    const std::vector<int64_t> pred = argmax(model(b.inputs.to(device)), 1).to_vector_i64();
    const std::vector<int64_t> y = b.labels.to_vector_i64();
    for (size_t i = 0; i < y.size(); ++i) correct += pred[i] == y[i];
    r.samples += static_cast<int64_t>(y.size());
    r.predictions.insert(r.predictions.end(), pred.begin(), pred.end());
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.accuracy = r.samples ? static_cast<double>(correct) / static_cast<double>(r.samples) : 0.0;
  r.samples_per_s = seconds > 0 ? static_cast<double>(r.samples) / seconds : 0.0;
  return r;
}

}  // namespace shrink::cli
