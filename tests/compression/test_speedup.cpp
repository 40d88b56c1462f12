// Pruning speedup (nni-semantics §7, DECISIONS rows 17-18): the sped-up model computes the masked
// model's output (within 1e-5 relative) with the layer shapes the kept channels give; constants of
// removed channels are folded (exactly without padding, reported with padding); the pre-flight
// refuses before changing anything; MACs are counted by hand.
#include <boost/test/unit_test.hpp>

#include "compression/pruning/norm_pruners.h"
#include "compression/simple_model.h"
#include "compression/speedup/dependency.h"
#include "compression/speedup/speedup.h"
#include "framework/shrink.h"
#include "models/model_file.h"
#include "models/zoo.h"

#include <filesystem>
#include "compression/cli_run.h"
#include "compression/pruning/mask_io.h"
#include "framework/io/safetensors.h"

using namespace shrink;
using namespace shrink::compression;

namespace {

boost::json::value cfg(const char* text) { return boost::json::parse(text); }

// L1 masks for `config` (with automatic dependency groups when asked), model left unwrapped.
Masks l1_masks(nn::Module& model, std::shared_ptr<nn::Module> owner, const char* config, const Tensor& x,
               bool auto_groups) {
  boost::json::value c = cfg(config);
  if (auto_groups) c = auto_set_dependency_group_ids(model, c, {nn::Value(x)});
  L1NormPruner p(owner, c);
  return p.compress();
}

std::map<std::string, Shape> weight_shapes(nn::Module& m) {
  std::map<std::string, Shape> out;
  for (auto& [name, p] : m.named_parameters())
    if (p.defined()) out[name] = p.shape();
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(speedup)

BOOST_AUTO_TEST_CASE(macs_by_hand) {
  auto model = models::make_model("lenet5");
  // conv1 6*28*28*1*25, conv2 16*10*10*6*25, fc1 400*120, fc2 120*84, fc3 84*10.
  BOOST_TEST(count_macs(trace(*model, {nn::Value(randn({3, 1, 28, 28}))})) == 117600 + 240000 + 48000 + 10080 + 840);
}

// §9.2 item 10, NNI's Model2: a 1x1 conv 3 -> 5, then a 1x1 conv 5 -> 5 applied 5 times, on a
// 2x2 input: (560 MACs, 50 params); with half of conv2's weights masked its MACs count only the
// unmasked ones.
BOOST_AUTO_TEST_CASE(counter_nni_model2) {
  class Model2 : public nn::Module {
   public:
    Model2() {
      conv = register_module("conv", std::make_shared<nn::Conv2d>(3, 5, 1));
      conv2 = register_module("conv2", std::make_shared<nn::Conv2d>(5, 5, 1));
    }
    std::string type_name() const override { return "Model2"; }
    std::shared_ptr<nn::Conv2d> conv, conv2;

   protected:
    nn::Value forward(const std::vector<nn::Value>& in) override {
      Tensor x = (*conv)(input_tensor(in, 0));
      for (int i = 0; i < 5; ++i) x = (*conv2)(x);
      return x;
    }
  };
  auto m = std::make_shared<Model2>();
  const Graph g = trace(*m, {nn::Value(randn({1, 3, 2, 2}))});
  BOOST_TEST(count_macs(g) == 560);
  std::vector<float> half(25, 1.f);
  for (int i = 0; i < 25; i += 2) half[static_cast<size_t>(i)] = 0.f;  // 13 of 25 masked
  Masks masks{{"conv2.weight", Tensor::from_vector(half, {5, 5, 1, 1})}};
  const std::vector<LayerCount> rows = count_layers(*m, g, masks);
  BOOST_REQUIRE_EQUAL(rows.size(), 2u);
  BOOST_TEST(rows[0].params + rows[1].params == 50);
  BOOST_TEST(rows[0].macs + rows[1].macs == 560);
  BOOST_TEST(rows[1].module == "conv2");
  BOOST_TEST(rows[1].masked_params == 12 + 5);     // unmasked weights + the bias
  BOOST_TEST(rows[1].masked_macs == 5 * 4 * 12);   // 5 applications x 4 positions x 12 weights
  BOOST_TEST(rows[0].masked_macs == rows[0].macs);  // unmasked layer
}

// lenet5, half of every layer's outputs but the last: shapes shrink along the chain (conv2's 8
// kept channels become 8*5*5 = 200 of fc1's inputs) and the output is the masked model's.
BOOST_AUTO_TEST_CASE(lenet5_chain) {
  manual_seed(3);
  auto model = models::make_model("lenet5");
  const Tensor x = randn({4, 1, 28, 28});
  Masks masks = l1_masks(*model, model, R"([{"op_names": ["conv1", "conv2", "fc1", "fc2"], "sparse_ratio": 0.5,
                                             "granularity": "out_channel"}])", x, false);
  SpeedupReport r = speedup_model(*model, masks, {nn::Value(x)});
  auto s = weight_shapes(*model);
  BOOST_TEST(s.at("conv1.weight") == (Shape{3, 1, 5, 5}));
  BOOST_TEST(s.at("conv2.weight") == (Shape{8, 3, 5, 5}));
  BOOST_TEST(s.at("fc1.weight") == (Shape{60, 200}));
  BOOST_TEST(s.at("fc2.weight") == (Shape{42, 60}));
  BOOST_TEST(s.at("fc3.weight") == (Shape{10, 42}));
  BOOST_TEST(r.deviation < 1e-5, "deviation " << r.deviation);
  BOOST_TEST(r.inexact.empty());
  BOOST_TEST(r.params_after < r.params_before / 2);
  BOOST_TEST(r.macs_after < r.macs_before / 2);
  BOOST_TEST(r.layers.size() == 5u);
  // It trains: gradients reach the shrunk parameters.
  model->train(true);
  cross_entropy((*model)(x), Tensor::from_vector_i64({0, 1, 2, 3}, {4})).backward();
  BOOST_TEST(model->find("fc1")->param("weight").grad().defined());
}

