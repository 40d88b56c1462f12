// Regressions found in review: each case failed (crash, wrong value or hang) before its fix.
#include <boost/test/unit_test.hpp>
#include <numeric>

#include "framework/data/dataloader.h"
#include "framework/data/dataset.h"
#include "framework/shrink.h"
#include "framework/train/trainer.h"
#include "gradcheck.h"

using namespace shrink;

BOOST_AUTO_TEST_SUITE(regressions)

// New workers must not take an earlier, finished parallel region for a new one.
BOOST_AUTO_TEST_CASE(thread_count_change_after_parallel_work) {
  const int before = num_threads();
  Tensor x = Tensor::ones({1 << 20});
  BOOST_TEST(sum(relu(x)).item() == static_cast<float>(1 << 20));
  set_num_threads(4);
  for (int rep = 0; rep < 20; ++rep) {
    std::vector<int64_t> hits(1 << 16, 0);
    parallel_for(1 << 16, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) ++hits[i];
    });
    BOOST_TEST(std::accumulate(hits.begin(), hits.end(), int64_t(0)) == int64_t(1 << 16));
    BOOST_TEST(*std::max_element(hits.begin(), hits.end()) == 1);
  }
  set_num_threads(before);
  BOOST_TEST(sum(relu(x)).item() == static_cast<float>(1 << 20));
}

BOOST_AUTO_TEST_CASE(maximum_minimum_split_ties) {
  Tensor a = Tensor::from_vector({1, 2, 3}, {3}).set_requires_grad(true);
  Tensor b = Tensor::from_vector({1, 1, 4}, {3}).set_requires_grad(true);
  sum(maximum(a, b)).backward();
  shrink::testing::check_close(a.grad().to_vector(), {0.5f, 1, 0}, 0, "a");
  shrink::testing::check_close(b.grad().to_vector(), {0.5f, 0, 1}, 0, "b");
}

BOOST_AUTO_TEST_CASE(mean_over_dims_of_a_scalar) {
  Tensor s = Tensor::scalar(3.f).set_requires_grad(true);
  Tensor m = mean(s, {0});
  BOOST_TEST(m.item() == 3.f);
  m.backward();
  BOOST_TEST(s.grad().item() == 1.f);
}

BOOST_AUTO_TEST_CASE(copy_between_overlapping_views) {
  Tensor x = Tensor::arange(6).reshape({6, 1});
  Tensor tail = slice(x, 0, 1, 6);  // a view of rows 1..5
  Tensor head = slice(x, 0, 0, 5);  // a view of rows 0..4, overlapping `tail`
  head.copy_(tail);
  shrink::testing::check_close(x.to_vector(), {1, 2, 3, 4, 5, 5}, 0, "shifted");
}

BOOST_AUTO_TEST_CASE(trainer_rejects_an_empty_loader) {
  auto model = std::make_shared<nn::Linear>(4, 2);
  auto ds = std::make_shared<data::TensorDataset>(data::make_synthetic_classification(3, {4}, 2, 1));
  auto loader = std::make_shared<data::DataLoader>(ds, 8, false, 1, /*drop_last=*/true);
  auto opt = std::make_shared<optim::SGD>(model->parameters(), 0.1f);
  train::Trainer t(model, opt, loader);
  BOOST_CHECK_THROW(t.train(-1, 5), Error);
}

BOOST_AUTO_TEST_CASE(topk_and_kthvalue_rank_nan_largest) {
  Tensor x = Tensor::from_vector({2.f, NAN, 1.f, 3.f}, {4});
  TopK big = topk(x, 2, 0, true);
  BOOST_TEST(big.indices.to_vector_i64() == (std::vector<int64_t>{1, 3}));
  TopK small = topk(x, 2, 0, false);
  BOOST_TEST(small.indices.to_vector_i64() == (std::vector<int64_t>{2, 0}));
  BOOST_TEST(kthvalue(x, 3, 0).item() == 3.f);
}

BOOST_AUTO_TEST_SUITE_END()
