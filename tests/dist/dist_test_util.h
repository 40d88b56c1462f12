// Helpers shared by the data-parallel tests.
#pragma once
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <memory>

#include "framework/core/random.h"
#include "framework/data/dataset.h"
#include "framework/dist/communicator.h"

namespace shrink::test {

// The job's communicator; a visible note when the suite was not started with two ranks or more.
inline std::shared_ptr<dist::Communicator> world_or_note(const char* test) {
  auto w = dist::world();
  if (w->size() < 2)
    BOOST_TEST_MESSAGE(test << ": one rank only (run under mpirun -np 2 for the multi-rank checks)");
  return w;
}

// ||a - b|| / ||b|| (Euclidean norms): the relative error of a whole tensor.
inline double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  BOOST_REQUIRE_EQUAL(a.size(), b.size());
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    diff += d * d;
    norm += static_cast<double>(b[i]) * b[i];
  }
  return norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

// n random 1x28x28 images (seed 11) with labels (7 i) mod 10: the same data on every rank.
inline std::shared_ptr<data::TensorDataset> images(int64_t n) {
  manual_seed(11);
  Tensor x = randn({n, 1, 28, 28});
  std::vector<int64_t> y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) y[static_cast<size_t>(i)] = (i * 7) % 10;
  return std::make_shared<data::TensorDataset>(x, Tensor::from_vector_i64(y, {n}));
}

}  // namespace shrink::test
