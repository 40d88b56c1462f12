#include "examples/compress/runner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <map>
#include <ostream>
#include <sstream>

#include "compression/config/config_error.h"
#include "compression/export/onnx_export.h"
#include "compression/pruning/mask_io.h"
#include "compression/quantization/calibration_io.h"
#include "compression/quantization/int8_model.h"
#include "compression/speedup/dependency.h"
#include "compression/speedup/speedup.h"
#include "examples/cli.h"
#include "examples/compress/bundle.h"
#include "examples/compression_run.h"
#include "examples/fashion_session.h"
#include "framework/core/autograd.h"
#include "framework/core/parallel.h"
#include "framework/core/random.h"
#include "framework/data/fashion_mnist.h"
#include "framework/dist/communicator.h"
#include "framework/io/atomic_file.h"
#include "framework/nn/layers.h"
#include "framework/ops/ops.h"
#include "models/model_file.h"

namespace json = boost::json;
namespace fs = std::filesystem;

namespace shrink::cli::recipe {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// What one stage hands the next.
struct State {
  std::shared_ptr<nn::Module> model;
  std::string zoo;
  compression::Masks masks;
  compression::CalibrationConfig calibration;
};

// The parameter a mask key "<module>.<parameter>" names; masks of activations cannot be carried.
Tensor masked_parameter(nn::Module& model, const std::string& key) {
  const size_t dot = key.rfind('.');
  std::shared_ptr<nn::Module> m = dot == std::string::npos ? nullptr : model.find(key.substr(0, dot));
  const std::string param = key.substr(dot == std::string::npos ? 0 : dot + 1);
  SHRINK_CHECK(m && m->has_parameter(param), "mask '", key, "' is not on a parameter: masks of activations cannot be ",
               "carried between stages (prune parameters)");
  return m->param(param);
}

// Zeroes what the masks remove (weights *= mask), in place.
void bake(nn::Module& model, const compression::Masks& masks) {
  NoGradGuard ng;
  for (const auto& [key, mask] : masks) {
    Tensor w = masked_parameter(model, key);
    SHRINK_CHECK(w.shape() == mask.shape(), "mask '", key, "' has shape ", shape_str(mask.shape()), ", the parameter ",
                 shape_str(w.shape()));
    w.copy_(w * mask.to(w.device()));
  }
}

// Masks of two stages together: a target both masked keeps what both keep.
compression::Masks merge(compression::Masks a, const compression::Masks& b) {
  for (const auto& [key, m] : b) {
    auto it = a.find(key);
    if (it == a.end()) a.emplace(key, m);
    else it->second = it->second * m;
  }
  return a;
}

}  // namespace

class Runner {
 public:
  Runner(const Recipe& recipe, const RunOptions& options)
      : r_(recipe), o_(options), log_(*options.log), out_(options.out_dir) {}

  Report run();

 private:
  State initial_state();
  void prepare_directory_here();
  State load_state(const fs::path& dir);
  void save_state(State& state, const fs::path& dir, StageRow& row);
  void run_stage(const Stage& stage, size_t index, State& state, StageRow& row);
  void run_stage_kind(const Stage& stage, size_t index, State& state, StageRow& row);
  // `calibrated_by`: the quantizer of the state's calibration (recipe.h's Stage::calibrated_by).
  void measure(State& state, StageRow& row, bool int8, const std::string& calibrated_by);
  TrainOptions train_options(const Training& t, size_t index) const;
  FashionSession session(State& state, const Training& t, size_t index);
  std::shared_ptr<nn::Module> teacher(const std::string& name);
  Tensor test_images(int64_t n) const;
  void write_reports();
  void prepare_directory();
  void run_stages();

  const Recipe& r_;
  RunOptions o_;
  std::ostream& log_;
  fs::path out_;
  Report report_;
  std::vector<fs::path> stage_dirs_;
  bool created_out_ = false;  // this run made out_ (a failure before the first stage removes it)
};

