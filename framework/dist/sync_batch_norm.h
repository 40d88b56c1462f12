// SyncBatchNorm: batch norm whose training statistics cover the global batch, every rank's part
// of it, instead of each rank's part alone (the default under data parallelism). With it, a
// data-parallel step computes what one process on the global batch computes (up to rounding),
// batch norm included; each batch norm costs three small all-reduces per forward (the count, the
// sums, the squared deviations) and two per backward.
#pragma once
#include <memory>

#include "framework/core/tensor.h"
#include "framework/dist/communicator.h"
#include "framework/nn/module.h"

namespace shrink::dist {

// The sum of `x` over the ranks, differentiable: the gradient reaching each rank's `x` is the
// sum over ranks of the gradients of the result, each rank's weighted by its share of the batch
// (Communicator::batch_share) and divided by this rank's, because the gradient reducer weights
// this rank's parameter gradients by its share afterwards. With equal shares it is the plain sum
// of the ranks' gradients (PyTorch's SyncBatchNorm backward).
Tensor allreduce_sum(const std::shared_ptr<Communicator>& comm, const Tensor& x);

// Makes every BatchNorm of `model` take its training statistics over the ranks of `comm`:
// mean = (sum over ranks of the channel sums) / count, then the variance the same way from the
// deviations from that mean (two passes, as stable as one process's). Running statistics are
// updated from these global statistics, the same on every rank. Returns how many were switched.
int64_t sync_batch_norm(nn::Module& model, std::shared_ptr<Communicator> comm);

}  // namespace shrink::dist
