// MPI for the whole suite: started before the first test, ended after the last. The suite runs
// under `mpirun -np 2` (tests/CMakeLists.txt); run alone it is one rank and the tests that need
// two say so and check what one rank can.
#include <boost/test/unit_test.hpp>

#include "framework/dist/communicator.h"

namespace {
struct MpiFixture {
  MpiFixture() { shrink::dist::init(nullptr, nullptr); }
  ~MpiFixture() { shrink::dist::finalize(); }
};
}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(MpiFixture);