// FNV-1a of a file's bytes: enough to notice that --resume was given other starting weights.
static std::string file_digest(const std::string& path) {
  const std::string bytes = io::read_file(path);
  const uint64_t h = dist::hash_bytes(bytes.data(), static_cast<int64_t>(bytes.size()));
  std::ostringstream s;
  s << std::hex << std::setw(16) << std::setfill('0') << h;
  return s.str();
}

// recipe.json: the resolved recipe, a digest of the starting model's file, and what else decides
// the bytes a run writes: the thread count (sums are partitioned by it) and the data directory.
static std::string pinned_recipe(const Recipe& r) {
  json::object inputs;
  for (const std::string& file : {r.weights, r.model_file})
    if (!file.empty()) inputs[fs::absolute(file).lexically_normal().string()] = file_digest(file);
  inputs["threads"] = num_threads();
  inputs["data"] = fs::absolute(r.data_dir.empty() ? data::default_fashion_mnist_dir() : r.data_dir)
                       .lexically_normal()
                       .string();
  return json::serialize(json::object{{"recipe", r.resolved}, {"inputs", inputs}}) + "\n";
}

// Under mpirun rank 0 prepares the directory and writes every file; the other ranks run every
// stage alongside it (each training on its share of the data) and read the stage files rank 0
// wrote, after a barrier (so --out must be on a filesystem every rank sees).
void Runner::prepare_directory() {
  dist::Communicator& world = *dist::world();
  if (world.is_writer()) prepare_directory_here();
  world.barrier();
}

void Runner::prepare_directory_here() {
  const fs::path recipe_file = out_ / "recipe.json";
  const std::string pinned = pinned_recipe(r_);
  std::error_code ec;
  if (o_.resume) {
    if (!fs::is_regular_file(recipe_file))
      throw RecipeError("--resume " + out_.string() + ": no recipe.json there (not a shrink compress output)");
    if (io::read_file(recipe_file.string()) != pinned)
      throw RecipeError("--resume " + out_.string() + ": the recipe, a config list file it names, the starting " +
                        "weights, the thread count or the data directory differ from those this directory was " +
                        "started with (" + recipe_file.string() + "); start a new directory for a new recipe");
    return;
  }
  if (fs::exists(out_, ec) && !(fs::is_directory(out_, ec) && fs::is_empty(out_, ec)))
    throw RecipeError("--out " + out_.string() + ": exists and is not an empty directory; continue its run with "
                      "--resume, or choose another directory");
  created_out_ = !fs::exists(out_, ec);
  fs::create_directories(out_, ec);
  if (ec) throw RecipeError("--out " + out_.string() + ": cannot create the directory (" + ec.message() + ")");
  try {
    io::write_file_atomic(recipe_file.string(), pinned);
  } catch (const Error& e) {
    if (created_out_) fs::remove(out_, ec);
    throw RecipeError(std::string("--out ") + out_.string() + ": cannot write there (" + e.what() + ")");
  }
}

State Runner::initial_state() {
  manual_seed(r_.seed);
  State s;
  if (!r_.model_file.empty()) {
    s.model = models::load_model_file(r_.model_file, &s.zoo);
    BundleAttachments att = load_bundle_attachments(r_.model_file);  // an export bundle's own
    s.masks = std::move(att.masks);
    s.calibration = std::move(att.calibration);
  } else {
    s.model = load_model(r_.model, r_.weights);
    s.zoo = r_.model;
  }
  return s;
}

State Runner::load_state(const fs::path& dir) {
  State s;
  s.model = models::load_model_file((dir / "model.safetensors").string(), &s.zoo);
  if (fs::exists(dir / "masks.safetensors")) s.masks = compression::load_masks((dir / "masks.safetensors").string());
  if (fs::exists(dir / "calibration.safetensors"))
    s.calibration = compression::load_calibration((dir / "calibration.safetensors").string());
  return s;
}

