// CPU kernels: fill, conversion, unary/binary elementwise, broadcast reduce/expand, where,
// permute and block copies.
#include <cmath>
#include <cstring>

#include "framework/core/scalar_ops.h"
#include "framework/cpu/cpu_backend.h"
#include "framework/cpu/strided.h"

namespace shrink::cpu {

namespace {
constexpr int64_t kGrain = 1 << 15;
using scalar::binary_value;
using scalar::unary_grad;
using scalar::unary_value;
}  // namespace

void CpuBackend::fill(Tensor& out, float value) {
  int64_t n = out.numel();
  switch (out.dtype()) {
    case DType::F32: {
      float* p = out.data<float>();
      parallel_for(n, kGrain, [&](int64_t b, int64_t e) { std::fill(p + b, p + e, value); });
      break;
    }
    case DType::I64: std::fill_n(out.data<int64_t>(), n, static_cast<int64_t>(value)); break;
    case DType::I32: std::fill_n(out.data<int32_t>(), n, static_cast<int32_t>(value)); break;
    case DType::U8: std::fill_n(out.data<uint8_t>(), n, static_cast<uint8_t>(value)); break;
    case DType::I8: std::fill_n(out.data<int8_t>(), n, static_cast<int8_t>(value)); break;
  }
}

void CpuBackend::convert(const Tensor& src, Tensor& dst) {
  const int64_t n = src.numel();
  visit_dtype(src.dtype(), [&](auto s_tag) {
    using S = decltype(s_tag);
    visit_dtype(dst.dtype(), [&](auto d_tag) {
      using D = decltype(d_tag);
      const S* s = static_cast<const S*>(src.raw_data());
      D* d = static_cast<D*>(dst.raw_data());
      for (int64_t i = 0; i < n; ++i) d[i] = static_cast<D>(s[i]);
    });
  });
}

void CpuBackend::unary(UnaryOp op, const Tensor& x, Tensor& y, float p0, float p1) {
  const float* xp_ = x.data<float>();
  float* yp_ = y.data<float>();
  parallel_for(x.numel(), kGrain, [=](int64_t b, int64_t e) {
    const float* __restrict xp = xp_;
    float* __restrict yp = yp_;
    switch (op) {  // hot cases get their own loop so the compiler can vectorise them
      case UnaryOp::Relu:
        for (int64_t i = b; i < e; ++i) yp[i] = xp[i] > 0.f ? xp[i] : 0.f;
        break;
      case UnaryOp::MulScalar:
        for (int64_t i = b; i < e; ++i) yp[i] = xp[i] * p0;
        break;
      case UnaryOp::AddScalar:
        for (int64_t i = b; i < e; ++i) yp[i] = xp[i] + p0;
        break;
      default:
        for (int64_t i = b; i < e; ++i) yp[i] = unary_value(op, xp[i], p0, p1);
    }
  });
}

void CpuBackend::unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy,
                                Tensor& gx, float p0, float p1) {
  const float* xp_ = x.defined() ? x.data<float>() : nullptr;
  const float* yp_ = y.defined() ? y.data<float>() : nullptr;
  const float* gp_ = gy.data<float>();
  float* gx_ = gx.data<float>();
  parallel_for(gy.numel(), kGrain, [=](int64_t b, int64_t e) {
    const float* __restrict xp = xp_;
    const float* __restrict yp = yp_;
    const float* __restrict gp = gp_;
    float* __restrict op_ = gx_;
    if (op == UnaryOp::Relu) {
      for (int64_t i = b; i < e; ++i) {
        const float g = gp[i];  // unconditional load lets the loop vectorise as a select
        op_[i] = xp[i] > 0.f ? g : 0.f;
      }
      return;
    }
    for (int64_t i = b; i < e; ++i)
      op_[i] = unary_grad(op, xp ? xp[i] : 0.f, yp ? yp[i] : 0.f, gp[i], p0, p1);
  });
}

namespace {
template <typename F>
void binary_loop(const Tensor& a, const Tensor& b, const Broadcast& bc, Tensor& out, F f) {
  const float* ap = a.data<float>();
  const float* bp = b.data<float>();
  float* op = out.data<float>();
  const int64_t sa = bc.a_strides.back(), sb = bc.b_strides.back();
  parallel_runs(bc,
                [&](int64_t o, int64_t ia, int64_t ib, int64_t len) {
                  const float* __restrict pa = ap + ia;
                  const float* __restrict pb = bp + ib;
                  float* __restrict po = op + o;
                  if (sa == 1 && sb == 1) {
                    for (int64_t i = 0; i < len; ++i) po[i] = f(pa[i], pb[i]);
                  } else if (sa == 1 && sb == 0) {
                    const float vb = *pb;
                    for (int64_t i = 0; i < len; ++i) po[i] = f(pa[i], vb);
                  } else if (sa == 0 && sb == 1) {
                    const float va = *pa;
                    for (int64_t i = 0; i < len; ++i) po[i] = f(va, pb[i]);
                  } else {
                    for (int64_t i = 0; i < len; ++i) po[i] = f(pa[i * sa], pb[i * sb]);
                  }
                });
}
}  // namespace

void CpuBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, const Broadcast& bc,
                        Tensor& out) {
  switch (op) {
    case BinaryOp::Add: binary_loop(a, b, bc, out, [](float x, float y) { return x + y; }); break;
    case BinaryOp::Sub: binary_loop(a, b, bc, out, [](float x, float y) { return x - y; }); break;
    case BinaryOp::Mul: binary_loop(a, b, bc, out, [](float x, float y) { return x * y; }); break;
    case BinaryOp::Div: binary_loop(a, b, bc, out, [](float x, float y) { return x / y; }); break;
    default:
      binary_loop(a, b, bc, out, [op](float x, float y) { return binary_value(op, x, y); });
  }
}

void CpuBackend::sum_to(const Tensor& grad, const Shape& grad_shape,
                        const std::vector<int64_t>& out_strides, Tensor& out) {
  // Serial over the gradient in row-major order: each output element's sum always has the same
  // order of additions, so the result is reproducible.
  const float* g = grad.data<float>();
  float* o = out.data<float>();
  std::fill_n(o, out.numel(), 0.f);
  const Broadcast space = simplify_index_space(grad_shape, out_strides, std::vector<int64_t>(out_strides.size(), 0));
  const int64_t so = space.a_strides.back();
  for_each_run(space, 0, grad.numel(),
               [&](int64_t gi, int64_t oi, int64_t, int64_t len) {
                 if (so == 0) {
                   float acc = 0.f;
                   for (int64_t i = 0; i < len; ++i) acc += g[gi + i];
                   o[oi] += acc;
                 } else {
                   for (int64_t i = 0; i < len; ++i) o[oi + i * so] += g[gi + i];
                 }
               });
}

void CpuBackend::expand(const Tensor& x, const std::vector<int64_t>& x_strides, Tensor& out) {
  const size_t esize = dtype_size(x.dtype());
  const char* xp = static_cast<const char*>(x.raw_data());
  char* op = static_cast<char*>(out.raw_data());
  const Broadcast space = simplify_index_space(out.shape(), x_strides, std::vector<int64_t>(x_strides.size(), 0));
  const int64_t sx = space.a_strides.back();
  parallel_runs(space, [&](int64_t o, int64_t ix, int64_t, int64_t len) {
    if (esize == 4) {  // f32 and i32: a plain loop (a fill when sx is 0, a copy when 1)
      const float* __restrict s = reinterpret_cast<const float*>(xp) + ix;
      float* __restrict d = reinterpret_cast<float*>(op) + o;
      if (sx == 0) std::fill_n(d, len, *s);
      else for (int64_t i = 0; i < len; ++i) d[i] = s[i * sx];
      return;
    }
    for (int64_t i = 0; i < len; ++i)
      std::memcpy(op + (o + i) * esize, xp + (ix + i * sx) * esize, esize);
  });
}

void CpuBackend::where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) {
  const float* c = cond.data<float>();
  const float* ap = a.data<float>();
  const float* bp = b.data<float>();
  float* o = out.data<float>();
  parallel_for(out.numel(), kGrain, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) o[i] = c[i] != 0.f ? ap[i] : bp[i];
  });
}

void CpuBackend::permute(const Tensor& x, const std::vector<int64_t>& perm, Tensor& out) {
  const Shape& in = x.shape();
  const int64_t rank = static_cast<int64_t>(in.size());
  std::vector<int64_t> in_strides(rank, 1);
  for (int64_t d = rank - 2; d >= 0; --d) in_strides[d] = in_strides[d + 1] * in[d + 1];
  std::vector<int64_t> src_strides(rank);  // stride in x for each output dim
  for (int64_t d = 0; d < rank; ++d) src_strides[d] = in_strides[perm[d]];
  const size_t esize = dtype_size(x.dtype());
  const char* xp = static_cast<const char*>(x.raw_data());
  char* op = static_cast<char*>(out.raw_data());
  const Broadcast space = simplify_index_space(out.shape(), src_strides, std::vector<int64_t>(rank, 0));
  const int64_t s_last = space.a_strides.back();
  parallel_runs(space, [&](int64_t o, int64_t ix, int64_t, int64_t len) {
    if (esize == 4) {
      const float* s = reinterpret_cast<const float*>(xp) + ix;
      float* d = reinterpret_cast<float*>(op) + o;
      for (int64_t i = 0; i < len; ++i) d[i] = s[i * s_last];
    } else {
      for (int64_t i = 0; i < len; ++i)
        std::memcpy(op + (o + i) * esize, xp + (ix + i * s_last) * esize, esize);
    }
  });
}

void CpuBackend::copy_block(const Tensor& src, int64_t outer, int64_t src_n, int64_t inner,
                            Tensor& dst, int64_t dst_n, int64_t offset, int64_t step,
                            bool to_src) {
  // Element j of src's n axis corresponds to element offset + j*step of dst's n axis.
  const size_t esize = dtype_size(src.dtype());
  char* s = static_cast<char*>(src.raw_data());
  char* d = static_cast<char*>(dst.raw_data());
  const size_t row = inner * esize;
  parallel_for(outer, 64, [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o) {
      for (int64_t j = 0; j < src_n; ++j) {
        char* sp = s + (o * src_n + j) * row;
        char* dp = d + (o * dst_n + offset + j * step) * row;
        if (to_src)
          std::memcpy(sp, dp, row);
        else
          std::memcpy(dp, sp, row);
      }
    }
  });
}

}  // namespace shrink::cpu
