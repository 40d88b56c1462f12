#include "compression/quantization/int8_model.h"

#include <map>
#include <variant>

#include "compression/speedup/graph.h"
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
  std::vector<std::vector<int>> of;
  explicit Readers(const Graph& g) : of(g.nodes.size()) {
    for (size_t i = 0; i < g.nodes.size(); ++i)
      for (int in : g.nodes[i].inputs)
        if (in >= 0) of[static_cast<size_t>(in)].push_back(static_cast<int>(i));
    for (int out : g.outputs) of[static_cast<size_t>(out)].push_back(-1);  // the model's output
  }
  // The one node reading `node`, run by a module called once and without calibration; else -1.
  int sole(const Graph& g, int node, const CalibrationConfig& cal) const {
    const std::vector<int>& r = of[static_cast<size_t>(node)];
    if (r.size() != 1 || r[0] < 0) return -1;
    const GraphNode& n = g.nodes[static_cast<size_t>(r[0])];
    if (n.module.empty() || g.nodes_of(n.module).size() != 1 || calibrated(cal, n.module)) return -1;
    return r[0];
  }
};

nn::HookHandle make_identity(nn::Module& m) {
  return m.override_forward([](nn::Module&, const std::vector<nn::Value>& in) { return in.at(0); });
}

}  // namespace

Int8Model::Int8Model(nn::Module& model, const CalibrationConfig& calibration, const std::vector<nn::Value>& probe) {
  const Graph graph = trace(model, probe);
  const Readers readers(graph);
  for (auto& [name, module] : model.named_modules()) {
    if (!dynamic_cast<nn::Conv2d*>(module.get()) && !dynamic_cast<nn::Linear*>(module.get())) continue;
    std::variant<Planned, std::string> planned = plan(*module, name, calibration);
    if (auto* why = std::get_if<std::string>(&planned)) {
      report_.kept_float.emplace_back(name, *why);
      continue;
    }
    Planned p = std::get<Planned>(std::move(planned));
    const std::vector<int> nodes = graph.nodes_of(name);
    if (!nodes.empty()) {
      int last = nodes.back();
      int next = readers.sole(graph, last, calibration);
      if (next >= 0 && graph.nodes[static_cast<size_t>(next)].kind == OpKind::BatchNorm) {
        nn::Module& bn_module = *model.find(graph.nodes[static_cast<size_t>(next)].module);
        auto* bn = dynamic_cast<nn::BatchNorm*>(&bn_module);
        const Tensor mean = bn_module.param("running_mean"), var = bn_module.param("running_var");
        if (bn && mean.defined() && mean.numel() == p.layer->n) {
          Tensor mul = div(Tensor::ones({p.layer->n}), sqrt(add(var, bn->eps)));
          if (Tensor w = bn_module.param("weight"); w.defined()) mul = shrink::mul(mul, w);
          Tensor shift = neg(shrink::mul(mean, mul));
          if (Tensor b = bn_module.param("bias"); b.defined()) shift = add(shift, b);
          p.layer->post_mul = mul.detach().to(Device::CPU);
          p.layer->post_add = shift.detach().to(Device::CPU);
          overrides_.push_back(make_identity(bn_module));
          report_.folded.push_back(graph.nodes[static_cast<size_t>(next)].module);
          last = next;
          next = readers.sole(graph, last, calibration);
        }
      }
      if (next >= 0 && graph.nodes[static_cast<size_t>(next)].kind == OpKind::Relu) {
        const std::string& relu = graph.nodes[static_cast<size_t>(next)].module;
        nn::Module& relu_module = *model.find(relu);
        if (dynamic_cast<nn::ReLU*>(&relu_module)) {
          p.layer->relu = true;
          overrides_.push_back(make_identity(relu_module));
          report_.folded.push_back(relu);
        }
      }
    }
    std::shared_ptr<const Int8Layer> layer = p.layer;
    if (p.conv) {
      overrides_.push_back(module->override_forward(
          [layer, k = p.kernel, o = p.options](nn::Module&, const std::vector<nn::Value>& in) -> nn::Value {
            return int8_conv2d(in.at(0).tensor(), *layer, k, k, o);
          }));
    } else {
      overrides_.push_back(
          module->override_forward([layer](nn::Module&, const std::vector<nn::Value>& in) -> nn::Value {
            return int8_linear(in.at(0).tensor(), *layer);
          }));
    }
    report_.converted.push_back(name);
  }
}

Int8Model::~Int8Model() {
  for (auto it = overrides_.rbegin(); it != overrides_.rend(); ++it) it->remove();
}

}  // namespace shrink::compression
