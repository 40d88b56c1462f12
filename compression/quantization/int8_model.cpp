#include "compression/quantization/int8_model.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <variant>

#include "compression/speedup/graph.h"
#include "framework/core/autograd.h"
#include "framework/nn/layers.h"
#include "framework/ops/int8.h"

namespace shrink::compression {

namespace {

const TargetCalibration* find(const CalibrationConfig& c, const std::string& module, const std::string& target) {
  auto it = c.find(module + "." + target);
  return it == c.end() ? nullptr : &it->second;
}

bool calibrated(const CalibrationConfig& c, const std::string& module) {
  const std::string prefix = module + ".";
  auto it = c.lower_bound(prefix);
  return it != c.end() && it->first.compare(0, prefix.size(), prefix) == 0;
}

QuantGrid grid_of(const TargetCalibration& t) {
  return {t.scale.to(Device::CPU).item(), t.zero_point.to(Device::CPU).item(), t.qmin, t.qmax};
}

// One scale per output row, or one for the tensor.
bool per_row(const Tensor& t, int64_t rows) {
  return t.numel() == 1 || (t.dim() >= 1 && t.size(0) == rows && t.numel() == rows);
}

struct Planned {
  std::shared_ptr<Int8Layer> layer;
  bool conv = false;
  int64_t kernel = 1;
  Conv2dOptions options;
};

// The int8 layer for a Conv2d or Linear, or why it stays float.
std::variant<Planned, std::string> plan(nn::Module& m, const std::string& name, const CalibrationConfig& cal) {
  Planned p;
  if (auto* conv = dynamic_cast<nn::Conv2d*>(&m)) {
    if (conv->groups != 1) return std::string("grouped convolution (groups ") + std::to_string(conv->groups) + ")";
    p.conv = true;
    p.kernel = conv->kernel_size;
    p.options = conv->options();
  } else if (!dynamic_cast<nn::Linear*>(&m)) {
    return std::string("not a Conv2d or Linear");
  }
  const TargetCalibration* w = find(cal, name, "weight");
  const TargetCalibration* in = find(cal, name, "_input_0");
  if (!w) return std::string("no weight calibration");
  if (!in) return std::string("no _input_0 calibration");
  if (in->scale.numel() != 1) return std::string("_input_0 is not quantized per tensor");
  const Tensor weight = m.param("weight");
  const int64_t rows = weight.size(0);
  if (!per_row(w->scale, rows) || !per_row(w->zero_point, rows))
    return "weight scale " + w->scale.describe() + " is neither per tensor nor per output channel";
  try {
    const Tensor w_int = quantize_weight_int8(weight, w->scale, w->zero_point, w->qmin, w->qmax);
    Tensor bias = m.param("bias");
    if (const TargetCalibration* b = find(cal, name, "bias"); b && bias.defined())
      bias = fake_quantize(bias, b->scale.reshape(b->scale.numel() == 1 ? Shape{} : Shape{rows}),
                           b->zero_point.reshape(b->zero_point.numel() == 1 ? Shape{} : Shape{rows}), b->qmin,
                           b->qmax, false);
    p.layer = std::make_shared<Int8Layer>(make_int8_layer(w_int, w->scale, grid_of(*in), bias.defined() ? bias.detach() : Tensor()));
    if (const TargetCalibration* out = find(cal, name, "_output_0")) {
      if (out->scale.numel() != 1) return std::string("_output_0 is not quantized per tensor");
      set_output_grid(*p.layer, grid_of(*out));
    }
  } catch (const Error& e) {
    return std::string(e.what());
  }
  return p;
}

// Who reads each node's output, from one traced forward.
struct Readers {
  const Graph& g;
  const CalibrationConfig& cal;
  std::vector<std::vector<int>> of;
  Readers(const Graph& g, const CalibrationConfig& cal) : g(g), cal(cal), of(g.nodes.size()) {
    for (size_t i = 0; i < g.nodes.size(); ++i)
      for (int in : g.nodes[i].inputs)
        if (in >= 0) of[static_cast<size_t>(in)].push_back(static_cast<int>(i));
    for (int out : g.outputs)  // the model's output (-1: an input returned as it is)
      if (out >= 0) of[static_cast<size_t>(out)].push_back(-1);
  }
  // The one node reading `node`, of `kind`, run by a module without calibration of its own (and
  // called only this once when `once`); else -1.
  int sole(int node, OpKind kind, bool once) const {
    const std::vector<int>& r = of[static_cast<size_t>(node)];
    if (r.size() != 1 || r[0] < 0) return -1;
    const GraphNode& n = g.nodes[static_cast<size_t>(r[0])];
    if (n.kind != kind || n.module.empty() || calibrated(cal, n.module)) return -1;
    if (once && g.nodes_of(n.module).size() != 1) return -1;
    return r[0];
  }
  const std::string& module(int node) const { return g.nodes[static_cast<size_t>(node)].module; }
};

nn::HookHandle make_identity(nn::Module& m) {
  return m.override_forward([](nn::Module&, const std::vector<nn::Value>& in) { return in.at(0); });
}

// A batch norm's eval-mode affine map, y = x * mul + shift per channel (nullopt without
// running statistics for `channels`).
std::optional<std::pair<Tensor, Tensor>> batch_norm_affine(nn::Module& m, int64_t channels) {
  auto* bn = dynamic_cast<nn::BatchNorm*>(&m);
  const Tensor mean = m.param("running_mean"), var = m.param("running_var");
  if (!bn || m.is_training() || !mean.defined() || mean.numel() != channels) return std::nullopt;
  Tensor mul = div(Tensor::ones({channels}), sqrt(add(var, bn->eps)));
  if (Tensor w = m.param("weight"); w.defined()) mul = shrink::mul(mul, w);
  Tensor shift = neg(shrink::mul(mean, mul));
  if (Tensor b = m.param("bias"); b.defined()) shift = add(shift, b);
  return std::make_pair(mul.detach().to(Device::CPU), shift.detach().to(Device::CPU));
}

struct Layer {
  std::string name;
  nn::Module* module = nullptr;
  Planned plan;
  int last = -1;  // the graph node whose value the int8 layer now produces (after any folds)
  std::vector<nn::Module*> folded;  // the batch norm and ReLU it absorbed
};

bool hooked(const nn::Module& m) { return m.num_forward_hooks() > 0 || m.num_forward_pre_hooks() > 0; }

// The modules a value crosses on its way between the modules named in `path` (producer, folded
// and passed-through modules, consumer): those, and every container holding some of them but not
// all (the value leaves or enters it, so its hooks would see it). Names, by dotted prefix.
std::set<std::string> crossed(const std::vector<std::string>& path) {
  std::map<std::string, size_t> holds;  // module -> how many path modules it is or contains
  for (const std::string& name : path) {
    std::set<std::string> mine{name};
    for (size_t dot = name.find('.'); dot != std::string::npos; dot = name.find('.', dot + 1))
      mine.insert(name.substr(0, dot));
    if (!name.empty()) mine.insert("");
    for (const std::string& m : mine) ++holds[m];
  }
  std::set<std::string> out;
  for (const auto& [m, n] : holds)
    if (n < path.size() || std::find(path.begin(), path.end(), m) != path.end()) out.insert(m);
  return out;
}

}  // namespace

Int8Model::Int8Model(nn::Module& model, const CalibrationConfig& calibration, const std::vector<nn::Value>& probe) {
  SHRINK_CHECK(model.parameter_device() == Device::CPU, "Int8Model: the model is on ",
               device_name(model.parameter_device()), "; int8 inference runs on the CPU");
  SHRINK_CHECK(!model.is_training(), "Int8Model: the model is in training mode; int8 layers are for inference (eval())");
  const size_t modules = model.named_modules().size();
  overrides_.reserve(3 * modules);  // a handle is never lost to a reallocation that throws
  try {
    convert(model, calibration, probe);
    // The converted model must still give floats: a reader of bytes that the traced graph did
    // not show (a value it returns, an op off the tape) fails here, and the conversion with it.
    NoGradGuard ng;
    nn::Value out = model(probe);
    SHRINK_CHECK(!out.is_tensor() || out.tensor().dtype() == DType::F32,
                 "Int8Model: the converted model returns ", out.tensor().describe(), " for the probe");
  } catch (...) {
    remove_overrides();  // nothing half-converted stays behind
    throw;
  }
}

void Int8Model::remove_overrides() {
  for (auto it = overrides_.rbegin(); it != overrides_.rend(); ++it) it->remove();
  overrides_.clear();
}

void Int8Model::convert(nn::Module& model, const CalibrationConfig& calibration, const std::vector<nn::Value>& probe) {
  const Graph graph = trace(model, probe);
  const Readers readers(graph, calibration);
  // 1. Plan every Conv2d and Linear; fold the batch norm and ReLU that alone follow it (modules
  //    called once: they become the identity).
  std::vector<Layer> layers;
  std::map<int, size_t> layer_of_node;  // a converted layer's graph node -> its layer
  for (auto& [name, module] : model.named_modules()) {
    if (!dynamic_cast<nn::Conv2d*>(module.get()) && !dynamic_cast<nn::Linear*>(module.get())) continue;
    std::variant<Planned, std::string> planned = plan(*module, name, calibration);
    if (auto* why = std::get_if<std::string>(&planned)) {
      report_.kept_float.emplace_back(name, *why);
      continue;
    }
    Layer l{name, module.get(), std::get<Planned>(std::move(planned)), -1, {}};
    // Folds and links follow a layer that runs once: its override serves every call.
    const std::vector<int> nodes = graph.nodes_of(name);
    if (nodes.size() == 1) {
      l.last = nodes.front();
      layer_of_node[l.last] = layers.size();
      // The batch norm must normalise the channel dim the epilogue scales: dim 1 of a [N, C, H, W]
      // convolution output or of a [N, C] Linear output.
      int bn = readers.sole(l.last, OpKind::BatchNorm, true);
      if (bn >= 0 && graph.nodes[static_cast<size_t>(bn)].input_shapes.front().size() != (l.plan.conv ? 4u : 2u)) bn = -1;
      if (bn >= 0) {
        if (auto affine = batch_norm_affine(*model.find(readers.module(bn)), l.plan.layer->n)) {
          l.plan.layer->post_mul = affine->first;
          l.plan.layer->post_add = affine->second;
          overrides_.push_back(make_identity(*model.find(readers.module(bn))));
          report_.folded.push_back(readers.module(bn));
          l.folded.push_back(model.find(readers.module(bn)).get());
          l.last = bn;
        }
      }
      if (int relu = readers.sole(l.last, OpKind::Relu, true); relu >= 0) {
        if (nn::Module& m = *model.find(readers.module(relu)); dynamic_cast<nn::ReLU*>(&m)) {
          l.plan.layer->relu = true;
          overrides_.push_back(make_identity(m));
          report_.folded.push_back(readers.module(relu));
          l.folded.push_back(&m);
          l.last = relu;
        }
      }
    }
    layers.push_back(std::move(l));
  }
  // 2. Links: a convolution whose value reaches another int8 convolution alone — through a ReLU
  //    and a max pooling at most — hands it bytes (NHWC); so does a Linear whose value reaches
  //    another int8 Linear alone, through a ReLU at most (rows of bytes). A ReLU or pooling module
  //    that also runs elsewhere keeps its float path: bytes pass a ReLU (already applied) and pool
  //    as bytes.
  std::set<const nn::Module*> byte_aware;
  std::map<const nn::Module*, std::string> module_name;
  for (auto& [name, m] : model.named_modules()) module_name.emplace(m.get(), name);
  for (Layer& a : layers) {
    if (a.last < 0) continue;
    int node = a.last;
    int relu = a.plan.layer->relu ? -1 : readers.sole(node, OpKind::Relu, false);
    if (relu >= 0 && !dynamic_cast<nn::ReLU*>(model.find(readers.module(relu)).get())) relu = -1;
    if (relu >= 0) node = relu;
    int pool = a.plan.conv ? readers.sole(node, OpKind::MaxPool2d, false) : -1;
    if (pool >= 0 && !dynamic_cast<nn::MaxPool2d*>(model.find(readers.module(pool)).get())) pool = -1;
    if (pool >= 0) node = pool;
    const std::vector<int>& next = readers.of[static_cast<size_t>(node)];
    auto b = next.size() == 1 ? layer_of_node.find(next[0]) : layer_of_node.end();
    if (b == layer_of_node.end() || layers[b->second].plan.conv != a.plan.conv) continue;
    // A hook anywhere on the way (a container the value leaves or enters included) would see
    // bytes where it saw floats: no link then.
    std::vector<std::string> path{a.name, layers[b->second].name};
    for (const nn::Module* f : a.folded) path.push_back(module_name.at(f));
    if (relu >= 0) path.push_back(readers.module(relu));
    if (pool >= 0) path.push_back(readers.module(pool));
    const std::set<std::string> on_the_way = crossed(path);
    if (std::any_of(on_the_way.begin(), on_the_way.end(), [&](const std::string& m) {
          auto mod = model.find(m);
          return mod && hooked(*mod);
        }))
      continue;
    const Int8Layer& in = *layers[b->second].plan.layer;
    set_next_grid(*a.plan.layer, {in.in_scale, in.in_zero_point, in.in_qmin, in.in_qmax});
    if (relu >= 0) {
      a.plan.layer->relu = true;
      nn::Module& m = *model.find(readers.module(relu));
      if (byte_aware.insert(&m).second)
        overrides_.push_back(m.override_forward([](nn::Module&, const std::vector<nn::Value>& x) -> nn::Value {
          const Tensor& t = x.at(0).tensor();
          return t.dtype() == DType::U8 ? t : shrink::relu(t);
        }));
    }
    if (pool >= 0) {
      nn::Module& m = *model.find(readers.module(pool));
      if (byte_aware.insert(&m).second)
        overrides_.push_back(m.override_forward([](nn::Module& self, const std::vector<nn::Value>& x) -> nn::Value {
          const auto& p = static_cast<nn::MaxPool2d&>(self);
          const Tensor& t = x.at(0).tensor();
          return t.dtype() == DType::U8 ? int8_max_pool2d(t, p.kernel, p.stride, p.padding)
                                        : max_pool2d(t, p.kernel, p.stride, p.padding);
        }));
    }
    report_.linked.emplace_back(a.name, layers[b->second].name);
  }
  // 3. The int8 forwards.
  for (const Layer& l : layers) {
    std::shared_ptr<const Int8Layer> layer = l.plan.layer;
    if (l.plan.conv) {
      overrides_.push_back(l.module->override_forward(
          [layer, k = l.plan.kernel, o = l.plan.options](nn::Module&, const std::vector<nn::Value>& in) -> nn::Value {
            return int8_conv2d(in.at(0).tensor(), *layer, k, k, o);
          }));
    } else {
      overrides_.push_back(
          l.module->override_forward([layer](nn::Module&, const std::vector<nn::Value>& in) -> nn::Value {
            return int8_linear(in.at(0).tensor(), *layer);
          }));
    }
    report_.converted.push_back(l.name);
  }
}

Int8Model::~Int8Model() { remove_overrides(); }

}  // namespace shrink::compression
