#include "framework/optim/optimizer.h"

#include <cmath>

#include "framework/core/autograd.h"
#include "framework/core/backend.h"

namespace shrink::optim {

void Optimizer::add_param_group(std::vector<Tensor> params, GroupOptions options) {
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
  groups_.push_back(std::move(g));
}

void Optimizer::add_param_group(std::vector<Tensor> params) {
  add_param_group(std::move(params), defaults_);
}

void Optimizer::set_lr(float lr) {
  for (ParamGroup& g : groups_) g.options.lr = lr;
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
