// The wrapper against nni-semantics §9.2 item 1 (a)-(f): masks and fake quantization applied to
// inputs, parameters and outputs of a Conv2d(3, 3, 3) must equal the same computation written
// out by hand, bit for bit. Plus unwrap/bake semantics (DECISIONS row 12) and the registry.
#include <boost/test/unit_test.hpp>

#include "compression/config/config_list.h"
#include "compression/wrapper/apply_methods.h"
#include "compression/wrapper/module_wrapper.h"
#include "framework/shrink.h"

using namespace shrink;
using namespace shrink::compression;
using config::CompressorKind;

namespace {

struct Fixture {
  std::shared_ptr<nn::Sequential> model = std::make_shared<nn::Sequential>();
  std::shared_ptr<nn::Conv2d> conv;
  Tensor x;
  Fixture() {
    manual_seed(3);
    conv = std::make_shared<nn::Conv2d>(3, 3, 3);
    model->push_back("conv", conv);
    Generator g(11);
    x = rand({4, 3, 32, 32}, g);
  }
  std::unique_ptr<ModuleWrapper> wrap(const std::string& prune_cfg, const std::string& quant_cfg) {
    auto w = std::make_unique<ModuleWrapper>("conv", conv);
    if (!prune_cfg.empty())
      for (auto& s : config::parse_config_list_json(*model, prune_cfg, CompressorKind::Pruning))
        w->add_target(s, CompressorKind::Pruning);
    if (!quant_cfg.empty())
      for (auto& s : config::parse_config_list_json(*model, quant_cfg, CompressorKind::Quantization))
        w->add_target(s, CompressorKind::Quantization);
    w->wrap();
    return w;
  }
  Tensor w() { return conv->param("weight").detach(); }
  Tensor b() { return conv->param("bias").detach(); }
};

const char* kPruneAll =
    R"([{"op_types": ["Conv2d"], "target_names": ["_input_", "weight", "bias", "_output_"],
        "target_settings": {"_input_": {"apply_method": "mul"}, "_output_": {"apply_method": "mul"}}}])";
const char* kQuantAll =
    R"([{"op_types": ["Conv2d"], "quant_dtype": "int8", "target_names": ["_input_", "weight", "bias", "_output_"]}])";

Tensor fq(const Tensor& v, float s, float z) {
  return fake_quantize(v, Tensor::scalar(s), Tensor::scalar(z), -127.f, 127.f, false);
}

void set_quant(TargetState& t, float s, float z) {
  t.scale = Tensor::scalar(s);
  t.zero_point = Tensor::scalar(z);
}

