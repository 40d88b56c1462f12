#include "compression/pruning/slim_pruner.h"

#include "framework/ops/ops.h"
#include "framework/train/trainer.h"

namespace shrink::compression {

SlimPruner::SlimPruner(Host host, const boost::json::value& config_list,
                       train::Trainer& trainer, int64_t training_steps, double regular_scale)
    : TrainingPruner(std::move(host), config_list, trainer, training_steps, "SlimPruner") {
  SHRINK_CHECK(training_steps > 0, "SlimPruner: training_steps must be positive, got ", training_steps);
  std::vector<Tensor> factors = add_extras("slim_factor", 1.f, [](const std::string&) { return "slim_mul"; });
  adam_ = std::make_unique<optim::Adam>(factors, 1e-2f);
  trainer.add_reduced_parameters(who_, factors);  // stepped by adam_, averaged across ranks
  hooks().before_step([this] { adam_->step(); });
  hooks().after_step([this] { adam_->zero_grad(); });
  if (factors.empty()) return;
  const float scale = static_cast<float>(regular_scale) / static_cast<float>(factors.size());
  hooks().patch_loss([factors, scale](const Tensor& loss) {
    Tensor l1 = sum(abs(factors[0]));
    for (size_t i = 1; i < factors.size(); ++i) l1 = add(l1, sum(abs(factors[i])));
    return add(loss, mul(l1, scale));
  });
}

Tensor SlimPruner::metric(TargetState& t, const Tensor&, const std::optional<Scaling>&) {
  return abs(t.extras.at("slim_factor")).detach();
}

}  // namespace shrink::compression
