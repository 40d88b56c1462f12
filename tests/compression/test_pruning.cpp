// One-shot pruners and the sparse allocation engine against nni-semantics §9.2 items 3, 4, 5, 7
// and DECISIONS rows 9, 16, 21, 22: exact per-layer sparsities, aligned biases, dependency
// groups with internal_metric_block, hand-computed L1/FPGM masks, granularities, global groups
// with bounds, thresholds, and an additive mask on a Softmax input.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <numeric>

#include "compression/config/settings.h"
#include "compression/pruning/norm_pruners.h"
#include "compression/pruning/sparse_engine.h"
#include "compression/simple_model.h"
#include "framework/shrink.h"

using namespace shrink;
using namespace shrink::compression;
using namespace shrink::testing;

namespace {

boost::json::value cfg(const char* text) { return boost::json::parse(text); }

template <typename P>
void check_simple_model_structured() {
  manual_seed(7);
  auto model = std::make_shared<SimpleModel>();
  P pruner(model, cfg(kSimpleConfig));
  Masks m = pruner.compress();
  check_simple_masks(m, *model);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(pruning)

BOOST_AUTO_TEST_CASE(simple_model_level) { check_simple_model_structured<LevelPruner>(); }
BOOST_AUTO_TEST_CASE(simple_model_l1) { check_simple_model_structured<L1NormPruner>(); }
BOOST_AUTO_TEST_CASE(simple_model_l2) { check_simple_model_structured<L2NormPruner>(); }
BOOST_AUTO_TEST_CASE(simple_model_fpgm) { check_simple_model_structured<FPGMPruner>(); }

// §9.2 item 4: w1[i] = i, w2[i] = i for every entry of filter i.
BOOST_AUTO_TEST_CASE(l1_filter_exact) {
  auto model = std::make_shared<nn::Sequential>();
  auto c1 = std::make_shared<nn::Conv2d>(1, 5, 5);
  auto c2 = std::make_shared<nn::Conv2d>(5, 10, 5);
  model->push_back("conv1", c1);
  model->push_back("conv2", c2);
  for (auto [c, n] : {std::pair{c1, 25}, std::pair{c2, 125}}) {
    float* p = c->parameter("weight").data<float>();
    for (int64_t i = 0; i < c->parameter("weight").numel(); ++i) p[i] = static_cast<float>(i / n);
  }
  L1NormPruner pruner(model, cfg(R"([{"op_names": ["conv1"], "sparse_ratio": 0.2},
                                     {"op_names": ["conv2"], "sparse_ratio": 0.6}])"));
  Masks m = pruner.compress();
  BOOST_TEST(filter_sums(m.at("conv1.weight")) == (std::vector<float>{0, 25, 25, 25, 25}));
  BOOST_TEST(filter_sums(m.at("conv2.weight")) ==
             (std::vector<float>{0, 0, 0, 0, 0, 0, 125, 125, 125, 125}));
}

// §9.2 item 5: w[i] = (i + 1) everywhere in filter i; metric sqrt(125) * sum_j |i - j|.
BOOST_AUTO_TEST_CASE(fpgm_exact) {
  for (auto [ratio, want] : {std::pair{0.2, std::vector<float>{125, 125, 125, 125, 0, 0, 125, 125, 125, 125}},
                             std::pair{0.6, std::vector<float>{125, 125, 0, 0, 0, 0, 0, 0, 125, 125}}}) {
    auto model = std::make_shared<nn::Sequential>();
    auto c2 = std::make_shared<nn::Conv2d>(5, 10, 5);
    model->push_back("conv2", c2);
    float* p = c2->parameter("weight").data<float>();
    for (int64_t i = 0; i < 1250; ++i) p[i] = static_cast<float>(i / 125 + 1);
    std::string c = R"([{"op_names": ["conv2"], "sparse_ratio": )" + std::to_string(ratio) + "}]";
    FPGMPruner pruner(model, boost::json::parse(c));
    BOOST_TEST(filter_sums(pruner.compress().at("conv2.weight")) == want);
  }
}

// §9.2 item 7 with DECISIONS row 16: magnitude of BN weights; beta follows gamma.
BOOST_AUTO_TEST_CASE(l1_on_batchnorm_weight) {
  for (auto [ratio, want] : {std::pair{0.2, std::vector<float>{0, 1, 1, 1, 1}},
                             std::pair{0.6, std::vector<float>{0, 0, 0, 1, 1}}}) {
    auto model = std::make_shared<nn::Sequential>();
    auto bn1 = std::make_shared<nn::BatchNorm2d>(5), bn2 = std::make_shared<nn::BatchNorm2d>(5);
    model->push_back("bn1", bn1);
    model->push_back("bn2", bn2);
    for (int i = 0; i < 5; ++i) {
      bn1->parameter("weight").data<float>()[i] = static_cast<float>(i);
      bn2->parameter("weight").data<float>()[i] = -static_cast<float>(i);
    }
    std::string c = R"([{"op_types": ["BatchNorm2d"], "sparse_ratio": )" + std::to_string(ratio) + "}]";
    L1NormPruner pruner(model, boost::json::parse(c));
    Masks m = pruner.compress();
    for (const char* k : {"bn1.weight", "bn1.bias", "bn2.weight", "bn2.bias"})
      BOOST_TEST(m.at(k).to_vector() == want, k);
  }
}

BOOST_AUTO_TEST_CASE(granularities_and_blocks) {
  auto model = std::make_shared<nn::Sequential>();
  auto fc = std::make_shared<nn::Linear>(8, 4);
  model->push_back("fc", fc);
  float* p = fc->parameter("weight").data<float>();
  for (int i = 0; i < 32; ++i) p[i] = static_cast<float>(i + 1);  // row r, col c: 8r + c + 1
  auto run = [&](const char* c) {
    LevelPruner pruner(model, boost::json::parse(c));
    return pruner.compress().at("fc.weight");
  };
  // element-wise (Level's default): the 16 smallest = rows 0 and 1.
  Tensor e = run(R"([{"op_names": ["fc"], "sparse_ratio": 0.5}])");
  for (int i = 0; i < 32; ++i) BOOST_TEST(e.to_vector()[i] == (i < 16 ? 0.f : 1.f));
  // out_channel: rows; in_channel: columns (dim 1) — the two smallest columns 0 and 1.
  BOOST_TEST(kept_rows(run(R"([{"op_names": ["fc"], "sparse_ratio": 0.5, "granularity": "out_channel"}])")) ==
             (std::vector<int>{0, 0, 1, 1}));
  Tensor in = run(R"([{"op_names": ["fc"], "sparse_ratio": 0.25, "granularity": "in_channel"}])");
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 8; ++c) BOOST_TEST(in.to_vector()[r * 8 + c] == (c < 2 ? 0.f : 1.f));
  // [2, 4] blocks: 4 blocks; the smallest (rows 0-1, cols 0-3) goes at ratio 0.25.
  Tensor b = run(R"([{"op_names": ["fc"], "sparse_ratio": 0.25, "granularity": [2, 4]}])");
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 8; ++c) BOOST_TEST(b.to_vector()[r * 8 + c] == ((r < 2 && c < 4) ? 0.f : 1.f));
  // Ratios floor the pruned count: 0.3 of 4 rows prunes 1.
  BOOST_TEST(sparsity(run(R"([{"op_names": ["fc"], "sparse_ratio": 0.3, "granularity": "out_channel"}])")) == 0.25);
  // An indivisible block is an error naming the shape.
  BOOST_CHECK_THROW(run(R"([{"op_names": ["fc"], "sparse_ratio": 0.5, "granularity": [3, 3]}])"), Error);
}

