// SyncBatchNorm's statistics and the differentiable all-reduce under them.
#include "framework/dist/sync_batch_norm.h"

#include "framework/core/autograd.h"
#include "framework/dist/data_parallel.h"
#include "framework/nn/layers.h"
#include "framework/ops/ops.h"

namespace shrink::dist {

Tensor allreduce_sum(const std::shared_ptr<Communicator>& comm, const Tensor& x) {
  Tensor y;
  {
    NoGradGuard ng;
    y = allreduce(*comm, x, ReduceOp::Sum);
    if (y.impl() == x.impl()) y = x.contiguous_copy();  // one rank: still a node of its own
  }
  if (needs_grad({&x})) {
    const double share = comm->batch_share();
    record(y, OpKind::Custom, {x}, [comm, share](const Tensor& g) -> std::vector<Tensor> {
      NoGradGuard ng;
      const Tensor weighted = mul(g, static_cast<float>(share));
      return {mul(allreduce(*comm, weighted, ReduceOp::Sum), static_cast<float>(1.0 / share))};
    });
  }
  return y;
}

namespace {
nn::BatchNorm::BatchStatistics global_statistics(const std::shared_ptr<Communicator>& comm, const Tensor& x) {
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (d != 1) dims.push_back(d);
  double count = static_cast<double>(x.numel() / x.size(1));
  comm->allreduce(&count, 1, ReduceOp::Sum);
  Shape per_channel(static_cast<size_t>(x.dim()), 1);
  per_channel[1] = x.size(1);
  const float inv = static_cast<float>(1.0 / count);
  Tensor mean = mul(allreduce_sum(comm, sum(x, dims)), inv);
  Tensor dev = sub(x, reshape(mean, per_channel));
  Tensor var = mul(allreduce_sum(comm, sum(mul(dev, dev), dims)), inv);
  return {mean, var, count};
}
}  // namespace

int64_t sync_batch_norm(nn::Module& model, std::shared_ptr<Communicator> comm) {
  SHRINK_CHECK(comm != nullptr, "sync_batch_norm: no communicator");
  int64_t switched = 0;
  for (auto& [name, m] : model.named_modules())
    if (auto* bn = dynamic_cast<nn::BatchNorm*>(m.get())) {
      bn->set_batch_statistics([comm](const Tensor& x) { return global_statistics(comm, x); });
      ++switched;
    }
  return switched;
}

}  // namespace shrink::dist
