// Integer inference (framework/ops/int8.h) against a plain reference written here: the input
// quantized with the fake quantizers' formula, the products summed in int64, then the epilogue
// in double. Shapes are ragged on purpose — rows that are not a multiple of the 14-row tile,
// outputs not a multiple of the 32-column panel, reduction lengths not a multiple of 4, 1x1
// convolutions that skip im2col, strides, padding and dilation — and every case runs through the
// VNNI kernel (where the CPU has it) and the portable loops.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <random>

#include "framework/cpu/int8_gemm.h"
#include "framework/ops/int8.h"
#include "framework/shrink.h"

using namespace shrink;

namespace {

struct Epi {
  bool out_quant = false;
  QuantGrid out;
  std::vector<float> mul, add;  // empty: no folded batch norm
  bool relu = false;
};

Tensor random_f32(const Shape& s, std::mt19937& rng, float lo, float hi) {
  Tensor t = Tensor::empty(s, DType::F32, Device::CPU);
  std::uniform_real_distribution<float> d(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng);
  return t;
}

Tensor random_i8(const Shape& s, std::mt19937& rng) {
  Tensor t = Tensor::empty(s, DType::I8, Device::CPU);
  std::uniform_int_distribution<int> d(-128, 127);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int8_t>()[i] = static_cast<int8_t>(d(rng));
  return t;
}

double quantized(float x, const QuantGrid& g) {
  const float v = g.zero_point + x / g.scale;
  return std::nearbyint(std::min(std::max(v, g.qmin), g.qmax)) - g.zero_point;
}

double epilogue(double acc, int64_t n, const std::vector<float>& ws, const QuantGrid& in, const Tensor& bias,
                const Epi& e) {
  double y = acc * in.scale * ws[n] + (bias.defined() ? bias.data<float>()[n] : 0.f);
  if (e.out_quant) y = quantized(static_cast<float>(y), e.out) * e.out.scale;
  if (!e.mul.empty()) y = y * e.mul[n] + e.add[n];
  if (e.relu) y = std::max(y, 0.0);
  return y;
}

Int8Layer layer(const Tensor& w, const std::vector<float>& ws, const QuantGrid& in, const Tensor& bias, const Epi& e) {
  Tensor scale = Tensor::empty({static_cast<int64_t>(ws.size())}, DType::F32, Device::CPU);
  std::copy(ws.begin(), ws.end(), scale.data<float>());
  Int8Layer l = make_int8_layer(w, scale, in, bias);
  if (e.out_quant) set_output_grid(l, e.out);
  if (!e.mul.empty()) {
    l.post_mul = Tensor::from_vector(e.mul, {static_cast<int64_t>(e.mul.size())});
    l.post_add = Tensor::from_vector(e.add, {static_cast<int64_t>(e.add.size())});
  }
  l.relu = e.relu;
  return l;
}

// |got - want| within float rounding of the sums' magnitude; an output that crosses a rounding
// boundary of the requantization may move by one step of the output grid.
void check_close(const Tensor& got, const std::vector<double>& want, double step, const std::string& what) {
  BOOST_REQUIRE_EQUAL(got.numel(), static_cast<int64_t>(want.size()));
  const float* g = got.data<float>();
  int64_t off_grid = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double err = std::abs(g[i] - want[i]);
    const double tol = 1e-5 * std::max(1.0, std::abs(want[i]));
    if (err > tol && step > 0 && err <= step * 1.0001 + tol) {
      ++off_grid;
      continue;
    }
    if (err > tol) BOOST_FAIL(what << ": element " << i << " is " << g[i] << ", want " << want[i]);
  }
  BOOST_CHECK_MESSAGE(off_grid * 100 <= static_cast<int64_t>(want.size()), what << ": " << off_grid << " of "
                                                                             << want.size() << " one grid step off");
}

