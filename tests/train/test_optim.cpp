// Optimizers and schedulers against values produced by torch.optim (tests/data/make_optim_fixture.py).
#include <boost/test/unit_test.hpp>
#include <fstream>
#include <map>
#include <sstream>

#include "framework/optim/optimizer.h"
#include "framework/shrink.h"
#include "gradcheck.h"

using namespace shrink;

namespace {
std::map<std::string, std::vector<float>> load_expected() {
  std::ifstream in(std::string(SHRINK_TEST_DATA_DIR) + "/optim_expected.txt");
  BOOST_REQUIRE(in.good());
  std::map<std::string, std::vector<float>> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string name;
    ls >> name;
    float v;
    while (ls >> v) out[name].push_back(v);
  }
  return out;
}

const std::vector<std::vector<float>> kGrads = {
    {0.1f, -0.2f, 0.3f, 0.f}, {-0.5f, 0.4f, 0.f, 1.f}, {0.2f, 0.2f, -0.1f, -0.3f}};

std::vector<float> run(const std::function<std::unique_ptr<optim::Optimizer>(Tensor)>& make) {
  Tensor p = Tensor::from_vector({0.5f, -1.f, 2.f, 0.f}, {4}).set_requires_grad(true);
  auto opt = make(p);
  for (const auto& g : kGrads) {
    p.set_grad(Tensor::from_vector(g, {4}));
    opt->step();
  }
  return p.to_vector();
}
}  // namespace

BOOST_AUTO_TEST_SUITE(optimizers)

BOOST_AUTO_TEST_CASE(match_torch_optim) {
  auto expected = load_expected();
  using P = std::unique_ptr<optim::Optimizer>;
  std::map<std::string, std::function<P(Tensor)>> cases = {
      {"sgd", [](Tensor p) { return P(new optim::SGD({p}, 0.1f)); }},
      {"sgd_momentum_wd", [](Tensor p) { return P(new optim::SGD({p}, 0.1f, 0.9f, 0.01f)); }},
      {"sgd_nesterov", [](Tensor p) { return P(new optim::SGD({p}, 0.1f, 0.9f, 0.f, true)); }},
      {"sgd_dampening", [](Tensor p) { return P(new optim::SGD({p}, 0.1f, 0.5f, 0.f, false, 0.3f)); }},
      {"adam", [](Tensor p) { return P(new optim::Adam({p}, 0.01f)); }},
      {"adam_wd", [](Tensor p) { return P(new optim::Adam({p}, 0.01f, 0.8f, 0.9f, 1e-6f, 0.1f)); }},
      {"adamw", [](Tensor p) { return P(new optim::AdamW({p}, 0.01f, 0.9f, 0.999f, 1e-8f, 0.1f)); }},
  };
  for (auto& [name, make] : cases) {
    BOOST_TEST_CONTEXT(name) {
      // fp32 updates in a different operation order than torch: a few ulp after three steps.
      shrink::testing::check_close(run(make), expected.at(name), 2e-6, name.c_str());
    }
  }
}

BOOST_AUTO_TEST_CASE(schedulers_match_torch) {
  auto expected = load_expected();
  Tensor p = Tensor::zeros({1}).set_requires_grad(true);
  optim::SGD a({p}, 0.1f);
  optim::StepLR step(a, 2, 0.5f);
  Tensor q = Tensor::zeros({1}).set_requires_grad(true);
  optim::SGD b({q}, 0.1f);
  optim::CosineAnnealingLR cos(b, 5, 0.01f);
  std::vector<float> got_step, got_cos;
  for (int i = 0; i < 6; ++i) {
    step.step();
    cos.step();
    got_step.push_back(a.lr());
    got_cos.push_back(b.lr());
  }
  shrink::testing::check_close(got_step, expected.at("steplr"), 1e-7, "steplr");
  shrink::testing::check_close(got_cos, expected.at("cosine"), 1e-7, "cosine");
}

BOOST_AUTO_TEST_CASE(param_groups_added_later) {
  Tensor p = Tensor::ones({1}).set_requires_grad(true);
  Tensor s = Tensor::ones({1}).set_requires_grad(true);
  optim::SGD opt({p}, 0.1f);
  optim::GroupOptions o;
  o.lr = 1.f;
  opt.add_param_group({s}, o);
  BOOST_CHECK_THROW(opt.add_param_group({s}), Error);  // already present
  p.set_grad(Tensor::ones({1}));
  s.set_grad(Tensor::ones({1}));
  opt.step();
  BOOST_TEST(p.item() == 0.9f);
  BOOST_TEST(s.item() == 0.f);
  opt.zero_grad();
  BOOST_TEST(!p.grad().defined());
}

BOOST_AUTO_TEST_SUITE_END()
