// The scalar formula of every elementwise op, written once and shared by the CPU kernels and
// the CUDA kernels (SHRINK_HD expands to __host__ __device__ under nvcc, to nothing otherwise;
// no CUDA header is needed). C math functions (expf, erff, ...) exist on host and device.
#pragma once
#include <math.h>

#include "framework/core/backend.h"

#if defined(__CUDACC__)
#define SHRINK_HD __host__ __device__ inline
#else
#define SHRINK_HD inline
#endif

namespace shrink::scalar {

SHRINK_HD float unary_value(UnaryOp op, float x, float p0, float p1) {
  switch (op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Exp: return expf(x);
    case UnaryOp::Log: return logf(x);
    case UnaryOp::Sqrt: return sqrtf(x);
    case UnaryOp::Abs: return fabsf(x);
    case UnaryOp::Sign: return x > 0.f ? 1.f : (x < 0.f ? -1.f : 0.f);
    case UnaryOp::Round: return nearbyintf(x);  // default rounding mode: half to even
    case UnaryOp::Relu: return x > 0.f ? x : 0.f;
    case UnaryOp::Relu6: return x < 0.f ? 0.f : (x > 6.f ? 6.f : x);
    case UnaryOp::Gelu: return 0.5f * x * (1.f + erff(x * 0.70710678118654752f));
    case UnaryOp::Sigmoid: return 1.f / (1.f + expf(-x));
    case UnaryOp::Tanh: return tanhf(x);
    case UnaryOp::Clamp: return x < p0 ? p0 : (x > p1 ? p1 : x);
    case UnaryOp::PowScalar: return powf(x, p0);
    case UnaryOp::AddScalar: return x + p0;
    case UnaryOp::MulScalar: return x * p0;
  }
  return 0.f;
}

// d(loss)/dx given x, the op's output y and d(loss)/dy.
SHRINK_HD float unary_grad(UnaryOp op, float x, float y, float gy, float p0, float p1) {
  switch (op) {
    case UnaryOp::Neg: return -gy;
    case UnaryOp::Exp: return gy * y;
    case UnaryOp::Log: return gy / x;
    case UnaryOp::Sqrt: return gy / (2.f * y);
    case UnaryOp::Abs: return x > 0.f ? gy : (x < 0.f ? -gy : 0.f);
    case UnaryOp::Sign: return 0.f;
    case UnaryOp::Round: return 0.f;
    case UnaryOp::Relu: return x > 0.f ? gy : 0.f;
    case UnaryOp::Relu6: return (x > 0.f && x < 6.f) ? gy : 0.f;  // as torch's hardtanh
    case UnaryOp::Gelu: {
      float cdf = 0.5f * (1.f + erff(x * 0.70710678118654752f));
      float pdf = 0.39894228040143268f * expf(-0.5f * x * x);
      return gy * (cdf + x * pdf);
    }
    case UnaryOp::Sigmoid: return gy * y * (1.f - y);
    case UnaryOp::Tanh: return gy * (1.f - y * y);
    case UnaryOp::Clamp: return (x >= p0 && x <= p1) ? gy : 0.f;
    case UnaryOp::PowScalar: return p0 == 0.f ? 0.f : gy * p0 * powf(x, p0 - 1.f);
    case UnaryOp::AddScalar: return gy;
    case UnaryOp::MulScalar: return gy * p0;
  }
  (void)p1;
  return 0.f;
}

SHRINK_HD float binary_value(BinaryOp op, float a, float b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div: return a / b;
    case BinaryOp::Pow: return powf(a, b);
    case BinaryOp::Max: return a >= b ? a : b;
    case BinaryOp::Min: return a <= b ? a : b;
    case BinaryOp::Gt: return a > b ? 1.f : 0.f;
    case BinaryOp::Lt: return a < b ? 1.f : 0.f;
    case BinaryOp::Ge: return a >= b ? 1.f : 0.f;
    case BinaryOp::Le: return a <= b ? 1.f : 0.f;
    case BinaryOp::Eq: return a == b ? 1.f : 0.f;
    case BinaryOp::MaskAdd: return a + (b == 1.f ? 0.f : -1000.f);
  }
  return 0.f;
}

// x/s (a true division, as torch) shifted by z, clamped, rounded half to even, mapped back.
SHRINK_HD float fake_quant_value(float x, float s, float z, float qmin, float qmax) {
  float q = z + x / s;
  q = q < qmin ? qmin : (q > qmax ? qmax : q);
  return (nearbyintf(q) - z) * s;
}

SHRINK_HD bool fake_quant_in_range(float x, float s, float z, float qmin, float qmax) {
  float q = z + x / s;
  return (q >= qmin) & (q <= qmax);  // no branch: the CPU loops vectorise
}

SHRINK_HD float binary_sign(float x) { return x < 0.f ? -1.f : (x >= 0.f ? 1.f : x); }  // NaN stays