BOOST_AUTO_TEST_CASE(threshold_target_with_bounds) {
  auto model = std::make_shared<nn::Sequential>();
  auto fc = std::make_shared<nn::Linear>(4, 4);
  model->push_back("fc", fc);
  float* p = fc->parameter("weight").data<float>();
  for (int i = 0; i < 16; ++i) p[i] = static_cast<float>(i) / 16.f;
  LevelPruner a(model, cfg(R"([{"op_names": ["fc"], "sparse_threshold": 0.5}])"));
  BOOST_TEST(sparsity(a.compress().at("fc.weight")) == 0.5);  // |w| < 0.5: 8 of 16
  a.unwrap();
  // Above max: fall back to the max ratio; below min: to the min ratio.
  LevelPruner b(model, cfg(R"([{"op_names": ["fc"], "sparse_threshold": 0.5, "max_sparse_ratio": 0.25}])"));
  BOOST_TEST(sparsity(b.compress().at("fc.weight")) == 0.25);
  b.unwrap();
  LevelPruner c(model, cfg(R"([{"op_names": ["fc"], "sparse_threshold": 0.1, "min_sparse_ratio": 0.75}])"));
  BOOST_TEST(sparsity(c.compress().at("fc.weight")) == 0.75);
}

// DECISIONS rows 9, 21, 22: raw metrics compared across the group, bounds respected, shortfall
// reported.
BOOST_AUTO_TEST_CASE(global_group_with_bounds) {
  auto model = std::make_shared<nn::Sequential>();
  auto a = std::make_shared<nn::Linear>(4, 8), b = std::make_shared<nn::Linear>(4, 8);
  model->push_back("a", a);
  model->push_back("b", b);
  for (int i = 0; i < 32; ++i) {
    a->parameter("weight").data<float>()[i] = 0.01f * (i + 1);  // all of a is smaller than b
    b->parameter("weight").data<float>()[i] = 1.f + i;
  }
  auto run = [&](const char* c, std::vector<GroupReport>* rep = nullptr) {
    L1NormPruner pruner(model, boost::json::parse(c));
    Masks m = pruner.compress();
    if (rep) *rep = pruner.global_group_reports();
    return std::pair{sparsity(m.at("a.weight")), sparsity(m.at("b.weight"))};
  };
  // 50% of 64 elements = 8 rows of 4: raw metrics put all of them in a.
  BOOST_TEST((run(R"([{"op_names": ["a", "b"], "sparse_ratio": 0.5, "global_group_id": 1}])") == std::pair{1.0, 0.0}));
  // max 0.75 on every member: a stops at 6 rows, the rest comes from b.
  BOOST_TEST((run(R"([{"op_names": ["a", "b"], "sparse_ratio": 0.5, "global_group_id": 1, "max_sparse_ratio": 0.75}])") ==
              std::pair{0.75, 0.25}));
  // min 0.25: b prunes at least 2 rows.
  BOOST_TEST((run(R"([{"op_names": ["a", "b"], "sparse_ratio": 0.5, "global_group_id": 1, "min_sparse_ratio": 0.25}])") ==
              std::pair{0.75, 0.25}));
  // Ratio 1.0 with no max prunes everything (NNI prunes nothing); with max 0.5 each stops at
  // half and the report shows the shortfall.
  BOOST_TEST((run(R"([{"op_names": ["a", "b"], "sparse_ratio": 1.0, "global_group_id": "g"}])") == std::pair{1.0, 1.0}));
  std::vector<GroupReport> rep;
  BOOST_TEST((run(R"([{"op_names": ["a", "b"], "sparse_ratio": 0.9, "global_group_id": "g", "max_sparse_ratio": 0.5}])", &rep) ==
              std::pair{0.5, 0.5}));
  BOOST_REQUIRE_EQUAL(rep.size(), 1u);
  BOOST_TEST(rep[0].wanted == 57);
  BOOST_TEST(rep[0].pruned == 32);
}