// Weights masked, biases not: every removed channel carries its bias through ReLU and pooling,
// and conv2 (no padding) and fc1 absorb it exactly.
BOOST_AUTO_TEST_CASE(constants_fold_exactly_without_padding) {
  manual_seed(4);
  auto model = models::make_model("lenet5");
  for (const char* m : {"conv1", "conv2"}) model->find(m)->parameter("bias").fill_(0.3f);
  const Tensor x = randn({4, 1, 28, 28});
  Masks masks = l1_masks(*model, model, R"([{"op_names": ["conv1", "conv2"], "target_names": ["weight"],
                                             "sparse_ratio": 0.5, "granularity": "out_channel"}])", x, false);
  SpeedupReport r = speedup_model(*model, masks, {nn::Value(x)});
  BOOST_TEST(r.inexact.empty());
  BOOST_TEST(r.deviation < 1e-5, "deviation " << r.deviation);
  BOOST_TEST(model->find("conv2")->param("weight").shape() == (Shape{8, 3, 5, 5}));
}

// vgg_small with each batch norm pruned with its convolution (automatic dependency groups): exact.
BOOST_AUTO_TEST_CASE(vgg_small_with_batch_norms) {
  manual_seed(5);
  auto model = models::make_model("vgg_small");
  const Tensor x = randn({2, 1, 28, 28});
  Masks masks = l1_masks(*model, model, R"([{"op_types": ["Conv2d", "BatchNorm2d"],
      "exclude_op_names": ["features.conv1", "features.bn1"], "sparse_ratio": 0.5, "granularity": "out_channel"}])",
                         x, true);
  const Shape before = model->find("features.conv3")->param("weight").shape();
  SpeedupReport r = speedup_model(*model, masks, {nn::Value(x)});
  const Shape after = model->find("features.conv3")->param("weight").shape();
  BOOST_TEST(after[0] == before[0] / 2);
  BOOST_TEST(after[1] == before[1] / 2);
  BOOST_TEST(model->find("features.bn3")->param("weight").shape() == (Shape{before[0] / 2}));
  BOOST_TEST(r.deviation < 1e-5, "deviation " << r.deviation);
  BOOST_TEST(r.inexact.empty());
}

// Convolutions alone: a removed channel leaves the batch norm's shift, which the next (padded)
// convolution cannot absorb exactly at the border. The report names those layers.
BOOST_AUTO_TEST_CASE(vgg_small_convs_only_reports_padding) {
  manual_seed(5);
  auto model = models::make_model("vgg_small");
  for (auto& [name, m] : model->named_modules())
    if (m->type_name() == "BatchNorm2d") m->parameter("bias").fill_(0.5f);
  const Tensor x = randn({2, 1, 28, 28});
  Masks masks = l1_masks(*model, model, R"([{"op_types": ["Conv2d"], "exclude_op_names": ["features.conv1"],
                                             "sparse_ratio": 0.5, "granularity": "out_channel"}])", x, false);
  SpeedupReport r = speedup_model(*model, masks, {nn::Value(x)});
  BOOST_TEST(r.inexact == (std::vector<std::string>{"features.conv3", "features.conv4", "features.conv5",
                                                    "features.conv6"}));
  BOOST_TEST(r.deviation > 1e-5);  // measured, not hidden
}

