#include "framework/nn/module.h"

#include <algorithm>
#include <sstream>

#include "framework/core/autograd.h"

namespace shrink::nn {

// ---- Value ----
const char* Value::kind_name() const {
  switch (kind_) {
    case Kind::None: return "none";
    case Kind::Tensor: return "tensor";
    case Kind::List: return "list";
    case Kind::Dict: return "dict";
  }
  return "?";
}

bool Value::contains(const std::string& key) const {
  if (!is_dict()) return false;
  for (const auto& [k, v] : dict_)
    if (k == key) return true;
  return false;
}

const Value& Value::at(const std::string& key) const {
  for (const auto& [k, v] : entries())
    if (k == key) return v;
  std::ostringstream keys;
  for (size_t i = 0; i < dict_.size(); ++i) keys << (i ? ", " : "") << dict_[i].first;
  fail("Value: no key '", key, "' in dict (keys: ", keys.str(), ")");
}

// ---- HookHandle ----
void HookHandle::remove() {
  if (auto r = remover_.lock()) (*r)(id_);
  remover_.reset();
}

// ---- Module ----
Module::Module() : hooks_(std::make_shared<HookLists>()) {
  std::weak_ptr<HookLists> weak = hooks_;
  remover_ = std::make_shared<std::function<void(uint64_t)>>([weak](uint64_t id) {
    if (auto h = weak.lock()) {
      auto drop = [id](auto& list) {
        list.erase(std::remove_if(list.begin(), list.end(),
                                  [id](const auto& e) { return e.first == id; }),
                   list.end());
      };
      drop(h->pre);
      drop(h->post);
      drop(h->overrides);
    }
  });
}

void Module::check_name(const std::string& name, const char* what) {
  SHRINK_CHECK(!name.empty(), "register_", what, ": empty name");
  SHRINK_CHECK(name.find('.') == std::string::npos, "register_", what, ": name '", name,
               "' must not contain '.'");
}

Tensor& Module::register_parameter(const std::string& name, Tensor t, bool requires_grad) {
  check_name(name, "parameter");
  SHRINK_CHECK(!has_parameter(name) && !has_buffer(name) && !child(name), "register_parameter: '",
               name, "' already exists in ", type_name());
  if (t.defined() && requires_grad) t.set_requires_grad(true);
  params_.emplace_back(name, t);
  return params_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, Tensor t) {
  check_name(name, "buffer");
  SHRINK_CHECK(!has_parameter(name) && !has_buffer(name) && !child(name), "register_buffer: '",
               name, "' already exists in ", type_name());
  buffers_.emplace_back(name, t);
  return buffers_.back().second;
}

void Module::add_child(const std::string& name, ModulePtr m) {
  check_name(name, "module");
  SHRINK_CHECK(m != nullptr, "register_module: '", name, "' is null");
  SHRINK_CHECK(!has_parameter(name) && !has_buffer(name) && !child(name), "register_module: '",
               name, "' already exists in ", type_name());
  children_.emplace_back(name, std::move(m));
}

void Module::replace_child(const std::string& name, ModulePtr m) {
  SHRINK_CHECK(m != nullptr, "replace_child: '", name, "' is null");
  for (auto& [n, c] : children_)
    if (n == name) {
      c = std::move(m);
      return;
    }
  fail("replace_child: ", type_name(), " has no child '", name, "'");
}

void Module::set_parameter(const std::string& name, Tensor t) {
  for (auto& [n, p] : params_)
    if (n == name) {
      p = std::move(t);
      return;
    }
  fail("set_parameter: ", type_name(), " has no parameter '", name, "'");
}

void Module::set_buffer(const std::string& name, Tensor t) {
  for (auto& [n, b] : buffers_)
    if (n == name) {
      b = std::move(t);
      return;
    }
  fail("set_buffer: ", type_name(), " has no buffer '", name, "'");
}

void Module::remove_buffer(const std::string& name) {
  auto it = std::find_if(buffers_.begin(), buffers_.end(),
                         [&](const auto& e) { return e.first == name; });
  SHRINK_CHECK(it != buffers_.end(), "remove_buffer: ", type_name(), " has no buffer '", name, "'");
  buffers_.erase(it);
}

bool Module::has_parameter(const std::string& name) const {
  for (const auto& [n, p] : params_)
    if (n == name) return true;
  return false;
}

bool Module::has_buffer(const std::string& name) const {
  for (const auto& [n, b] : buffers_)
    if (n == name) return true;
  return false;
}

Tensor& Module::parameter(const std::string& name) {
  for (auto& [n, p] : params_)
    if (n == name) return p;
  fail(type_name(), " has no parameter '", name, "'");
}

Tensor& Module::buffer(const std::string& name) {
  for (auto& [n, b] : buffers_)
    if (n == name) return b;
  fail(type_name(), " has no buffer '", name, "'");
}

Tensor Module::param(const std::string& name) const {
  for (const auto& [n, r] : redirects_)
    if (n == name) return r;
  for (const auto& [n, p] : params_)
    if (n == name) return p;
  for (const auto& [n, b] : buffers_)
    if (n == name) return b;
  fail(type_name(), " has no parameter or buffer '", name, "'");
}

Device Module::parameter_device() const {
  for (const auto& [name, p] : named_parameters())
    if (p.defined()) return p.device();
  return Device::CPU;
}

ModulePtr Module::child(const std::string& name) const {
  for (const auto& [n, c] : children_)
    if (n == name) return c;
  return nullptr;
}

ModulePtr Module::find(const std::string& path) {
  if (path.empty()) return shared_from_this();
  ModulePtr cur = shared_from_this();
  size_t start = 0;
  while (start <= path.size()) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    ModulePtr next = cur->child(part);
    if (!next) return nullptr;
    cur = next;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return cur;
}

namespace {
std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}
}  // namespace

