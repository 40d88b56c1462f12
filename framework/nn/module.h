// nn::Module: parameters, buffers and children with dotted names; forward pre-hooks and forward
// hooks with PyTorch's semantics; and a parameter accessor that a hook can redirect for one call,
// so a wrapper can hand forward `weight * mask` while `weight` stays the trainable leaf.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "framework/core/tensor.h"
#include "framework/nn/value.h"

namespace shrink::nn {

class Module;
using ModulePtr = std::shared_ptr<Module>;

// Removes its hook on remove(); safe to call twice or after the module is gone.
class HookHandle {
 public:
  HookHandle() = default;
  HookHandle(std::weak_ptr<std::function<void(uint64_t)>> remover, uint64_t id)
      : remover_(std::move(remover)), id_(id) {}
  void remove();
  uint64_t id() const { return id_; }

 private:
  std::weak_ptr<std::function<void(uint64_t)>> remover_;
  uint64_t id_ = 0;
};

class Module : public std::enable_shared_from_this<Module> {
 public:
  // A pre-hook sees the inputs and may return replacements.
  using PreHook = std::function<std::optional<std::vector<Value>>(Module&, const std::vector<Value>&)>;
  // A forward hook sees inputs and output and may return a replacement output.
  using ForwardHook =
      std::function<std::optional<Value>(Module&, const std::vector<Value>&, const Value&)>;

  Module();
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // What `op_types` matches: "Linear", "Conv2d", ...
  virtual std::string type_name() const = 0;
  // Declared names of forward's positional arguments (for `_input_<name>` targets).
  virtual std::vector<std::string> arg_names() const { return {"input"}; }

  // Runs pre-hooks, forward, hooks; records this module as the autograd scope.
  Value operator()(std::vector<Value> inputs);
  // Convenience for single-tensor modules: one input, a tensor output.
  Tensor operator()(const Tensor& x);

  // ---- registration ----
  Tensor& register_parameter(const std::string& name, Tensor t, bool requires_grad = true);
  Tensor& register_buffer(const std::string& name, Tensor t);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    add_child(name, m);
    return m;
  }
  // Replaces an existing child (used by wrappers, fusion and speedup).
  void replace_child(const std::string& name, ModulePtr m);
  // Replaces a parameter or buffer tensor (same name; shape may change, e.g. speedup).
  void set_parameter(const std::string& name, Tensor t);
  void set_buffer(const std::string& name, Tensor t);
  void remove_buffer(const std::string& name);

  // ---- access ----
  // The accessor forward uses: a redirect for this call if one is set, else the parameter or
  // buffer itself. Undefined tensor for an optional parameter that is absent (e.g. no bias).
  Tensor param(const std::string& name) const;
  bool has_parameter(const std::string& name) const;
  bool has_buffer(const std::string& name) const;
  Tensor& parameter(const std::string& name);
  Tensor& buffer(const std::string& name);
  ModulePtr child(const std::string& name) const;
  // Looks up a descendant by dotted path ("layer1.0.conv1"); "" is this module.
  ModulePtr find(const std::string& path);
  // The device of the first parameter (CPU for a module without parameters).
  Device parameter_device() const;

  const std::vector<std::pair<std::string, Tensor>>& local_parameters() const { return params_; }
  const std::vector<std::pair<std::string, Tensor>>& local_buffers() const { return buffers_; }
  const std::vector<std::pair<std::string, ModulePtr>>& children() const { return children_; }

  std::vector<std::pair<std::string, Tensor>> named_parameters(bool recurse = true) const;
  std::vector<std::pair<std::string, Tensor>> named_buffers(bool recurse = true) const;
  std::vector<Tensor> parameters(bool recurse = true) const;
  // Every module with its dotted name, pre-order, the root as "" (or `prefix`). A module
  // shared under several names appears under each (as remove_duplicate=False).
  std::vector<std::pair<std::string, ModulePtr>> named_modules(const std::string& prefix = "");

  // ---- redirects (for one call) ----
  // Inside a pre-hook: forward will see `replacement` for `name` until this call returns.
  void redirect(const std::string& name, Tensor replacement);
  bool redirected(const std::string& name) const;

  // ---- hooks ----
  HookHandle register_forward_pre_hook(PreHook hook, bool prepend = false);
  HookHandle register_forward_hook(ForwardHook hook, bool prepend = false);
  // Runs `fn` instead of forward() until the handle is removed (hooks still run around it); the
  // latest override wins. What a monkey-patched `module.forward` is in PyTorch: compression's
  // module fusion turns a batch norm folded into its convolution into the identity this way.
  using ForwardOverride = std::function<Value(Module&, const std::vector<Value>&)>;
  HookHandle override_forward(ForwardOverride fn);
  size_t num_forward_pre_hooks() const { return hooks_->pre.size(); }
  size_t num_forward_hooks() const { return hooks_->post.size(); }
  // Whether anything would see or change this module's call: a pre-hook, a hook, an override or
  // a parameter redirect. Fused fast paths (fusion.h) run only modules that nothing intercepts.
  bool intercepted() const {
    return !hooks_->pre.empty() || !hooks_->post.empty() || !hooks_->overrides.empty() ||
           !redirects_.empty();
  }

  // ---- modes, state, devices ----
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // Parameters and buffers by dotted name (copies share storage).
  std::map<std::string, Tensor> state_dict() const;
  // Copies values in. strict: missing or unexpected keys are an error listing all of them.
  void load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);
  // State that is neither a parameter nor a buffer (a dropout's random stream), as text for
  // checkpoints; "" when the module has none (PyTorch's get_extra_state / set_extra_state).
  virtual std::string extra_state() const { return ""; }
  virtual void set_extra_state(const std::string& state);
  void to(Device device);
  void zero_grad();
  // Calls fn on every module (pre-order).
  void apply(const std::function<void(const std::string&, Module&)>& fn);

 protected:
  virtual Value forward(const std::vector<Value>& inputs) = 0;
  // Checks the input count and returns input i as a tensor (error names the module type).
  const Tensor& input_tensor(const std::vector<Value>& inputs, size_t i) const;

 private:
  void add_child(const std::string& name, ModulePtr m);
  static void check_name(const std::string& name, const char* what);

  struct HookLists {
    std::vector<std::pair<uint64_t, PreHook>> pre;
    std::vector<std::pair<uint64_t, ForwardHook>> post;
    std::vector<std::pair<uint64_t, ForwardOverride>> overrides;
    uint64_t next_id = 1;
  };
  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, ModulePtr>> children_;
  std::vector<std::pair<std::string, Tensor>> redirects_;
  std::shared_ptr<HookLists> hooks_;
  std::shared_ptr<std::function<void(uint64_t)>> remover_;
  int call_depth_ = 0;
  bool training_ = true;
};

}  // namespace shrink::nn
