// Fusion compression (nni-semantics §6.2, DECISIONS row 11): compressors built on one another share
// wrappers and one training run. NNI's chain (DynamicLayerwiseDistiller -> TaylorPruner ->
// LsqQuantizer) runs with each part taking effect; the loss composes in NNI's order (newest patch
// innermost); a target of two compressors is quantized, then masked; a one-shot pruner in a fused
// run generates its masks when the run starts; a fixed seed gives bit-identical results.
#include <boost/test/unit_test.hpp>
#include <cmath>

#include "compression/distillation/distiller.h"
#include "compression/pruning/norm_pruners.h"
#include "compression/pruning/scheduled_pruners.h"
#include "compression/pruning/slim_pruner.h"
#include "compression/pruning/taylor_pruner.h"
#include "compression/quantization/lsq_quantizer.h"
#include "compression/quantization/ptq_quantizer.h"
#include "compression/quantization/qat_quantizer.h"
#include "framework/shrink.h"

using namespace shrink;
using namespace shrink::compression;

namespace {

boost::json::value cfg(const char* text) { return boost::json::parse(text); }

std::shared_ptr<nn::Sequential> mlp(uint64_t seed) {
  manual_seed(seed);
  auto m = std::make_shared<nn::Sequential>();
  m->push_back("fc1", std::make_shared<nn::Linear>(8, 16));
  m->push_back("relu", std::make_shared<nn::ReLU>());
  m->push_back("fc2", std::make_shared<nn::Linear>(16, 4));
  return m;
}

struct Run {
  std::shared_ptr<nn::Sequential> student = mlp(1), teacher = mlp(2);
  std::shared_ptr<data::TensorDataset> ds =
      std::make_shared<data::TensorDataset>(data::make_synthetic_classification(64, {8}, 4, 3));
  std::shared_ptr<train::Trainer> trainer;
  explicit Run(float lr = 0.05f) {
    auto opt = std::make_shared<optim::SGD>(student->parameters(), lr);
    trainer = std::make_shared<train::Trainer>(student, opt, std::make_shared<data::DataLoader>(ds, 16, true, 7));
  }
  data::Batch first_batch() const {
    data::DataLoader l(ds, 64, false, 0);
    data::Batch b;
    l.next(b);
    return b;
  }
  // The distillation term the chain's distiller adds: KL(student || teacher) at T = 2 on fc2.
  float kl_to_teacher() {
    NoGradGuard ng;
    const data::Batch b = first_batch();
    const bool was = student->is_training();
    student->eval();
    Tensor s = (*student)(b.inputs), t = (*teacher)(b.inputs);
    student->train(was);
    return distill_kl(s, t, 2.f).item();
  }
};

double row_sparsity(const Tensor& mask) {
  const int64_t rows = mask.size(0), cols = mask.numel() / rows;
  const std::vector<float> v = mask.to_vector();
  int64_t pruned = 0;
  for (int64_t r = 0; r < rows; ++r) {
    float sum = 0;
    for (int64_t c = 0; c < cols; ++c) sum += v[r * cols + c];
    BOOST_TEST((sum == 0.f || sum == static_cast<float>(cols)), "row " << r << " is partly masked");
    pruned += sum == 0.f;
  }
  return static_cast<double>(pruned) / static_cast<double>(rows);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(fusion)

// NNI's test_fusion_compress chain, with each part's effect asserted.
BOOST_AUTO_TEST_CASE(distiller_taylor_lsq_chain) {
  Run r;
  auto distiller = std::make_shared<DynamicLayerwiseDistiller>(
      r.student, cfg(R"([{"op_names": ["fc2"], "apply_method": "kl", "lambda": 1.0}])"), *r.trainer, r.teacher,
      nullptr, /*origin_loss_lambda=*/0.1f);
  auto pruner = std::make_shared<TaylorPruner>(
      Host(distiller), cfg(R"([{"op_names": ["fc1"], "sparse_ratio": 0.5, "granularity": "out_channel"}])"),
      *r.trainer, 10);
  LsqQuantizer quantizer(Host(pruner),
                         cfg(R"([{"op_names": ["fc1", "fc2"], "target_names": ["weight"], "quant_dtype": "int8"}])"),
                         *r.trainer);
  BOOST_TEST((quantizer.fused() == std::vector<Compressor*>{&quantizer, pruner.get(), distiller.get()}));
  BOOST_TEST(&quantizer.wrappers() == &distiller->wrappers());  // one set of wrappers
  BOOST_TEST(quantizer.wrapper("fc1").find("weight")->is(CompressorKind::Pruning));

  // LSQ's initial step size (DECISIONS 15) from the weights before training.
  const std::vector<float> w0 = r.student->find("fc1")->param("weight").to_vector();
  double mean_abs = 0;
  for (float v : w0) mean_abs += std::fabs(v);
  mean_abs /= static_cast<double>(w0.size());
  const float init_scale = static_cast<float>(2.0 * mean_abs / std::sqrt(127.0));

  const float kl_before = r.kl_to_teacher();
  CalibrationConfig calib = quantizer.compress(40, -1);
  BOOST_TEST(r.trainer->global_step() == 40);
  // Taylor's masks: half of fc1's rows, generated at step 10.
  Masks masks = pruner->get_masks();
  BOOST_TEST(row_sparsity(masks.at("fc1.weight")) == 0.5);
  // LSQ's scales were learned away from their initial value.
  const float s = calib.at("fc1.weight").scale.item();
  BOOST_TEST(std::fabs(s - init_scale) > 1e-3f * init_scale, "scale " << s << " vs initial " << init_scale);
  BOOST_TEST(calib.count("fc2.weight") == 1u);
  // The distillation term went down.
  BOOST_TEST(r.kl_to_teacher() < 0.5f * kl_before, "KL " << kl_before << " -> " << r.kl_to_teacher());
}

// Distiller first, then Slim: NNI's order gives origin_loss_lambda * (loss + slim) + distill (the
// newest compressor's patch is innermost), not origin_loss_lambda * loss + distill + slim.
BOOST_AUTO_TEST_CASE(loss_composes_in_nni_order) {
  Run r;
  auto distiller = std::make_shared<DynamicLayerwiseDistiller>(r.student, cfg(R"([{"op_names": ["fc2"]}])"),
                                                               *r.trainer, r.teacher, nullptr, 0.5f);
  SlimPruner slim(Host(distiller), cfg(R"([{"op_names": ["fc1"], "sparse_ratio": 0.5}])"), *r.trainer, 5, 0.25);
  // The first batch the trainer will see (its loader's seeded order), and the terms written out:
  // factors start at 1 (16 of them), so slim adds 0.25 * 16.
  data::DataLoader replay(r.ds, 16, true, 7);
  replay.start_epoch();
  data::Batch b;
  replay.next(b);
  float ce, mse;
  {
    NoGradGuard ng;
    Tensor out = (*r.student)(b.inputs), tout = (*r.teacher)(b.inputs);
    ce = cross_entropy(out, b.labels).item();
    mse = mse_loss(out, tout).item();
  }
  float loss = 0;
  r.trainer->on_after_step([&](train::Trainer& t) {
    if (t.global_step() == 1) loss = t.current_loss().item();
  });
  slim.compress(1, -1);
  BOOST_TEST(loss == 0.5f * (ce + 0.25f * 16.f) + mse, boost::test_tools::tolerance(1e-5f));
}

// DECISIONS row 11: a one-shot L1 pruner inside a QAT run generates its masks when the run starts;
// the fused target's weight is fake-quantized first, then masked (nni-semantics §2.2).
BOOST_AUTO_TEST_CASE(one_shot_pruner_in_a_fused_run) {
  Run r;
  auto l1 = std::make_shared<L1NormPruner>(r.student, cfg(R"([{"op_names": ["fc1"], "sparse_ratio": 0.25}])"));
  BOOST_TEST(l1->get_masks().at("fc1.weight").to_vector() == std::vector<float>(16 * 8, 1.f));  // not yet
  QATQuantizer qat(Host(l1), cfg(R"([{"op_names": ["fc1"], "target_names": ["weight"], "quant_dtype": "int8"}])"),
                   *r.trainer);
  CalibrationConfig calib = qat.compress(3, -1);
  Tensor mask = l1->get_masks().at("fc1.weight");
  BOOST_TEST(row_sparsity(mask) == 0.25);

  // fc1's output in eval mode is x (mask * Q(w))^T + mask_row * b (the bias follows the weight's
  // mask, DECISIONS row 16), with Q written out from the calibration.
  const TargetCalibration& c = calib.at("fc1.weight");
  const float scale = c.scale.item(), zero = c.zero_point.item();
  std::vector<float> w = r.student->find("fc1")->param("weight").to_vector(), m = mask.to_vector();
  for (size_t i = 0; i < w.size(); ++i) {
    const float q = std::nearbyint(std::clamp(w[i] / scale + zero, c.qmin, c.qmax));
    w[i] = (q - zero) * scale * m[i];
  }
  const data::Batch b = r.first_batch();
  Tensor got;
  auto fc1 = r.student->find("fc1");
  auto h = fc1->register_forward_hook([&](nn::Module&, const std::vector<nn::Value>&, const nn::Value& out) {
    got = out.tensor().detach();
    return std::optional<nn::Value>();
  });
  r.student->eval();
  {
    NoGradGuard ng;
    (*r.student)(b.inputs);
  }
  h.remove();
  std::vector<float> bias = fc1->param("bias").to_vector();
  for (size_t o = 0; o < bias.size(); ++o) bias[o] *= m[o * 8];
  Tensor want = linear(b.inputs, Tensor::from_vector(w, {16, 8}), Tensor::from_vector(bias, {16}));
  const std::vector<float> gv = got.to_vector(), wv = want.to_vector();
  for (size_t i = 0; i < gv.size(); ++i) BOOST_TEST(gv[i] == wv[i], boost::test_tools::tolerance(1e-5f));
}

// PTQ built first in a fused run observes its ranges during the others' training and computes its
// scale and zero point when the run ends (NNI's PTQ _fuse_postprocess): fc1's weight range is the
// running min/max over every training forward, so it covers the weights the first step saw.
BOOST_AUTO_TEST_CASE(ptq_calibrates_during_a_fused_run) {
  Run r;
  auto ptq = std::make_shared<PtqQuantizer>(
      r.student, cfg(R"([{"op_names": ["fc1"], "target_names": ["weight"], "quant_dtype": "int8"}])"), r.trainer.get());
  TaylorPruner taylor(Host(ptq), cfg(R"([{"op_names": ["fc2"], "sparse_ratio": 0.5}])"), *r.trainer, 3);
  BOOST_CHECK_THROW(PtqQuantizer(Host(std::make_shared<L1NormPruner>(r.teacher, cfg(R"([{"op_names": ["fc1"],
                                     "sparse_ratio": 0.5}])"))), cfg(R"([{"op_names": ["fc2"]}])"))
                        .compress(1, -1),
                    Error);  // PTQ does not train, so it cannot drive a fused run
  const std::vector<float> w = r.student->find("fc1")->param("weight").to_vector();
  BOOST_TEST(!ptq->calibrated());
  taylor.compress(6, -1);
  BOOST_TEST(ptq->calibrated());
  const CalibrationConfig c = ptq->get_calibration_config();
  BOOST_REQUIRE(c.count("fc1.weight") == 1u);
  const float lo = *std::min_element(w.begin(), w.end()), hi = *std::max_element(w.begin(), w.end());
  BOOST_TEST(c.at("fc1.weight").tracked_min.item() <= lo);
  BOOST_TEST(c.at("fc1.weight").tracked_max.item() >= hi);
  BOOST_TEST(c.at("fc1.weight").scale.item() > 0.f);
  BOOST_TEST(row_sparsity(taylor.get_masks().at("fc2.weight")) == 0.5);
}

// Masks, calibration and the student's weights after a fused run are bit-identical across runs.
BOOST_AUTO_TEST_CASE(fused_run_is_bit_identical) {
  auto once = [] {
    Run r;
    auto distiller = std::make_shared<DynamicLayerwiseDistiller>(
        r.student, cfg(R"([{"op_names": ["fc2"], "apply_method": "kl"}])"), *r.trainer, r.teacher);
    auto pruner = std::make_shared<TaylorPruner>(Host(distiller), cfg(R"([{"op_names": ["fc1"], "sparse_ratio": 0.5}])"),
                                                 *r.trainer, 4);
    LsqQuantizer quantizer(Host(pruner), cfg(R"([{"op_types": ["Linear"], "target_names": ["weight", "_input_"]}])"),
                           *r.trainer);
    std::map<std::string, std::vector<float>> out;
    for (auto& [k, c] : quantizer.compress(12, -1)) out["scale " + k] = c.scale.to_vector();
    for (auto& [k, m] : pruner->get_masks()) out["mask " + k] = m.to_vector();
    for (auto& [k, p] : r.student->state_dict()) out[k] = p.to_vector();
    return out;
  };
  auto a = once(), b = once();
  BOOST_TEST(a.size() == b.size());
  for (auto& [k, v] : a) BOOST_TEST(v == b.at(k), k);
  BOOST_TEST(a.count("scale fc1._input_0") == 1u);
}

// NNI's BERT recipe shape: AGP driving a Taylor pruner that is fused onto a distiller.
BOOST_AUTO_TEST_CASE(agp_drives_a_fused_taylor_pruner) {
  Run r;
  auto distiller = std::make_shared<DynamicLayerwiseDistiller>(
      r.student, cfg(R"([{"op_names": ["fc2"], "apply_method": "kl"}])"), *r.trainer, r.teacher);
  auto taylor = std::make_shared<TaylorPruner>(Host(distiller), cfg(R"([{"op_names": ["fc1"], "sparse_ratio": 0.75}])"),
                                               *r.trainer, 2);
  AGPPruner agp(*taylor, 4, 3);
  Masks m = agp.compress(12);
  BOOST_TEST(agp.times_done() == 3);
  BOOST_TEST(row_sparsity(m.at("fc1.weight")) == 0.75);
  BOOST_TEST(distiller->teacher_forwards() == 12);  // the distillation loss was part of every step
}

BOOST_AUTO_TEST_CASE(fusion_errors) {
  Run r, other;
  auto l1 = std::make_shared<L1NormPruner>(r.student, cfg(R"([{"op_names": ["fc1"], "sparse_ratio": 0.5}])"));
  // A second pruner on the same target.
  BOOST_CHECK_THROW(L2NormPruner(Host(l1), cfg(R"([{"op_names": ["fc1"], "sparse_ratio": 0.5}])")), Error);
  // Another compressor's target is fine for a pruner of another module.
  L2NormPruner l2(Host(l1), cfg(R"([{"op_names": ["fc2"], "sparse_ratio": 0.5}])"));
  BOOST_TEST(l2.targets().size() == 2u);  // fc2's weight and bias; fc1's stay with l1
  for (TargetState* t : l2.targets()) BOOST_TEST(t->module_name == "fc2");
  // A trainer of another model, and a compressor that trains with another trainer.
  BOOST_CHECK_THROW(QATQuantizer(Host(l1), cfg(R"([{"op_names": ["fc1"], "target_names": ["weight"]}])"),
                                 *other.trainer),
                    Error);
  auto taylor = std::make_shared<TaylorPruner>(r.student, cfg(R"([{"op_names": ["fc2"], "sparse_ratio": 0.5}])"),
                                               *r.trainer, 2);
  auto second = std::make_shared<train::Trainer>(r.student, std::make_shared<optim::SGD>(r.student->parameters(), 0.1f),
                                                 std::make_shared<data::DataLoader>(r.ds, 16, false, 0));
  BOOST_CHECK_THROW(QATQuantizer(Host(taylor), cfg(R"([{"op_names": ["fc1"], "target_names": ["weight"]}])"), *second),
                    Error);
  // compress() of a run without a trainer.
  BOOST_CHECK_THROW(l2.compress(1, -1), Error);
}

// Destroying a compressor takes off only what it added: the one it was built on goes on as before,
// also after a constructor that failed; the last one gone leaves the model as it was.
BOOST_AUTO_TEST_CASE(destroying_a_compressor_leaves_the_others) {
  Run r;
  const data::Batch b = r.first_batch();
  auto out = [&] {
    NoGradGuard ng;
    return (*r.student)(b.inputs).to_vector();
  };
  const auto plain = out();
  {
    auto l1 = std::make_shared<L1NormPruner>(r.student, cfg(R"([{"op_names": ["fc1"], "sparse_ratio": 0.5}])"));
    l1->compress();
    const auto masked = out();
    BOOST_TEST(masked != plain);
    {
      QATQuantizer qat(Host(l1), cfg(R"([{"op_names": ["fc1", "fc2"], "target_names": ["weight"]}])"), *r.trainer);
      r.student->train(true);
      out();  // observe the ranges: scales exist from here on
      r.student->eval();
      BOOST_TEST(out() != masked);
    }
    BOOST_TEST(out() == masked);  // the masks stay; the quantization is gone
    // A constructor that fails (a config error) leaves nothing behind either; a retry works.
    BOOST_CHECK_THROW(QATQuantizer(Host(l1), cfg(R"([{"op_names": ["fc1"], "target_names": ["weight"],
                                                     "quant_dtype": "int1"}])"), *r.trainer),
                      Error);
    BOOST_TEST(out() == masked);
    QATQuantizer retry(Host(l1), cfg(R"([{"op_names": ["fc1"], "target_names": ["weight"]}])"), *r.trainer);
    BOOST_TEST(retry.targets().size() == 1u);
  }
  BOOST_TEST(out() == plain);
  BOOST_TEST(!r.student->find("fc1")->has_buffer("weight_mask"));
}

BOOST_AUTO_TEST_SUITE_END()
