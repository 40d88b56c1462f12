#include "compression/quantization/observers.h"

#include "compression/quantization/quant_params.h"
#include "framework/core/autograd.h"
#include "framework/dist/data_parallel.h"
#include "framework/ops/ops.h"

namespace shrink::compression {

namespace {
std::pair<Tensor, Tensor> global_block_min_max(TargetState& t, const Tensor& value, dist::Communicator& comm) {
  auto [lo, hi] = block_min_max(value, quant_scaling(t));
  return {dist::allreduce(comm, lo, dist::ReduceOp::Min), dist::allreduce(comm, hi, dist::ReduceOp::Max)};
}
}  // namespace

void observe_min_max(TargetState& t, const Tensor& value, dist::Communicator& comm) {
  NoGradGuard ng;
  auto [lo, hi] = global_block_min_max(t, value, comm);
  t.tracked_min = t.tracked_min.defined() ? minimum(t.tracked_min, lo) : lo;
  t.tracked_max = t.tracked_max.defined() ? maximum(t.tracked_max, hi) : hi;
}

void observe_ema(TargetState& t, const Tensor& value, double decay, dist::Communicator& comm) {
  NoGradGuard ng;
  auto [lo, hi] = global_block_min_max(t, value, comm);
  // torch: ema * decay + (1 - decay) * current, both scalars rounded to float32.
  const float keep = static_cast<float>(decay), take = static_cast<float>(1.0 - decay);
  auto ema = [&](const Tensor& old, const Tensor& cur) { return add(mul(old, keep), mul(cur, take)); };
  t.tracked_min = t.tracked_min.defined() ? ema(t.tracked_min, lo) : lo;
  t.tracked_max = t.tracked_max.defined() ? ema(t.tracked_max, hi) : hi;
}

}  // namespace shrink::compression