std::vector<std::pair<std::string, Tensor>> Module::named_parameters(bool recurse) const {
  std::vector<std::pair<std::string, Tensor>> out;
  std::function<void(const Module&, const std::string&)> visit = [&](const Module& m,
                                                                     const std::string& prefix) {
    for (const auto& [n, p] : m.params_)
      if (p.defined()) out.emplace_back(join(prefix, n), p);
    if (recurse)
      for (const auto& [n, c] : m.children_) visit(*c, join(prefix, n));
  };
  visit(*this, "");
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers(bool recurse) const {
  std::vector<std::pair<std::string, Tensor>> out;
  std::function<void(const Module&, const std::string&)> visit = [&](const Module& m,
                                                                     const std::string& prefix) {
    for (const auto& [n, b] : m.buffers_)
      if (b.defined()) out.emplace_back(join(prefix, n), b);
    if (recurse)
      for (const auto& [n, c] : m.children_) visit(*c, join(prefix, n));
  };
  visit(*this, "");
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [n, p] : named_parameters(recurse)) out.push_back(p);
  return out;
}

std::vector<std::pair<std::string, ModulePtr>> Module::named_modules(const std::string& prefix) {
  std::vector<std::pair<std::string, ModulePtr>> out;
  std::function<void(const ModulePtr&, const std::string&)> visit = [&](const ModulePtr& m,
                                                                        const std::string& name) {
    out.emplace_back(name, m);
    for (const auto& [n, c] : m->children_) visit(c, join(name, n));
  };
  visit(shared_from_this(), prefix);
  return out;
}

void Module::apply(const std::function<void(const std::string&, Module&)>& fn) {
  for (auto& [name, m] : named_modules()) fn(name, *m);
}

void Module::redirect(const std::string& name, Tensor replacement) {
  SHRINK_CHECK(has_parameter(name) || has_buffer(name), "redirect: ", type_name(),
               " has no parameter or buffer '", name, "'");
  for (auto& [n, r] : redirects_)
    if (n == name) {
      r = std::move(replacement);
      return;
    }
  redirects_.emplace_back(name, std::move(replacement));
}

bool Module::redirected(const std::string& name) const {
  for (const auto& [n, r] : redirects_)
    if (n == name) return true;
  return false;
}

HookHandle Module::register_forward_pre_hook(PreHook hook, bool prepend) {
  uint64_t id = hooks_->next_id++;
  auto& list = hooks_->pre;
  if (prepend)
    list.insert(list.begin(), {id, std::move(hook)});
  else
    list.emplace_back(id, std::move(hook));
  return HookHandle(remover_, id);
}

HookHandle Module::override_forward(ForwardOverride fn) {
  uint64_t id = hooks_->next_id++;
  hooks_->overrides.emplace_back(id, std::move(fn));
  return HookHandle(remover_, id);
}

HookHandle Module::register_forward_hook(ForwardHook hook, bool prepend) {
  uint64_t id = hooks_->next_id++;
  auto& list = hooks_->post;
  if (prepend)
    list.insert(list.begin(), {id, std::move(hook)});
  else
    list.emplace_back(id, std::move(hook));
  return HookHandle(remover_, id);
}