// resnet20: residual sums keep aligned channels through the dependency sets; exact with the norms.
BOOST_AUTO_TEST_CASE(resnet20_residuals) {
  manual_seed(6);
  auto model = models::make_model("resnet20");
  const Tensor x = randn({2, 1, 28, 28});
  Masks masks = l1_masks(*model, model, R"([{"op_types": ["Conv2d", "BatchNorm2d"], "sparse_ratio": 0.5,
                                             "granularity": "out_channel"}])", x, true);
  SpeedupReport r = speedup_model(*model, masks, {nn::Value(x)});
  BOOST_TEST(model->find("layer1.0.conv1")->param("weight").shape() == (Shape{8, 8, 3, 3}));
  BOOST_TEST(model->find("layer3.2.conv2")->param("weight").shape() == (Shape{32, 32, 3, 3}));
  BOOST_TEST(model->find("fc")->param("weight").shape() == (Shape{10, 32}));
  BOOST_TEST(r.deviation < 1e-5, "deviation " << r.deviation);
}

// §9.2 item 3: NNI's config on SimpleTorchModel with automatic groups; the grouped conv2 (4 groups)
// keeps 1 input and 2 outputs per group. Out channels: conv1 4, conv2 8, conv3 8, fc1 25.
BOOST_AUTO_TEST_CASE(simple_model_grouped_convolution) {
  manual_seed(9);
  auto model = std::make_shared<testing::SimpleModel>();
  const Tensor x = randn({2, 1, 28, 28});
  Masks masks = l1_masks(*model, model, R"([
    {"op_types": ["Linear"], "exclude_op_names": ["fc2"], "sparse_ratio": 0.75, "granularity": "out_channel"},
    {"op_names": ["conv1", "conv2", "conv3"], "sparse_ratio": 0.75, "granularity": "out_channel"}])", x, true);
  SpeedupReport r = speedup_model(*model, masks, {nn::Value(x)});
  BOOST_TEST(model->conv1->param("weight").shape() == (Shape{4, 1, 3, 3}));
  BOOST_TEST(model->conv2->param("weight").shape() == (Shape{8, 1, 3, 3}));
  BOOST_TEST(model->conv2->groups == 4);
  BOOST_TEST(model->conv3->param("weight").shape() == (Shape{8, 4, 3, 3}));
  BOOST_TEST(model->fc1->param("weight").shape() == (Shape{25, 8 * 24 * 24}));
  BOOST_TEST(r.deviation < 1e-5, "deviation " << r.deviation);  // no padding: bn1's constants fold exactly
  BOOST_TEST(r.inexact.empty());
}

// A depthwise convolution keeps exactly its input's channels (groups shrink with them).
BOOST_AUTO_TEST_CASE(depthwise_follows_its_input) {
  manual_seed(10);
  auto model = std::make_shared<testing::DepthwiseModel>();
  const Tensor x = randn({2, 1, 6, 6});
  Masks masks = l1_masks(*model, model, R"([{"op_names": ["conv", "bn", "dw"], "sparse_ratio": 0.5,
                                             "granularity": "out_channel"}])", x, true);
  SpeedupReport r = speedup_model(*model, masks, {nn::Value(x)});
  BOOST_TEST(model->dw->param("weight").shape() == (Shape{4, 1, 3, 3}));
  BOOST_TEST(model->dw->groups == 4);
  BOOST_TEST(model->pw->param("weight").shape() == (Shape{16, 4, 1, 1}));
  BOOST_TEST(r.deviation < 1e-5, "deviation " << r.deviation);
}

// mlp and tiny_transformer's feed-forward layers: exact. Query rows masked inside heads that stay
// are kept as zeros (attention loses whole heads only), with a note; the output is unchanged.
BOOST_AUTO_TEST_CASE(mlp_and_transformer_feed_forward) {
  manual_seed(11);
  auto mlp = models::make_model("mlp");
  const Tensor x = randn({3, 1, 28, 28});
  Masks m1 = l1_masks(*mlp, mlp, R"([{"op_names": ["fc1", "fc2"], "sparse_ratio": 0.5}])", x, false);
  SpeedupReport r1 = speedup_model(*mlp, m1, {nn::Value(x)});
  BOOST_TEST(mlp->find("fc2")->param("weight").shape() == (Shape{64, 128}));
  BOOST_TEST(r1.deviation < 1e-5, "deviation " << r1.deviation);

  auto tt = models::make_model("tiny_transformer");
  Masks m2 = l1_masks(*tt, tt, R"([{"op_names_re": ["layers\\.[0-9]+\\.ffn\\.fc1"], "sparse_ratio": 0.5}])", x, false);
  BOOST_REQUIRE(!m2.empty());
  const int64_t hidden = tt->find("layers.0.ffn.fc1")->param("weight").size(0);
  SpeedupReport r2 = speedup_model(*tt, m2, {nn::Value(x)});
  BOOST_TEST(tt->find("layers.0.ffn.fc1")->param("weight").size(0) == hidden / 2);
  BOOST_TEST(tt->find("layers.0.ffn.fc2")->param("weight").size(1) == hidden / 2);
  BOOST_TEST(r2.deviation < 1e-5, "deviation " << r2.deviation);

  auto tt2 = models::make_model("tiny_transformer");
  Masks m3 = l1_masks(*tt2, tt2, R"([{"op_names": ["layers.0.attn.q_proj"], "sparse_ratio": 0.5}])", x, false);
  BOOST_TEST(speedup_preflight(*tt2, m3, {nn::Value(x)}).empty());
  SpeedupReport r3 = speedup_model(*tt2, m3, {nn::Value(x)});
  BOOST_TEST(tt2->find("layers.0.attn.q_proj")->param("weight").shape() == (Shape{64, 64}));
  BOOST_REQUIRE(r3.notes.size() == 1u);
  BOOST_TEST(r3.notes[0].find("layers.0.attn.q_proj: 32 masked rows stay") == 0u, r3.notes[0]);
  BOOST_TEST(r3.deviation < 1e-5, "deviation " << r3.deviation);
}

