// Integer inference ops (int8.h): shape and range checks, weight layout, then the backend's kernels.
#include "framework/ops/int8.h"

#include <cmath>
#include <limits>

#include "framework/ops/op_util.h"

namespace shrink {

namespace {

bool integral(float v) { return std::nearbyint(v) == v; }

void check_grid(const QuantGrid& g, const char* what) {
  SHRINK_CHECK(std::isfinite(g.scale) && g.scale > 0.f, what, ": scale must be positive and finite, got ", g.scale);
  SHRINK_CHECK(integral(g.qmin) && integral(g.qmax) && g.qmin < g.qmax, what, ": qmin ", g.qmin, " and qmax ", g.qmax,
               " must be integers with qmin < qmax");
  SHRINK_CHECK(integral(g.zero_point) && g.zero_point >= g.qmin && g.zero_point <= g.qmax, what, ": zero point ",
               g.zero_point, " must be an integer in [", g.qmin, ", ", g.qmax, "]");
}

// Per-row values of a scale or zero point with n or 1 elements.
std::vector<float> per_row(const Tensor& t, int64_t n, const char* what) {
  SHRINK_CHECK(t.defined() && (t.numel() == n || t.numel() == 1), "quantize_weight_int8: ", what, " ",
               t.defined() ? t.describe() : std::string("undefined"), " must hold 1 or ", n, " values");
  std::vector<float> v = t.to(Device::CPU).to_vector();
  if (v.size() == 1) v.assign(static_cast<size_t>(n), v[0]);
  return v;
}

Tensor f32_vector(const std::vector<float>& v) {
  Tensor t = Tensor::empty({static_cast<int64_t>(v.size())}, DType::F32, Device::CPU);
  std::copy(v.begin(), v.end(), t.data<float>());
  return t;
}

// A layer built by make_int8_layer, with any folded batch norm complete and on the CPU.
void check_layer(const Int8Layer& l, const char* op) {
  SHRINK_CHECK(l.packed.defined() && l.col_sum.defined() && l.scale.defined(), op,
               ": the layer was not built by make_int8_layer");
  SHRINK_CHECK(l.post_mul.defined() == l.post_add.defined(), op, ": post_mul and post_add go together");
  for (const Tensor* t : {&l.bias, &l.post_mul, &l.post_add})
    if (t->defined())
      SHRINK_CHECK(t->dtype() == DType::F32 && t->device() == Device::CPU && t->numel() == l.n, op, ": ",
                   t->describe(), " must be f32 on the CPU with one value per output (", l.n, ")");
}

}  // namespace

Tensor quantize_weight_int8(const Tensor& w, const Tensor& scale, const Tensor& zero_point, float qmin, float qmax) {
  detail::check_f32(w, "quantize_weight_int8", "weight");
  SHRINK_CHECK(w.dim() >= 1 && w.size(0) > 0, "quantize_weight_int8: weight ", w.describe(), " has no rows");
  const int64_t n = w.size(0), k = w.numel() / n;
  const std::vector<float> s = per_row(scale, n, "scale"), z = per_row(zero_point, n, "zero point");
  const std::vector<float> v = w.to(Device::CPU).to_vector();
  Tensor out = Tensor::empty(w.shape(), DType::I8, Device::CPU);
  int8_t* o = out.data<int8_t>();
  for (int64_t r = 0; r < n; ++r) {
    SHRINK_CHECK(integral(z[r]), "quantize_weight_int8: row ", r, ": zero point ", z[r], " is not an integer");
    SHRINK_CHECK(std::isfinite(s[r]) && s[r] > 0.f, "quantize_weight_int8: row ", r, ": scale ", s[r],
                 " must be positive and finite");
    for (int64_t i = 0; i < k; ++i) {
      const float t = z[r] + v[r * k + i] / s[r];
      const float q = std::nearbyint(t < qmin ? qmin : (t > qmax ? qmax : t)) - z[r];
      SHRINK_CHECK(q >= -128.f && q <= 127.f, "quantize_weight_int8: row ", r, ": the integer weight ", q,
                   " (q - zero point) does not fit in int8");
      o[r * k + i] = static_cast<int8_t>(q);
    }
  }
  return out;
}

Int8Layer make_int8_layer(const Tensor& w_int, const Tensor& weight_scale, const QuantGrid& input, const Tensor& bias) {
  SHRINK_CHECK(w_int.defined() && w_int.dtype() == DType::I8 && (w_int.dim() == 2 || w_int.dim() == 4),
               "make_int8_layer: weights must be I8 [n, k] or [oc, c, kh, kw], got ",
               w_int.defined() ? w_int.describe() : std::string("undefined"));
  check_grid(input, "make_int8_layer: input grid");
  SHRINK_CHECK(input.qmax - input.qmin <= 255.f, "make_int8_layer: the input range [", input.qmin, ", ", input.qmax,
               "] does not fit in a byte");
  Int8Layer l;
  l.n = w_int.size(0);
  l.k = w_int.numel() / l.n;
  // 255 * 128 * k must stay below 2^31 for exact 32-bit sums.
  SHRINK_CHECK(l.k > 0 && l.k <= 65536, "make_int8_layer: reduction length ", l.k, " is outside 1..65536");
  l.in_scale = input.scale;
  l.in_zero_point = input.zero_point;
  l.in_qmin = input.qmin;
  l.in_qmax = input.qmax;
  l.in_offset = input.qmin < 0.f ? 128 : 0;
  SHRINK_CHECK(input.qmin + l.in_offset >= 0.f && input.qmax + l.in_offset <= 255.f, "make_int8_layer: input range [",
               input.qmin, ", ", input.qmax, "] is neither signed nor unsigned bytes");

  // [oc, c, kh, kw] -> [oc, kh, kw, c]: the convolution's rows hold whole runs of channels.
  Tensor w = w_int.to(Device::CPU);
  Tensor rows = Tensor::empty({l.n, l.k}, DType::I8, Device::CPU);
  const int8_t* src = w.data<int8_t>();
  int8_t* dst = rows.data<int8_t>();
  if (w.dim() == 4) {
    const int64_t c = w.size(1), kk = w.size(2) * w.size(3);
    for (int64_t o = 0; o < l.n; ++o)
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t s = 0; s < kk; ++s) dst[(o * kk + s) * c + ch] = src[(o * c + ch) * kk + s];
  } else {
    std::copy(src, src + l.n * l.k, dst);
  }
  l.packed = backend(Device::CPU).int8_pack(rows);
  l.col_sum = Tensor::empty({l.n}, DType::I32, Device::CPU);
  int32_t* cs = l.col_sum.data<int32_t>();
  for (int64_t o = 0; o < l.n; ++o) {
    int32_t sum = 0;
    for (int64_t i = 0; i < l.k; ++i) sum += dst[o * l.k + i];
    cs[o] = sum;
  }
  std::vector<float> s = per_row(weight_scale, l.n, "weight scale");
  for (float& v : s) v *= input.scale;
  l.scale = f32_vector(s);
  if (bias.defined()) {
    detail::check_f32(bias, "make_int8_layer", "bias");
    SHRINK_CHECK(bias.numel() == l.n, "make_int8_layer: bias ", bias.describe(), " for ", l.n, " outputs");
    l.bias = bias.to(Device::CPU).detach();
  }
  return l;
}

