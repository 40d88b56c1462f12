// Channel dependencies from the traced tape (nni-semantics §3.3, §9.2 items 3 and 11): NNI's
// SimpleTorchModel config through auto_set_dependency_group_ids gives the groups written out by hand
// in kSimpleConfig and exactly the same masks; NNI's test_channel_dependency patterns; residual
// adds in resnet20, depthwise convolutions, the unrelated layers of vgg_small; errors.
#include <boost/test/unit_test.hpp>

#include "compression/config/config_error.h"
#include "compression/pruning/norm_pruners.h"
#include "compression/simple_model.h"
#include "compression/speedup/dependency.h"
#include "models/zoo.h"

using namespace shrink;
using namespace shrink::compression;

namespace {

boost::json::value cfg(const char* text) { return boost::json::parse(text); }

// Sets with more than one member, as NNI's build_channel_dependency reports them.
std::vector<std::vector<std::string>> tied_sets(nn::Module& model, const Tensor& x) {
  ChannelDependencies d = find_channel_dependencies(model, trace(model, {nn::Value(x)}));
  std::vector<std::vector<std::string>> out;
  for (auto& s : d.sets)
    if (s.size() > 1) out.push_back(s);
  return out;
}

using Sets = std::vector<std::vector<std::string>>;

// NNI's test_channel_dependency patterns: four 16-channel convs of one input, combined.
class Pattern : public nn::Module {
 public:
  explicit Pattern(char which) : which_(which) {
    for (int i = 1; i <= 4; ++i)
      conv[i] = register_module("conv" + std::to_string(i),
                                std::make_shared<nn::Conv2d>(3, which == 'B' && i == 2 ? 32 : 16, 3, 1, 1));
  }
  std::string type_name() const override { return "Pattern"; }
  std::shared_ptr<nn::Conv2d> conv[5];

 protected:
  nn::Value forward(const std::vector<nn::Value>& in) override {
    const Tensor& x = in[0].tensor();
    if (which_ == 'A') return add(cat({(*conv[1])(x), (*conv[2])(x)}, 0), cat({(*conv[3])(x), (*conv[4])(x)}, 0));
    if (which_ == 'B') return cat({(*conv[1])(x), (*conv[2])(x)}, 1);
    return add(sum((*conv[1])(x), {1}), sum((*conv[2])(x), {1}));
  }

 private:
  char which_;
};


}  // namespace

BOOST_AUTO_TEST_SUITE(dependency)

// The traced graph of lenet5: its layers in order, each op with its module, producers first.
BOOST_AUTO_TEST_CASE(trace_reads_the_tape) {
  manual_seed(1);
  auto model = models::make_model("lenet5");
  model->train(true);
  Graph g = trace(*model, {nn::Value(randn({2, 1, 28, 28}))});
  BOOST_TEST(model->is_training());  // the mode is restored
  std::vector<std::string> layers;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const GraphNode& n = g.nodes[i];
    for (int p : n.inputs) BOOST_TEST(p < static_cast<int>(i));
    if (n.kind == OpKind::Conv2d || n.kind == OpKind::Linear) layers.push_back(n.module);
  }
  BOOST_TEST(layers == (std::vector<std::string>{"conv1", "conv2", "fc1", "fc2", "fc3"}));
  const GraphNode& first = g.nodes.at(static_cast<size_t>(g.nodes_of("conv1").front()));
  BOOST_TEST(first.inputs.at(0) == GraphNode::kModelInput);
  BOOST_TEST(first.inputs.at(1) == GraphNode::kParameter);
  BOOST_TEST(first.shape == (Shape{2, 6, 28, 28}));
  BOOST_TEST(g.outputs.size() == 1u);
  BOOST_TEST(g.nodes.at(static_cast<size_t>(g.outputs[0])).shape == (Shape{2, 10}));
}

