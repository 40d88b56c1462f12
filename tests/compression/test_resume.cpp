// Compression runs stopped at a step and resumed from their newest checkpoint end bit-identical
// to the run that never stopped: AGP schedules (over a one-shot and a training pruner), QAT
// (before and after its start step), LSQ (learned scales in the optimizer), Slim (a private
// optimizer), and a fused distiller + Taylor + QAT run.
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <functional>

#include "compression/distillation/distiller.h"
#include "compression/pruning/norm_pruners.h"
#include "compression/pruning/scheduled_pruners.h"
#include "compression/pruning/slim_pruner.h"
#include "compression/pruning/taylor_pruner.h"
#include "compression/quantization/lsq_quantizer.h"
#include "compression/quantization/qat_quantizer.h"
#include "simple_model.h"

using namespace shrink;
using namespace shrink::compression;
using shrink::testing::make_simple_setup;
using shrink::testing::SimpleSetup;

namespace {

boost::json::value cfg(const char* s) { return boost::json::parse(s); }

struct Stop {};

// Builds a compression run on `s` and runs it; returns what identifies its end state beyond
// the model (masks, calibration).
using Scenario = std::function<std::map<std::string, std::vector<float>>(SimpleSetup& s)>;

std::map<std::string, std::vector<float>> outcome(SimpleSetup& s, const Scenario& scenario) {
  std::map<std::string, std::vector<float>> out = scenario(s);
  for (auto& [n, t] : s.model->state_dict()) out["model " + n] = t.to_vector();
  out["global step"] = {static_cast<float>(s.trainer->global_step())};
  return out;
}

std::map<std::string, std::vector<float>> masks_of(const Masks& m) {
  std::map<std::string, std::vector<float>> out;
  for (auto& [k, t] : m) out["mask " + k] = t.to_vector();
  return out;
}

std::map<std::string, std::vector<float>> calibration_of(Quantizer& q) {
  std::map<std::string, std::vector<float>> out;
  for (auto& [k, c] : q.get_calibration_config()) {
    out["scale " + k] = c.scale.to_vector();
    out["zero_point " + k] = c.zero_point.to_vector();
  }
  return out;
}

// The uninterrupted run against runs that die at each of `die_at` (checkpoints every `every`
// steps) and are resumed.
void check_resume(const char* name, const Scenario& scenario, int64_t every, std::vector<int64_t> die_at) {
  SimpleSetup full = make_simple_setup();
  const auto expected = outcome(full, scenario);
  for (int64_t die : die_at) {
    const std::string dir = "/tmp/shrink_test_cresume_" + std::to_string(::getpid()) + "_" + name + "_" +
                            std::to_string(die);
    BOOST_REQUIRE(std::system(("rm -rf '" + dir + "'").c_str()) == 0);
    {
      SimpleSetup first = make_simple_setup();
      first.trainer->set_checkpointing(dir, every);
      first.trainer->on_after_step([die](train::Trainer& t) {
        if (t.global_step() == die) throw Stop();
      });
      BOOST_CHECK_THROW(outcome(first, scenario), Stop);
    }
    SimpleSetup second = make_simple_setup();
    BOOST_REQUIRE(second.trainer->resume_from(dir));
    const auto got = outcome(second, scenario);
    BOOST_TEST(got.size() == expected.size(), name);
    for (auto& [k, v] : expected) {
      auto it = got.find(k);
      BOOST_REQUIRE_MESSAGE(it != got.end(), name << ": " << k << " missing");
      BOOST_TEST((it->second == v), name << " died at " << die << ": " << k << " differs");
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(compression_resume)

BOOST_AUTO_TEST_CASE(agp_over_l1_and_over_taylor) {
  // 8 steps an epoch; triggers every 4 steps, 3 times; 16 steps in all.
  check_resume("agp_l1", [](SimpleSetup& s) {
    L1NormPruner l1(s.model, cfg(R"([{"op_names": ["fc1", "conv2"], "sparse_ratio": 0.75}])"));
    AGPPruner agp(l1, 4, 3, s.trainer.get());
    return masks_of(agp.compress(16));
  }, 3, {5, 11, 16});
  check_resume("agp_taylor", [](SimpleSetup& s) {
    TaylorPruner taylor(s.model, cfg(R"([{"op_names": ["fc1", "conv3"], "sparse_ratio": 0.5}])"), *s.trainer, 2);
    AGPPruner agp(taylor, 4, 3);
    return masks_of(agp.compress(16));
  }, 3, {4, 7, 10, 14});
}

BOOST_AUTO_TEST_CASE(qat_before_and_after_its_start_step) {
  check_resume("qat", [](SimpleSetup& s) {
    QATQuantizer qat(s.model, cfg(R"([{"op_names": ["fc1", "fc2"], "target_names": ["weight", "_input_", "_output_"],
                                       "quant_dtype": "int8"}])"), *s.trainer, 5);
    qat.compress(-1, 2);
    return calibration_of(qat);
  }, 3, {4, 8, 13});
}

// Two LSQ quantizers in one chain whose scales join the optimizer interleaved (forward order:
// conv1 weight, conv2/conv3 inputs, fc1 weight); a resumed run adds them quantizer by quantizer.
BOOST_AUTO_TEST_CASE(two_fused_lsq_quantizers) {
  check_resume("two_lsq", [](SimpleSetup& s) {
    auto first = std::make_shared<LsqQuantizer>(
        s.model, cfg(R"([{"op_names": ["conv1", "fc1"], "target_names": ["weight"], "quant_dtype": "int4"}])"), *s.trainer);
    LsqQuantizer second(Host(first), cfg(R"([{"op_names": ["conv2", "conv3"], "target_names": ["_input_"],
                                              "quant_dtype": "uint8"}])"), *s.trainer);
    second.compress(12, -1);
    auto out = calibration_of(second);
    for (auto& [k, v] : calibration_of(*first)) out[k] = v;
    return out;
  }, 4, {6, 11});
}

BOOST_AUTO_TEST_CASE(lsq_and_slim) {
  check_resume("lsq", [](SimpleSetup& s) {
    LsqQuantizer lsq(s.model, cfg(R"([{"op_names": ["fc1", "conv1"], "target_names": ["weight", "_input_"],
                                       "quant_dtype": "int4"}])"), *s.trainer);
    lsq.compress(12, -1);
    return calibration_of(lsq);
  }, 4, {6, 11});
  check_resume("slim", [](SimpleSetup& s) {
    SlimPruner slim(s.model, cfg(R"([{"op_names": ["bn1", "bn2"], "target_names": ["weight"], "sparse_ratio": 0.5}])"),
                    *s.trainer, 6);
    auto masks = masks_of(slim.compress(10, -1));
    for (auto& [k, f] : slim.factors()) masks["factor " + k] = f.to_vector();
    return masks;
  }, 2, {5, 9});
}

// The offline teacher cache travels with the checkpoint: the second epoch takes the teacher from it.
BOOST_AUTO_TEST_CASE(distiller_with_a_teacher_cache) {
  check_resume("cache", [](SimpleSetup& s) {
    manual_seed(22);
    auto teacher = std::make_shared<shrink::testing::SimpleModel>();
    teacher->eval();
    DynamicLayerwiseDistiller d(s.model, cfg(R"([{"op_names": ["fc2"], "target_names": ["_output_"], "apply_method": "kl"}])"),
                                *s.trainer, teacher);
    d.cache_teacher_outputs(64);
    d.compress(-1, 2);
    return std::map<std::string, std::vector<float>>{{"teacher forwards", {static_cast<float>(d.teacher_forwards())}}};
  }, 3, {5, 11});
}

// A fused run (distiller -> Taylor -> QAT) with fine-tuning after it: two training calls.
BOOST_AUTO_TEST_CASE(fused_run_then_finetune) {
  check_resume("fused", [](SimpleSetup& s) {
    manual_seed(21);
    auto teacher = std::make_shared<shrink::testing::SimpleModel>();
    auto distiller = std::make_shared<DynamicLayerwiseDistiller>(
        s.model, cfg(R"([{"op_names": ["fc2"], "target_names": ["_output_"], "apply_method": "kl"}])"), *s.trainer,
        teacher);
    auto taylor = std::make_shared<TaylorPruner>(Host(distiller), cfg(R"([{"op_names": ["fc1"], "sparse_ratio": 0.5}])"),
                                                 *s.trainer, 3);
    QATQuantizer qat(Host(taylor), cfg(R"([{"op_names": ["fc1"], "target_names": ["weight"], "quant_dtype": "int8"}])"),
                     *s.trainer, 2);
    qat.compress(8, -1);
    s.trainer->train(1);
    auto out = calibration_of(qat);
    for (auto& [k, v] : masks_of(taylor->get_masks())) out[k] = v;
    return out;
  }, 3, {4, 7, 11, 15});
}

BOOST_AUTO_TEST_SUITE_END()