namespace {

// A [rows, cols] mask of ones with rows [r0, r1) and columns [c0, c1) zeroed.
Tensor mask_without(int64_t rows, int64_t cols, int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
  std::vector<float> m(static_cast<size_t>(rows * cols), 1.f);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      if ((r >= r0 && r < r1) || (c >= c0 && c < c1)) m[static_cast<size_t>(r * cols + c)] = 0.f;
  return Tensor::from_vector(m, {rows, cols});
}

// `model` with `masks` multiplied into its weights.
void bake(nn::Module& model, const Masks& masks) {
  NoGradGuard ng;
  for (const auto& [key, mask] : masks) {
    const size_t dot = key.rfind('.');
    Tensor& p = model.find(key.substr(0, dot))->parameter(key.substr(dot + 1));
    p.copy_(mul(p, mask));
  }
}

double relative_gap(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.to_vector(), y = b.to_vector();
  double scale = 0, gap = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    scale = std::max(scale, std::fabs(static_cast<double>(x[i])));
    gap = std::max(gap, std::fabs(static_cast<double>(x[i]) - y[i]));
  }
  return gap / scale;
}

Tensor logits(nn::Module& m, const Tensor& x) {
  NoGradGuard ng;
  m.eval();
  return m(std::vector<nn::Value>{x}).tensor();
}

// Attention over [B, L, 8] tokens with 2 heads, then a Linear. kReadsWeights also multiplies the
// averaged attention weights into the result (read after the attention); kReusesValues adds the
// attention's v_proj applied to the input once more.
class AttentionModel : public nn::Module {
 public:
  enum Mode { kPlain, kReadsWeights, kReusesValues };
  explicit AttentionModel(Mode mode) : mode_(mode) {
    attn = register_module("attn", std::make_shared<nn::MultiheadAttention>(8, 2));
    fc = register_module("fc", std::make_shared<nn::Linear>(8, 3));
  }
  std::string type_name() const override { return "AttentionModel"; }
  std::shared_ptr<nn::MultiheadAttention> attn;
  std::shared_ptr<nn::Linear> fc;

 protected:
  nn::Value forward(const std::vector<nn::Value>& in) override {
    const Tensor& x = input_tensor(in, 0);
    nn::Value a = (*attn)(std::vector<nn::Value>{x, x, x});
    Tensor h = a.items().at(0).tensor();
    if (mode_ == kReadsWeights) h = matmul(a.items().at(1).tensor(), h);
    if (mode_ == kReusesValues) h = add(h, (*attn->v_proj)(x));
    return (*fc)(h);
  }

 private:
  Mode mode_;
};

}  // namespace