namespace {
// Clears the call's redirects when the outermost call of this module returns (or throws).
struct RedirectScope {
  std::vector<std::pair<std::string, Tensor>>& redirects;
  int& depth;
  RedirectScope(std::vector<std::pair<std::string, Tensor>>& r, int& d) : redirects(r), depth(d) {
    ++depth;
  }
  ~RedirectScope() {
    if (--depth == 0) redirects.clear();
  }
};

template <typename List>
bool still_registered(const List& list, uint64_t id) {
  for (const auto& e : list)
    if (e.first == id) return true;
  return false;
}
}  // namespace

Value Module::operator()(std::vector<Value> inputs) {
  ModuleScope scope(this);
  RedirectScope rs(redirects_, call_depth_);
  // Iterate over snapshots so hooks may remove themselves or others; a hook removed before its
  // turn does not run.
  auto hooks = hooks_;
  auto pre = hooks->pre;
  for (auto& [id, hook] : pre) {
    if (!still_registered(hooks->pre, id)) continue;
    if (auto replaced = hook(*this, inputs)) inputs = std::move(*replaced);
  }
  // The most recent forward override replaces forward() (a monkey-patched forward in PyTorch).
  Value out = hooks->overrides.empty() ? forward(inputs) : hooks->overrides.back().second(*this, inputs);
  auto post = hooks->post;
  for (auto& [id, hook] : post) {
    if (!still_registered(hooks->post, id)) continue;
    if (auto replaced = hook(*this, inputs, out)) out = std::move(*replaced);
  }
  return out;
}

Tensor Module::operator()(const Tensor& x) {
  Value out = (*this)(std::vector<Value>{Value(x)});
  SHRINK_CHECK(out.is_tensor(), type_name(), ": forward returned a ", out.kind_name(),
               ", not a tensor");
  return out.tensor();
}

const Tensor& Module::input_tensor(const std::vector<Value>& inputs, size_t i) const {
  SHRINK_CHECK(i < inputs.size(), type_name(), ".forward: expected at least ", i + 1,
               " inputs, got ", inputs.size());
  SHRINK_CHECK(inputs[i].is_tensor(), type_name(), ".forward: input ", i, " must be a tensor, got ",
               inputs[i].kind_name());
  return inputs[i].tensor();
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, c] : children_) c->train(on);
}

std::map<std::string, Tensor> Module::state_dict() const {
  std::map<std::string, Tensor> out;
  for (auto& [n, p] : named_parameters()) out[n] = p.detach();
  for (auto& [n, b] : named_buffers()) out[n] = b.detach();
  return out;
}

void Module::set_extra_state(const std::string& state) {
  SHRINK_CHECK(state.empty(), type_name(), "::set_extra_state: this module keeps no extra state, got ",
               state.size(), " characters");
}

void Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  std::vector<std::pair<std::string, Tensor>> own = named_parameters();
  for (auto& e : named_buffers()) own.push_back(e);
  std::vector<std::string> missing, unexpected, mismatched;
  for (auto& [name, t] : own) {
    auto it = state.find(name);
    if (it == state.end()) {
      missing.push_back(name);
    } else if (it->second.shape() != t.shape()) {
      mismatched.push_back(name + " (expected " + shape_str(t.shape()) + ", got " +
                           shape_str(it->second.shape()) + ")");
    }
  }
  for (auto& entry : state) {
    const std::string& name = entry.first;
    bool found = std::any_of(own.begin(), own.end(), [&](const auto& e) { return e.first == name; });
    if (!found) unexpected.push_back(name);
  }
  if (!mismatched.empty() || (strict && (!missing.empty() || !unexpected.empty()))) {
    std::ostringstream os;
    os << "load_state_dict: ";
    auto list = [&](const char* what, const std::vector<std::string>& v) {
      if (v.empty()) return;
      os << what << ": ";
      for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
      os << "; ";
    };
    list("missing keys", missing);
    list("unexpected keys", unexpected);
    list("shape mismatch", mismatched);
    throw Error(os.str());
  }
  NoGradGuard ng;
  for (auto& [name, t] : own) {
    auto it = state.find(name);
    if (it != state.end()) {
      Tensor dst = t;
      dst.copy_(it->second);
    }
  }
}

void Module::to(Device device) {
  // In place: optimizers and compression wrappers keep the same tensors across the move.
  NoGradGuard ng;
  for (auto& [n, p] : params_)
    if (p.defined()) p.move_to_(device);
  for (auto& [n, b] : buffers_)
    if (b.defined()) b.move_to_(device);
  for (auto& [n, c] : children_) c->to(device);
}

void Module::zero_grad() {
  for (auto& [n, p] : named_parameters()) p.zero_grad();
}

}  // namespace shrink::nn