void set_output_grid(Int8Layer& l, const QuantGrid& out) {
  check_grid(out, "set_output_grid");
  l.out_quant = true;
  l.out_scale = out.scale;
  l.out_zero_point = out.zero_point;
  l.out_qmin = out.qmin;
  l.out_qmax = out.qmax;
}

void set_next_grid(Int8Layer& l, const QuantGrid& next) {
  check_grid(next, "set_next_grid");
  const int offset = next.qmin < 0.f ? 128 : 0;
  SHRINK_CHECK(next.qmax - next.qmin <= 255.f && next.qmin + offset >= 0.f && next.qmax + offset <= 255.f,
               "set_next_grid: the range [", next.qmin, ", ", next.qmax, "] is neither signed nor unsigned bytes");
  l.out_bytes = true;
  l.next_scale = next.scale;
  l.next_zero_point = next.zero_point;
  l.next_qmin = next.qmin;
  l.next_qmax = next.qmax;
  l.next_offset = offset;
}

Tensor int8_linear(const Tensor& x, const Int8Layer& l) {
  SHRINK_CHECK(x.defined() && (x.dtype() == DType::F32 || x.dtype() == DType::U8), "int8_linear: input ",
               x.defined() ? x.describe() : std::string("undefined"), " must be f32 or u8");
  SHRINK_CHECK(x.device() == Device::CPU, "int8_linear: input ", x.describe(), " must be on the CPU");
  check_layer(l, "int8_linear");
  SHRINK_CHECK(x.dim() >= 1 && x.size(-1) == l.k, "int8_linear: input ", x.describe(), " for ", l.k, " features");
  Shape out_shape = x.shape();
  out_shape.back() = l.n;
  Tensor xc = x.reshape({x.numel() / l.k, l.k});
  Tensor y = Tensor::empty({xc.size(0), l.n}, l.out_bytes ? DType::U8 : DType::F32, Device::CPU);
  if (xc.size(0) > 0) backend(Device::CPU).int8_linear(l, xc, y);
  return y.reshape(out_shape);
}

