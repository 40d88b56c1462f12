#include "compression/quantization/module_fusion.h"

#include "framework/core/autograd.h"
#include "framework/nn/layers.h"
#include "framework/ops/ops.h"

namespace shrink::compression {

namespace {

nn::HookHandle make_identity(nn::Module& m) {
  return m.override_forward([](nn::Module&, const std::vector<nn::Value>& in) { return in.at(0); });
}

bool is_batch_norm(const std::string& type) { return type.rfind("BatchNorm", 0) == 0; }

// [C] -> broadcastable along dim 0 of a rank-`rank` weight, or dim 1 of an activation.
Shape channel_shape(int64_t c, int64_t rank, int64_t dim) {
  Shape s(static_cast<size_t>(rank), 1);
  s[static_cast<size_t>(dim)] = c;
  return s;
}

}  // namespace

ModuleFusion::ModuleFusion(nn::Module& model, ModuleWrapper& leader, const std::vector<std::string>& names)
    : model_(model), leader_(leader), names_(names) {
  ModuleWrapper::Fusion fusion;
  const bool leader_is_bn = is_batch_norm(leader.module().type_name());
  for (size_t k = 1; k < names.size(); ++k) {
    auto m = model.find(names[k]);
    SHRINK_CHECK(m != nullptr, "module fusion: no module '", names[k], "'");
    if (is_batch_norm(m->type_name()) && !leader_is_bn) {
      bn_ = m;
      bn_name_ = names[k];
      bn_identity_ = make_identity(*m);
      fusion.fold = [this](nn::Module& l, const std::vector<nn::Value>& in) { fold(l, in); };
    } else {  // a ReLU
      identities_.push_back(make_identity(*m));
      fusion.activation = [](const nn::Value& out) { return nn::Value(relu(out.tensor())); };
    }
  }
  leader_.set_fusion(std::move(fusion));
}

ModuleFusion::~ModuleFusion() { release(); }

void ModuleFusion::release() {
  leader_.set_fusion({});
  bn_identity_.remove();
  for (auto& h : identities_) h.remove();
  identities_.clear();
}

Tensor layer_forward(nn::Module& leader, const Tensor& x, const Tensor& w, const Tensor& b) {
  if (auto* conv = dynamic_cast<nn::Conv2d*>(&leader)) return conv2d(x, w, b, conv->options());
  SHRINK_CHECK(leader.type_name() == "Linear", "layer_forward: a Conv2d or Linear, not a ", leader.type_name());
  return linear(x, w, b);
}

std::pair<Tensor, Tensor> ModuleFusion::fold_with(const Tensor& mean, const Tensor& var, const Tensor& w,
                                                  const Tensor& b) {
  const auto& bn = static_cast<const nn::BatchNorm&>(*bn_);
  const int64_t c = mean.numel();
  Tensor gamma = bn_->param("weight"), beta = bn_->param("bias");
  Tensor g = div(gamma.defined() ? gamma : Tensor::ones({c}, DType::F32, mean.device()), sqrt(add(var, bn.eps)));
  Tensor folded_w = mul(w, reshape(g, channel_shape(c, w.dim(), 0)));
  Tensor folded_b = mul(sub(b.defined() ? b : Tensor::zeros({c}, DType::F32, mean.device()), mean), g);
  if (beta.defined()) folded_b = add(folded_b, beta);
  return {folded_w, folded_b};
}

void ModuleFusion::fold(nn::Module& leader, const std::vector<nn::Value>& inputs) {
  if (baked_) return;  // the batch norm is already in the weights
  const Tensor w = leader.param("weight"), b = leader.param("bias");
  Tensor mean = bn_->param("running_mean"), var = bn_->param("running_var");
  if (bn_->is_training() || !mean.defined()) {
    Tensor y;
    {
      NoGradGuard ng;
      y = layer_forward(leader, inputs.at(0).tensor(), w.detach(), b.defined() ? b.detach() : Tensor());
    }
    if (mean.defined()) {  // update the running statistics as the batch norm itself would
      NoGradGuard ng;
      bn_identity_.remove();
      struct Restore {  // the identity comes back even if the batch norm throws
        ModuleFusion& f;
        ~Restore() { f.bn_identity_ = make_identity(*f.bn_); }
      } restore{*this};
      (*bn_)(y);
      mean = bn_->param("running_mean");
      var = bn_->param("running_var");
    } else {  // the batch's own statistics over every dim but the channels (unbiased variance)
      NoGradGuard ng;
      std::vector<int64_t> dims;
      for (int64_t d = 0; d < y.dim(); ++d)
        if (d != 1) dims.push_back(d);
      const int64_t n = y.numel() / y.size(1);
      mean = shrink::mean(y, dims);
      Tensor centered = sub(y, reshape(mean, channel_shape(y.size(1), y.dim(), 1)));
      var = mul(sum(mul(centered, centered), dims), 1.f / static_cast<float>(std::max<int64_t>(n - 1, 1)));
    }
  }
  auto [fw, fb] = fold_with(mean.detach(), var.detach(), w, b);
  leader.redirect("weight", fw);
  leader.redirect("bias", fb);
}

std::pair<Tensor, Tensor> ModuleFusion::folded_parameters() {
  if (!bn_) return {};
  nn::Module& l = leader_.module();
  Tensor mean = bn_->param("running_mean"), var = bn_->param("running_var");
  SHRINK_CHECK(mean.defined(), "module fusion: '", bn_name_, "' keeps no running statistics to fold");
  NoGradGuard ng;
  return fold_with(mean, var, l.param("weight").detach(), l.param("bias"));
}

void ModuleFusion::bake_into_model(const Tensor& weight, const Tensor& bias) {
  if (!bn_ || baked_) return;
  nn::Module& l = leader_.module();
  NoGradGuard ng;
  l.parameter("weight").copy_(weight);
  if (l.parameter("bias").defined()) l.parameter("bias").copy_(bias);
  else l.set_parameter("bias", bias.contiguous_copy().set_requires_grad(true));
  // The batch norm leaves the model: its parent now holds an Identity under its name.
  const size_t dot = bn_name_.rfind('.');
  auto parent = dot == std::string::npos ? model_.find("") : model_.find(bn_name_.substr(0, dot));
  parent->replace_child(dot == std::string::npos ? bn_name_ : bn_name_.substr(dot + 1), std::make_shared<nn::Identity>());
  bn_identity_.remove();
  baked_ = true;
}

}  // namespace shrink::compression
