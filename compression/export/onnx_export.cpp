#include "compression/export/onnx_export.h"

#include "framework/core/error.h"

#ifdef SHRINK_HAVE_ONNX
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "compression/speedup/graph.h"
#include "framework/core/autograd.h"
#include "framework/io/atomic_file.h"
#include "framework/nn/layers.h"
#endif

namespace shrink::compression {

#ifndef SHRINK_HAVE_ONNX

bool onnx_export_available() { return false; }

OnnxExportReport export_onnx(nn::Module&, const std::string& path, const OnnxExportOptions&) {
  fail(path, ": this build has no ONNX exporter (configure with Debian's libonnx-dev and libprotobuf-dev installed)");
}

#else

bool onnx_export_available() { return true; }

namespace {

// How one calibrated target maps onto QuantizeLinear: the axis of a per-channel grid (-1: per
// tensor), the grid's values, and the dims its scale has in the tensor's rank.
struct Grid {
  int axis = -1;
  std::vector<float> scale, zero_point;
  std::vector<int64_t> broadcast_dims;  // scale's own shape, for Min/Max against the tensor
  bool is_signed = true;
  float qmin = 0, qmax = 0;
};

// The graph under construction: nodes, initializers and unique names.
class OnnxGraph {
 public:
  explicit OnnxGraph(onnx::GraphProto& g) : g_(g) {}

  onnx::NodeProto& node(const std::string& op, const std::vector<std::string>& in, const std::string& out,
                        const std::string& name) {
    onnx::NodeProto* n = g_.add_node();
    n->set_op_type(op);
    n->set_name(unique(name.empty() ? op : name));
    for (const auto& i : in) n->add_input(i);
    n->add_output(out);
    return *n;
  }
  static void attr(onnx::NodeProto& n, const std::string& name, int64_t v) {
    onnx::AttributeProto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void attr(onnx::NodeProto& n, const std::string& name, const std::vector<int64_t>& v) {
    onnx::AttributeProto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  }
  static void attr(onnx::NodeProto& n, const std::string& name, float v) {
    onnx::AttributeProto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(v);
  }

  // A float initializer of `values` in `dims`; returns its (unique) name.
  std::string floats(const std::string& name, const std::vector<float>& values, const std::vector<int64_t>& dims) {
    onnx::TensorProto* t = g_.add_initializer();
    const std::string n = unique(name);
    t->set_name(n);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) t->add_dims(d);
    t->set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
    return n;
  }
  std::string tensor(const std::string& name, const Tensor& t) { return floats(name, t.to_vector(), t.shape()); }
  std::string int64s(const std::string& name, const std::vector<int64_t>& values) {
    onnx::TensorProto* t = g_.add_initializer();
    const std::string n = unique(name);
    t->set_name(n);
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_dims(static_cast<int64_t>(values.size()));
    t->set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(int64_t)));
    return n;
  }
  // Zero points as int8 or uint8 in `dims`.
  std::string bytes(const std::string& name, const std::vector<float>& values, bool is_signed,
                    const std::vector<int64_t>& dims) {
    onnx::TensorProto* t = g_.add_initializer();
    const std::string n = unique(name);
    t->set_name(n);
    t->set_data_type(is_signed ? onnx::TensorProto::INT8 : onnx::TensorProto::UINT8);
    for (int64_t d : dims) t->add_dims(d);
    std::string raw(values.size(), '\0');
    for (size_t i = 0; i < values.size(); ++i) {
      const int v = static_cast<int>(std::lround(values[i]));
      raw[i] = static_cast<char>(is_signed ? static_cast<int8_t>(v) : static_cast<uint8_t>(v));
    }
    t->set_raw_data(raw);
    return n;
  }
  // QuantizeLinear then DequantizeLinear of `x` on `grid` (per tensor, or along its axis); returns
  // the dequantized value's name.
  std::string qdq(const std::string& key, const std::string& x, const Grid& grid) {
    std::vector<int64_t> axis_dims;
    if (grid.axis >= 0) axis_dims = {static_cast<int64_t>(grid.scale.size())};
    const std::string s = floats(key + ".scale", grid.scale, axis_dims);
    const std::string z = bytes(key + ".zero_point", grid.zero_point, grid.is_signed, axis_dims);
    const std::string qv = unique(key + ".q"), dqv = unique(key + ".dq");
    onnx::NodeProto& q = node("QuantizeLinear", {x, s, z}, qv, key + ".quantize");
    onnx::NodeProto& dq = node("DequantizeLinear", {qv, s, z}, dqv, key + ".dequantize");
    if (grid.axis >= 0) {
      attr(q, "axis", static_cast<int64_t>(grid.axis));
      attr(dq, "axis", static_cast<int64_t>(grid.axis));
    }
    return dqv;
  }
  std::string unique(const std::string& base) {
    int& k = used_[base];
    return k++ == 0 ? base : base + "_" + std::to_string(k - 1);
  }

