// distill_kl and distill_mse against PyTorch 1.13 (tests/data/make_distill_fixture.py): loss and
// student gradient for random logits, logits of +-80, a one-hot-like teacher and a 3-D hidden
// state, at temperatures 1, 2 and 4; plus central-difference gradient checks and the checks on
// bad input. Tolerances: the loss is a sum of a few dozen float32 terms, computed by torch in
// float and here in double, so 1e-5 relative (+1e-6 absolute for losses near 0).
#include <boost/test/unit_test.hpp>
#include <cmath>

#include "framework/io/safetensors.h"
#include "framework/shrink.h"
#include "gradcheck.h"

using namespace shrink;
using shrink::testing::check_close;

namespace {

const std::map<std::string, Tensor>& fixture() {
  static const std::map<std::string, Tensor> f =
      io::load_tensors(std::string(SHRINK_TEST_DATA_DIR) + "/distill_fixture.safetensors");
  return f;
}

void expect_matches(const std::string& key, const Tensor& loss, const Tensor& grad) {
  const float want = fixture().at(key).to_vector().at(0);
  BOOST_TEST(std::fabs(loss.item() - want) <= 1e-6 + 1e-5 * std::fabs(want),
             key << ": " << loss.item() << " vs torch " << want);
  check_close(grad.to_vector(), fixture().at(key + ".grad").to_vector(), 1e-6, (key + ".grad").c_str());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(distill_ops)

BOOST_AUTO_TEST_CASE(match_pytorch) {
  for (const char* c : {"random", "big", "onehot", "hidden"}) {
    const std::string name(c);
    const Tensor t = fixture().at(name + ".teacher");
    for (int temperature : {1, 2, 4}) {
      Tensor s = fixture().at(name + ".student").contiguous_copy().set_requires_grad(true);
      Tensor loss = distill_kl(s, t, static_cast<float>(temperature));
      loss.backward();
      expect_matches(name + ".kl_T" + std::to_string(temperature), loss, s.grad());
    }
    Tensor s = fixture().at(name + ".student").contiguous_copy().set_requires_grad(true);
    Tensor loss = distill_mse(s, t);
    loss.backward();
    expect_matches(name + ".mse", loss, s.grad());
  }
}

BOOST_AUTO_TEST_CASE(gradients_match_finite_differences) {
  const Tensor t = shrink::testing::seeded_randn({3, 5}, 7);
  shrink::testing::check_gradients([t](const std::vector<Tensor>& v) { return distill_kl(v[0], t, 2.f); },
                                   {shrink::testing::seeded_randn({3, 5}, 8)});
  shrink::testing::check_gradients([t](const std::vector<Tensor>& v) { return distill_mse(v[0], t); },
                                   {shrink::testing::seeded_randn({3, 5}, 9)});
}

// Identical distributions have zero divergence; the teacher gets no gradient.
BOOST_AUTO_TEST_CASE(properties_and_errors) {
  Tensor s = Tensor::from_vector({1, 2, 3, -1, 0, 1}, {2, 3}).set_requires_grad(true);
  Tensor t = Tensor::from_vector({1, 2, 3, -1, 0, 1}, {2, 3}).set_requires_grad(true);
  Tensor loss = distill_kl(s, t);
  BOOST_TEST(std::fabs(loss.item()) < 1e-7f);
  loss.backward();
  BOOST_TEST(!t.grad().defined());
  BOOST_CHECK_THROW(distill_kl(s, Tensor::zeros({3, 2})), Error);
  BOOST_CHECK_THROW(distill_kl(s, t, 0.f), Error);
  BOOST_CHECK_THROW(distill_mse(Tensor::zeros({0, 3}), Tensor::zeros({0, 3})), Error);
}

BOOST_AUTO_TEST_SUITE_END()