BOOST_AUTO_TEST_CASE(additive_mask_on_softmax_input) {
  // Softmax has no pruning defaults in NNI: register its input as a target, as a user would.
  using config::CompressorKind;
  config::register_default_settings(CompressorKind::Pruning, "Softmax",
                                    {{"_input_", config::generic_target_settings(CompressorKind::Pruning)}});
  auto model = std::make_shared<nn::Sequential>();
  model->push_back("softmax", std::make_shared<nn::Softmax>(1));
  LevelPruner pruner(model, cfg(R"([{"op_types": ["Softmax"], "target_names": ["_input_"],
      "target_settings": {"_input_": {"sparse_ratio": 0.5, "apply_method": "add", "granularity": "per_channel"}}}])"));
  Tensor x = Tensor::from_vector({1.f, 4.f, 2.f, 3.f}, {1, 4});
  (*model)(x);  // the input's values are observed, then ranked per channel
  Masks m = pruner.compress();
  BOOST_TEST(m.at("softmax._input_0").to_vector() == (std::vector<float>{0, 1, 0, 1}));
  // Masked logits get -1000: their probabilities vanish, the rest renormalise.
  std::vector<float> y = (*model)(x).to_vector();
  BOOST_TEST(y[0] < 1e-30f);
  BOOST_TEST(y[2] < 1e-30f);
  BOOST_TEST(y[1] + y[3] == 1.f, boost::test_tools::tolerance(1e-6f));
}