 private:
  onnx::GraphProto& g_;
  std::map<std::string, int> used_;
};

// The reason `c` cannot be a QDQ pair on a tensor of `shape`, or "" with `grid` filled in.
std::string qdq_grid(const TargetCalibration& c, const Shape& shape, Grid& grid) {
  if (c.quant_dtype != "int8" && c.quant_dtype != "uint8")
    return c.quant_dtype + " (ONNX QuantizeLinear holds int8 and uint8 only)";
  grid.is_signed = c.quant_dtype == "int8";
  grid.scale = c.scale.to_vector();
  grid.zero_point = c.zero_point.to_vector();
  grid.qmin = c.qmin;
  grid.qmax = c.qmax;
  const Shape s = c.scale.shape();
  grid.broadcast_dims = s;
  if (grid.scale.size() != 1) {
    if (s.size() != shape.size()) return "a scale of shape " + shape_str(s) + " for a tensor of shape " + shape_str(shape);
    for (size_t d = 0; d < s.size(); ++d)
      if (s[d] != 1) {
        if (grid.axis >= 0 || s[d] != shape[d]) return "a grid along more than one dimension (" + shape_str(s) + ")";
        grid.axis = static_cast<int>(d);
      }
  }
  for (size_t i = 0; i < grid.scale.size(); ++i) {
    if (!(grid.scale[i] > 0) || !std::isfinite(grid.scale[i])) return "a scale that is not positive and finite";
    const float z = grid.zero_point[i];
    if (z != std::nearbyint(z) || z < (grid.is_signed ? -128 : 0) || z > (grid.is_signed ? 127 : 255))
      return "a zero point outside " + c.quant_dtype;
  }
  return "";
}

class Exporter {
 public:
  Exporter(nn::Module& model, const OnnxExportOptions& o, onnx::GraphProto& g, OnnxExportReport& report)
      : model_(model), o_(o), proto_(g), g_(g), report_(report) {}

  void run();

 private:
  std::string value(int producer) const;
  std::string qdq_activation(const std::string& in, const std::string& key, const Shape& shape);
  std::string weight(const std::string& module, nn::Module& m, const std::string& param);
  void emit(size_t i, const GraphNode& n, const std::string& out);
  const TargetCalibration* calibrated(const std::string& key) {
    if (!o_.calibration) return nullptr;
    auto it = o_.calibration->find(key);
    return it == o_.calibration->end() ? nullptr : &it->second;
  }

  nn::Module& model_;
  const OnnxExportOptions& o_;
  onnx::GraphProto& proto_;
  OnnxGraph g_;
  OnnxExportReport& report_;
  Graph graph_;
  std::vector<std::string> names_;
};

std::string Exporter::value(int producer) const {
  return producer == GraphNode::kModelInput ? "input" : names_.at(static_cast<size_t>(producer));
}

std::string Exporter::qdq_activation(const std::string& in, const std::string& key, const Shape& shape) {
  const TargetCalibration* c = calibrated(key);
  if (!c) return in;
  Grid grid;
  if (std::string why = qdq_grid(*c, shape, grid); !why.empty()) {
    report_.kept_float.emplace_back(key, why);
    return in;
  }
  std::string x = in;
  const float full_min = grid.is_signed ? -128.f : 0.f, full_max = grid.is_signed ? 127.f : 255.f;
  if (grid.qmin > full_min || grid.qmax < full_max) {  // the calibrated range is narrower: clip first
    std::vector<float> lo(grid.scale.size()), hi(grid.scale.size());  // (q - z) * s at qmin and qmax
    for (size_t i = 0; i < lo.size(); ++i) {
      lo[i] = (grid.qmin - grid.zero_point[i]) * grid.scale[i];
      hi[i] = (grid.qmax - grid.zero_point[i]) * grid.scale[i];
    }
    const std::vector<int64_t> dims = grid.axis >= 0 ? grid.broadcast_dims : std::vector<int64_t>{};
    const std::string clipped_hi = g_.unique(key + ".below_max"), clipped = g_.unique(key + ".clipped");
    g_.node("Min", {x, g_.floats(key + ".max", hi, dims)}, clipped_hi, key + ".min");
    g_.node("Max", {clipped_hi, g_.floats(key + ".min", lo, dims)}, clipped, key + ".max");
    x = clipped;
  }
  const std::string dq = g_.qdq(key, x, grid);
  report_.qdq.push_back(key);
  return dq;
}

