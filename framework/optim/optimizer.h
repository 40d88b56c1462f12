// Optimizers with parameter groups (compressors add their own scales and factors later through
// add_param_group) and the LR schedulers. Update formulas follow torch.optim exactly.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "framework/core/tensor.h"

namespace shrink::io {
class StateDict;
}

namespace shrink::optim {

struct GroupOptions {
  float lr = 1e-3f;
  float weight_decay = 0.f;
  // SGD
  float momentum = 0.f, dampening = 0.f;
  bool nesterov = false;
  // Adam / AdamW
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
};

struct ParamGroup {
  std::vector<Tensor> params;
  GroupOptions options;
  float initial_lr = 0.f;  // set when the group is added; schedulers scale from it
  // Optional and unique: checkpoints find a named group by its name wherever it ended up (groups
  // a compressor adds on first forwards, whose order may vary), unnamed ones by their order.
  std::string name;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // Applies one update to every parameter that has a gradient.
  void step();
  // Drops every parameter's gradient (as set_to_none=True).
  void zero_grad();
  void add_param_group(std::vector<Tensor> params, GroupOptions options, const std::string& name = "");
  void add_param_group(std::vector<Tensor> params);  // with the defaults
  std::vector<ParamGroup>& param_groups() { return groups_; }
  const GroupOptions& defaults() const { return defaults_; }
  void set_lr(float lr);  // every group
  float lr() const { return groups_.empty() ? defaults_.lr : groups_[0].options.lr; }
  // Checkpoints: each group's learning rate and size and each parameter's state (buffers, step
  // count), by group and position, under `prefix`. The parameters' values are not included.
  // Loading needs the same groups of the same sizes (the run built the same way).
  void save_state(io::StateDict& out, const std::string& prefix) const;
  void load_state(const io::StateDict& in, const std::string& prefix);
  // How checkpoints name group g: "n.<name>" for a named group, "g<k>" for the k-th unnamed one.
  std::string group_key(size_t g) const;

 protected:
  explicit Optimizer(GroupOptions defaults) : defaults_(defaults) {}
  virtual void update(Tensor& param, const Tensor& grad, const GroupOptions& o) = 0;

  struct State {
    Tensor buf1, buf2;  // momentum / exp_avg, exp_avg_sq
    int64_t step = 0;
  };
  State& state(const Tensor& p) { return state_[p.impl()]; }

 private:
  GroupOptions defaults_;
  std::vector<ParamGroup> groups_;
  std::map<const TensorImpl*, State> state_;
};

// torch.optim.SGD (momentum buffer initialised with the first gradient; nesterov variant).
class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, float lr, float momentum = 0.f, float weight_decay = 0.f,
      bool nesterov = false, float dampening = 0.f);

 protected:
  void update(Tensor& param, const Tensor& grad, const GroupOptions& o) override;
};

// torch.optim.Adam (L2 weight decay added to the gradient).
class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, float lr = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f,
       float eps = 1e-8f, float weight_decay = 0.f);

 protected:
  void update(Tensor& param, const Tensor& grad, const GroupOptions& o) override;
  bool decoupled_ = false;
};

// torch.optim.AdamW (decoupled weight decay, default 0.01).
class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, float lr = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f,
        float eps = 1e-8f, float weight_decay = 1e-2f);
};

// Schedulers are stepped once per epoch (or per call) and set lr = f(initial_lr, count).
class LRScheduler {
 public:
  explicit LRScheduler(Optimizer& opt) : opt_(opt) {}
  virtual ~LRScheduler() = default;
  void step();
  int64_t last_epoch() const { return epoch_; }
  // For checkpoints: the count of step() calls (the learning rates are the optimizer's state).
  void set_last_epoch(int64_t epoch) { epoch_ = epoch; }

 protected:
  virtual float lr_at(float base_lr, int64_t epoch) const = 0;

 private:
  Optimizer& opt_;
  int64_t epoch_ = 0;
};

class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& opt, int64_t step_size, float gamma = 0.1f)
      : LRScheduler(opt), step_size_(step_size), gamma_(gamma) {}

 protected:
  float lr_at(float base, int64_t epoch) const override;

 private:
  int64_t step_size_;
  float gamma_;
};

class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& opt, int64_t t_max, float eta_min = 0.f)
      : LRScheduler(opt), t_max_(t_max), eta_min_(eta_min) {}

 protected:
  float lr_at(float base, int64_t epoch) const override;

 private:
  int64_t t_max_;
  float eta_min_;
};

}  // namespace shrink::optim
