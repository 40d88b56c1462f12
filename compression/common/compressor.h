// Compressor: what every pruner, quantizer and distiller shares — the model, the module wrappers,
// the trainer callbacks — and fusion compression (nni-semantics §6.2, NNI's from_compressor).
//
// A compressor is built on a Host: a model, or a compressor built earlier. Built on a compressor,
// it shares that one's model, wrappers and trainer, and adds its own targets to the same wrappers
// (a target then passes quantize -> mask -> distillation observe, whichever compressor came
// first). The newest compressor drives the run: its compress() trains once for all of them.
//
//   auto distiller = std::make_shared<DynamicLayerwiseDistiller>(student, d_cfg, trainer, teacher);
//   auto pruner = std::make_shared<TaylorPruner>(Host(distiller), p_cfg, trainer, 10);
//   LsqQuantizer quantizer(Host(pruner), q_cfg, trainer);
//   quantizer.compress(100, -1);   // one training run: distil + Taylor + LSQ
//
// In the run (run_fused) the compressors' trainer callbacks are ordered newest first, NNI's
// order: with the chain above the loss is
//     origin_loss_lambda * (loss + pruner terms) + distillation
// (the newest patch is innermost) and LSQ's step tasks run before Taylor's. Each compressor then
// gets on_run_start() (newest first: one-shot norm pruners generate their masks, DECISIONS row
// 11), the trainer trains, and each gets on_run_end().
//
// A compressor keeps the ones it was built on alive. Destroying it takes off what it added (its
// targets' spaces and trackers; wrappers left empty are unwrapped), so the compressors it was built
// on go on as before; unwrap() removes every wrapper of the run from the model.
#pragma once
#include <map>
#include <set>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "compression/common/trainer_hooks.h"
#include "framework/dist/communicator.h"
#include "compression/wrapper/module_wrapper.h"
#include "framework/nn/module.h"

namespace shrink::compression {

class Compressor;
using WrapperMap = std::map<std::string, std::unique_ptr<ModuleWrapper>>;

// What a compressor is built on: a model, or an earlier compressor to fuse with.
class Host {
 public:
  template <class M, std::enable_if_t<std::is_base_of_v<nn::Module, M>, int> = 0>
  Host(std::shared_ptr<M> model) : model_(std::move(model)) {}
  template <class C, std::enable_if_t<std::is_base_of_v<Compressor, C>, int> = 0>
  Host(std::shared_ptr<C> previous) : previous_(std::move(previous)) {}
  template <class C, std::enable_if_t<std::is_base_of_v<Compressor, C>, int> = 0>
  Host(std::unique_ptr<C>&& previous) : previous_(std::move(previous)) {}

 private:
  friend class Compressor;
  std::shared_ptr<nn::Module> model_;
  std::shared_ptr<Compressor> previous_;
};

class Compressor {
 public:
  virtual ~Compressor();
  Compressor(const Compressor&) = delete;
  Compressor& operator=(const Compressor&) = delete;

  nn::Module& model() { return *model_; }
  std::shared_ptr<nn::Module> model_ptr() { return model_; }
  const std::string& name() const { return who_; }
  const std::vector<std::string>& warnings() const { return warnings_; }
  // This compressor's targets (those its config list selected), by module then target order.
  std::vector<TargetState*> targets();
  // The wrappers of the run (shared by every fused compressor).
  WrapperMap& wrappers() { return *wrappers_; }
  ModuleWrapper& wrapper(const std::string& module) { return *wrappers_->at(module); }
  // This compressor, then the ones it was built on, newest first (NNI's fused_compressors).
  std::vector<Compressor*> fused();
  // The trainer of the run: this compressor's, else the nearest one it was built on; may be null.
  train::Trainer* run_trainer();
  // The data-parallel ranks this compressor decides with: the run trainer's, else the process's
  // world (framework/dist/). Statistics that depend on each rank's data (activation metrics,
  // observed ranges, histograms, LSQ's initial steps, bias corrections) are reduced through it
  // before masks or scales are computed, so every rank decides the same; masks are then checked
  // to be identical on every rank.
  dist::Communicator& communicator();
  // Decides with `comm` instead (e.g. a one-rank communicator: this process alone, whatever the
  // job); a trainer's compressors follow the trainer's set_communicator.
  void set_communicator(std::shared_ptr<dist::Communicator> comm) { comm_ = std::move(comm); }
  // Checkpoints (Trainer::add_state, registered for every compressor with a trainer;
  // a schedule saves the one-shot pruner it drives): what the
  // run needs to continue exactly. The base writes its targets' state of its kind under
  // `prefix` + target key: pruning masks that are not module buffers (those travel with the
  // model) and the extras (slim factors, movement scores); quantization scale, zero point and
  // tracked range. Subclasses add their counters and accumulators and call the base.
  virtual void save_state(io::StateDict& out, const std::string& prefix);
  virtual void load_state(const io::StateDict& in, const std::string& prefix);
  // Removes every wrapper of the run from the model (its parameters were never replaced), after
  // each compressor of the run released what it holds on the model (release()).
  void unwrap();

 protected:
  // `trainer` (null for compressors that never train) must be the run's, when the host has one.
  Compressor(Host host, CompressorKind kind, train::Trainer* trainer, const char* who);

  // Adds the target spaces to the run's wrappers (a wrapper per module, made when first needed)
  // and wraps them. A target another compressor of the same kind configures is an error.
  void add_targets(const std::vector<TargetSpace>& spaces);
  // Trains max_steps steps / max_epochs epochs (-1: no limit) for every compressor of the run.
  void run_fused(int64_t max_steps, int64_t max_epochs);
  virtual void on_run_start() {}
  virtual void on_run_end() {}
  // Undoes what the compressor changed on a model beyond its targets (module fusion, a teacher's
  // wrappers); called by unwrap(). A subclass that overrides it also calls it from its destructor.
  virtual void release() {}
  // The key prefix of this compressor's checkpoint state: its place in its chain (0 = built on the
  // model) and its class, the same in every run built the same way.
  std::string state_prefix() { return "c" + std::to_string(fused().size() - 1) + "." + who_ + "."; }
  // This compressor's trainer callbacks; it must have a trainer.
  TrainerHooks& hooks();
  bool has_hooks() const { return hooks_ != nullptr; }

  std::shared_ptr<nn::Module> model_;
  std::shared_ptr<dist::Communicator> comm_;  // set_communicator's, else null
  std::vector<std::string> warnings_;
  const std::string who_;  // class name, for messages

 private:
  CompressorKind kind_;
  std::shared_ptr<WrapperMap> wrappers_;
  std::shared_ptr<Compressor> previous_;
  std::unique_ptr<TrainerHooks> hooks_;
  std::set<const TargetState*> own_;  // this compressor's targets (targets() gives them in model order)
};

}  // namespace shrink::compression
