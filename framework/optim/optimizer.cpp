#include "framework/optim/optimizer.h"

#include <cmath>

#include "framework/core/autograd.h"
#include "framework/core/backend.h"
#include "framework/io/checkpoint.h"

namespace shrink::optim {

void Optimizer::add_param_group(std::vector<Tensor> params, GroupOptions options, const std::string& name) {
  for (const ParamGroup& g : groups_)
    SHRINK_CHECK(name.empty() || g.name != name, "add_param_group: a group named '", name, "' exists already");
  for (const Tensor& p : params) {
    SHRINK_CHECK(p.defined() && p.is_leaf(), "add_param_group: parameters must be defined leaves");
    for (const ParamGroup& g : groups_)
      for (const Tensor& q : g.params)
        SHRINK_CHECK(!p.is_same(q), "add_param_group: a parameter ", p.describe(),
                     " is already in another group");
  }
  ParamGroup g;
  g.params = std::move(params);
  g.options = options;
  g.initial_lr = options.lr;
  g.name = name;
  groups_.push_back(std::move(g));
}

void Optimizer::add_param_group(std::vector<Tensor> params) {
  add_param_group(std::move(params), defaults_);
}

void Optimizer::set_lr(float lr) {
  for (ParamGroup& g : groups_) g.options.lr = lr;
}

std::string Optimizer::group_key(size_t g) const {
  SHRINK_CHECK(g < groups_.size(), "Optimizer::group_key: no group ", g);
  if (!groups_[g].name.empty()) return "n." + groups_[g].name;
  size_t unnamed = 0;
  for (size_t i = 0; i < g; ++i) unnamed += groups_[i].name.empty();
  return "g" + std::to_string(unnamed);
}

void Optimizer::save_state(io::StateDict& out, const std::string& prefix) const {
  out.put_int(prefix + "groups", static_cast<int64_t>(groups_.size()));
  for (size_t g = 0; g < groups_.size(); ++g) {
    const std::string gp = prefix + group_key(g) + ".";
    out.put_int(gp + "size", static_cast<int64_t>(groups_[g].params.size()));
    out.put_real(gp + "lr", groups_[g].options.lr);
    for (size_t i = 0; i < groups_[g].params.size(); ++i) {
      auto it = state_.find(groups_[g].params[i].impl());
      if (it == state_.end()) continue;  // never stepped
      const std::string pp = gp + "p" + std::to_string(i) + ".";
      out.put_int(pp + "step", it->second.step);
      if (it->second.buf1.defined()) out.put(pp + "buf1", it->second.buf1);
      if (it->second.buf2.defined()) out.put(pp + "buf2", it->second.buf2);
    }
  }
}

void Optimizer::load_state(const io::StateDict& in, const std::string& prefix) {
  const int64_t groups = in.integer(prefix + "groups");
  SHRINK_CHECK(groups == static_cast<int64_t>(groups_.size()), in.source, ": the checkpoint's optimizer has ",
               groups, " parameter groups, this run's has ", groups_.size());
  for (size_t g = 0; g < groups_.size(); ++g) {
    const std::string gp = prefix + group_key(g) + ".";
    const int64_t size = in.integer(gp + "size");
    SHRINK_CHECK(size == static_cast<int64_t>(groups_[g].params.size()), in.source, ": optimizer group ", g,
                 " holds ", size, " parameters in the checkpoint, ", groups_[g].params.size(), " in this run");
    groups_[g].options.lr = static_cast<float>(in.real(gp + "lr"));
    for (size_t i = 0; i < groups_[g].params.size(); ++i) {
      const std::string pp = gp + "p" + std::to_string(i) + ".";
      const TensorImpl* key = groups_[g].params[i].impl();
      if (!in.has(pp + "step")) {
        state_.erase(key);
        continue;
      }
      State st;
      st.step = in.integer(pp + "step");
      in.restore_if_present(pp + "buf1", st.buf1);
      in.restore_if_present(pp + "buf2", st.buf2);
      for (Tensor* buf : {&st.buf1, &st.buf2})
        if (buf->defined() && buf->device() != groups_[g].params[i].device())
          buf->move_to_(groups_[g].params[i].device());
      state_[key] = st;
    }
  }
}

void Optimizer::step() {
  NoGradGuard ng;
  for (ParamGroup& g : groups_)
    for (Tensor& p : g.params) {
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      SHRINK_CHECK(grad.device() == p.device(), "optimizer: gradient on ", grad.device(),
                   " for parameter on ", p.device());
      State& st = state(p);  // state follows a parameter that moved to another device
      for (Tensor* buf : {&st.buf1, &st.buf2})
        if (buf->defined() && buf->device() != p.device()) buf->move_to_(p.device());
      update(p, grad, g.options);
    }
}

void Optimizer::zero_grad() {
  for (ParamGroup& g : groups_)
    for (Tensor& p : g.params) p.zero_grad();
}

SGD::SGD(std::vector<Tensor> params, float lr, float momentum, float weight_decay, bool nesterov,
         float dampening)
    : Optimizer([&] {
        GroupOptions o;
        o.lr = lr;
        o.momentum = momentum;
        o.weight_decay = weight_decay;
        o.nesterov = nesterov;
        o.dampening = dampening;
        return o;
      }()) {
  SHRINK_CHECK(lr >= 0.f && momentum >= 0.f && weight_decay >= 0.f, "SGD: lr ", lr, ", momentum ",
               momentum, ", weight_decay ", weight_decay, " must be non-negative");
  SHRINK_CHECK(!nesterov || (momentum > 0.f && dampening == 0.f),
               "SGD: nesterov needs momentum > 0 and dampening 0");
  add_param_group(std::move(params));
}

void SGD::update(Tensor& p, const Tensor& grad, const GroupOptions& o) {
  State& s = state(p);
  bool first = s.step == 0;
  if (o.momentum != 0.f && !s.buf1.defined()) s.buf1 = Tensor::zeros(p.shape(), DType::F32, p.device());
  backend(p.device()).sgd_step(p, grad, o.momentum != 0.f ? &s.buf1 : nullptr, o.lr, o.momentum,
                               o.dampening, o.weight_decay, o.nesterov, first);
  ++s.step;
}

Adam::Adam(std::vector<Tensor> params, float lr, float beta1, float beta2, float eps,
           float weight_decay)
    : Optimizer([&] {
        GroupOptions o;
        o.lr = lr;
        o.beta1 = beta1;
        o.beta2 = beta2;
        o.eps = eps;
        o.weight_decay = weight_decay;
        return o;
      }()) {
  SHRINK_CHECK(lr >= 0.f && eps >= 0.f && beta1 >= 0.f && beta1 < 1.f && beta2 >= 0.f && beta2 < 1.f,
               "Adam: invalid hyper-parameters lr ", lr, ", betas (", beta1, ", ", beta2, "), eps ", eps);
  add_param_group(std::move(params));
}

void Adam::update(Tensor& p, const Tensor& grad, const GroupOptions& o) {
  State& s = state(p);
  if (!s.buf1.defined()) {
    s.buf1 = Tensor::zeros(p.shape(), DType::F32, p.device());
    s.buf2 = Tensor::zeros(p.shape(), DType::F32, p.device());
  }
  ++s.step;
  backend(p.device()).adam_step(p, grad, s.buf1, s.buf2, o.lr, o.beta1, o.beta2, o.eps,
                                o.weight_decay, decoupled_, s.step);
}

AdamW::AdamW(std::vector<Tensor> params, float lr, float beta1, float beta2, float eps,
             float weight_decay)
    : Adam(std::move(params), lr, beta1, beta2, eps, weight_decay) {
  decoupled_ = true;
}

void LRScheduler::step() {
  ++epoch_;
  for (ParamGroup& g : opt_.param_groups()) g.options.lr = lr_at(g.initial_lr, epoch_);
}

float StepLR::lr_at(float base, int64_t epoch) const {
  return base * std::pow(gamma_, static_cast<float>(epoch / step_size_));
}

float CosineAnnealingLR::lr_at(float base, int64_t epoch) const {
  // Closed form of torch's CosineAnnealingLR.
  const double pi = 3.14159265358979323846;
  return static_cast<float>(eta_min_ + (base - eta_min_) *
                                           (1.0 + std::cos(pi * static_cast<double>(epoch) / t_max_)) / 2.0);
}

}  // namespace shrink::optim