BOOST_AUTO_TEST_CASE(update_get_masks_and_errors) {
  auto model = std::make_shared<nn::Sequential>();
  model->push_back("fc", std::make_shared<nn::Linear>(2, 2));
  L1NormPruner pruner(model, cfg(R"([{"op_names": ["fc"], "sparse_ratio": 0.5}])"));
  pruner.update_masks({{"fc.weight", Tensor::from_vector({1, 1, 0, 0}, {2, 2})}});
  BOOST_TEST(pruner.get_masks().at("fc.weight").to_vector() == (std::vector<float>{1, 1, 0, 0}));
  BOOST_CHECK_THROW(pruner.update_masks({{"fc.nope", Tensor::ones({2, 2})}}), Error);
  BOOST_CHECK_THROW(pruner.update_masks({{"fc.weight", Tensor::ones({3})}}), Error);
}

// A cleared mask set again must land in the module's "<target>_mask" buffer.
BOOST_AUTO_TEST_CASE(mask_buffer_survives_clear_and_set) {
  auto model = std::make_shared<nn::Sequential>();
  auto fc = std::make_shared<nn::Linear>(2, 2);
  model->push_back("fc", fc);
  L1NormPruner pruner(model, cfg(R"([{"op_names": ["fc"], "sparse_ratio": 0.5}])"));
  pruner.update_masks({{"fc.weight", Tensor()}});
  pruner.update_masks({{"fc.weight", Tensor::from_vector({0, 1, 1, 1}, {2, 2})}});
  BOOST_TEST(fc->buffer("weight_mask").to_vector() == (std::vector<float>{0, 1, 1, 1}));
}

// NaN metrics (a diverged score) rank after every number: pruned last, deterministically.
BOOST_AUTO_TEST_CASE(nan_metrics_are_pruned_last) {
  std::vector<float> m = ratio_mask({3.f, NAN, 1.f, 2.f}, 0.75);
  BOOST_TEST(m == (std::vector<float>{0, 1, 0, 0}));
}