// Whole heads go when their value rows (the constant context folds into out_proj's bias) or their
// out_proj columns are masked; masked query/key rows of heads that stay remain. Checked against the
// masked model on a second input, and through a model file.
BOOST_AUTO_TEST_CASE(attention_heads_of_tiny_transformer) {
  manual_seed(21);
  auto tt = models::make_model("tiny_transformer");
  auto masked = models::make_model("tiny_transformer");
  masked->load_state_dict(tt->state_dict());
  const Masks masks{
      {"layers.0.attn.v_proj.weight", mask_without(64, 64, 16, 32, 0, 0)},    // head 1: values
      {"layers.0.attn.q_proj.weight", mask_without(64, 64, 16, 24, 0, 0)},    // part of head 1's queries
      {"layers.0.attn.k_proj.weight", mask_without(64, 64, 0, 4, 0, 0)},      // 4 key rows of head 0, which stays
      {"layers.1.attn.out_proj.weight", mask_without(64, 64, 0, 0, 32, 64)},  // heads 2 and 3: output columns
  };
  bake(*masked, masks);
  const Tensor x = randn({3, 1, 28, 28}), x2 = randn({5, 1, 28, 28});
  SpeedupReport r = speedup_model(*tt, masks, {nn::Value(x)});
  auto* a0 = dynamic_cast<nn::MultiheadAttention*>(tt->find("layers.0.attn").get());
  auto* a1 = dynamic_cast<nn::MultiheadAttention*>(tt->find("layers.1.attn").get());
  BOOST_TEST(a0->num_heads == 3);
  BOOST_TEST(a1->num_heads == 2);
  BOOST_TEST(a0->head_dim == 16);
  for (const char* proj : {"q_proj", "k_proj", "v_proj"}) {
    BOOST_TEST(a0->find(proj)->param("weight").shape() == (Shape{48, 64}));
    BOOST_TEST(a1->find(proj)->param("bias").shape() == (Shape{32}));
  }
  BOOST_TEST(a0->out_proj->param("weight").shape() == (Shape{64, 48}));
  BOOST_TEST(a1->out_proj->param("weight").shape() == (Shape{64, 32}));
  BOOST_TEST(r.deviation < 1e-5, "deviation " << r.deviation);
  const Tensor expected = logits(*masked, x2), sped = logits(*tt, x2);
  BOOST_TEST(relative_gap(expected, sped) < 1e-5);
  BOOST_REQUIRE(r.notes.size() == 1u);
  BOOST_TEST(r.notes[0].find("layers.0.attn.k_proj: 4 masked rows stay") == 0u, r.notes[0]);
  bool listed = false;
  for (const LayerChange& c : r.layers)
    listed |= c.module == "layers.1.attn" && c.type == "MultiheadAttention" && c.out_before == 4 && c.out_after == 2;
  BOOST_TEST(listed);

  const std::string file = (std::filesystem::temp_directory_path() / "shrink_speedup_heads.safetensors").string();
  models::save_model_file(file, *tt, "tiny_transformer");
  auto loaded = models::load_model_file(file);
  std::filesystem::remove(file);
  BOOST_TEST(relative_gap(sped, logits(*loaded, x2)) == 0.0);

  // Head masks from a pruner: L1 over blocks of one head's value rows.
  auto tt3 = models::make_model("tiny_transformer");
  Masks blocks = l1_masks(*tt3, tt3, R"([{"op_names_re": ["layers\\.[0-9]+\\.attn\\.v_proj"], "sparse_ratio": 0.5,
                                         "granularity": [16, -1]}])", x, false);
  SpeedupReport r3 = speedup_model(*tt3, blocks, {nn::Value(x)});
  for (const char* name : {"layers.0.attn", "layers.1.attn"})
    BOOST_TEST(dynamic_cast<nn::MultiheadAttention*>(tt3->find(name).get())->num_heads == 2);
  BOOST_TEST(r3.notes.empty());
  BOOST_TEST(r3.deviation < 1e-5, "deviation " << r3.deviation);
}

// Heads cannot go when something reads the attention's inner values (its averaged weights, or its
// value projection called again), nor all of them; each is refused before anything changes.
BOOST_AUTO_TEST_CASE(attention_heads_refused) {
  manual_seed(22);
  const Tensor x = randn({2, 4, 8});
  auto reader = std::make_shared<AttentionModel>(AttentionModel::kReadsWeights);
  const Masks head0{{"attn.v_proj.weight", mask_without(8, 8, 0, 4, 0, 0)}};
  std::vector<std::string> why = speedup_preflight(*reader, head0, {nn::Value(x)});
  BOOST_REQUIRE(why.size() == 1u);
  BOOST_TEST(why[0].find("reads an inner value of 'attn'") != std::string::npos, why[0]);
  BOOST_CHECK_THROW(speedup_model(*reader, head0, {nn::Value(x)}), Error);
  BOOST_TEST(reader->attn->num_heads == 2);

  auto reuser = std::make_shared<AttentionModel>(AttentionModel::kReusesValues);
  why = speedup_preflight(*reuser, head0, {nn::Value(x)});
  BOOST_REQUIRE(why.size() == 1u);
  BOOST_TEST(why[0].find("reads an inner value of 'attn'") != std::string::npos, why[0]);

  auto plain = std::make_shared<AttentionModel>(AttentionModel::kPlain);
  BOOST_TEST(speedup_preflight(*plain, head0, {nn::Value(x)}).empty());
  const Masks every{{"attn.out_proj.weight", mask_without(8, 8, 0, 0, 0, 8)}};
  why = speedup_preflight(*plain, every, {nn::Value(x)});
  BOOST_REQUIRE(why.size() == 1u);
  BOOST_TEST(why[0].find("every head") != std::string::npos, why[0]);
}