void Runner::save_state(State& state, const fs::path& dir, StageRow& row) {
  state.model->to(Device::CPU);
  models::save_model_file((dir / "model.safetensors").string(), *state.model, state.zoo);
  row.artefacts.push_back("stages/" + row.name + "/model.safetensors");
  if (!state.masks.empty()) {
    compression::save_masks((dir / "masks.safetensors").string(), state.masks);
    row.artefacts.push_back("stages/" + row.name + "/masks.safetensors");
  }
  if (!state.calibration.empty()) {
    compression::save_calibration((dir / "calibration.safetensors").string(), state.calibration);
    row.artefacts.push_back("stages/" + row.name + "/calibration.safetensors");
  }
}

TrainOptions Runner::train_options(const Training& t, size_t index) const {
  TrainOptions o;
  o.batch = r_.batch;
  o.lr = t.lr;
  o.momentum = t.momentum;
  o.weight_decay = t.weight_decay;
  o.seed = r_.seed + index + 1;
  o.limit = r_.train_limit;
  o.test_limit = r_.test_limit;
  o.threads = r_.threads;
  if (!r_.data_dir.empty()) o.data_dir = r_.data_dir;
  else o.data_dir = data::default_fashion_mnist_dir();
  return o;
}

// A trainer on Fashion-MNIST that keeps the carried masks' zeros after every optimizer step.
FashionSession Runner::session(State& state, const Training& t, size_t index) {
  FashionSession s = make_fashion_session(state.model, train_options(t, index), Device::CPU, t.epochs, log_);
  s.trainer->set_log(&log_, o_.tty);
  if (!state.masks.empty()) {
    bake(*state.model, state.masks);
    s.trainer->on_after_step([model = state.model, masks = state.masks](train::Trainer&) { bake(*model, masks); });
  }
  return s;
}

Tensor Runner::test_images(int64_t n) const {
  const std::string dir = r_.data_dir.empty() ? data::default_fashion_mnist_dir() : r_.data_dir;
  return data::load_fashion_mnist(dir, false, n)->inputs();
}

std::shared_ptr<nn::Module> Runner::teacher(const std::string& name) {
  if (name == "initial") return initial_state().model;
  for (size_t i = 0; i < r_.stages.size(); ++i)
    if (r_.stages[i].name == name) return load_state(stage_dirs_[i]).model;
  fail("no stage '", name, "'");
}

