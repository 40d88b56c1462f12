// The model zoo. Module names and shapes are part of the contract: compression configs, tests
// and PyTorch fixtures address layers by these dotted names.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "framework/nn/containers.h"
#include "framework/nn/layers.h"

namespace shrink::models {

struct ModelOptions {
  int64_t in_channels = 1;
  int64_t image_size = 28;
  int64_t num_classes = 10;
};

// mlp, lenet5, vgg_small, resnet20, tiny_transformer.
std::shared_ptr<nn::Module> make_model(const std::string& name, const ModelOptions& opt = {});
std::vector<std::string> model_names();

class MLP : public nn::Module {
 public:
  explicit MLP(const ModelOptions& opt);
  std::string type_name() const override { return "MLP"; }

 protected:
  nn::Value forward(const std::vector<nn::Value>& inputs) override;

 private:
  std::shared_ptr<nn::Linear> fc1_, fc2_, fc3_;
  std::shared_ptr<nn::ReLU> relu1_, relu2_;
};

class LeNet5 : public nn::Module {
 public:
  explicit LeNet5(const ModelOptions& opt);
  std::string type_name() const override { return "LeNet5"; }

 protected:
  nn::Value forward(const std::vector<nn::Value>& inputs) override;

 private:
  std::shared_ptr<nn::Conv2d> conv1_, conv2_;
  std::shared_ptr<nn::MaxPool2d> pool1_, pool2_;
  std::shared_ptr<nn::Linear> fc1_, fc2_, fc3_;
  std::shared_ptr<nn::ReLU> relu1_, relu2_, relu3_, relu4_;
};

class VGGSmall : public nn::Module {
 public:
  explicit VGGSmall(const ModelOptions& opt, int64_t width = 32);
  std::string type_name() const override { return "VGGSmall"; }
  std::shared_ptr<nn::Sequential> features, classifier;

 protected:
  nn::Value forward(const std::vector<nn::Value>& inputs) override;
};

class BasicBlock : public nn::Module {
 public:
  BasicBlock(int64_t in, int64_t out, int64_t stride);
  std::string type_name() const override { return "BasicBlock"; }

 protected:
  nn::Value forward(const std::vector<nn::Value>& inputs) override;

 private:
  std::shared_ptr<nn::Conv2d> conv1_, conv2_;
  std::shared_ptr<nn::BatchNorm2d> bn1_, bn2_;
  std::shared_ptr<nn::ReLU> relu_;
  std::shared_ptr<nn::Sequential> downsample_;
};

class ResNet20 : public nn::Module {
 public:
  explicit ResNet20(const ModelOptions& opt);
  std::string type_name() const override { return "ResNet20"; }

 protected:
  nn::Value forward(const std::vector<nn::Value>& inputs) override;

 private:
  std::shared_ptr<nn::Conv2d> conv1_;
  std::shared_ptr<nn::BatchNorm2d> bn1_;
  std::shared_ptr<nn::ReLU> relu_;
  std::shared_ptr<nn::Sequential> layer1_, layer2_, layer3_;
  std::shared_ptr<nn::AdaptiveAvgPool2d> avgpool_;
  std::shared_ptr<nn::Linear> fc_;
};

// Post-norm encoder layer as torch.nn.TransformerEncoderLayer(norm_first=False, GELU).
class EncoderLayer : public nn::Module {
 public:
  EncoderLayer(int64_t dim, int64_t heads, int64_t hidden);
  std::string type_name() const override { return "EncoderLayer"; }

 protected:
  nn::Value forward(const std::vector<nn::Value>& inputs) override;

 private:
  std::shared_ptr<nn::MultiheadAttention> attn_;
  std::shared_ptr<nn::LayerNorm> norm1_, norm2_;
  std::shared_ptr<nn::Sequential> ffn_;
};

class TinyTransformer : public nn::Module {
 public:
  explicit TinyTransformer(const ModelOptions& opt);
  std::string type_name() const override { return "TinyTransformer"; }
  static constexpr int64_t kPatch = 4, kDim = 64, kHeads = 4, kHidden = 128, kLayers = 2;

 protected:
  nn::Value forward(const std::vector<nn::Value>& inputs) override;

 private:
  int64_t in_channels_, grid_;
  std::shared_ptr<nn::Linear> embed_, head_;
  std::shared_ptr<nn::ModuleList> layers_;
};

}  // namespace shrink::models