// Review regressions: a Linear on a rank-4 value (its features are the last dim, not dim 1) keeps its
// size and bias while a later layer is pruned; a conv pruned to empty feeding another conv is
// refused in the list, not a crash.
BOOST_AUTO_TEST_CASE(rank4_linear_and_empty_layer) {
  class Rank4 : public nn::Module {
   public:
    Rank4() {
      conv = register_module("conv", std::make_shared<nn::Conv2d>(1, 4, 3));
      mix = register_module("mix", std::make_shared<nn::Linear>(4, 32));
      fc1 = register_module("fc1", std::make_shared<nn::Linear>(4 * 4 * 32, 16));
      fc2 = register_module("fc2", std::make_shared<nn::Linear>(16, 3));
    }
    std::string type_name() const override { return "Rank4"; }
    std::shared_ptr<nn::Conv2d> conv;
    std::shared_ptr<nn::Linear> mix, fc1, fc2;

   protected:
    nn::Value forward(const std::vector<nn::Value>& in) override {
      return (*fc2)(relu((*fc1)(flatten(relu((*mix)((*conv)(input_tensor(in, 0)))), 1))));
    }
  };
  manual_seed(12);
  auto m = std::make_shared<Rank4>();
  const Tensor x = randn({2, 1, 6, 6});
  Masks masks = l1_masks(*m, m, R"([{"op_names": ["fc1"], "sparse_ratio": 0.5}])", x, false);
  const std::vector<float> mix_bias = m->mix->param("bias").to_vector();
  SpeedupReport r = speedup_model(*m, masks, {nn::Value(x)});
  BOOST_TEST(m->mix->param("weight").shape() == (Shape{32, 4}));
  BOOST_TEST(m->mix->param("bias").to_vector() == mix_bias);
  BOOST_TEST(m->fc1->param("weight").shape() == (Shape{8, 512}));
  BOOST_TEST(r.deviation < 1e-5, "deviation " << r.deviation);

  auto chain = std::make_shared<nn::Sequential>();
  chain->push_back("a", std::make_shared<nn::Conv2d>(1, 4, 3));
  chain->push_back("b", std::make_shared<nn::Conv2d>(4, 2, 3));
  Masks empty{{"a.weight", Tensor::zeros({4, 1, 3, 3})}};
  const std::vector<std::string> why = speedup_preflight(*chain, empty, {nn::Value(randn({1, 1, 8, 8}))});
  BOOST_REQUIRE(!why.empty());
  BOOST_TEST(why[0].find("empty") != std::string::npos, why[0]);
}

// DECISIONS 17: pruned channels reaching an op speedup cannot carry them through are refused
// before anything changes, naming the op.
BOOST_AUTO_TEST_CASE(preflight_refuses_and_changes_nothing) {
  class Reduce : public nn::Module {
   public:
    Reduce() {
      conv = register_module("conv", std::make_shared<nn::Conv2d>(1, 4, 3));
      fc = register_module("fc", std::make_shared<nn::Linear>(36, 2));
    }
    std::string type_name() const override { return "Reduce"; }
    std::shared_ptr<nn::Conv2d> conv;
    std::shared_ptr<nn::Linear> fc;

   protected:
    nn::Value forward(const std::vector<nn::Value>& in) override {
      return (*fc)(flatten(sum((*conv)(in[0].tensor()), {1}), 1));  // channels summed away
    }
  };
  manual_seed(7);
  auto model = std::make_shared<Reduce>();
  const Tensor x = randn({2, 1, 8, 8});
  Masks masks = l1_masks(*model, model, R"([{"op_names": ["conv"], "sparse_ratio": 0.5}])", x, false);
  const auto before = model->find("conv")->param("weight").to_vector();
  const std::vector<std::string> why = speedup_preflight(*model, masks, {nn::Value(x)});
  BOOST_REQUIRE_EQUAL(why.size(), 1u);
  BOOST_TEST(why[0].find("Sum") != std::string::npos, why[0]);
  BOOST_CHECK_THROW(speedup_model(*model, masks, {nn::Value(x)}), Error);
  BOOST_TEST(model->find("conv")->param("weight").to_vector() == before);
  // An activation mask is refused too.
  Masks act{{"conv._output_0", Tensor::ones({4, 6, 6})}};
  BOOST_TEST(!speedup_preflight(*model, act, {nn::Value(x)}).empty());
}