void Runner::measure(State& state, StageRow& row, bool int8, const std::string& calibrated_by) {
  nn::Module& model = *state.model;
  model.to(Device::CPU);
  model.eval();
  TrainOptions to = train_options(Training{}, 0);
  to.limit = r_.test_limit;
  const Tensor probe = test_images(std::min<int64_t>(r_.batch, 64));

  // Accuracy as deployed, then in float (and samples/s of the float model).
  const TestResult plain = evaluate_test_set(model, to, Device::CPU);
  row.float_accuracy = plain.accuracy;
  row.samples_per_s = plain.samples_per_s;
  row.accuracy = plain.accuracy;
  if (!state.calibration.empty() && is_transform_quantizer(calibrated_by)) {
    row.accuracy = NAN;  // its transform is not in the calibration: the grid alone is another network
    row.notes.push_back("accuracy as deployed not measured: the " + calibrated_by + " quantizer's transform is not "
                        "part of its calibration");
  } else if (!state.calibration.empty()) {
    auto fake = compression::quantizer_from_calibration(state.model, state.calibration, {nn::Value(probe)});
    row.accuracy = evaluate_test_set(model, to, Device::CPU).accuracy;
  }
  if (int8) {
    compression::Int8Model converted(model, state.calibration, {nn::Value(probe)});
    for (const auto& [name, why] : converted.report().kept_float)
      row.notes.push_back("int8: kept in float: " + name + " (" + why + ")");
    const TestResult r = evaluate_test_set(model, to, Device::CPU);
    row.int8_accuracy = r.accuracy;
    row.int8_samples_per_s = r.samples_per_s;
  }

  // Per layer: counts on one traced forward, then latency of a batch through hooks.
  const compression::Graph graph = compression::trace(model, {nn::Value(probe)});
  std::map<std::string, LayerRow> rows;
  std::vector<std::string> order;
  for (const compression::LayerCount& c : compression::count_layers(model, graph, state.masks)) {
    LayerRow l;
    l.name = c.module;
    l.type = c.type;
    l.params = c.params;
    l.macs = state.masks.empty() ? c.macs : c.masked_macs;
    std::shared_ptr<nn::Module> m = model.find(c.module);
    const Tensor w = m->param("weight");
    l.weight_shape = w.shape();
    l.channels = w.size(0);
    const std::vector<float> v = w.to_vector();
    const int64_t per_row = w.numel() / std::max<int64_t>(1, l.channels);
    for (int64_t o = 0; o < l.channels; ++o) {
      bool live = false;
      for (int64_t k = 0; k < per_row; ++k) live |= v[o * per_row + k] != 0.f;
      l.live_channels += live;
    }
    for (const auto& [pname, p] : m->named_parameters(false))
      for (float x : p.to_vector()) l.nonzero_params += x != 0.f;
    auto cal = state.calibration.find(c.module + ".weight");
    if (cal != state.calibration.end()) l.bits = cal->second.quant_bits;
    order.push_back(l.name);
    rows.emplace(l.name, std::move(l));
  }
  // Each layer's time between its pre-hook and its hook; medians over several forwards, so that one
  // slow forward (another process, a page fault) does not make the table.
  std::vector<nn::HookHandle> handles;
  std::map<nn::Module*, Clock::time_point> started;
  std::map<nn::Module*, double> seconds;
  for (const std::string& name : order) {
    std::shared_ptr<nn::Module> m = model.find(name);
    handles.push_back(m->register_forward_pre_hook([&](nn::Module& mod, const std::vector<nn::Value>&) {
      started[&mod] = Clock::now();
      return std::optional<std::vector<nn::Value>>();
    }));
    handles.push_back(m->register_forward_hook([&](nn::Module& mod, const std::vector<nn::Value>&, const nn::Value&) {
      seconds[&mod] += since(started[&mod]);
      return std::optional<nn::Value>();
    }));
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const int reps = 9;
  std::vector<double> forward;
  std::map<std::string, std::vector<double>> per_layer;
  {
    NoGradGuard ng;
    model(std::vector<nn::Value>{nn::Value(probe)});  // warm-up
    for (int i = 0; i < reps; ++i) {
      seconds.clear();
      const auto t0 = Clock::now();
      model(std::vector<nn::Value>{nn::Value(probe)});
      forward.push_back(since(t0));
      for (const std::string& name : order) per_layer[name].push_back(seconds[model.find(name).get()]);
    }
  }
  for (auto& h : handles) h.remove();
  row.forward_ms = 1e3 * median(forward);
  row.latency_batch = probe.size(0);
  row.layers.clear();
  for (const std::string& name : order) {
    LayerRow l = rows.at(name);
    l.latency_ms = 1e3 * median(per_layer[name]);
    row.layers.push_back(std::move(l));
  }

  // Whole model: parameters stored at their calibrated bits.
  row.params = row.nonzero_params = 0;
  row.size_bytes = 0.0;
  row.macs = compression::count_macs(graph);
  if (!state.masks.empty()) {
    row.macs = 0;
    for (const auto& l : row.layers) row.macs += l.macs;
  }
  for (const auto& [name, p] : model.named_parameters()) {
    auto cal = state.calibration.find(name);
    const int bits = cal == state.calibration.end() ? 32 : cal->second.quant_bits;
    row.params += p.numel();
    for (float x : p.to_vector()) row.nonzero_params += x != 0.f;
    row.size_bytes += static_cast<double>(p.numel()) * bits / 8.0;
  }
}

void Runner::run_stage(const Stage& stage, size_t index, State& state, StageRow& row) {
  run_stage_kind(stage, index, state, row);
  // The parser decided which calibration the model carries after this stage (none, when the stage
  // changed the weights without quantizing: the old grids were fitted to other weights).
  if (stage.calibrated_by.empty() && !state.calibration.empty()) {
    state.calibration.clear();
    row.notes.push_back("the calibration of an earlier stage was dropped: this stage changed the weights");
  }
}

void Runner::run_stage_kind(const Stage& stage, size_t index, State& state, StageRow& row) {
  const fs::path tmp = out_ / "stages" / ("." + stage.name + ".tmp");
  // The teacher first: building the initial model seeds the generator with the recipe's seed.
  std::shared_ptr<nn::Module> teacher_model = stage.distill ? teacher(stage.distill->teacher) : nullptr;
  manual_seed(r_.seed + index + 1);
  switch (stage.kind) {
    case StageKind::Train: {
      FashionSession s = session(state, stage.training, index);
      s.trainer->train(stage.training.epochs);
      break;
    }
    case StageKind::Prune: {
      FashionSession s = session(state, stage.training, index);
      json::value config = stage.prune->config_list;
      if (stage.prune->auto_dependency_groups)
        config = compression::auto_set_dependency_group_ids(*state.model, config, {nn::Value(test_images(1))});
      compression::PrunerOptions p;
      p.pruner = stage.prune->pruner;
      p.base_pruner = stage.prune->base_pruner;
      p.training_steps = stage.prune->training_steps;
      p.warmup_steps = stage.prune->warmup_steps;
      p.interval_steps = stage.prune->interval_steps;
      p.total_times = stage.prune->total_times;
      std::unique_ptr<compression::PruningRun> run = compression::make_pruner(p, state.model, config, *s.trainer);
      for (const auto& w : run->warnings()) row.notes.push_back("warning: " + w);
      compression::Masks masks = run->compress(stage.training.epochs);
      run.reset();  // unwraps
      state.masks = merge(std::move(masks), state.masks);
      bake(*state.model, state.masks);
      break;
    }
    case StageKind::Speedup: {
      const Tensor x = test_images(stage.check_batch);
      const std::vector<std::string> refused = compression::speedup_preflight(*state.model, state.masks, {nn::Value(x)});
      if (!refused.empty()) {
        std::string why;
        for (const auto& r : refused) why += "\n  " + r;
        fail("speedup refused, nothing was changed:", why);
      }
      const compression::SpeedupReport rep = compression::speedup_model(*state.model, state.masks, {nn::Value(x)});
      std::ostringstream dev;
      dev << std::scientific << std::setprecision(2) << rep.deviation;
      row.notes.push_back("deviation from the masked model " + dev.str());
      for (const auto& m : rep.inexact)
        row.notes.push_back("not exact: " + m + " (a removed channel's constant meets zero padding)");
      row.notes.insert(row.notes.end(), rep.notes.begin(), rep.notes.end());
      state.masks.clear();
      break;
    }
    case StageKind::Quantize: {
      FashionSession s = session(state, stage.training, index);
      const QuantizeSpec& q = *stage.quantize;
      compression::QuantizerOptions qo;
      qo.name = q.quantizer;
      qo.observer = q.observer;
      qo.percentile = q.percentile;
      qo.bias_correction = q.bias_correction;
      qo.start_step = q.quant_start_step;
      auto quantizer = compression::make_quantizer(qo, state.model, q.config_list, *s.trainer);
      for (const auto& w : quantizer->warnings()) row.notes.push_back("warning: " + w);
      data::Batch b;
      s.trainer->train_loader()->start_epoch();
      s.trainer->train_loader()->next(b);
      state.calibration = run_quantizer(*quantizer, q.quantizer, *state.model, b.inputs, q.steps, stage.training.epochs);
      quantizer->unwrap();
      break;
    }
    case StageKind::Distill:
    case StageKind::Fuse: {
      FashionSession s = session(state, stage.training, index);
      FusedParts parts;
      if (stage.prune) {
        parts.prune_config = &stage.prune->config_list;
        parts.prune.pruner = stage.prune->pruner;
        parts.prune.training_steps = stage.prune->training_steps;
      }
      if (stage.quantize) {
        parts.quant_config = &stage.quantize->config_list;
        parts.quant.name = stage.quantize->quantizer;
        parts.quant.start_step = stage.quantize->quant_start_step;
      }
      if (stage.distill) {
        parts.distill_config = &stage.distill->config_list;
        parts.teacher = teacher_model;
        parts.teacher->eval();
        parts.distiller = stage.distill->distiller;
        parts.temperature = static_cast<float>(stage.distill->temperature);
        parts.origin_lambda = static_cast<float>(stage.distill->origin_loss_lambda);
      }
      std::ostringstream warnings;
      FusedRun fused(state.model, *s.trainer, parts, warnings);
      std::istringstream lines(warnings.str());
      for (std::string line; std::getline(lines, line);) row.notes.push_back(line);
      compression::CalibrationConfig calibration = fused.run(stage.training.epochs);
      compression::Masks masks = fused.pruner() ? fused.pruner()->get_masks() : compression::Masks{};
      fused.unwrap();
      if (fused.quantizer()) state.calibration = std::move(calibration);
      state.masks = merge(std::move(masks), state.masks);
      bake(*state.model, state.masks);
      break;
    }
    case StageKind::Evaluate:
      break;
    case StageKind::Export: {
      for (const std::string& format : stage.formats) {
        if (format == "safetensors") {
          save_bundle((tmp / "bundle.safetensors").string(), *state.model, state.zoo, state.masks, state.calibration);
          row.artefacts.push_back("stages/" + stage.name + "/bundle.safetensors");
        } else {  // onnx: QDQ pairs where calibrated, on Fashion-MNIST's input shape with a free batch
          compression::OnnxExportOptions o{{1, 1, 28, 28}, state.calibration.empty() ? nullptr : &state.calibration};
          const compression::OnnxExportReport r = compression::export_onnx(*state.model, (tmp / "model.onnx").string(), o);
          row.artefacts.push_back("stages/" + stage.name + "/model.onnx");
          row.notes.push_back("onnx: " + std::to_string(r.nodes) + " nodes, " + std::to_string(r.qdq.size()) +
                              " quantize/dequantize pairs");
          for (const auto& [key, why] : r.kept_float) row.notes.push_back("onnx: kept in float: " + key + " (" + why + ")");
        }
      }
      break;
    }
  }
}

void Runner::write_reports() {
  io::write_file_atomic((out_ / "report.json").string(), json::serialize(to_json(report_)) + "\n");
  io::write_file_atomic((out_ / "report.md").string(), render_markdown(report_));
  io::write_file_atomic((out_ / "report.html").string(), render_html(report_));
}

// "config[0].x" of a stage's config list, re-rooted where the recipe wrote that list; a fused run
// names its part first ("prune.config[0].x", compression_run.h).
static std::string stage_config_error(const compression::config::ConfigError& e, size_t index, const Stage& stage) {
  std::string path = e.path();
  std::string part;
  for (const char* p : {"prune.", "quantize.", "distill."})
    if (path.rfind(p, 0) == 0) {
      part = stage.kind == StageKind::Fuse ? p : "";
      path = path.substr(std::string(p).size());
    }
  const std::string where = "recipe.stages[" + std::to_string(index) + "]." + part;
  if (path.rfind("config", 0) == 0) return where + "config_list" + path.substr(6) + ": " + e.problem();
  return where + "config_list: " + e.what();
}

Report Runner::run() {
  apply_thread_count(r_.threads);
  const bool fresh = !fs::exists(out_ / "recipe.json");
  prepare_directory();
  try {
    run_stages();
  } catch (...) {
    // A run that fails before its first stage is complete leaves no directory behind (a new run
    // may use it); later, the complete stages stay for --resume.
    if (fresh && !o_.resume && report_.stages.size() <= 1 && dist::world()->is_writer()) {
      std::error_code ec;
      fs::remove_all(out_ / "stages", ec);
      fs::remove(out_ / "recipe.json", ec);
      if (created_out_) fs::remove(out_, ec);
    }
    throw;
  }
  return report_;
}

void Runner::run_stages() {
  report_.model = r_.model.empty() ? r_.model_file : r_.model;
  for (const Stage& s : r_.stages) stage_dirs_.push_back(out_ / "stages" / s.name);

  // What a resumed run finds complete, decided by every rank before rank 0 writes anything.
  dist::Communicator& world = *dist::world();
  const bool writer = world.is_writer();
  const fs::path initial_dir = out_ / "stages" / "initial";
  const bool initial_done = fs::exists(initial_dir / "stage.json");
  std::vector<bool> done;
  for (const fs::path& dir : stage_dirs_) done.push_back(fs::exists(dir / "stage.json"));
  world.barrier();

  // The starting model's row.
  StageRow initial;
  if (initial_done) {
    initial = stage_row_from_json(json::parse(io::read_file((initial_dir / "stage.json").string())));
  } else {
    State s = initial_state();
    initial.name = "initial";
    initial.kind = "initial";
    measure(s, initial, false, s.calibration.empty() ? "" : "bundle");
    if (writer) fs::create_directories(initial_dir);
    io::write_file_atomic((initial_dir / "stage.json").string(), json::serialize(to_json(initial)) + "\n");
  }
  report_.stages.push_back(initial);
  log_ << "initial: test accuracy " << std::fixed << std::setprecision(4) << initial.accuracy << "\n";

  for (size_t i = 0; i < r_.stages.size(); ++i) {
    const Stage& stage = r_.stages[i];
    const fs::path dir = stage_dirs_[i];
    if (done[i]) {
      report_.stages.push_back(stage_row_from_json(json::parse(io::read_file((dir / "stage.json").string()))));
      log_ << stage.name << ": complete (resumed after it)\n";
      continue;
    }
    const fs::path tmp = out_ / "stages" / ("." + stage.name + ".tmp");
    StageRow row;
    row.name = stage.name;
    row.kind = to_string(stage.kind);
    log_ << stage.name << ": " << row.kind << "\n";
    try {
      if (writer) {
        fs::remove_all(tmp);
        fs::create_directories(tmp);
      }
      State state = i == 0 ? initial_state() : load_state(stage_dirs_[i - 1]);
      const auto t0 = Clock::now();
      run_stage(stage, i, state, row);
      row.seconds = since(t0);
      save_state(state, tmp, row);
      world.barrier();  // rank 0's files are complete
      // Measured on the model as saved, so a resumed run measures what this one did.
      State saved = load_state(tmp);
      measure(saved, row, stage.int8, stage.calibrated_by);
      io::write_file_atomic((tmp / "stage.json").string(), json::serialize(to_json(row)) + "\n");
      world.barrier();  // every rank has read the temporary directory
      if (writer) {
        fs::remove_all(dir);
        fs::rename(tmp, dir);
      }
      world.barrier();  // the next stage starts from `dir`
    } catch (const compression::config::ConfigError& e) {
      std::error_code ec;
      if (writer) fs::remove_all(tmp, ec);
      throw RecipeError(stage_config_error(e, i, stage));
    } catch (...) {
      std::error_code ec;
      if (writer) fs::remove_all(tmp, ec);
      throw;
    }
    report_.stages.push_back(row);
    write_reports();
    log_ << stage.name << ": test accuracy " << std::fixed << std::setprecision(4) << row.accuracy << ", "
         << row.nonzero_params << " non-zero parameters, " << std::setprecision(1) << row.size_bytes / 1024.0
         << " KiB, " << row.seconds << " s\n";
  }
  write_reports();
}

Report run_recipe(const Recipe& recipe, const RunOptions& options) {
  SHRINK_CHECK(options.log != nullptr, "run_recipe: no log stream");
  Runner runner(recipe, options);
  return runner.run();
}

}  // namespace shrink::cli::recipe