// A parameter as an initializer, through a QDQ pair when calibrated (clamped to the calibrated
// range in the initializer itself).
std::string Exporter::weight(const std::string& module, nn::Module& m, const std::string& param) {
  const std::string key = module.empty() ? param : module + "." + param;
  Tensor w = m.param(param);
  const TargetCalibration* c = calibrated(key);
  Grid grid;
  std::string why = c ? qdq_grid(*c, w.shape(), grid) : "";
  if (!c || !why.empty()) {
    if (c) report_.kept_float.emplace_back(key, why);
    return g_.tensor(key, w);
  }
  std::vector<float> v = w.to_vector();
  // Row-major: the index along `axis` of element i is (i / inner) % channels, inner being the
  // product of the dimensions after it.
  size_t inner = 1;
  for (size_t d = static_cast<size_t>(std::max(grid.axis, 0)) + 1; d < w.shape().size(); ++d)
    inner *= static_cast<size_t>(w.shape()[d]);
  const size_t channels = grid.scale.size();
  for (size_t i = 0; i < v.size(); ++i) {
    const size_t ch = grid.axis >= 0 ? (i / inner) % channels : 0;
    const float lo = (grid.qmin - grid.zero_point[ch]) * grid.scale[ch];
    const float hi = (grid.qmax - grid.zero_point[ch]) * grid.scale[ch];
    v[i] = std::min(std::max(v[i], lo), hi);
  }
  const std::string dq = g_.qdq(key, g_.floats(key, v, w.shape()), grid);
  report_.qdq.push_back(key);
  return dq;
}

