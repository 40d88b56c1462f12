#include "models/zoo.h"

#include "framework/nn/fusion.h"
#include "framework/ops/ops.h"

namespace shrink::models {

using nn::Value;
using std::make_shared;

namespace {
const Tensor& single_input(const std::vector<Value>& inputs, const char* model) {
  SHRINK_CHECK(inputs.size() == 1 && inputs[0].is_tensor(), model,
               ".forward: expected one image tensor");
  const Tensor& x = inputs[0].tensor();
  SHRINK_CHECK(x.dim() == 4, model, ": expected [N, C, H, W] images, got ", x.shape());
  return x;
}
}  // namespace

MLP::MLP(const ModelOptions& o) {
  int64_t in = o.in_channels * o.image_size * o.image_size;
  fc1_ = register_module("fc1", make_shared<nn::Linear>(in, 256));
  relu1_ = register_module("relu1", make_shared<nn::ReLU>());
  fc2_ = register_module("fc2", make_shared<nn::Linear>(256, 128));
  relu2_ = register_module("relu2", make_shared<nn::ReLU>());
  fc3_ = register_module("fc3", make_shared<nn::Linear>(128, o.num_classes));
}

Value MLP::forward(const std::vector<Value>& inputs) {
  Tensor x = flatten(single_input(inputs, "mlp"), 1);
  x = (*relu1_)((*fc1_)(x));
  x = (*relu2_)((*fc2_)(x));
  return (*fc3_)(x);
}

LeNet5::LeNet5(const ModelOptions& o) {
  conv1_ = register_module("conv1", make_shared<nn::Conv2d>(o.in_channels, 6, 5, 1, 2));
  relu1_ = register_module("relu1", make_shared<nn::ReLU>());
  pool1_ = register_module("pool1", make_shared<nn::MaxPool2d>(2));
  conv2_ = register_module("conv2", make_shared<nn::Conv2d>(6, 16, 5));
  relu2_ = register_module("relu2", make_shared<nn::ReLU>());
  pool2_ = register_module("pool2", make_shared<nn::MaxPool2d>(2));
  int64_t s = ((o.image_size / 2) - 4) / 2;
  fc1_ = register_module("fc1", make_shared<nn::Linear>(16 * s * s, 120));
  relu3_ = register_module("relu3", make_shared<nn::ReLU>());
  fc2_ = register_module("fc2", make_shared<nn::Linear>(120, 84));
  relu4_ = register_module("relu4", make_shared<nn::ReLU>());
  fc3_ = register_module("fc3", make_shared<nn::Linear>(84, o.num_classes));
}

Value LeNet5::forward(const std::vector<Value>& inputs) {
  Tensor x = single_input(inputs, "lenet5");
  x = (*pool1_)((*relu1_)((*conv1_)(x)));
  x = (*pool2_)((*relu2_)((*conv2_)(x)));
  x = flatten(x, 1);
  x = (*relu3_)((*fc1_)(x));
  x = (*relu4_)((*fc2_)(x));
  return (*fc3_)(x);
}

VGGSmall::VGGSmall(const ModelOptions& o, int64_t width) {
  features = register_module("features", make_shared<nn::Sequential>());
  const int64_t widths[6] = {width, width, 2 * width, 2 * width, 4 * width, 4 * width};
  int64_t in = o.in_channels, size = o.image_size;
  for (int i = 0; i < 6; ++i) {
    std::string k = std::to_string(i + 1);
    features->push_back("conv" + k, make_shared<nn::Conv2d>(in, widths[i], 3, 1, 1, 1, 1, false));
    features->push_back("bn" + k, make_shared<nn::BatchNorm2d>(widths[i]));
    features->push_back("relu" + k, make_shared<nn::ReLU>());
    in = widths[i];
    if (i % 2 == 1) {
      features->push_back("pool" + std::to_string(i / 2 + 1), make_shared<nn::MaxPool2d>(2));
      size /= 2;
    }
  }
  classifier = register_module("classifier", make_shared<nn::Sequential>());
  classifier->push_back("fc1", make_shared<nn::Linear>(in * size * size, 256));
  classifier->push_back("relu", make_shared<nn::ReLU>());
  classifier->push_back("fc2", make_shared<nn::Linear>(256, o.num_classes));
}

Value VGGSmall::forward(const std::vector<Value>& inputs) {
  Tensor x = (*features)(single_input(inputs, "vgg_small"));
  return (*classifier)(flatten(x, 1));
}

BasicBlock::BasicBlock(int64_t in, int64_t out, int64_t stride) {
  conv1_ = register_module("conv1", make_shared<nn::Conv2d>(in, out, 3, stride, 1, 1, 1, false));
  bn1_ = register_module("bn1", make_shared<nn::BatchNorm2d>(out));
  relu_ = register_module("relu", make_shared<nn::ReLU>());
  conv2_ = register_module("conv2", make_shared<nn::Conv2d>(out, out, 3, 1, 1, 1, 1, false));
  bn2_ = register_module("bn2", make_shared<nn::BatchNorm2d>(out));
  if (stride != 1 || in != out) {
    downsample_ = register_module("downsample", make_shared<nn::Sequential>());
    downsample_->push_back(make_shared<nn::Conv2d>(in, out, 1, stride, 0, 1, 1, false));
    downsample_->push_back(make_shared<nn::BatchNorm2d>(out));
  }
}

Value BasicBlock::forward(const std::vector<Value>& inputs) {
  SHRINK_CHECK(inputs.size() == 1 && inputs[0].is_tensor(), "BasicBlock.forward: one tensor");
  const Tensor& x = inputs[0].tensor();
  // relu(bn1(conv1(x))) and relu(bn2(conv2(.)) + identity), each as fused ops where nothing
  // watches the modules (nn/fusion.h).
  Tensor out = nn::conv_batch_norm_relu(*conv1_, *bn1_, relu_.get(), x);
  return nn::conv_batch_norm_relu(*conv2_, *bn2_, relu_.get(), out,
                                  [&] { return downsample_ ? (*downsample_)(x) : x; });
}

ResNet20::ResNet20(const ModelOptions& o) {
  conv1_ = register_module("conv1", make_shared<nn::Conv2d>(o.in_channels, 16, 3, 1, 1, 1, 1, false));
  bn1_ = register_module("bn1", make_shared<nn::BatchNorm2d>(16));
  relu_ = register_module("relu", make_shared<nn::ReLU>());
  int64_t in = 16;
  auto make_layer = [&](const std::string& name, int64_t width, int64_t stride) {
    auto layer = register_module(name, make_shared<nn::Sequential>());
    for (int b = 0; b < 3; ++b) {
      layer->push_back(make_shared<BasicBlock>(in, width, b == 0 ? stride : 1));
      in = width;
    }
    return layer;
  };
  layer1_ = make_layer("layer1", 16, 1);
  layer2_ = make_layer("layer2", 32, 2);
  layer3_ = make_layer("layer3", 64, 2);
  avgpool_ = register_module("avgpool", make_shared<nn::AdaptiveAvgPool2d>(1, 1));
  fc_ = register_module("fc", make_shared<nn::Linear>(64, o.num_classes));
}

Value ResNet20::forward(const std::vector<Value>& inputs) {
  Tensor x = nn::conv_batch_norm_relu(*conv1_, *bn1_, relu_.get(), single_input(inputs, "resnet20"));
  x = (*layer3_)((*layer2_)((*layer1_)(x)));
  return (*fc_)(flatten((*avgpool_)(x), 1));
}

EncoderLayer::EncoderLayer(int64_t dim, int64_t heads, int64_t hidden) {
  attn_ = register_module("attn", make_shared<nn::MultiheadAttention>(dim, heads));
  norm1_ = register_module("norm1", make_shared<nn::LayerNorm>(Shape{dim}));
  ffn_ = register_module("ffn", make_shared<nn::Sequential>());
  ffn_->push_back("fc1", make_shared<nn::Linear>(dim, hidden));
  ffn_->push_back("act", make_shared<nn::GELU>());
  ffn_->push_back("fc2", make_shared<nn::Linear>(hidden, dim));
  norm2_ = register_module("norm2", make_shared<nn::LayerNorm>(Shape{dim}));
}

Value EncoderLayer::forward(const std::vector<Value>& inputs) {
  SHRINK_CHECK(inputs.size() == 1 && inputs[0].is_tensor(), "EncoderLayer.forward: one tensor");
  const Tensor& x = inputs[0].tensor();
  Value attn = (*attn_)(std::vector<Value>{x, x, x});
  Tensor h = (*norm1_)(add(x, attn.items().at(0).tensor()));
  return (*norm2_)(add(h, (*ffn_)(h)));
}

TinyTransformer::TinyTransformer(const ModelOptions& o) : in_channels_(o.in_channels) {
  SHRINK_CHECK(o.image_size % kPatch == 0, "tiny_transformer: image size ", o.image_size,
               " must be a multiple of the patch size ", kPatch);
  grid_ = o.image_size / kPatch;
  embed_ = register_module("embed", make_shared<nn::Linear>(o.in_channels * kPatch * kPatch, kDim));
  register_parameter("pos_embed", mul(randn({grid_ * grid_, kDim}), 0.02f));
  layers_ = register_module("layers", make_shared<nn::ModuleList>());
  for (int64_t i = 0; i < kLayers; ++i) layers_->push_back(make_shared<EncoderLayer>(kDim, kHeads, kHidden));
  head_ = register_module("head", make_shared<nn::Linear>(kDim, o.num_classes));
}

Value TinyTransformer::forward(const std::vector<Value>& inputs) {
  const Tensor& x = single_input(inputs, "tiny_transformer");
  const int64_t b = x.size(0), g = grid_, p = kPatch, c = in_channels_;
  SHRINK_CHECK(x.size(1) == c && x.size(2) == g * p && x.size(3) == g * p, "tiny_transformer: input ",
               x.shape(), " does not match [N, ", c, ", ", g * p, ", ", g * p, "]");
  // [B, C, g, p, g, p] -> [B, g, g, C, p, p] -> [B, g*g, C*p*p]: one token per patch.
  Tensor patches = reshape(permute(reshape(x, {b, c, g, p, g, p}), {0, 2, 4, 1, 3, 5}), {b, g * g, c * p * p});
  Tensor h = add((*embed_)(patches), param("pos_embed"));
  for (size_t i = 0; i < layers_->size(); ++i) h = (*(*layers_)[i])(h);
  return (*head_)(mean(h, {1}));
}

std::vector<std::string> model_names() {
  return {"mlp", "lenet5", "vgg_small", "resnet20", "tiny_transformer"};
}

std::shared_ptr<nn::Module> make_model(const std::string& name, const ModelOptions& opt) {
  if (name == "mlp") return make_shared<MLP>(opt);
  if (name == "lenet5") return make_shared<LeNet5>(opt);
  if (name == "vgg_small") return make_shared<VGGSmall>(opt);
  if (name == "resnet20") return make_shared<ResNet20>(opt);
  if (name == "tiny_transformer") return make_shared<TinyTransformer>(opt);
  std::string known;
  for (auto& n : model_names()) known += (known.empty() ? "" : ", ") + n;
  fail("unknown model '", name, "' (known: ", known, ")");
}

}  // namespace shrink::models
