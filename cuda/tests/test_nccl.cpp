// NCCL behind dist::DeviceAllReduce, on one rank and one GPU (NCCL refuses two ranks on one
// device, so two ranks need a machine with two GPUs: `mpirun -np 2 test_dist` there takes the same
// path through the Trainer). Without a device the cases return at once; the suite's global
// fixture prints the skip message.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <memory>

#include "cuda/cuda_backend.h"
#include "framework/core/random.h"
#include "framework/dist/data_parallel.h"
#include "framework/dist/device_allreduce.h"
#include "framework/nn/layers.h"
#include "framework/ops/ops.h"

using namespace shrink;

BOOST_AUTO_TEST_SUITE(nccl)

// One rank's sum is its own buffer, in the backend's stream order.
BOOST_AUTO_TEST_CASE(one_rank_sum_is_the_buffer) {
  if (!cuda::init()) return;
  dist::SelfCommunicator self;
  std::unique_ptr<dist::DeviceAllReduce> r = dist::make_device_allreduce(self, Device::CUDA);
  BOOST_REQUIRE(r != nullptr);
  BOOST_TEST(std::string(r->name()) == "nccl");
  Tensor b = Tensor::from_vector({1.5f, -2.f, 3.25f}, {3}).to(Device::CUDA);
  r->sum(b);
  BOOST_TEST((b.to_vector() == std::vector<float>{1.5f, -2.f, 3.25f}));
}

// GradReducer keeps CUDA parameters' buckets on the GPU and sums them with NCCL; the gradients
// equal the CPU model's (host path) up to the GEMMs' rounding.
BOOST_AUTO_TEST_CASE(grad_reducer_device_path) {
  if (!cuda::init()) return;
  auto self = std::make_shared<dist::SelfCommunicator>();
  std::vector<float> grads[2];
  for (int gpu = 0; gpu < 2; ++gpu) {
    manual_seed(7);
    auto fc = std::make_shared<nn::Linear>(16, 5);
    if (gpu) fc->to(Device::CUDA);
    dist::GradReducer reducer(self, fc->named_parameters(), dist::GradReducer::Options());
    BOOST_TEST(reducer.transport() == (gpu ? "nccl" : "host"));
    manual_seed(8);
    Tensor x = randn({4, 16});
    reducer.begin_step(1.0);
    sum(mul((*fc)(std::vector<nn::Value>{gpu ? x.to(Device::CUDA) : x}).tensor(), 0.5f)).backward();
    reducer.finish_step();
    grads[gpu] = fc->param("weight").grad().to(Device::CPU).to_vector();
  }
  BOOST_REQUIRE_EQUAL(grads[0].size(), grads[1].size());
  for (size_t i = 0; i < grads[0].size(); ++i)  // absolute: an element near 0 may sum in another order
    BOOST_TEST(std::fabs(grads[1][i] - grads[0][i]) <= 1e-5f * (1.f + std::fabs(grads[0][i])), "element " << i);
}

BOOST_AUTO_TEST_SUITE_END()
