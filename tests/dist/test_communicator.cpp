// The communicator's collectives on the ranks of the job, against values each rank can compute
// by hand from every rank's inputs.
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <vector>

#include "dist_test_util.h"
#include "framework/core/error.h"
#include "framework/dist/communicator.h"

using namespace shrink;

BOOST_AUTO_TEST_SUITE(communicator)

BOOST_AUTO_TEST_CASE(allreduce_sum_min_max_of_rank_values) {
  auto w = test::world_or_note("allreduce");
  const int n = w->size(), r = w->rank();
  std::vector<float> f = {static_cast<float>(r + 1), static_cast<float>(-r), 0.5f};
  w->allreduce(f.data(), 3, dist::ReduceOp::Sum);
  BOOST_TEST(f[0] == n * (n + 1) / 2.0f);
  BOOST_TEST(f[1] == -(n * (n - 1) / 2.0f));
  BOOST_TEST(f[2] == 0.5f * n);
  std::vector<double> d = {static_cast<double>(r), static_cast<double>(r)};
  w->allreduce(d.data(), 1, dist::ReduceOp::Min);
  w->allreduce(d.data() + 1, 1, dist::ReduceOp::Max);
  BOOST_TEST(d[0] == 0.0);
  BOOST_TEST(d[1] == n - 1.0);
  int64_t big = (int64_t{1} << 40) + r;  // beyond float and int32
  w->allreduce(&big, 1, dist::ReduceOp::Sum);
  BOOST_TEST(big == (int64_t{1} << 40) * n + n * (n - 1) / 2);
}

BOOST_AUTO_TEST_CASE(nonblocking_sum_completes_in_place) {
  auto w = test::world_or_note("start_allreduce_sum");
  std::vector<float> v(1000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) * (w->rank() + 1);
  auto pending = w->start_allreduce_sum(v.data(), static_cast<int64_t>(v.size()));
  pending->wait();
  const float ranks_sum = w->size() * (w->size() + 1) / 2.0f;
  for (size_t i = 0; i < v.size(); i += 97) BOOST_TEST(v[i] == static_cast<float>(i) * ranks_sum);
}

BOOST_AUTO_TEST_CASE(broadcast_allgather_alltoall) {
  auto w = test::world_or_note("broadcast/allgather/alltoall");
  const int n = w->size(), r = w->rank();
  char text[16] = {};
  if (r == 0) std::strcpy(text, "from rank 0");
  w->broadcast(text, sizeof text, 0);
  BOOST_TEST(std::string(text) == "from rank 0");
  const int32_t mine = 100 + r;
  std::vector<int32_t> all(static_cast<size_t>(n));
  w->allgather(&mine, sizeof mine, all.data());
  for (int k = 0; k < n; ++k) BOOST_TEST(all[static_cast<size_t>(k)] == 100 + k);
  // Block j of rank r's send is 10*r + j; rank r receives 10*k + r from each rank k.
  std::vector<int32_t> send(static_cast<size_t>(n)), recv(static_cast<size_t>(n));
  for (int j = 0; j < n; ++j) send[static_cast<size_t>(j)] = 10 * r + j;
  w->alltoall(send.data(), sizeof(int32_t), recv.data());
  for (int k = 0; k < n; ++k) BOOST_TEST(recv[static_cast<size_t>(k)] == 10 * k + r);
}

// Values for which float addition order matters: the ordered sum must be the left-to-right sum
// in rank order, element by element, on every rank.
BOOST_AUTO_TEST_CASE(ordered_sum_is_the_rank_order_sum) {
  auto w = test::world_or_note("allreduce_sum_ordered");
  const int n = w->size(), r = w->rank();
  const int64_t len = 37;  // not a multiple of the ranks: padded chunks
  // Each value is an exact product (so a compiler fusing it into the sum below as an FMA changes
  // nothing); only the additions round.
  auto value = [](int rank, int64_t i) {
    const float big[] = {1e8f, 3.0f, -1e8f, 0.125f};
    return big[(rank + i) % 4] * static_cast<float>(1 + i);
  };
  std::vector<float> v(static_cast<size_t>(len));
  for (int64_t i = 0; i < len; ++i) v[static_cast<size_t>(i)] = value(r, i);
  w->allreduce_sum_ordered(v.data(), len);
  for (int64_t i = 0; i < len; ++i) {
    float expect = value(0, i);
    for (int k = 1; k < n; ++k) expect += value(k, i);
    BOOST_TEST(v[static_cast<size_t>(i)] == expect);
  }
  dist::check_identical(*w, "the ordered sum", v.data(), len * 4);
}

BOOST_AUTO_TEST_CASE(check_identical_names_what_differs) {
  auto w = test::world_or_note("check_identical");
  const float same[3] = {1.0f, 2.0f, 3.0f};
  dist::check_identical(*w, "same values", same, sizeof same);
  if (w->size() < 2) return;
  const float mine[1] = {static_cast<float>(w->rank())};
  try {
    dist::check_identical(*w, "the mask of features.conv1.weight", mine, sizeof mine);
    BOOST_FAIL("differing values passed the check");
  } catch (const Error& e) {
    const std::string what = e.what();
    BOOST_TEST(what.find("the mask of features.conv1.weight differs between data-parallel ranks: rank 1") !=
               std::string::npos, what);
  }
}

BOOST_AUTO_TEST_CASE(self_communicator_is_the_identity) {
  dist::SelfCommunicator self;
  float v[2] = {1.5f, -2.0f};
  self.allreduce(v, 2, dist::ReduceOp::Sum);
  self.allreduce_sum_ordered(v, 2);
  BOOST_TEST(v[0] == 1.5f);
  BOOST_TEST(v[1] == -2.0f);
  BOOST_TEST(self.start_allreduce_sum(v, 2)->test());
  BOOST_CHECK_THROW(self.broadcast(v, 8, 1), Error);
}

BOOST_AUTO_TEST_SUITE_END()