Tensor int8_conv2d(const Tensor& x, const Int8Layer& l, int64_t kh, int64_t kw, const Conv2dOptions& o) {
  SHRINK_CHECK(x.defined() && (x.dtype() == DType::F32 || x.dtype() == DType::U8), "int8_conv2d: input ",
               x.defined() ? x.describe() : std::string("undefined"), " must be f32 NCHW or u8 NHWC");
  SHRINK_CHECK(x.device() == Device::CPU, "int8_conv2d: input ", x.describe(), " must be on the CPU");
  check_layer(l, "int8_conv2d");
  SHRINK_CHECK(x.dim() == 4, "int8_conv2d: input must be [N, C, H, W] (f32) or [N, H, W, C] (u8), got ", x.shape());
  const bool nhwc = x.dtype() == DType::U8;
  SHRINK_CHECK(o.groups == 1, "int8_conv2d: groups must be 1, got ", o.groups);
  Conv2dParams p{};
  p.n = x.size(0); p.c = x.size(nhwc ? 3 : 1); p.h = x.size(nhwc ? 1 : 2); p.w = x.size(nhwc ? 2 : 3);
  SHRINK_CHECK(kh > 0 && kw > 0 && p.c * kh * kw == l.k, "int8_conv2d: input ", x.describe(), " with a ", kh, "x",
               kw, " kernel does not match the layer's reduction length ", l.k);
  SHRINK_CHECK(o.stride_h > 0 && o.stride_w > 0 && o.dil_h > 0 && o.dil_w > 0 && o.pad_h >= 0 && o.pad_w >= 0,
               "int8_conv2d: stride and dilation must be positive and padding non-negative");
  p.oc = l.n; p.kh = kh; p.kw = kw;
  p.stride_h = o.stride_h; p.stride_w = o.stride_w; p.pad_h = o.pad_h; p.pad_w = o.pad_w;
  p.dil_h = o.dil_h; p.dil_w = o.dil_w; p.groups = 1;
  p.oh = (p.h + 2 * p.pad_h - p.dil_h * (p.kh - 1) - 1) / p.stride_h + 1;
  p.ow = (p.w + 2 * p.pad_w - p.dil_w * (p.kw - 1) - 1) / p.stride_w + 1;
  SHRINK_CHECK(p.oh > 0 && p.ow > 0, "int8_conv2d: input ", x.shape(), " is smaller than the ", kh, "x", kw,
               " kernel (after padding)");
  Tensor y = l.out_bytes ? Tensor::empty({p.n, p.oh, p.ow, p.oc}, DType::U8, Device::CPU)
                         : Tensor::empty({p.n, p.oc, p.oh, p.ow}, DType::F32, Device::CPU);
  if (p.n > 0) backend(Device::CPU).int8_conv2d(p, l, x, y);
  return y;
}

Tensor int8_max_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding) {
  SHRINK_CHECK(x.defined() && x.dtype() == DType::U8 && x.dim() == 4 && x.device() == Device::CPU,
               "int8_max_pool2d: input must be u8 [N, H, W, C] on the CPU, got ",
               x.defined() ? x.describe() : std::string("undefined"));
  SHRINK_CHECK(kernel > 0 && stride > 0 && padding >= 0 && 2 * padding <= kernel, "int8_max_pool2d: kernel ", kernel,
               ", stride ", stride, ", padding ", padding, " (padding at most half the kernel)");
  Pool2dParams p{};
  p.n = x.size(0); p.h = x.size(1); p.w = x.size(2); p.c = x.size(3);
  p.kh = p.kw = kernel; p.stride_h = p.stride_w = stride; p.pad_h = p.pad_w = padding;
  p.oh = (p.h + 2 * padding - kernel) / stride + 1;
  p.ow = (p.w + 2 * padding - kernel) / stride + 1;
  SHRINK_CHECK(p.oh > 0 && p.ow > 0, "int8_max_pool2d: input ", x.shape(), " is smaller than the kernel ", kernel);
  Tensor y = Tensor::empty({p.n, p.oh, p.ow, p.c}, DType::U8, Device::CPU);
  if (p.n > 0) backend(Device::CPU).int8_max_pool2d(p, x, y);
  return y;
}

}  // namespace shrink