// The radix selection used for large metrics (65536 values and more) prunes exactly the set a
// full stable sort by (value, index) gives: many ties, -0 and +0 equal, NaN last; per row of
// internal_metric_block; and the same whatever the thread count.
BOOST_AUTO_TEST_CASE(large_metric_selection_matches_a_stable_sort) {
  const int64_t n = 200000;
  Generator gen(31);
  std::vector<float> metric(n);
  for (int64_t i = 0; i < n; ++i) {
    const float u = gen.uniform();
    metric[i] = std::floor(u * 997.f) * 0.25f - 50.f;  // about 200 values per tie class
    if (i % 1009 == 0) metric[i] = NAN;
    if (i % 733 == 0) metric[i] = (i % 2) ? -0.f : 0.f;
  }
  auto reference = [](const std::vector<float>& v, int64_t begin, int64_t len, int64_t k, std::vector<float>& mask) {
    std::vector<int64_t> idx(len);
    std::iota(idx.begin(), idx.end(), begin);
    std::stable_sort(idx.begin(), idx.end(), [&v](int64_t a, int64_t b) {
      const bool na = v[a] != v[a], nb = v[b] != v[b];
      return na || nb ? (!na && nb) : v[a] < v[b];
    });
    for (int64_t j = 0; j < k; ++j) mask[idx[j]] = 0.f;
  };
  // 0.9995: the k-th value is a NaN (199 of them at the end of the order), ties among NaNs.
  for (double ratio : {0.0, 0.001, 0.3, 0.5, 0.999, 0.9995, 1.0}) {
    for (int64_t rows : {1, 2}) {
      const int64_t per_row = n / rows, k = static_cast<int64_t>(std::floor(per_row * ratio));
      std::vector<float> want(n, 1.f);
      for (int64_t r = 0; r < rows; ++r) reference(metric, r * per_row, per_row, k, want);
      for (int threads : {1, 2, 3}) {
        set_num_threads(threads);
        std::vector<float> got = ratio_mask(metric, ratio, rows);
        int64_t diff = 0;
        for (int64_t i = 0; i < n; ++i) diff += got[i] != want[i];
        BOOST_TEST(diff == 0, "ratio " << ratio << " rows " << rows << " threads " << threads);
      }
    }
  }
  set_num_threads(0);
}

// Level on a layer large enough for the radix path: the mask is written over the |w| metric the
// engine owns, never over the weight; exactly floor(0.3 n) pruned, each no larger than any kept.
BOOST_AUTO_TEST_CASE(level_on_a_large_layer_keeps_the_weight) {
  manual_seed(5);
  auto model = std::make_shared<nn::Sequential>();
  auto fc = std::make_shared<nn::Linear>(512, 256);
  model->push_back("fc", fc);
  const std::vector<float> w = fc->param("weight").to_vector();
  LevelPruner pruner(model, cfg(R"([{"op_names": ["fc"], "target_names": ["weight"], "sparse_ratio": 0.3}])"));
  Masks masks = pruner.compress();
  BOOST_TEST(fc->param("weight").to_vector() == w, boost::test_tools::per_element());
  const std::vector<float> m = masks.at("fc.weight").to_vector();
  BOOST_REQUIRE_EQUAL(m.size(), w.size());
  float max_pruned = 0.f, min_kept = INFINITY;
  int64_t pruned = 0;
  for (size_t i = 0; i < m.size(); ++i) {
    if (m[i] == 0.f) ++pruned, max_pruned = std::max(max_pruned, std::fabs(w[i]));
    else min_kept = std::min(min_kept, std::fabs(w[i]));
  }
  BOOST_TEST(pruned == static_cast<int64_t>(std::floor(0.3 * m.size())));
  BOOST_TEST(max_pruned <= min_kept);
  // The returned masks behave as copies (they are copy-on-write snapshots): writing one, even
  // through a view, leaves the model's mask; the next update leaves them as they were.
  Masks scratch = pruner.get_masks();
  reshape(scratch.at("fc.weight"), {-1}).fill_(0.f);
  BOOST_TEST(fc->buffer("weight_mask").to_vector() == m, boost::test_tools::per_element());
  pruner.update_masks({{"fc.weight", Tensor::ones({256, 512})}});
  BOOST_TEST(masks.at("fc.weight").to_vector() == m, boost::test_tools::per_element());
  BOOST_TEST(sum(fc->buffer("weight_mask")).item() == 256.f * 512.f);
}

BOOST_AUTO_TEST_SUITE_END()
