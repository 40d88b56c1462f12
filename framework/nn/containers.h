// Containers: Sequential (chains forward), ModuleList and ModuleDict (hold children only).
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "framework/nn/fusion.h"
#include "framework/nn/module.h"

namespace shrink::nn {

class Sequential : public Module {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<ModulePtr> modules) {
    for (auto& m : modules) push_back(std::move(m));
  }
  // Children are named "0", "1", ... unless a name is given.
  void push_back(ModulePtr m) { register_module(std::to_string(children().size()), std::move(m)); }
  void push_back(const std::string& name, ModulePtr m) { register_module(name, std::move(m)); }
  size_t size() const { return children().size(); }
  ModulePtr operator[](size_t i) const { return children().at(i).second; }
  std::string type_name() const override { return "Sequential"; }
  using Module::operator();

 protected:
  Value forward(const std::vector<Value>& inputs) override {
    SHRINK_CHECK(inputs.size() == 1, "Sequential.forward: expected 1 input, got ", inputs.size());
    Value v = inputs[0];
    const auto& kids = children();
    for (size_t i = 0; i < kids.size(); ++i) {
      Module& m = *kids[i].second;
      Module* next = i + 1 < kids.size() ? kids[i + 1].second.get() : nullptr;
      Module* after = i + 2 < kids.size() ? kids[i + 2].second.get() : nullptr;
      if (next && v.is_tensor()) {  // chains that run as one op (fusion.h)
        const Tensor& x = v.tensor();
        if (fuses_conv_batch_norm(m, *next, nullptr, x)) {  // the ReLU joins the fold if it can
          Module* relu = after && is_relu(*after) ? after : nullptr;
          v = conv_batch_norm_relu(m, *next, relu, x);
          i += relu ? 2 : 1;
          continue;
        }
        if (fuses_batch_norm_relu(m, *next)) {
          v = batch_norm_relu(m, *next, x);
          ++i;
          continue;
        }
      }
      v = m(std::vector<Value>{v});
    }
    return v;
  }
};

class ModuleList : public Module {
 public:
  void push_back(ModulePtr m) { register_module(std::to_string(children().size()), std::move(m)); }
  size_t size() const { return children().size(); }
  ModulePtr operator[](size_t i) const { return children().at(i).second; }
  std::string type_name() const override { return "ModuleList"; }

 protected:
  Value forward(const std::vector<Value>&) override {
    fail("ModuleList has no forward; call its children");
  }
};

class ModuleDict : public Module {
 public:
  void insert(const std::string& key, ModulePtr m) { register_module(key, std::move(m)); }
  ModulePtr operator[](const std::string& key) const {
    ModulePtr m = child(key);
    SHRINK_CHECK(m != nullptr, "ModuleDict: no key '", key, "'");
    return m;
  }
  std::string type_name() const override { return "ModuleDict"; }

 protected:
  Value forward(const std::vector<Value>&) override {
    fail("ModuleDict has no forward; call its children");
  }
};

}  // namespace shrink::nn