// A model file holds the new sizes: it loads as the sped-up model without the original sizes, and
// `shrink speedup` writes one (with --json's report) from a weights and a masks file.
BOOST_AUTO_TEST_CASE(model_file_round_trip_and_cli) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("shrink_speedup_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  manual_seed(8);
  auto model = models::make_model("vgg_small");
  const Tensor x = randn({2, 1, 28, 28});
  io::save_safetensors((dir / "w.safetensors").string(), model->state_dict());
  Masks masks = l1_masks(*model, model, R"([{"op_types": ["Conv2d", "BatchNorm2d"],
      "exclude_op_names": ["features.conv1", "features.bn1"], "sparse_ratio": 0.25, "granularity": "out_channel"}])",
                         x, true);
  save_masks((dir / "m.safetensors").string(), masks);
  speedup_model(*model, masks, {nn::Value(x)});
  models::save_model_file((dir / "sped.safetensors").string(), *model, "vgg_small");
  auto loaded = models::load_model_file((dir / "sped.safetensors").string());
  model->eval();
  loaded->eval();
  NoGradGuard ng;
  BOOST_TEST((*loaded)(x).to_vector() == (*model)(x).to_vector());
  BOOST_TEST(loaded->find("features.conv4")->param("weight").shape() == (Shape{48, 48, 3, 3}));
  BOOST_CHECK_THROW(models::load_model_file((dir / "w.safetensors").string()), Error);  // plain weights

  auto r = testing::run_cli("speedup", "--model vgg_small --weights " + (dir / "w.safetensors").string() + " --masks " +
                                           (dir / "m.safetensors").string() + " --save " +
                                           (dir / "cli.safetensors").string() + " --data /nonexistent --json");
  BOOST_REQUIRE_EQUAL(r.status, 0);
  boost::json::value v = boost::json::parse(r.out);
  BOOST_TEST(v.at("params_after").to_number<int64_t>() < v.at("params_before").to_number<int64_t>());
  BOOST_TEST(v.at("layers").at("features.conv4").at("out_after").to_number<int64_t>() == 48);
  BOOST_TEST(v.at("deviation").to_number<double>() < 1e-5);
  // conv4 keeps 48 of 64 outputs and 48 of 64 inputs: the sped-up layer has (48*48)/(64*64) of the
  // weights; the masked count (rows removed, every input column still there) 48/64.
  const auto& c4 = v.at("counts").at("features.conv4");
  BOOST_TEST(c4.at("params").to_number<int64_t>() == 64 * 64 * 9);
  BOOST_TEST(c4.at("masked_params").to_number<int64_t>() == 48 * 64 * 9);
  BOOST_TEST(c4.at("sped_up_params").to_number<int64_t>() == 48 * 48 * 9);
  BOOST_TEST(c4.at("sped_up_macs").to_number<int64_t>() == 48 * 48 * 9 * 14 * 14);
  auto from_cli = models::load_model_file((dir / "cli.safetensors").string());
  BOOST_TEST(from_cli->find("features.conv4")->param("weight").shape() == (Shape{48, 48, 3, 3}));
  fs::remove_all(dir);
}

namespace {
// [B, L, 6] -> Linear(6, 8) -> attention(8, 2 heads) -> Linear(8, 3).
class ProjectedAttention : public nn::Module {
 public:
  ProjectedAttention() {
    pre = register_module("pre", std::make_shared<nn::Linear>(6, 8));
    attn = register_module("attn", std::make_shared<nn::MultiheadAttention>(8, 2));
    fc = register_module("fc", std::make_shared<nn::Linear>(8, 3));
  }
  std::string type_name() const override { return "ProjectedAttention"; }
  std::shared_ptr<nn::Linear> pre, fc;
  std::shared_ptr<nn::MultiheadAttention> attn;

 protected:
  nn::Value forward(const std::vector<nn::Value>& in) override {
    const Tensor h = (*pre)(input_tensor(in, 0));
    return (*fc)((*attn)(std::vector<nn::Value>{h, h, h}).items().at(0).tensor());
  }
};
}  // namespace

// An attention whose input lost channels (their constants folded into the q/k/v biases) while it
// also loses a head: its width and head count follow its projections.
BOOST_AUTO_TEST_CASE(attention_with_removed_input_channels) {
  manual_seed(25);
  auto m = std::make_shared<ProjectedAttention>(), masked = std::make_shared<ProjectedAttention>();
  masked->load_state_dict(m->state_dict());
  const Masks masks{{"pre.weight", mask_without(8, 6, 0, 2, 0, 0)}, {"attn.v_proj.weight", mask_without(8, 8, 4, 8, 0, 0)}};
  bake(*masked, masks);
  SpeedupReport r = speedup_model(*m, masks, {nn::Value(randn({2, 5, 6}))});
  BOOST_TEST(m->attn->embed_dim == 6);
  BOOST_TEST(m->attn->num_heads == 1);
  BOOST_TEST(m->attn->q_proj->param("weight").shape() == (Shape{4, 6}));
  BOOST_TEST(m->attn->out_proj->param("weight").shape() == (Shape{8, 4}));
  BOOST_TEST(r.deviation < 1e-5, "deviation " << r.deviation);
  const Tensor x2 = randn({3, 7, 6});
  BOOST_TEST(relative_gap(logits(*masked, x2), logits(*m, x2)) < 1e-5);
}