void Exporter::emit(size_t i, const GraphNode& n, const std::string& out) {
  const std::string name = (n.module.empty() ? "" : n.module + ".") + op_kind_name(n.kind) + "_" + std::to_string(i);
  auto* m = const_cast<nn::Module*>(n.module_ptr);
  const std::string x = n.inputs.empty() ? "" : value(n.inputs[0]);
  // What a Conv2d / Linear sees of its input and hands on as its output, through QDQ pairs.
  auto layer_in = [&]() { return qdq_activation(x, n.module + "._input_0", n.input_shapes[0]); };
  auto layer_out = [&](const std::string& raw) {
    g_.node("Identity", {qdq_activation(raw, n.module + "._output_0", n.shape)}, out, name + "_out");
  };
  switch (n.kind) {
    case OpKind::Conv2d: {
      auto* conv = dynamic_cast<nn::Conv2d*>(m);
      const std::string in = layer_in();
      std::vector<std::string> inputs{in, weight(n.module, *conv, "weight")};
      if (conv->param("bias").defined()) inputs.push_back(weight(n.module, *conv, "bias"));
      const bool qout = calibrated(n.module + "._output_0") != nullptr;
      const std::string raw = qout ? name + "_raw" : out;
      onnx::NodeProto& c = g_.node("Conv", inputs, raw, name);
      OnnxGraph::attr(c, "kernel_shape", std::vector<int64_t>{conv->kernel_size, conv->kernel_size});
      OnnxGraph::attr(c, "strides", std::vector<int64_t>{n.attrs[0], n.attrs[1]});
      OnnxGraph::attr(c, "pads", std::vector<int64_t>{n.attrs[2], n.attrs[3], n.attrs[2], n.attrs[3]});
      OnnxGraph::attr(c, "dilations", std::vector<int64_t>{n.attrs[4], n.attrs[5]});
      OnnxGraph::attr(c, "group", n.attrs[6]);
      if (qout) layer_out(raw);
      return;
    }
    case OpKind::Linear: {
      auto* lin = dynamic_cast<nn::Linear*>(m);
      const std::string in = layer_in();
      const std::string w = weight(n.module, *lin, "weight");
      const bool has_bias = lin->param("bias").defined();
      const bool qout = calibrated(n.module + "._output_0") != nullptr;
      const std::string raw = qout ? name + "_raw" : out;
      if (n.input_shapes[0].size() == 2) {
        std::vector<std::string> inputs{in, w};
        if (has_bias) inputs.push_back(weight(n.module, *lin, "bias"));
        OnnxGraph::attr(g_.node("Gemm", inputs, raw, name), "transB", int64_t{1});
      } else {  // x @ W^T (+ b) for inputs of any rank
        g_.node("Transpose", {w}, name + "_wt", name + "_transpose");
        g_.node("MatMul", {in, name + "_wt"}, has_bias ? name + "_mm" : raw, name + "_matmul");
        if (has_bias) g_.node("Add", {name + "_mm", weight(n.module, *lin, "bias")}, raw, name + "_bias");
      }
      if (qout) layer_out(raw);
      return;
    }
    case OpKind::BatchNorm: {
      auto* bn = dynamic_cast<nn::BatchNorm*>(m);
      onnx::NodeProto& b = g_.node("BatchNormalization",
                                   {x, g_.tensor(n.module + ".weight", bn->param("weight")),
                                    g_.tensor(n.module + ".bias", bn->param("bias")),
                                    g_.tensor(n.module + ".running_mean", bn->buffer("running_mean")),
                                    g_.tensor(n.module + ".running_var", bn->buffer("running_var"))},
                                   out, name);
      OnnxGraph::attr(b, "epsilon", bn->eps);
      return;
    }
    case OpKind::Relu: g_.node("Relu", {x}, out, name); return;
    case OpKind::Dropout: g_.node("Identity", {x}, out, name); return;
    case OpKind::Add: g_.node("Add", {x, value(n.inputs[1])}, out, name); return;
    case OpKind::MaxPool2d:
    case OpKind::AvgPool2d: {
      onnx::NodeProto& p = g_.node(n.kind == OpKind::MaxPool2d ? "MaxPool" : "AveragePool", {x}, out, name);
      OnnxGraph::attr(p, "kernel_shape", std::vector<int64_t>{n.attrs[0], n.attrs[0]});
      OnnxGraph::attr(p, "strides", std::vector<int64_t>{n.attrs[1], n.attrs[1]});
      OnnxGraph::attr(p, "pads", std::vector<int64_t>{n.attrs[2], n.attrs[2], n.attrs[2], n.attrs[2]});
      return;
    }
    case OpKind::AdaptiveAvgPool2d: g_.node("GlobalAveragePool", {x}, out, name); return;
    case OpKind::Reshape: {
      std::vector<int64_t> shape = n.shape;
      if (o_.dynamic_batch && !shape.empty() && !n.input_shapes[0].empty() && shape[0] == n.input_shapes[0][0])
        shape[0] = 0;  // copy the batch dimension
      g_.node("Reshape", {x, g_.int64s(name + "_shape", shape)}, out, name);
      return;
    }
    default: fail("unreachable");
  }
}

