// CPU kernels of the straight-through quantizers (QuantMethod): the reference the CUDA kernels
// in cuda/kernels/quant.cuh are tested against. Formulas in scalar_ops.h.
#include <atomic>

#include "framework/core/scalar_ops.h"
#include "framework/cpu/cpu_backend.h"
#include "framework/cpu/strided.h"

namespace shrink::cpu {

namespace {

// The method is a template argument so that each inner loop is specialised (the hot
// ClampRound / QatClampRound loops carry no switch).
// Returns whether any element's gradient is masked (quant_grad_masked), computed in the same
// pass: a vectorisable OR per run, combined over runs.
template <QuantMethod M>
bool forward_loop(const QuantArgs& q, const float* xp, const float* sp, const float* zp, float* yp,
                  const Broadcast& bc) {
  const int64_t sa = bc.a_strides.back(), sb = bc.b_strides.back();
  std::atomic<bool> masked{false};
  parallel_runs(bc, [&](int64_t o, int64_t ia, int64_t ib, int64_t len) {
    int any = 0;
    if (sa == 1 && sb == 0) {  // the common per-tensor (or per-channel row) run: s, z constant
      const float s = sp[ib], z = zp[ib];
      for (int64_t i = 0; i < len; ++i) {
        bool m;
        yp[o + i] = scalar::quant_forward(M, xp[ia + i], s, z, q.qmin, q.qmax, m);
        any |= m;
      }
    } else {
      for (int64_t i = 0; i < len; ++i) {
        bool m;
        yp[o + i] = scalar::quant_forward(M, xp[ia + i * sa], sp[ib + i * sb], zp[ib + i * sb], q.qmin, q.qmax, m);
        any |= m;
      }
    }
    if (any) masked.store(true, std::memory_order_relaxed);
  });
  return masked.load();
}

template <QuantMethod M>
void backward_loop(const QuantArgs& q, const float* xp, const float* sp, const float* zp, const float* gp,
                   float* gxp, float* gsp, float* gzp, const Broadcast& bc) {
  const int64_t sa = bc.a_strides.back(), sb = bc.b_strides.back();
  parallel_runs(bc, [&](int64_t o, int64_t ia, int64_t ib, int64_t len) {
    if (!gsp && !gzp && sa == 1 && sb == 0) {  // only dL/dx, s and z constant over the run: vectorisable
      const float s = sp[ib], z = zp[ib];
      for (int64_t i = 0; i < len; ++i) {
        float gs, gz;
        scalar::quant_grad(M, xp[ia + i], s, z, q.qmin, q.qmax, q.grad_scale, gp[o + i], gxp[o + i], gs, gz);
      }
      return;
    }
    if (!gsp && !gzp) {  // only dL/dx (kept free of stores it does not need)
      for (int64_t i = 0; i < len; ++i) {
        float gs, gz;
        scalar::quant_grad(M, xp[ia + i * sa], sp[ib + i * sb], zp[ib + i * sb], q.qmin, q.qmax, q.grad_scale,
                           gp[o + i], gxp[o + i], gs, gz);
      }
      return;
    }
    for (int64_t i = 0; i < len; ++i) {
      float gs, gz;
      scalar::quant_grad(M, xp[ia + i * sa], sp[ib + i * sb], zp[ib + i * sb], q.qmin, q.qmax, q.grad_scale,
                         gp[o + i], gxp[o + i], gs, gz);
      if (gsp) gsp[o + i] = gs;
      if (gzp) gzp[o + i] = gz;
    }
  });
}

template <typename F>
void dispatch(QuantMethod m, F&& f) {
  switch (m) {
    case QuantMethod::ClampRound: return f(std::integral_constant<QuantMethod, QuantMethod::ClampRound>{});
    case QuantMethod::QatClampRound: return f(std::integral_constant<QuantMethod, QuantMethod::QatClampRound>{});
    case QuantMethod::Lsq: return f(std::integral_constant<QuantMethod, QuantMethod::Lsq>{});
    case QuantMethod::LsqPlus: return f(std::integral_constant<QuantMethod, QuantMethod::LsqPlus>{});
    case QuantMethod::DoReFaOutput: return f(std::integral_constant<QuantMethod, QuantMethod::DoReFaOutput>{});
    case QuantMethod::Bnn: return f(std::integral_constant<QuantMethod, QuantMethod::Bnn>{});
    case QuantMethod::BnnOutput: return f(std::integral_constant<QuantMethod, QuantMethod::BnnOutput>{});
    case QuantMethod::Truncate: return f(std::integral_constant<QuantMethod, QuantMethod::Truncate>{});
  }
}

}  // namespace

bool CpuBackend::fake_quant(const QuantArgs& q, const Tensor& x, const Tensor& scale, const Tensor& zero_point,
                            const Broadcast& bc, Tensor& y) {
  bool masked = true;
  dispatch(q.method, [&](auto m) {
    masked = forward_loop<decltype(m)::value>(q, x.data<float>(), scale.data<float>(), zero_point.data<float>(),
                                              y.data<float>(), bc);
  });
  return masked;
}

void CpuBackend::fake_quant_backward(const QuantArgs& q, const Tensor& x, const Tensor& scale,
                                     const Tensor& zero_point, const Broadcast& bc, const Tensor& gy, Tensor& gx,
                                     Tensor* gscale, Tensor* gzero) {
  dispatch(q.method, [&](auto m) {
    backward_loop<decltype(m)::value>(q, x.data<float>(), scale.data<float>(), zero_point.data<float>(),
                                      gy.data<float>(), gx.data<float>(), gscale ? gscale->data<float>() : nullptr,
                                      gzero ? gzero->data<float>() : nullptr, bc);
  });
}

}  // namespace shrink::cpu
