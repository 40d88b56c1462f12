#include "models/model_file.h"

#include <boost/json.hpp>

#include "framework/io/safetensors.h"
#include "framework/nn/layers.h"
#include "models/zoo.h"

namespace shrink::models {

namespace {

const char* kModel = "shrink.model";
const char* kArchitecture = "shrink.architecture";

// Sets a layer's size fields and gives its parameters (and statistics) zeros of the new shapes,
// which load_state_dict then fills.
void resize(nn::Module& m, const boost::json::object& d, const std::string& where) {
  auto num = [&](const char* key) {
    SHRINK_CHECK(d.contains(key) && d.at(key).is_int64(), where, ": missing integer '", key, "'");
    return d.at(key).as_int64();
  };
  auto reshape = [&](const char* name, Shape s) {
    if (m.has_parameter(name) && m.param(name).defined()) m.set_parameter(name, Tensor::zeros(s).set_requires_grad(true));
    else if (m.has_buffer(name) && m.buffer(name).defined()) m.set_buffer(name, Tensor::zeros(s));
  };
  const std::string type(d.at("type").as_string());
  SHRINK_CHECK(type == m.type_name(), where, ": the file says ", type, ", the model has a ", m.type_name());
  if (auto* conv = dynamic_cast<nn::Conv2d*>(&m)) {
    conv->in_channels = num("in_channels");
    conv->out_channels = num("out_channels");
    conv->groups = num("groups");
    SHRINK_CHECK(conv->groups > 0 && conv->in_channels % conv->groups == 0, where, ": groups ", conv->groups,
                 " does not divide ", conv->in_channels, " input channels");
    reshape("weight", {conv->out_channels, conv->in_channels / conv->groups, conv->kernel_size, conv->kernel_size});
    if (m.has_parameter("bias") && !m.param("bias").defined() && d.contains("bias") && d.at("bias").as_bool())
      m.set_parameter("bias", Tensor::zeros({conv->out_channels}).set_requires_grad(true));
    reshape("bias", {conv->out_channels});
  } else if (auto* lin = dynamic_cast<nn::Linear*>(&m)) {
    lin->in_features = num("in_features");
    lin->out_features = num("out_features");
    reshape("weight", {lin->out_features, lin->in_features});
    if (m.has_parameter("bias") && !m.param("bias").defined() && d.contains("bias") && d.at("bias").as_bool())
      m.set_parameter("bias", Tensor::zeros({lin->out_features}).set_requires_grad(true));
    reshape("bias", {lin->out_features});
  } else if (auto* bn = dynamic_cast<nn::BatchNorm*>(&m)) {
    bn->num_features = num("num_features");
    for (const char* name : {"weight", "bias", "running_mean", "running_var"}) reshape(name, {bn->num_features});
  } else if (auto* ln = dynamic_cast<nn::LayerNorm*>(&m)) {
    ln->normalized_shape = {num("features")};
    ln->removed = num("removed");
    SHRINK_CHECK(d.contains("removed_mean") && d.at("removed_mean").is_number() && d.contains("removed_m2") &&
                     d.at("removed_m2").is_number(),
                 where, ": missing numbers 'removed_mean' and 'removed_m2'");
    ln->removed_mean = d.at("removed_mean").to_number<double>();
    ln->removed_m2 = d.at("removed_m2").to_number<double>();
    for (const char* name : {"weight", "bias"}) reshape(name, ln->normalized_shape);
  } else if (auto* emb = dynamic_cast<nn::Embedding*>(&m)) {
    emb->num_embeddings = num("num_embeddings");
    emb->embedding_dim = num("embedding_dim");
    reshape("weight", {emb->num_embeddings, emb->embedding_dim});
  } else if (auto* mha = dynamic_cast<nn::MultiheadAttention*>(&m)) {  // its projections are layers of their own
    mha->embed_dim = num("embed_dim");
    mha->num_heads = num("num_heads");
    mha->head_dim = num("head_dim");
    SHRINK_CHECK(mha->num_heads > 0 && mha->head_dim > 0, where, ": heads and head_dim must be positive");
  } else {
    fail(where, ": a ", m.type_name(), " cannot be resized");
  }
}

}  // namespace

std::map<std::string, std::string> model_file_metadata(nn::Module& model, const std::string& zoo_name) {
  boost::json::object layers;
  for (auto& [name, m] : model.named_modules()) {
    if (auto* conv = dynamic_cast<nn::Conv2d*>(m.get()))
      layers[name] = {{"type", "Conv2d"}, {"in_channels", conv->in_channels}, {"out_channels", conv->out_channels},
                      {"groups", conv->groups}, {"bias", conv->param("bias").defined()}};
    else if (auto* lin = dynamic_cast<nn::Linear*>(m.get()))
      layers[name] = {{"type", "Linear"}, {"in_features", lin->in_features}, {"out_features", lin->out_features},
                      {"bias", lin->param("bias").defined()}};
    else if (auto* bn = dynamic_cast<nn::BatchNorm*>(m.get()))
      layers[name] = {{"type", bn->type_name()}, {"num_features", bn->num_features}};
    else if (auto* ln = dynamic_cast<nn::LayerNorm*>(m.get()); ln && ln->normalized_shape.size() == 1)
      layers[name] = {{"type", "LayerNorm"}, {"features", ln->normalized_shape[0]}, {"removed", ln->removed},
                      {"removed_mean", ln->removed_mean}, {"removed_m2", ln->removed_m2}};
    else if (auto* emb = dynamic_cast<nn::Embedding*>(m.get()))
      layers[name] = {{"type", "Embedding"}, {"num_embeddings", emb->num_embeddings},
                      {"embedding_dim", emb->embedding_dim}};
    else if (auto* mha = dynamic_cast<nn::MultiheadAttention*>(m.get()))
      layers[name] = {{"type", "MultiheadAttention"}, {"embed_dim", mha->embed_dim}, {"num_heads", mha->num_heads},
                      {"head_dim", mha->head_dim}};
  }
  boost::json::object arch{{"layers", layers}};
  return {{kModel, zoo_name}, {kArchitecture, boost::json::serialize(arch)}};
}

void save_model_file(const std::string& path, nn::Module& model, const std::string& zoo_name) {
  io::save_safetensors(path, model.state_dict(), model_file_metadata(model, zoo_name));
}

std::shared_ptr<nn::Module> load_model_file(const std::string& path, std::string* zoo_name) {
  io::SafetensorsFile f = io::load_safetensors(path);
  auto model_it = f.metadata.find(kModel), arch_it = f.metadata.find(kArchitecture);
  SHRINK_CHECK(model_it != f.metadata.end() && arch_it != f.metadata.end(), path, ": not a shrink model file (no '",
               kModel, "' and '", kArchitecture, "' in __metadata__; plain weights load with --weights)");
  auto model = make_model(model_it->second);
  boost::json::value arch;
  try {
    arch = boost::json::parse(arch_it->second);
  } catch (const std::exception& e) {
    fail(path, ": __metadata__.", kArchitecture, " is not JSON: ", e.what());
  }
  SHRINK_CHECK(arch.is_object() && arch.as_object().contains("layers") && arch.at("layers").is_object(), path,
               ": __metadata__.", kArchitecture, " has no 'layers' object");
  for (const auto& [name, d] : arch.at("layers").as_object()) {
    const std::string where = path + ": layer '" + std::string(name) + "'";
    auto m = model->find(std::string(name));
    SHRINK_CHECK(m != nullptr, where, ": the ", model_it->second, " model has no such module");
    SHRINK_CHECK(d.is_object() && d.as_object().contains("type") && d.at("type").is_string(), where,
                 ": expected an object with a 'type'");
    resize(*m, d.as_object(), where);
  }
  std::map<std::string, Tensor> state;
  for (const auto& [name, t] : f.tensors)
    if (name.find(':') == std::string::npos) state.emplace(name, t);
  model->load_state_dict(state);
  if (zoo_name) *zoo_name = model_it->second;
  return model;
}

}  // namespace shrink::models