struct BothKernels {
  template <typename F>
  void operator()(F&& f) const {
    cpu::int8::force_portable(false);
    f(cpu::int8::uses_vnni() ? "vnni" : "portable");
    cpu::int8::force_portable(true);
    f("portable");
    cpu::int8::force_portable(false);
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(int8_inference)

BOOST_AUTO_TEST_CASE(linear_matches_the_integer_reference_on_ragged_shapes) {
  std::mt19937 rng(7);
  struct Case {
    int64_t m, k, n;
    QuantGrid in;
    bool bias;
    Epi e;
  };
  Epi requant;
  requant.out_quant = true;
  requant.out = {0.05f, 3.f, -127.f, 127.f};
  Epi bn_relu;
  bn_relu.relu = true;
  const std::vector<Case> cases{
      {1, 1, 1, {0.1f, 0.f, -127.f, 127.f}, false, {}},
      {13, 7, 33, {0.02f, 0.f, -127.f, 127.f}, true, {}},
      {14, 64, 32, {0.05f, 128.f, 0.f, 255.f}, true, requant},
      {29, 130, 70, {0.03f, 17.f, 0.f, 255.f}, false, bn_relu},
      {64, 257, 10, {0.01f, -3.f, -8.f, 7.f}, true, {}},
  };
  for (const Case& c : cases) {
    Epi e = c.e;
    if (e.relu) {
      e.mul = random_f32({c.n}, rng, 0.5f, 2.f).to_vector();
      e.add = random_f32({c.n}, rng, -1.f, 1.f).to_vector();
    }
    const Tensor x = random_f32({c.m, c.k}, rng, -2.f, 2.f);
    const Tensor w = random_i8({c.n, c.k}, rng);
    const std::vector<float> ws = random_f32({c.n}, rng, 1e-3f, 1e-2f).to_vector();
    const Tensor bias = c.bias ? random_f32({c.n}, rng, -1.f, 1.f) : Tensor();
    std::vector<double> want(static_cast<size_t>(c.m * c.n));
    for (int64_t r = 0; r < c.m; ++r)
      for (int64_t o = 0; o < c.n; ++o) {
        int64_t acc = 0;
        for (int64_t i = 0; i < c.k; ++i)
          acc += static_cast<int64_t>(quantized(x.data<float>()[r * c.k + i], c.in)) * w.data<int8_t>()[o * c.k + i];
        want[r * c.n + o] = epilogue(static_cast<double>(acc), o, ws, c.in, bias, e);
      }
    const Int8Layer l = layer(w, ws, c.in, bias, e);
    BothKernels()([&](const char* kernel) {
      check_close(int8_linear(x, l), want, e.out_quant ? e.out.scale : 0.0,
                  std::string(kernel) + " linear m=" + std::to_string(c.m) + " k=" + std::to_string(c.k) +
                      " n=" + std::to_string(c.n));
    });
  }
}

BOOST_AUTO_TEST_CASE(conv2d_matches_the_integer_reference_on_ragged_shapes) {
  std::mt19937 rng(11);
  struct Case {
    Shape x;
    int64_t oc, kh, kw;
    Conv2dOptions o;
  };
  auto opt = [](int64_t pad, int64_t stride, int64_t dil) {
    Conv2dOptions o;
    o.pad_h = o.pad_w = pad;
    o.stride_h = o.stride_w = stride;
    o.dil_h = o.dil_w = dil;
    return o;
  };
  Conv2dOptions rect = opt(1, 1, 1);
  rect.stride_h = 2;
  rect.pad_w = 2;
  const std::vector<Case> cases{
      {{2, 1, 9, 9}, 6, 3, 3, opt(1, 1, 1)},     // one input channel (k = 9, padded to 12)
      {{3, 5, 7, 6}, 33, 3, 3, opt(2, 2, 1)},    // padding wider than the kernel's reach, stride 2
      {{1, 16, 7, 8}, 40, 1, 1, opt(0, 1, 1)},   // 1x1: the NHWC bytes multiplied directly (2 x 28 pixels)
      {{2, 8, 10, 11}, 17, 1, 1, opt(0, 2, 1)},  // 1x1 with stride: through im2col
      {{1, 3, 12, 12}, 8, 5, 3, opt(2, 1, 2)},   // non-square kernel, dilation
      {{4, 13, 15, 15}, 64, 3, 3, opt(1, 1, 1)}, // im2col: several row blocks and panels, blocks mid-image
      {{2, 35, 9, 7}, 20, 3, 3, opt(1, 1, 1)},   // 16x16 byte transposes and both edges (35 channels, 63 pixels)
      // Implicit GEMM (channels a multiple of 4, output rows of 14 pixels or more): narrow and wide
      // panels, output rows longer than a tile and not a multiple of it, stride 2, dilation 2.
      {{2, 16, 28, 28}, 16, 3, 3, opt(1, 1, 1)},
      {{1, 8, 33, 31}, 40, 3, 3, opt(1, 2, 1)},
      {{1, 4, 20, 20}, 24, 3, 3, opt(2, 1, 2)},
      {{1, 8, 20, 33}, 20, 3, 5, rect},          // 3x5 kernel, stride 2 down and 1 across, padding 1 and 2
      // Pixel strides the tiles fix at compile time: 32 bytes, and 64 and 128 at stride 2.
      {{1, 32, 14, 14}, 32, 3, 3, opt(1, 1, 1)},
      {{1, 32, 28, 28}, 17, 3, 3, opt(1, 2, 1)},
      {{1, 64, 28, 28}, 16, 3, 3, opt(1, 2, 1)},
      {{1, 32, 28, 28}, 16, 3, 3, opt(1, 1, 1)},  // the narrow tile at 32 and at 64
      {{1, 64, 28, 28}, 16, 1, 1, opt(0, 1, 1)},
      {{1, 64, 28, 28}, 32, 3, 3, opt(1, 2, 1)},  // the wide tile at 128
  };
  for (const Case& c : cases) {
    const int64_t n = c.x[0], ci = c.x[1], h = c.x[2], wd = c.x[3];
    const int64_t oh = (h + 2 * c.o.pad_h - c.o.dil_h * (c.kh - 1) - 1) / c.o.stride_h + 1;
    const int64_t ow = (wd + 2 * c.o.pad_w - c.o.dil_w * (c.kw - 1) - 1) / c.o.stride_w + 1;
    const QuantGrid in{0.03f, 9.f, 0.f, 255.f};
    Epi e;
    e.relu = c.oc % 2 == 1;
    if (c.oc > 30) {
      e.out_quant = true;
      e.out = {0.2f, 0.f, -127.f, 127.f};
    }
    const Tensor x = random_f32(c.x, rng, -1.f, 3.f);
    const Tensor w = random_i8({c.oc, ci, c.kh, c.kw}, rng);
    const std::vector<float> ws = random_f32({c.oc}, rng, 1e-3f, 1e-2f).to_vector();
    const Tensor bias = random_f32({c.oc}, rng, -1.f, 1.f);
    std::vector<double> want(static_cast<size_t>(n * c.oc * oh * ow));
    const float* xp = x.data<float>();
    const int8_t* wp = w.data<int8_t>();
    for (int64_t b = 0; b < n; ++b)
      for (int64_t o = 0; o < c.oc; ++o)
        for (int64_t y = 0; y < oh; ++y)
          for (int64_t xx = 0; xx < ow; ++xx) {
            int64_t acc = 0;
            for (int64_t ch = 0; ch < ci; ++ch)
              for (int64_t ky = 0; ky < c.kh; ++ky)
                for (int64_t kx = 0; kx < c.kw; ++kx) {
                  const int64_t iy = y * c.o.stride_h - c.o.pad_h + ky * c.o.dil_h;
                  const int64_t ix = xx * c.o.stride_w - c.o.pad_w + kx * c.o.dil_w;
                  if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;  // padding is 0.0
                  acc += static_cast<int64_t>(quantized(xp[((b * ci + ch) * h + iy) * wd + ix], in)) *
                         wp[((o * ci + ch) * c.kh + ky) * c.kw + kx];
                }
            want[((b * c.oc + o) * oh + y) * ow + xx] = epilogue(static_cast<double>(acc), o, ws, in, bias, e);
          }
    const Int8Layer l = layer(w, ws, in, bias, e);
    BothKernels()([&](const char* kernel) {
      const Tensor got = int8_conv2d(x, l, c.kh, c.kw, c.o);
      BOOST_CHECK(got.shape() == (Shape{n, c.oc, oh, ow}));
      check_close(got, want, e.out_quant ? e.out.scale : 0.0,
                  std::string(kernel) + " conv " + shape_str(c.x) + " oc=" + std::to_string(c.oc));
    });
  }
}

BOOST_AUTO_TEST_CASE(int8_layers_compute_what_the_fake_quantized_float_layers_compute) {
  // The float path: fake-quantize the input, dequantize the weights, run the float op.
  std::mt19937 rng(3);
  const QuantGrid in{0.02f, 0.f, -127.f, 127.f};
  const Tensor x = random_f32({3, 4, 8, 8}, rng, -2.f, 2.f);
  const Tensor wf = random_f32({12, 4, 3, 3}, rng, -0.5f, 0.5f);
  const Tensor ws = random_f32({12}, rng, 0.003f, 0.005f);
  const Tensor bias = random_f32({12}, rng, -0.2f, 0.2f);
  const Tensor zero = Tensor::zeros({12});
  const Tensor wq = quantize_weight_int8(wf, ws, zero, -127.f, 127.f);
  Conv2dOptions o;
  o.pad_h = o.pad_w = 1;
  const Tensor got = int8_conv2d(x, make_int8_layer(wq, ws, in, bias), 3, 3, o);
  const Tensor xs = Tensor::full({1}, in.scale), xz = Tensor::zeros({1});
  const Tensor wfq = fake_quantize(wf, ws.reshape({12, 1, 1, 1}), zero.reshape({12, 1, 1, 1}), -127.f, 127.f, false);
  const Tensor want = conv2d(fake_quantize(x, xs, xz, in.qmin, in.qmax, false), wfq, bias, o);
  BOOST_CHECK_LT(max(abs(sub(got, want))).item(), 1e-5f);

  const Tensor xl = random_f32({5, 20}, rng, -2.f, 2.f);
  const Tensor wl = random_f32({7, 20}, rng, -1.f, 1.f);
  const Tensor wls = Tensor::full({1}, 1.f / 127.f);
  const Tensor gotl = int8_linear(xl, make_int8_layer(quantize_weight_int8(wl, wls, xz, -127.f, 127.f), wls, in, {}));
  const Tensor wantl = linear(fake_quantize(xl, xs, xz, in.qmin, in.qmax, false),
                                     fake_quantize(wl, wls, xz, -127.f, 127.f, false), {});
  BOOST_CHECK_LT(max(abs(sub(gotl, wantl))).item(), 1e-5f);
}

// A convolution handing bytes to the next (set_next_grid) gives exactly the bytes the next layer
// makes of its float output; a layer given NHWC bytes computes what it computes from the floats;
// max pooling the bytes gives the bytes of the pooled floats. Producers through im2col (6
// channels, 9x9) and implicit GEMM (8 channels, 16x16); consumers 1x1 (direct) and 3x3 (implicit
// GEMM where the channels come in fours); pooling with and without padding.
BOOST_AUTO_TEST_CASE(bytes_between_layers_are_what_the_next_layer_would_quantize) {
  std::mt19937 rng(13);
  const QuantGrid in{0.02f, 0.f, -127.f, 127.f}, next{0.05f, 3.f, 0.f, 255.f};
  Conv2dOptions pad1;
  pad1.pad_h = pad1.pad_w = 1;
  // NHWC bytes against the quantized NCHW floats.
  auto check_bytes = [&](const Tensor& bytes, const Tensor& floats, const std::string& what) {
    const int64_t n = floats.size(0), ch = floats.size(1), hw = floats.size(2) * floats.size(3);
    BOOST_REQUIRE(bytes.dtype() == DType::U8 &&
                  bytes.shape() == (Shape{n, floats.size(2), floats.size(3), ch}));
    int64_t wrong = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t c = 0; c < ch; ++c)
        for (int64_t px = 0; px < hw; ++px)
          wrong += bytes.data<uint8_t>()[(i * hw + px) * ch + c] !=
                   quantized(floats.data<float>()[(i * ch + c) * hw + px], next) + next.zero_point;
    BOOST_CHECK_MESSAGE(wrong == 0, what << ": " << wrong << " bytes differ");
  };
  for (const Shape& xs : {Shape{3, 6, 9, 9}, Shape{2, 8, 16, 16}})
    for (const int64_t oc : {7, 16, 40}) {
      const std::string what = shape_str(xs) + " oc=" + std::to_string(oc);
      const Tensor x = random_f32(xs, rng, -2.f, 2.f);
      Int8Layer l = make_int8_layer(random_i8({oc, xs[1], 3, 3}, rng), random_f32({oc}, rng, 1e-3f, 1e-2f), in,
                                    random_f32({oc}, rng, -1.f, 1.f));
      l.relu = true;
      const Tensor floats = int8_conv2d(x, l, 3, 3, pad1);
      Int8Layer lb = l;
      set_next_grid(lb, next);
      BothKernels()([&](const char* kernel) { check_bytes(int8_conv2d(x, lb, 3, 3, pad1), floats, kernel + (" " + what)); });
      const Tensor bytes = int8_conv2d(x, lb, 3, 3, pad1);
      for (const int64_t k : {1, 3}) {  // the next layer, from those bytes and from the floats
        const Int8Layer l2 = make_int8_layer(random_i8({5, oc, k, k}, rng), random_f32({5}, rng, 1e-3f, 1e-2f), next, {});
        const Conv2dOptions o2 = k == 3 ? pad1 : Conv2dOptions{};
        BOOST_CHECK_MESSAGE(int8_conv2d(bytes, l2, k, k, o2).to_vector() == int8_conv2d(floats, l2, k, k, o2).to_vector(),
                            what << ": a " << k << "x" << k << " layer computes otherwise from bytes");
      }
      for (const int64_t pad : {0, 1})
        check_bytes(int8_max_pool2d(bytes, 2 + pad, 2, pad), max_pool2d(floats, 2 + pad, 2, pad),
                    what + " pool padding " + std::to_string(pad));
    }
}

// A Linear handing bytes to the next (set_next_grid) gives exactly the bytes the next Linear makes
// of its float output, and a Linear given those bytes computes what it computes from the floats;
// ragged k and n, rank-3 inputs.
BOOST_AUTO_TEST_CASE(linear_bytes_between_layers) {
  std::mt19937 rng(17);
  const QuantGrid in{0.02f, 0.f, -127.f, 127.f};
  for (const QuantGrid& next : {QuantGrid{0.05f, 3.f, 0.f, 255.f}, QuantGrid{0.04f, 0.f, -127.f, 127.f}})
    for (const Shape& xs : {Shape{13, 7}, Shape{2, 15, 130}})
      for (const int64_t n : {5, 33, 70}) {
        const std::string what = shape_str(xs) + " n=" + std::to_string(n) + " next qmin " + std::to_string(next.qmin);
        const int64_t k = xs.back();
        const Tensor x = random_f32(xs, rng, -2.f, 2.f);
        Int8Layer l = make_int8_layer(random_i8({n, k}, rng), random_f32({n}, rng, 1e-3f, 1e-2f), in,
                                      random_f32({n}, rng, -1.f, 1.f));
        l.relu = true;
        const Tensor floats = int8_linear(x, l);
        Int8Layer lb = l;
        set_next_grid(lb, next);
        const int offset = next.qmin < 0.f ? 128 : 0;
        BothKernels()([&](const char* kernel) {
          const Tensor bytes = int8_linear(x, lb);
          BOOST_REQUIRE(bytes.dtype() == DType::U8 && bytes.shape() == floats.shape());
          int64_t wrong = 0;
          for (int64_t i = 0; i < floats.numel(); ++i)
            wrong += bytes.data<uint8_t>()[i] != quantized(floats.data<float>()[i], next) + next.zero_point + offset;
          BOOST_CHECK_MESSAGE(wrong == 0, kernel << " " << what << ": " << wrong << " bytes differ");
        });
        const Tensor bytes = int8_linear(x, lb);
        const Int8Layer l2 = make_int8_layer(random_i8({6, n}, rng), random_f32({6}, rng, 1e-3f, 1e-2f), next, {});
        BOOST_CHECK_MESSAGE(int8_linear(bytes, l2).to_vector() == int8_linear(floats, l2).to_vector(),
                            what << ": the next Linear computes otherwise from bytes");
      }
}

BOOST_AUTO_TEST_CASE(bad_layers_are_refused_with_what_is_wrong) {
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  auto has = [](const std::string& s, const std::string& part) {
    BOOST_CHECK_MESSAGE(s.find(part) != std::string::npos, "'" << s << "' lacks '" << part << "'");
  };
  const Tensor w = Tensor::from_vector({0.f, 1.f, 2.f, 2.f}, {2, 2});
  // uint8 affine weights with zero point 0: q = 255 does not fit in int8.
  has(message([&] { quantize_weight_int8(w, Tensor::full({2}, 2.f / 255.f), Tensor::zeros({2}), 0.f, 255.f); }),
      "row 1: the integer weight 255");
  has(message([&] { quantize_weight_int8(w, Tensor::full({2}, 0.1f), Tensor::full({2}, 0.5f), -127.f, 127.f); }),
      "zero point 0.5 is not an integer");
  const Tensor wq = quantize_weight_int8(w, Tensor::full({2}, 0.1f), Tensor::zeros({2}), -127.f, 127.f);
  has(message([&] { make_int8_layer(wq, Tensor::full({1}, 1.f), {0.1f, 0.f, -32767.f, 32767.f}, {}); }),
      "does not fit in a byte");
  has(message([&] { make_int8_layer(wq, Tensor::full({1}, 1.f), {0.1f, 300.f, 0.f, 255.f}, {}); }),
      "zero point 300 must be an integer in [0, 255]");
  const Int8Layer l = make_int8_layer(wq, Tensor::full({1}, 1.f), {0.1f, 0.f, -127.f, 127.f}, {});
  has(message([&] { int8_linear(Tensor::zeros({3, 5}), l); }), "for 2 features");
  Conv2dOptions grouped;
  grouped.groups = 2;
  has(message([&] { int8_conv2d(Tensor::zeros({1, 2, 4, 4}), l, 1, 1, grouped); }), "groups must be 1");
  has(message([&] { int8_conv2d(Tensor::zeros({1, 3, 4, 4}), l, 1, 1, {}); }), "reduction length 2");
}

BOOST_AUTO_TEST_SUITE_END()