// Why the exporter cannot express node `n`, or "".
std::string unsupported(const GraphNode& n) {
  auto from_module = [&](bool ok, const char* type) -> std::string {
    if (ok) return "";
    return std::string("a functional ") + op_kind_name(n.kind) + " outside a " + type + " module";
  };
  for (size_t k = 0; k < n.inputs.size(); ++k) {
    const bool param_ok = (n.kind == OpKind::Conv2d || n.kind == OpKind::Linear || n.kind == OpKind::BatchNorm) && k > 0;
    if (n.inputs[k] == GraphNode::kParameter && !param_ok) return "a parameter used directly by the op";
  }
  switch (n.kind) {
    case OpKind::Conv2d: return from_module(dynamic_cast<const nn::Conv2d*>(n.module_ptr) != nullptr, "Conv2d");
    case OpKind::Linear: return from_module(dynamic_cast<const nn::Linear*>(n.module_ptr) != nullptr, "Linear");
    case OpKind::BatchNorm: {
      const auto* bn = dynamic_cast<const nn::BatchNorm*>(n.module_ptr);
      if (bn && !bn->param("weight").defined()) return "a batch norm without affine parameters";
      if (bn && (!bn->has_buffer("running_mean") || !bn->param("running_mean").defined()))
        return "a batch norm without running statistics (it normalises by the batch's)";
      return from_module(bn != nullptr, "BatchNorm");
    }
    case OpKind::Relu:
    case OpKind::Dropout:
    case OpKind::MaxPool2d:
    case OpKind::Reshape: return "";
    case OpKind::Add: return n.inputs.size() == 2 && n.input_shapes[0] == n.input_shapes[1] ? "" : "an add that broadcasts";
    case OpKind::AvgPool2d: return n.attrs.size() == 3 && n.attrs[2] == 0 ? "" : "average pooling with padding";
    case OpKind::AdaptiveAvgPool2d:
      return n.shape.size() == 4 && n.shape[2] == 1 && n.shape[3] == 1 ? "" : "adaptive pooling to more than 1x1";
    default: return std::string("no ONNX mapping for ") + op_kind_name(n.kind);
  }
}

onnx::ValueInfoProto* describe(onnx::ValueInfoProto* v, const std::string& name, const Shape& shape, bool dynamic) {
  v->set_name(name);
  auto* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  for (size_t d = 0; d < shape.size(); ++d) {
    auto* dim = t->mutable_shape()->add_dim();
    if (d == 0 && dynamic) dim->set_dim_param("N");
    else dim->set_dim_value(shape[d]);
  }
  return v;
}

void Exporter::run() {
  graph_ = trace(model_, {nn::Value(Tensor::zeros(o_.input_shape))});
  std::string refused;
  for (size_t i = 0; i < graph_.nodes.size(); ++i) {
    const GraphNode& n = graph_.nodes[i];
    if (std::string why = unsupported(n); !why.empty())
      refused += "\n  node " + std::to_string(i) + " " + op_kind_name(n.kind) + " in '" + n.module + "': " + why;
  }
  SHRINK_CHECK(refused.empty(), "ONNX export refused, nothing was written:", refused);
  SHRINK_CHECK(graph_.outputs.size() == 1, "ONNX export: the model has ", graph_.outputs.size(),
               " outputs; one tensor output is supported");
  names_.resize(graph_.nodes.size());
  for (size_t i = 0; i < graph_.nodes.size(); ++i)
    names_[i] = static_cast<int>(i) == graph_.outputs[0] ? "output" : "t" + std::to_string(i);
  for (size_t i = 0; i < graph_.nodes.size(); ++i) emit(i, graph_.nodes[i], names_[i]);
  describe(proto_.add_input(), "input", o_.input_shape, o_.dynamic_batch);
  describe(proto_.add_output(), "output", graph_.nodes[static_cast<size_t>(graph_.outputs[0])].shape, o_.dynamic_batch);
  report_.nodes = proto_.node_size();
  if (o_.calibration)
    for (const auto& [key, c] : *o_.calibration)
      if (std::find(report_.qdq.begin(), report_.qdq.end(), key) == report_.qdq.end() &&
          std::none_of(report_.kept_float.begin(), report_.kept_float.end(), [&](const auto& k) { return k.first == key; }))
        report_.kept_float.emplace_back(key, "not a weight, bias, _input_0 or _output_0 of an exported Conv2d or Linear");
}

}  // namespace

OnnxExportReport export_onnx(nn::Module& model, const std::string& path, const OnnxExportOptions& options) {
  SHRINK_CHECK(!options.input_shape.empty(), "export_onnx: no input shape");
  onnx::ModelProto proto;
  proto.set_ir_version(8);  // ONNX 1.12's IR, opset 13
  proto.set_producer_name("shrink");
  proto.set_model_version(1);
  onnx::OperatorSetIdProto* opset = proto.add_opset_import();
  opset->set_domain("");
  opset->set_version(13);
  onnx::GraphProto* graph = proto.mutable_graph();
  graph->set_name("shrink");
  OnnxExportReport report;
  Exporter(model, options, *graph, report).run();
  std::string bytes;
  SHRINK_CHECK(proto.SerializeToString(&bytes), path, ": the ONNX model does not serialise");
  io::write_file_atomic(path, bytes);
  return report;
}

#endif

}  // namespace shrink::compression