// Forward of every QuantMethod (backend.h), and in `masked` whether the gradient to x at this x
// is not simply g (quant_grad_masked below) — from the same x/s, so one division serves both.
// LSQ ignores z; BNN ignores s and z.
SHRINK_HD float quant_forward(QuantMethod m, float x, float s, float z, float qmin, float qmax, bool& masked) {
  switch (m) {
    case QuantMethod::ClampRound:
    case QuantMethod::QatClampRound:
    case QuantMethod::Lsq:
    case QuantMethod::LsqPlus: {
      const float zz = m == QuantMethod::Lsq ? 0.f : z;
      const float v = zz + x / s;
      // `&`, not `&&`: no branch, so the CPU loop vectorises.
      masked = m == QuantMethod::QatClampRound ? !((v >= qmin) & (v <= qmax)) : m != QuantMethod::ClampRound;
      const float c = v < qmin ? qmin : (v > qmax ? qmax : v);
      return (nearbyintf(c) - zz) * s;
    }
    case QuantMethod::DoReFaOutput:
      masked = !((x >= 0.f) & (x <= 1.f));
      return fake_quant_value(x < 0.f ? 0.f : (x > 1.f ? 1.f : x), s, z, qmin, qmax);
    case QuantMethod::Bnn:
    case QuantMethod::BnnOutput:
      masked = m == QuantMethod::BnnOutput && fabsf(x) > 1.f;
      return binary_sign(x);
    case QuantMethod::Truncate: masked = false; return truncf(x / s) * s;
  }
  masked = true;
  return 0.f;
}

SHRINK_HD float quant_value(QuantMethod m, float x, float s, float z, float qmin, float qmax) {
  bool masked;
  return quant_forward(m, x, s, z, qmin, qmax, masked);
}

// Whether the method's gradient to x is not simply g (clipped for qat_clamp_round, outside
// [0, 1] for DoReFa's output, |x| > 1 for BNN's output); always for LSQ/LSQ+, whose backward also
// yields the scale gradient.
SHRINK_HD bool quant_grad_masked(QuantMethod m, float x, float s, float z, float qmin, float qmax) {
  bool masked;
  quant_forward(m, x, s, z, qmin, qmax, masked);
  return masked;
}

// Backward of every QuantMethod: gx, and for the learned-parameter methods the element's share
// of the scale gradient (gs) and zero-point gradient (gz); gs and gz are 0 for the others.
// LSQ (Esser et al.), through round's straight-through estimator, with v = x/s (+ z for LSQ+):
//   inside [qmin, qmax]: dy/dx = 1, dy/ds = round(v) - v,  dy/dz = 0
//   below / above:       dy/dx = 0, dy/ds = qmin - z / qmax - z,  dy/dz = -s
// and gs is multiplied by grad_scale (NNI's 1/sqrt(qmax * numel)); gz is not.
SHRINK_HD void quant_grad(QuantMethod m, float x, float s, float z, float qmin, float qmax,
                          float grad_scale, float g, float& gx, float& gs, float& gz) {
  gs = 0.f;
  gz = 0.f;
  switch (m) {
    case QuantMethod::ClampRound:
    case QuantMethod::Bnn:
    case QuantMethod::Truncate: gx = g; return;
    case QuantMethod::QatClampRound: gx = fake_quant_in_range(x, s, z, qmin, qmax) ? g : 0.f; return;
    case QuantMethod::DoReFaOutput: gx = x >= 0.f && x <= 1.f ? g : 0.f; return;
    case QuantMethod::BnnOutput: gx = fabsf(x) > 1.f ? 0.f : g; return;
    case QuantMethod::Lsq:
    case QuantMethod::LsqPlus: {
      const float zz = m == QuantMethod::Lsq ? 0.f : z;
      const float v = x / s + zz;
      if (v < qmin || v > qmax) {
        gx = 0.f;
        gs = g * ((v < qmin ? qmin : qmax) - zz) * grad_scale;
        gz = m == QuantMethod::Lsq ? 0.f : -s * g;
      } else {
        gx = g;
        gs = g * (nearbyintf(v) - v) * grad_scale;
      }
      return;
    }
  }
}

// torch.optim.SGD for one element: d = g + wd * p; with momentum buf = first ? d :
// momentum * buf + (1 - dampening) * d and d = nesterov ? d + momentum * buf : buf; p -= lr * d.
SHRINK_HD void sgd_update(float& p, float g, float* buf, float lr, float momentum, float dampening,
                          float weight_decay, bool nesterov, bool first_step) {
  float d = g + weight_decay * p;
  if (buf) {
    *buf = first_step ? d : momentum * *buf + (1.f - dampening) * d;
    d = nesterov ? d + momentum * *buf : *buf;
  }
  p -= lr * d;
}

// torch.optim.Adam / AdamW (decoupled) for one element; step_size = lr / (1 - beta1^t) and
// bc2_sqrt = sqrt(1 - beta2^t) are per-step scalars computed once by the caller.
SHRINK_HD void adam_update(float& p, float g, float& m, float& v, float lr, float beta1,
                           float beta2, float eps, float weight_decay, bool decoupled,
                           float step_size, float bc2_sqrt) {
  if (decoupled)
    p *= 1.f - lr * weight_decay;
  else
    g += weight_decay * p;
  m = beta1 * m + (1.f - beta1) * g;
  v = beta2 * v + (1.f - beta2) * g * g;
  const float denom = sqrtf(v) / bc2_sqrt + eps;
  p -= step_size * m / denom;
}

// Ascending (value, index) order with NaN after every number (as torch.sort / topk rank NaN
// as the largest value): a strict weak ordering even when values are NaN.
SHRINK_HD bool ascending_before(float va, int64_t ia, float vb, int64_t ib) {
  const bool na = va != va, nb = vb != vb;
  if (na || nb) return na == nb ? ia < ib : nb;
  return va < vb || (va == vb && ia < ib);
}
// Descending order (largest first, NaN first), ties by lower index.
SHRINK_HD bool descending_before(float va, int64_t ia, float vb, int64_t ib) {
  const bool na = va != va, nb = vb != vb;
  if (na || nb) return na == nb ? ia < ib : na;
  return va > vb || (va == vb && ia < ib);
}

}  // namespace shrink::scalar