namespace {

// Token ids [B, T] -> Embedding(10, 8) -> Linear(8, 12) -> LayerNorm(12) -> GELU -> Linear(12, 3).
class TokenModel : public nn::Module {
 public:
  TokenModel() {
    emb = register_module("emb", std::make_shared<nn::Embedding>(10, 8));
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(8, 12));
    norm = register_module("norm", std::make_shared<nn::LayerNorm>(Shape{12}));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(12, 3));
    NoGradGuard ng;  // a trained-looking norm, so that its weight and bias matter
    norm->parameter("weight").copy_(add(randn({12}), 1.f));
    norm->parameter("bias").copy_(randn({12}));
  }
  std::string type_name() const override { return "TokenModel"; }
  std::shared_ptr<nn::Embedding> emb;
  std::shared_ptr<nn::Linear> fc1, fc2;
  std::shared_ptr<nn::LayerNorm> norm;

 protected:
  nn::Value forward(const std::vector<nn::Value>& in) override {
    return (*fc2)(gelu((*norm)((*fc1)((*emb)(input_tensor(in, 0))))));
  }
};

Tensor tokens(int64_t b, int64_t t, int64_t seed) {
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < b * t; ++i) ids.push_back((i * 7 + seed * 3 + i / 5) % 10);
  return Tensor::from_vector_i64(ids, {b, t});
}

Tensor ones_but(int64_t n, std::initializer_list<int64_t> zero) {
  std::vector<float> m(static_cast<size_t>(n), 1.f);
  for (int64_t z : zero) m[static_cast<size_t>(z)] = 0.f;
  return Tensor::from_vector(m, {n});
}

}  // namespace

// Embedding features go with their weight columns (a masked single element stays); a LayerNorm
// loses the features its input lost where its weight is masked, and still counts their constants
// in its mean and variance, so the kept features come out exactly as before. Checked against the
// masked model on other tokens.
BOOST_AUTO_TEST_CASE(embedding_and_layer_norm) {
  manual_seed(23);
  auto m = std::make_shared<TokenModel>(), masked = std::make_shared<TokenModel>();
  masked->load_state_dict(m->state_dict());
  std::vector<float> e = mul(mask_without(10, 8, 0, 0, 2, 3), mask_without(10, 8, 0, 0, 5, 6)).to_vector();
  e[1] = 0.f;  // row 0, column 1: not a whole column, so it stays (as a zero)
  const Tensor emb_mask = Tensor::from_vector(e, {10, 8});
  const Masks masks{{"emb.weight", emb_mask},
                    {"fc1.weight", mask_without(12, 8, 0, 4, 0, 0)},
                    {"norm.weight", ones_but(12, {0, 1, 2, 3})},
                    {"norm.bias", ones_but(12, {0, 1})}};
  bake(*masked, masks);
  SpeedupReport r = speedup_model(*m, masks, {nn::Value(tokens(2, 5, 1))});
  BOOST_TEST(m->emb->param("weight").shape() == (Shape{10, 6}));
  BOOST_TEST(m->emb->embedding_dim == 6);
  BOOST_TEST(m->fc1->param("weight").shape() == (Shape{8, 6}));
  BOOST_TEST(m->norm->normalized_shape == (Shape{8}));
  BOOST_TEST(m->norm->removed == 4);
  BOOST_TEST(m->norm->param("bias").shape() == (Shape{8}));
  BOOST_TEST(m->fc2->param("weight").shape() == (Shape{3, 8}));
  BOOST_TEST(r.deviation < 1e-5, "deviation " << r.deviation);
  const Tensor t2 = tokens(4, 6, 2);
  BOOST_TEST(relative_gap(logits(*masked, t2), logits(*m, t2)) < 1e-5);
  // The LayerNorm's statistics over 12 features, 4 of them fc1's removed biases: a plain LayerNorm
  // over the 8 kept ones would differ.
  m->norm->removed = 0;
  BOOST_TEST(relative_gap(logits(*masked, t2), logits(*m, t2)) > 1e-3);
}

// A removed feature whose LayerNorm weight is not masked would come back, varying with the input:
// refused, naming the feature.
BOOST_AUTO_TEST_CASE(layer_norm_with_unmasked_weight_refused) {
  manual_seed(24);
  auto m = std::make_shared<TokenModel>();
  const Masks masks{{"fc1.weight", mask_without(12, 8, 0, 4, 0, 0)}, {"norm.weight", ones_but(12, {0, 1, 3})}};
  const std::vector<std::string> why = speedup_preflight(*m, masks, {nn::Value(tokens(2, 5, 1))});
  BOOST_REQUIRE(why.size() == 1u);
  BOOST_TEST(why[0].find("removed feature 2 is normalised with an unmasked weight") != std::string::npos, why[0]);
}

BOOST_AUTO_TEST_SUITE_END()
