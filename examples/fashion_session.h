// What `shrink train` and `shrink prune` share: the training options on the command line and a
// ready Trainer on Fashion-MNIST (SGD with momentum, cosine learning rate, per-epoch lines).
#pragma once
#include <boost/program_options.hpp>
#include <iosfwd>
#include <memory>
#include <string>

#include "framework/data/dataset.h"
#include "framework/optim/optimizer.h"
#include "framework/train/trainer.h"

namespace shrink::cli {

struct TrainOptions {
  int64_t batch = 64;
  double lr = 0.05, momentum = 0.9, weight_decay = 5e-4;
  uint64_t seed = 1;
  int64_t limit = -1;
  int64_t test_limit = -1;  // the test images a session evaluates on (-1: all)
  int threads = 0;
  std::string data_dir, device = "cpu";
  bool allow_nonfinite = false, detect_anomaly = false;
  bool deterministic = false;  // under mpirun: gradients summed in rank order
  bool sync_bn = false;        // under mpirun: batch norm statistics over the global batch
  // Checkpoints (add_checkpoint_options): write to checkpoint_dir, or resume from and go on
  // writing to resume_dir, every checkpoint_every optimizer steps.
  std::string checkpoint_dir, resume_dir;
  int64_t checkpoint_every = 200;
};

// --batch --lr --momentum --weight-decay --seed --limit --threads --data --device --allow-nonfinite
// --detect-anomaly --deterministic --sync-bn, each defaulting
// to what `o` holds (a command may preset them).
void add_train_options(boost::program_options::options_description& desc, TrainOptions& o);
// --checkpoint DIR --checkpoint-every N --resume DIR, for the commands that train.
void add_checkpoint_options(boost::program_options::options_description& desc, TrainOptions& o);
// Sets the worker threads: `threads` when positive, else this machine's cores divided between
// the ranks of an mpirun job that share it (all of them outside mpirun: the default pool).
void apply_thread_count(int threads);
// Applies --threads (apply_thread_count) and checks --device; returns the device (throws for
// "cuda" without one).
Device apply_runtime_options(const TrainOptions& o);

// --checkpoint / --resume on a trainer (make_fashion_session does it): a fresh --checkpoint into a
// directory that already holds checkpoints is refused (resume it, or pick another one).
void apply_checkpoint_options(train::Trainer& trainer, const TrainOptions& o);

// ", on N ranks (batch B per rank)" under mpirun, else "": for a command's first line.
std::string ranks_note(train::Trainer& trainer);

struct FashionSession {
  std::shared_ptr<nn::Module> model;
  std::shared_ptr<data::TensorDataset> train_set;
  std::shared_ptr<optim::SGD> optimizer;
  std::shared_ptr<train::Trainer> trainer;
};

// A Trainer for `model` on Fashion-MNIST; `schedule_epochs` > 0 adds a cosine LR schedule over
// that many epochs. Progress and a line per epoch go to `log` (a live bar only on a terminal).
FashionSession make_fashion_session(std::shared_ptr<nn::Module> model, const TrainOptions& o,
                                    Device device, int64_t schedule_epochs, std::ostream& log);

// The model's accuracy on the Fashion-MNIST test set (eval mode, no gradient, --batch and
// --limit from `o`) and the samples per second of its forwards.
struct TestResult {
  double accuracy = 0.0;
  int64_t samples = 0;
  double samples_per_s = 0.0;
  std::vector<int64_t> predictions;  // the predicted class of each test image, in order
};
TestResult evaluate_test_set(nn::Module& model, const TrainOptions& o, Device device);

}  // namespace shrink::cli