void require_equal(const Tensor& a, const Tensor& b, const char* what) {
  BOOST_REQUIRE(a.shape() == b.shape());
  std::vector<float> va = a.to_vector(), vb = b.to_vector();
  size_t bad = 0;
  for (size_t i = 0; i < va.size(); ++i) bad += va[i] != vb[i];
  BOOST_TEST(bad == 0u, what << ": " << bad << " of " << va.size() << " values differ");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(wrapper)

BOOST_FIXTURE_TEST_CASE(a_weight_in_channel_mask_equals_zeroed_input, Fixture) {
  auto wr = wrap(kPruneAll, "");
  Tensor m = Tensor::ones({3, 3, 3, 3});
  Tensor z = Tensor::ones({1, 3, 1, 1});
  z.data<float>()[1] = 0.f;
  wr->set_mask(*wr->find("weight"), mul(m, reshape(z, {1, 3, 1, 1})));
  Tensor out = (*model)(x);
  wr->unwrap();
  Tensor want = conv2d(mul(x, z), w(), b(), {});
  require_equal(out, want, "(a)");
}

BOOST_FIXTURE_TEST_CASE(b_weight_out_channel_mask_leaves_bias, Fixture) {
  auto wr = wrap(kPruneAll, "");
  Tensor z = Tensor::ones({3, 1, 1, 1});
  z.data<float>()[1] = 0.f;
  wr->set_mask(*wr->find("weight"), expand(z, {3, 3, 3, 3}));
  Tensor out = (*model)(x);
  const float bias1 = b().to_vector()[1];
  for (float v : slice(out, 1, 1, 2).to_vector()) BOOST_REQUIRE_EQUAL(v, bias1);
  wr->unwrap();
  Tensor ref = conv2d(x, w(), b(), {});
  require_equal(slice(out, 1, 0, 1), slice(ref, 1, 0, 1), "(b) channel 0");
  require_equal(slice(out, 1, 2, 3), slice(ref, 1, 2, 3), "(b) channel 2");
}

BOOST_FIXTURE_TEST_CASE(c_output_mask, Fixture) {
  auto wr = wrap(kPruneAll, "");
  Tensor m = Tensor::ones({3, 30, 30});
  std::fill_n(m.data<float>() + 900, 900, 0.f);
  wr->set_mask(*wr->find("_output_0"), m);
  Tensor out = (*model)(x);
  for (float v : slice(out, 1, 1, 2).to_vector()) BOOST_REQUIRE_EQUAL(v, 0.f);
  wr->unwrap();
  Tensor ref = conv2d(x, w(), b(), {});
  require_equal(slice(out, 1, 2, 3), slice(ref, 1, 2, 3), "(c) channel 2");
}

BOOST_FIXTURE_TEST_CASE(d_weight_fake_quant, Fixture) {
  auto wr = wrap("", kQuantAll);
  set_quant(*wr->find("weight"), 0.5f, 10.f);
  Tensor out = (*model)(x);
  wr->unwrap();
  require_equal(out, conv2d(x, fq(w(), 0.5f, 10.f), b(), {}), "(d)");
}

BOOST_FIXTURE_TEST_CASE(e_output_fake_quant, Fixture) {
  auto wr = wrap("", kQuantAll);
  set_quant(*wr->find("_output_0"), 0.5f, 10.f);
  Tensor out = (*model)(x);
  wr->unwrap();
  require_equal(out, fq(conv2d(x, w(), b(), {}), 0.5f, 10.f), "(e)");
}

BOOST_FIXTURE_TEST_CASE(f_quantize_then_mask_everywhere, Fixture) {
  auto wr = wrap(kPruneAll, kQuantAll);
  Tensor in_mask = Tensor::ones({1, 3, 1, 1});
  in_mask.data<float>()[0] = 0.f;
  Tensor w_mask = Tensor::ones({3, 3, 3, 3});
  for (int64_t o = 0; o < 3; ++o)
    for (int64_t i = 0; i < 3; ++i)
      if (o == 1 || i == 1) std::fill_n(w_mask.data<float>() + (o * 3 + i) * 9, 9, 0.f);
  Tensor b_mask = Tensor::from_vector({1, 0, 1}, {3});
  Tensor out_mask = Tensor::ones({1, 3, 1, 1});
  out_mask.data<float>()[0] = 0.f;
  wr->set_mask(*wr->find("_input_0"), in_mask);
  wr->set_mask(*wr->find("weight"), w_mask);
  wr->set_mask(*wr->find("bias"), b_mask);
  wr->set_mask(*wr->find("_output_0"), out_mask);
  set_quant(*wr->find("_input_0"), 0.4f, 5.f);
  set_quant(*wr->find("weight"), 0.5f, 10.f);
  set_quant(*wr->find("_output_0"), 0.3f, 15.f);
  Tensor out = (*model)(x);
  wr->unwrap();
  Tensor xin = mul(fq(x, 0.4f, 5.f), in_mask);
  Tensor wq = mul(fq(w(), 0.5f, 10.f), w_mask);
  Tensor bq = mul(b(), b_mask);  // bias has a quant target but no scale set: passed through
  Tensor want = mul(fq(conv2d(xin, wq, bq, {}), 0.3f, 15.f), out_mask);
  require_equal(out, want, "(f)");
}

BOOST_FIXTURE_TEST_CASE(unwrap_restores_and_bake_writes, Fixture) {
  Tensor before = w().contiguous_copy();
  auto state_before = model->state_dict();
  auto wr = wrap(kPruneAll, "");
  BOOST_TEST(conv->has_buffer("weight_mask"));
  Tensor z = Tensor::zeros({3, 3, 3, 3});
  wr->set_mask(*wr->find("weight"), z);
  (*model)(x);
  // The trainable weight is untouched by masking; the gradient reaches it through the mask.
  BOOST_TEST(conv->param("weight").to_vector() == before.to_vector());
  BOOST_TEST(conv->param("weight").is_leaf());
  wr->unwrap();
  BOOST_TEST(!conv->has_buffer("weight_mask"));
  BOOST_TEST(model->state_dict().size() == state_before.size());
  require_equal((*model)(x), conv2d(x, before, b(), {}), "unwrapped forward");
  auto wr2 = wrap(kPruneAll, "");
  wr2->set_mask(*wr2->find("weight"), z);
  wr2->bake();
  wr2->unwrap();
  for (float v : conv->param("weight").to_vector()) BOOST_REQUIRE_EQUAL(v, 0.f);
}

BOOST_FIXTURE_TEST_CASE(gradient_flows_through_mask_to_weight, Fixture) {
  auto wr = wrap(kPruneAll, "");
  Tensor z = Tensor::ones({3, 1, 1, 1});
  z.data<float>()[2] = 0.f;
  wr->set_mask(*wr->find("weight"), expand(z, {3, 3, 3, 3}));
  sum((*model)(x)).backward();
  std::vector<float> g = conv->param("weight").grad().to_vector();
  for (int64_t i = 54; i < 81; ++i) BOOST_REQUIRE_EQUAL(g[i], 0.f);  // filter 2 masked
  BOOST_TEST(g[0] != 0.f);
}

BOOST_AUTO_TEST_CASE(apply_method_registry) {
  for (const char* n : {"bypass", "mul", "add", "movement_mul", "movement_add", "slim_mul"})
    BOOST_CHECK_NO_THROW(ApplyMethods::pruning(n));
  for (const char* n : {"bypass", "clamp_round", "qat_clamp_round"})
    BOOST_CHECK_NO_THROW(ApplyMethods::quantization(n));
  try {
    ApplyMethods::pruning("nope");
    BOOST_FAIL("expected an error");
  } catch (const Error& e) {
    std::string m = e.what();
    BOOST_TEST(m.find("mul") != std::string::npos, m);
    BOOST_TEST(m.find("slim_mul") != std::string::npos, m);
  }
  BOOST_TEST(quant_range("int8").first == -127.f);
  BOOST_TEST(quant_range("int8").second == 127.f);
  BOOST_TEST(quant_range("uint8").second == 255.f);
  BOOST_TEST(quant_range("int4").first == -7.f);
}

BOOST_AUTO_TEST_SUITE_END()
