#include "compression/distillation/distiller.h"

#include <algorithm>
#include <limits>

#include "compression/config/config_error.h"
#include "compression/config/config_list.h"
#include "framework/core/autograd.h"
#include "framework/ops/ops.h"
#include "framework/train/trainer.h"

namespace shrink::compression {

namespace {

std::vector<std::string> link_names(const TargetSpace& s) {
  std::vector<std::string> out;
  for (const auto& v : s.settings.at("link").as_array()) out.emplace_back(v.as_string());
  return out;
}

}  // namespace

Distiller::Distiller(Host student, const boost::json::value& config_list, train::Trainer& trainer,
                     std::shared_ptr<nn::Module> teacher, TeacherPredict teacher_predict, float origin_loss_lambda,
                     float temperature, const char* who)
    : Compressor(std::move(student), CompressorKind::Distillation, &trainer, who), teacher_(std::move(teacher)),
      teacher_predict_(std::move(teacher_predict)), origin_loss_lambda_(origin_loss_lambda), temperature_(temperature) {
  SHRINK_CHECK(teacher_, who_, ": the teacher must be given");
  SHRINK_CHECK(model_ != teacher_, who_, ": the teacher must be another model than the student");
  SHRINK_CHECK(temperature_ > 0.f, who_, ": temperature must be > 0, got ", temperature_);
  const std::vector<TargetSpace> spaces =
      config::parse_config_list(*model_, config_list, CompressorKind::Distillation, &warnings_);
  // The teacher side: the same target name on every linked teacher module.
  std::vector<TargetSpace> teacher_spaces;
  for (const TargetSpace& s : spaces)
    for (const std::string& name : link_names(s)) {
      auto m = teacher_->find(name);
      if (!m)
        throw config::ConfigError(config::sub_config_path(s.config_index) + ".link",
                                  "the teacher has no module '" + name + "' (linked from student '" + s.module_name + "')");
      TargetSpace t = s;
      t.module_name = name;
      t.module_type = m->type_name();
      teacher_spaces.push_back(std::move(t));
    }
  add_targets(spaces);
  teacher_wrappers_ = make_wrappers(*teacher_, teacher_spaces, CompressorKind::Distillation);
  for (const TargetSpace& s : spaces) {
    Link link;
    link.student = wrapper(s.module_name).find(s.target_name);
    for (const std::string& name : link_names(s)) link.teacher.push_back(teacher_wrappers_.at(name)->find(s.target_name));
    links_.push_back(std::move(link));
  }
  for (auto& [n, w] : teacher_wrappers_) w->wrap();
  teacher_->eval();
  hooks().patch_loss([this](const Tensor& loss, const data::Batch& batch) {
    if (!teacher_from_cache(batch)) {
      run_teacher(batch);
      store_in_cache(batch);
    }
    Tensor d = distill_loss();
    clear();
    Tensor total = origin_loss_lambda_ == 1.f ? loss : mul(loss, origin_loss_lambda_);
    return d.defined() ? add(total, d) : total;
  });
}

void Distiller::cache_teacher_outputs(int64_t num_samples) {
  SHRINK_CHECK(num_samples > 0, who_, ": the teacher cache needs the number of training samples");
  cache_samples_ = num_samples;
  cached_.assign(static_cast<size_t>(num_samples), 0);
  cache_.clear();
}

bool Distiller::teacher_from_cache(const data::Batch& batch) {
  if (cache_samples_ == 0 || !batch.indices.defined() || cache_.empty()) return false;
  const std::vector<int64_t> idx = batch.indices.to_vector_i64();
  for (int64_t i : idx)
    if (i < 0 || i >= cache_samples_ || !cached_[static_cast<size_t>(i)]) return false;
  for (const Link& l : links_)
    for (TargetState* t : l.teacher)
      if (!cache_.count(t->key())) return false;
  NoGradGuard ng;
  const Device d = teacher_->parameter_device();
  for (const Link& l : links_)
    for (TargetState* t : l.teacher) {
      const Tensor& rows = cache_.at(t->key());
      Shape shape = rows.shape();
      shape[0] = static_cast<int64_t>(idx.size());
      // Gather the batch's rows: an embedding lookup over the flattened cache.
      Tensor flat = reshape(rows, {rows.size(0), rows.numel() / rows.size(0)});
      t->observed = reshape(embedding(flat, batch.indices), shape).to(d);
    }
  return true;
}

void Distiller::store_in_cache(const data::Batch& batch) {
  if (cache_samples_ == 0 || !batch.indices.defined()) return;
  const std::vector<int64_t> idx = batch.indices.to_vector_i64();
  for (int64_t i : idx)
    SHRINK_CHECK(i >= 0 && i < cache_samples_, who_, ": sample index ", i, " is outside the teacher cache of ",
                 cache_samples_, " samples");
  for (const Link& l : links_)
    for (TargetState* t : l.teacher) {
      if (!t->observed.defined()) return;  // the teacher did not reach this target: no caching
      SHRINK_CHECK(t->observed.size(0) == static_cast<int64_t>(idx.size()), who_, ": teacher target ", t->key(),
                   " has ", t->observed.size(0), " rows for a batch of ", idx.size(),
                   " samples; the teacher cache needs one row per sample");
      Tensor& rows = cache_[t->key()];
      if (!rows.defined()) {
        Shape shape = t->observed.shape();
        shape[0] = cache_samples_;
        rows = Tensor::zeros(shape);
      }
      const int64_t per = rows.numel() / cache_samples_;
      const std::vector<float> v = t->observed.to_vector();
      float* dst = rows.data<float>();
      for (size_t k = 0; k < idx.size(); ++k)
        std::copy(v.begin() + k * per, v.begin() + (k + 1) * per, dst + idx[k] * per);
    }
  for (int64_t i : idx) cached_[static_cast<size_t>(i)] = 1;
}

void Distiller::save_state(io::StateDict& out, const std::string& prefix) {
  Compressor::save_state(out, prefix);
  out.put_int(prefix + "teacher_forwards", teacher_forwards_);
  if (cache_samples_ == 0) return;
  Tensor seen = Tensor::empty({cache_samples_}, DType::U8);
  std::copy(cached_.begin(), cached_.end(), seen.data<uint8_t>());
  out.put(prefix + "cache.seen", seen);
  for (auto& [key, rows] : cache_) out.put(prefix + "cache.rows." + key, rows);
}

void Distiller::load_state(const io::StateDict& in, const std::string& prefix) {
  Compressor::load_state(in, prefix);
  teacher_forwards_ = in.integer(prefix + "teacher_forwards");
  if (cache_samples_ == 0) return;
  Tensor seen = in.tensor(prefix + "cache.seen");
  SHRINK_CHECK(seen.dtype() == DType::U8 && seen.numel() == cache_samples_, in.source, ": the teacher cache holds ",
               seen.numel(), " samples in the checkpoint, ", cache_samples_, " in this run");
  cached_.assign(seen.data<uint8_t>(), seen.data<uint8_t>() + cache_samples_);
  cache_.clear();
  for (const Link& l : links_)
    for (TargetState* t : l.teacher) {
      Tensor rows;
      if (in.restore_if_present(prefix + "cache.rows." + t->key(), rows)) cache_[t->key()] = rows;
    }
}

void Distiller::run_teacher(const data::Batch& batch) {
  ++teacher_forwards_;
  NoGradGuard ng;
  if (teacher_predict_) teacher_predict_(batch, *teacher_);
  else (*teacher_)(batch.inputs.to(teacher_->parameter_device()));
}

void Distiller::clear() {
  for (const Link& l : links_) {
    l.student->observed = Tensor();
    for (TargetState* t : l.teacher) t->observed = Tensor();
  }
}

Tensor Distiller::term(const TargetState& student, const Tensor& s, const Tensor& t) const {
  const auto& settings = student.settings(CompressorKind::Distillation);
  const float lambda = static_cast<float>(settings.at("lambda").to_number<double>());
  const Tensor target = t.device() == s.device() ? t : t.to(s.device());  // the teacher may live elsewhere
  Tensor l = settings.at("apply_method").as_string() == "kl" ? distill_kl(s, target, temperature_)
                                                             : distill_mse(s, target);
  return lambda == 1.f ? l : mul(l, lambda);
}

Tensor Distiller::distill_loss() {
  Tensor total;
  for (const Link& l : links_) {
    Tensor d = link_loss(l);
    if (d.defined()) total = total.defined() ? add(total, d) : d;
  }
  return total;
}

void Distiller::forward_both(const std::vector<nn::Value>& inputs) {
  NoGradGuard ng;
  (*model_)(inputs);
  std::vector<nn::Value> moved = inputs;
  for (auto& v : moved)
    if (v.is_tensor()) v = nn::Value(v.tensor().to(teacher_->parameter_device()));
  (*teacher_)(moved);
}

void Distiller::track_forward(const std::vector<nn::Value>& inputs) {
  forward_both(inputs);
  clear();
}

std::shared_ptr<nn::Module> Distiller::compress(int64_t max_steps, int64_t max_epochs) {
  run_fused(max_steps, max_epochs);
  return model_;
}

void Distiller::release() {
  clear();
  for (auto& [n, w] : teacher_wrappers_) w->unwrap();
}

Tensor DynamicLayerwiseDistiller::link_loss(const Link& link) {
  if (!link.student->observed.defined()) return Tensor();
  Tensor best;
  float best_value = std::numeric_limits<float>::infinity();
  for (TargetState* t : link.teacher) {
    if (!t->observed.defined()) continue;
    Tensor l = term(*link.student, link.student->observed, t->observed);
    const float v = l.item();
    if (!best.defined() || v < best_value) {
      best = l;
      best_value = v;
    }
  }
  return best;
}

Adaptive1dLayerwiseDistiller::Adaptive1dLayerwiseDistiller(Host student,
                                                           const boost::json::value& config_list,
                                                           train::Trainer& trainer, std::shared_ptr<nn::Module> teacher,
                                                           TeacherPredict teacher_predict, float origin_loss_lambda,
                                                           float temperature)
    : Distiller(std::move(student), config_list, trainer, std::move(teacher), std::move(teacher_predict),
                origin_loss_lambda, temperature, "Adaptive1dLayerwiseDistiller") {
  for (const Link& l : links_)
    if (l.teacher.size() != 1)
      throw config::ConfigError(
          config::sub_config_path(l.student->space(CompressorKind::Distillation).config_index) + ".link",
          who_ + " links each target to exactly one teacher module; " + l.student->key() + " has " +
              std::to_string(l.teacher.size()));
}

void Adaptive1dLayerwiseDistiller::track_forward(const std::vector<nn::Value>& inputs) {
  forward_both(inputs);
  for (const Link& l : links_) {
    const TargetState& s = *l.student;
    const TargetState& t = *l.teacher.front();
    SHRINK_CHECK(s.shape_known && t.shape_known && !s.shape.empty() && !t.shape.empty(), who_, ": ", s.key(),
                 " or its teacher target was not reached by the tracking forward");
    const int64_t ds = s.shape.back(), dt = t.shape.back();
    if (ds == dt || adapters_.count(s.key())) continue;
    auto adapter = std::make_shared<nn::Linear>(ds, dt);
    adapter->to(model_->parameter_device());
    adapters_[s.key()] = adapter;
    // NNI's patch_optim_param_group: the adapter trains with the student module's group.
    hooks().trainer().add_to_param_group(s.module_name, adapter->parameters());
  }
  clear();
  tracked_ = true;
}

std::shared_ptr<nn::Linear> Adaptive1dLayerwiseDistiller::adapter(const std::string& key) const {
  auto it = adapters_.find(key);
  return it == adapters_.end() ? nullptr : it->second;
}

Tensor Adaptive1dLayerwiseDistiller::link_loss(const Link& link) {
  SHRINK_CHECK(tracked_, who_, ": call track_forward() with a sample input before training (it sizes the adapters)");
  TargetState* t = link.teacher.front();
  if (!link.student->observed.defined() || !t->observed.defined()) return Tensor();
  Tensor s = link.student->observed;
  if (auto a = adapter(link.student->key())) s = (*a)(s);
  return term(*link.student, s, t->observed);
}

std::unique_ptr<Distiller> make_distiller(const std::string& name, Host student, const boost::json::value& config_list,
                                          train::Trainer& trainer, std::shared_ptr<nn::Module> teacher,
                                          float origin_loss_lambda, float temperature) {
  if (name == "dynamic")
    return std::make_unique<DynamicLayerwiseDistiller>(std::move(student), config_list, trainer, std::move(teacher),
                                                       nullptr, origin_loss_lambda, temperature);
  if (name == "adaptive1d")
    return std::make_unique<Adaptive1dLayerwiseDistiller>(std::move(student), config_list, trainer, std::move(teacher),
                                                          nullptr, origin_loss_lambda, temperature);
  fail("unknown distiller '", name, "' (dynamic | adaptive1d)");
}

}  // namespace shrink::compression