// §9.2 item 3: NNI's common.py config on SimpleTorchModel.
BOOST_AUTO_TEST_CASE(simple_model_matches_the_hand_written_groups) {
  manual_seed(4);
  auto model = std::make_shared<testing::SimpleModel>();
  const boost::json::value config = cfg(R"([
    {"op_types": ["Linear"], "exclude_op_names": ["fc2"], "sparse_ratio": 0.75, "granularity": "out_channel"},
    {"op_names": ["conv1", "conv2", "conv3"], "sparse_ratio": 0.75, "granularity": "out_channel"}])");
  boost::json::value automatic =
      auto_set_dependency_group_ids(*model, config, {nn::Value(randn({8, 1, 28, 28}))});
  std::map<std::string, boost::json::object> by_module;
  for (const auto& sub : automatic.as_array())
    by_module[std::string(sub.at("op_names").at(0).as_string())] = sub.as_object();
  BOOST_TEST(by_module.size() == 4u);
  BOOST_TEST(by_module.at("conv2").at("dependency_group_id") == by_module.at("conv3").at("dependency_group_id"));
  BOOST_TEST(by_module.at("conv1").at("dependency_group_id") != by_module.at("conv2").at("dependency_group_id"));
  BOOST_TEST(by_module.at("fc1").at("dependency_group_id") == "fc1");  // singletons get an id too
  for (const char* m : {"conv1", "conv2", "conv3"})
    BOOST_TEST(by_module.at(m).at("internal_metric_block").to_number<int64_t>() == 4, m);
  BOOST_TEST(!by_module.at("fc1").contains("internal_metric_block"));
  BOOST_TEST(by_module.at("fc1").at("sparse_ratio").to_number<double>() == 0.75);

  // The masks are exactly those of the groups written out by hand.
  Masks by_hand, automatic_masks;
  {
    L1NormPruner p(model, cfg(testing::kSimpleConfig));
    by_hand = p.compress();
  }
  {
    L1NormPruner p(model, automatic);
    automatic_masks = p.compress();
  }
  BOOST_TEST(by_hand.size() == automatic_masks.size());
  for (auto& [k, m] : by_hand) BOOST_TEST(m.to_vector() == automatic_masks.at(k).to_vector(), k);
}

// §9.2 item 11 (NNI's test_channel_dependency).
BOOST_AUTO_TEST_CASE(nni_channel_dependency_patterns) {
  const Tensor x = randn({1, 3, 8, 8});
  auto a = std::make_shared<Pattern>('A'), b = std::make_shared<Pattern>('B'), c = std::make_shared<Pattern>('C');
  BOOST_TEST(tied_sets(*a, x) == (Sets{{"conv1", "conv2"}, {"conv3", "conv4"}}));
  BOOST_TEST(tied_sets(*b, x).empty());  // concatenated channels
  BOOST_TEST(tied_sets(*c, x).empty());  // a reduction over the channels ends them
}

// Residual adds tie each stage's convolutions: the stem and every block's conv2 of layer1 (identity
// shortcuts), and per later stage the downsample conv with its blocks' conv2s.
BOOST_AUTO_TEST_CASE(resnet20_residual_sets) {
  manual_seed(1);
  auto model = models::make_model("resnet20");
  const Sets sets = tied_sets(*model, randn({1, 1, 28, 28}));
  BOOST_TEST(sets == (Sets{{"conv1", "layer1.0.conv2", "layer1.1.conv2", "layer1.2.conv2"},
                           {"layer2.0.conv2", "layer2.0.downsample.0", "layer2.1.conv2", "layer2.2.conv2"},
                           {"layer3.0.conv2", "layer3.0.downsample.0", "layer3.1.conv2", "layer3.2.conv2"}}));
  // vgg_small: a chain, nothing tied; lenet5 likewise.
  auto vgg = models::make_model("vgg_small");
  BOOST_TEST(tied_sets(*vgg, randn({1, 1, 28, 28})).empty());
}

// A depthwise convolution keeps its input's channels (and the bn between follows the conv).
BOOST_AUTO_TEST_CASE(depthwise_ties_its_input) {
  manual_seed(2);
  auto m = std::make_shared<testing::DepthwiseModel>();
  ChannelDependencies d = find_channel_dependencies(*m, trace(*m, {nn::Value(randn({1, 1, 6, 6}))}));
  BOOST_TEST(d.set_of.at("conv") == d.set_of.at("dw"));
  BOOST_TEST(d.set_of.at("bn") == d.set_of.at("conv"));
  BOOST_TEST(d.set_of.at("pw") != d.set_of.at("dw"));
  BOOST_TEST(d.block.empty());
}

BOOST_AUTO_TEST_CASE(errors_and_kept_keys) {
  auto model = std::make_shared<testing::SimpleModel>();
  const Tensor x = randn({2, 1, 28, 28});
  BOOST_CHECK_THROW(auto_set_dependency_group_ids(*model, cfg(R"([{"op_types": ["Conv2d"], "sparsity": 0.5}])"),
                                                  {nn::Value(x)}),
                    config::ConfigError);
  BOOST_CHECK_THROW(auto_set_dependency_group_ids(*model, cfg(R"([{"op_names": ["conv1"], "sparse_ratio": 7}])"),
                                                  {nn::Value(x)}),
                    config::ConfigError);
  // A sub-config's own group id is kept.
  auto out = auto_set_dependency_group_ids(
      *model, cfg(R"([{"op_names": ["conv2"], "sparse_ratio": 0.5, "dependency_group_id": "mine"}])"), {nn::Value(x)});
  BOOST_TEST(out.at(0).at("dependency_group_id") == "mine");
}

BOOST_AUTO_TEST_SUITE_END()
