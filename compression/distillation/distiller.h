// Knowledge distillation (nni-semantics §5): a student learns from a teacher's hidden states.
//
// Each config target of the student (default `_output_0` of the selected modules) is linked to
// teacher modules (`link`, default the student module's own name) and observed on both sides by
// wrappers: the student's value keeps its gradient, the teacher runs under no-grad. Through the
// trainer's loss patch every training step computes
//     loss' = origin_loss_lambda * loss + distill_loss
// after the student's forward: the teacher runs on the same batch (teacher_predict), the
// distiller's loss is computed from the observed pairs, and the observations are cleared.
// Per target: `lambda` (float; an integer is accepted, DECISIONS row 19) and `apply_method`:
//     mse  distill_mse(student, teacher)
//     kl   distill_kl(student, teacher, T) — softmax over the last dim, batchmean, times T^2;
//          NNI fixes T = 2, here 2 is the default of `temperature`.
//   DynamicLayerwiseDistiller:    sum over targets of min over links of lambda * L
//   Adaptive1dLayerwiseDistiller: one link per target; when the last dims differ a trainable
//     Linear(d_student, d_teacher) maps the student's value first. The adapters are made from the
//     shapes that track_forward() records (required before compress()) and join the optimizer.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "compression/common/compressor.h"
#include "framework/nn/layers.h"

namespace shrink::compression {

class Distiller : public Compressor {
 public:
  // Runs the teacher on a batch; the default calls teacher(batch.inputs) on the teacher's device.
  using TeacherPredict = std::function<void(const data::Batch& batch, nn::Module& teacher)>;

  ~Distiller() override { release(); }

  // Trains the student with the distillation loss for max_steps steps / max_epochs epochs (the
  // newest of a fused run trains every compressor of it).
  std::shared_ptr<nn::Module> compress(int64_t max_steps, int64_t max_epochs);
  // One student and teacher forward without gradient: records the targets' shapes.
  virtual void track_forward(const std::vector<nn::Value>& inputs);
  // The distillation term of the current observations (what the loss patch adds).
  Tensor distill_loss();
  // Offline teacher labels (NNI contrib's label patcher): keep every teacher value per training
  // sample (keyed by Batch::indices, `num_samples` = the training set's size, kept in host
  // memory), so a batch whose samples were all seen skips the teacher's forward. Only for a
  // deterministic teacher (eval mode, no dropout) and inputs that do not change between epochs.
  // A cached value is the teacher's output for that sample computed within another batch: equal
  // to recomputing it up to the rounding differences a different batch composition can give.
  void cache_teacher_outputs(int64_t num_samples);
  int64_t teacher_forwards() const { return teacher_forwards_; }
  float temperature() const { return temperature_; }
  // Checkpoints carry the teacher cache (as big as it is) and the forward count, so a resumed run
  // takes the same teacher values as one that was never stopped.
  void save_state(io::StateDict& out, const std::string& prefix) override;
  void load_state(const io::StateDict& in, const std::string& prefix) override;

 protected:
  struct Link {
    TargetState* student = nullptr;
    std::vector<TargetState*> teacher;  // one per link name
  };

  Distiller(Host student, const boost::json::value& config_list, train::Trainer& trainer,
            std::shared_ptr<nn::Module> teacher, TeacherPredict teacher_predict, float origin_loss_lambda,
            float temperature, const char* who);
  // One target's term against one teacher value (apply_method and lambda).
  Tensor term(const TargetState& student, const Tensor& student_value, const Tensor& teacher_value) const;
  // The distiller's combination of its links (Dynamic: min over links; Adaptive1d: adapter).
  virtual Tensor link_loss(const Link& link) = 0;
  // Drops every observed value (after each loss, and after a tracking forward).
  void clear();
  // The student's and the teacher's forward without gradient (shapes recorded, values observed).
  void forward_both(const std::vector<nn::Value>& inputs);
  // Drops the observations and takes the wrappers off the teacher.
  void release() override;

  std::shared_ptr<nn::Module> teacher_;
  WrapperMap teacher_wrappers_;
  std::vector<Link> links_;

 private:
  void run_teacher(const data::Batch& batch);

  // Fills the teacher targets from the cache when every sample of `batch` is there.
  bool teacher_from_cache(const data::Batch& batch);
  void store_in_cache(const data::Batch& batch);

  TeacherPredict teacher_predict_;
  float origin_loss_lambda_, temperature_;
  int64_t teacher_forwards_ = 0;
  // Teacher cache: per teacher target (by key), [num_samples, rest...] in host memory.
  int64_t cache_samples_ = 0;
  std::vector<uint8_t> cached_;  // per sample: seen
  std::map<std::string, Tensor> cache_;
};

class DynamicLayerwiseDistiller : public Distiller {
 public:
  DynamicLayerwiseDistiller(Host student, const boost::json::value& config_list,
                            train::Trainer& trainer, std::shared_ptr<nn::Module> teacher,
                            TeacherPredict teacher_predict = nullptr, float origin_loss_lambda = 1.f,
                            float temperature = 2.f)
      : Distiller(std::move(student), config_list, trainer, std::move(teacher), std::move(teacher_predict),
                  origin_loss_lambda, temperature, "DynamicLayerwiseDistiller") {}

 protected:
  Tensor link_loss(const Link& link) override;
};

class Adaptive1dLayerwiseDistiller : public Distiller {
 public:
  Adaptive1dLayerwiseDistiller(Host student, const boost::json::value& config_list,
                               train::Trainer& trainer, std::shared_ptr<nn::Module> teacher,
                               TeacherPredict teacher_predict = nullptr, float origin_loss_lambda = 1.f,
                               float temperature = 2.f);
  void track_forward(const std::vector<nn::Value>& inputs) override;
  // The adapter of a student target ("<module>.<target>"), null when the dims already match.
  std::shared_ptr<nn::Linear> adapter(const std::string& key) const;

 protected:
  Tensor link_loss(const Link& link) override;

 private:
  std::map<std::string, std::shared_ptr<nn::Linear>> adapters_;
  bool tracked_ = false;
};

// `name`: dynamic | adaptive1d (for programs; throws for another name).
std::unique_ptr<Distiller> make_distiller(const std::string& name, Host student, const boost::json::value& config_list,
                                          train::Trainer& trainer, std::shared_ptr<nn::Module> teacher,
                                          float origin_loss_lambda = 1.f, float temperature = 2.f);

}  // namespace shrink::compression
