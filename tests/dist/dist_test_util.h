// Helpers shared by the data-parallel tests.
#pragma once
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <memory>

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

}  // namespace shrink::test
