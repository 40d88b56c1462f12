#include "examples/compress/recipe.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <climits>
#include <sstream>

#include "compression/config/config_error.h"
#include "compression/config/config_list.h"
#include "compression/config/validate.h"
#include "compression/export/onnx_export.h"
#include "compression/pruning/pruner_factory.h"
#include "examples/compress/bundle.h"
#include "models/zoo.h"

namespace json = boost::json;
namespace fs = std::filesystem;

namespace shrink::cli::recipe {

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& problem) {
  throw RecipeError(path + ": " + problem);
}

const char* type_name(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null: return "null";
    case json::kind::bool_: return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_: return "a number";
    case json::kind::string: return "a string";
    case json::kind::array: return "an array";
    case json::kind::object: return "an object";
  }
  return "a value";
}

// The keys of one JSON object, taken one by one; finish() refuses the keys nobody took.
class Fields {
 public:
  Fields(const json::value& v, std::string path) : path_(std::move(path)) {
    if (!v.is_object()) fail(path_, std::string("must be an object, got ") + type_name(v));
    obj_ = &v.as_object();
  }
  const std::string& path() const { return path_; }
  std::string at(const std::string& key) const { return path_ + "." + key; }

  const json::value* raw(const std::string& key) {
    known_.insert(key);
    auto it = obj_->find(key);
    return it == obj_->end() ? nullptr : &it->value();
  }
  bool has(const std::string& key) { return raw(key) != nullptr; }
  void str(const std::string& key, std::string& out, bool required = false) {
    const json::value* v = raw(key);
    if (!v) {
      if (required) fail(at(key), "missing (a string)");
      return;
    }
    if (!v->is_string()) fail(at(key), std::string("must be a string, got ") + type_name(*v));
    out = std::string(v->as_string());
    if (out.empty()) fail(at(key), "must not be empty");
  }
  void integer(const std::string& key, int64_t& out, int64_t min, int64_t max = INT64_MAX) {
    const json::value* v = raw(key);
    if (!v) return;
    if (v->is_int64()) out = v->as_int64();
    else if (v->is_uint64() && v->as_uint64() <= static_cast<uint64_t>(INT64_MAX)) out = static_cast<int64_t>(v->as_uint64());
    else if (v->is_double() && std::isfinite(v->as_double()) && v->as_double() == std::floor(v->as_double()) &&
             std::fabs(v->as_double()) < 9e15)  // 1.0, 1e3: integers written as numbers with a point
      out = static_cast<int64_t>(v->as_double());
    else fail(at(key), std::string("must be an integer, got ") + (v->is_double() ? "a fraction" : type_name(*v)));
    if (out < min) fail(at(key), "must be at least " + std::to_string(min) + ", got " + std::to_string(out));
    if (out > max) fail(at(key), "must be at most " + std::to_string(max) + ", got " + std::to_string(out));
  }
  void number(const std::string& key, double& out, double min, bool exclusive, double max = HUGE_VAL) {
    const json::value* v = raw(key);
    if (!v) return;
    if (!v->is_number()) fail(at(key), std::string("must be a number, got ") + type_name(*v));
    out = v->to_number<double>();
    std::ostringstream s;
    if (!std::isfinite(out)) s << "must be finite, got " << out;
    else if (out < min || (exclusive && out == min)) s << "must be " << (exclusive ? "greater than " : "at least ") << min << ", got " << out;
    else if (out > max) s << "must be at most " << max << ", got " << out;
    if (!s.str().empty()) fail(at(key), s.str());
  }
  void boolean(const std::string& key, bool& out) {
    const json::value* v = raw(key);
    if (!v) return;
    if (!v->is_bool()) fail(at(key), std::string("must be true or false, got ") + type_name(*v));
    out = v->as_bool();
  }
  void one_of(const std::string& key, std::string& out, const std::vector<std::string>& allowed, bool required) {
    str(key, out, required);
    if (!has(key)) return;
    for (const auto& a : allowed)
      if (a == out) return;
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    fail(at(key), "'" + out + "' is not one of " + list);
  }
  void finish() const {
    for (const auto& kv : *obj_)
      if (!known_.count(std::string(kv.key()))) {
        std::string list;
        for (const auto& k : known_) list += (list.empty() ? "" : ", ") + k;
        fail(at(std::string(kv.key())), "unknown key (this object takes " + list + ")");
      }
  }

 private:
  std::string path_;
  const json::object* obj_ = nullptr;
  std::set<std::string> known_;
};

std::string resolve(const std::string& base_dir, const std::string& p) {
  if (p.empty() || fs::path(p).is_absolute()) return p;
  return (fs::path(base_dir) / p).lexically_normal().string();
}

json::value read_json_file(const std::string& path, const std::string& where) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(where, "cannot read '" + path + "'");
  std::stringstream ss;
  ss << f.rdbuf();
  try {
    return compression::config::parse_config_json(ss.str());
  } catch (const compression::config::ConfigError& e) {
    fail(where, path + ": " + e.problem());
  }
}

compression::config::CompressorKind kind_of(const char* what) {
  using compression::config::CompressorKind;
  const std::string w = what;
  return w == "prune" ? CompressorKind::Pruning : w == "quantize" ? CompressorKind::Quantization
                                                                  : CompressorKind::Distillation;
}

// A config list inline or as a file, checked against the schema of its compressor kind; errors
// from the schema are re-rooted under the recipe key ("config[0].x" -> "...config_list[0].x").
json::value config_list(Fields& f, const char* kind, const std::string& base_dir) {
  const json::value* v = f.raw("config_list");
  const std::string where = f.at("config_list");
  if (!v) fail(where, "missing (a config list: an array of sub-configs, or a JSON file holding one)");
  json::value list;
  if (v->is_string()) list = read_json_file(resolve(base_dir, std::string(v->as_string())), where);
  else if (v->is_array()) list = *v;
  else fail(where, std::string("must be an array of sub-configs or a file name, got ") + type_name(*v));
  try {
    compression::config::validate_config_list(list, kind_of(kind));
  } catch (const compression::config::ConfigError& e) {
    const std::string& p = e.path();
    fail(p.rfind("config", 0) == 0 ? where + p.substr(6) : where + ": " + p, e.problem());
  }
  return list;
}

// A sub-config key that a recipe cannot carry between stages, refused where it was written.
void refuse_key(const json::value& list, const std::string& where, const char* key, const std::string& why) {
  for (size_t j = 0; j < list.as_array().size(); ++j)
    if (list.as_array()[j].as_object().contains(key))
      fail(where + "[" + std::to_string(j) + "]." + key, why);
}

// Pruning targets must be parameters: masks travel between stages baked into the weights.
void refuse_activation_targets(const json::value& list, const std::string& where) {
  for (size_t j = 0; j < list.as_array().size(); ++j) {
    const json::value* names = list.as_array()[j].as_object().if_contains("target_names");
    if (!names || !names->is_array()) continue;
    for (size_t k = 0; k < names->as_array().size(); ++k) {
      const json::value& n = names->as_array()[k];
      const std::string name = n.is_string() ? std::string(n.as_string()) : "";
      if (name.rfind("_input_", 0) == 0 || name.rfind("_output_", 0) == 0)
        fail(where + "[" + std::to_string(j) + "].target_names[" + std::to_string(k) + "]",
             "'" + name + "': a recipe prunes parameters only (masks travel between stages in the weights)");
    }
  }
}

void training(Fields& f, Training& t) {
  f.integer("epochs", t.epochs, 0);
  f.number("lr", t.lr, 0.0, true);
  f.number("momentum", t.momentum, 0.0, false, 1.0);
  f.number("weight_decay", t.weight_decay, 0.0, false);
}

PruneSpec prune_spec(Fields& f, const std::string& base_dir, bool schedules) {
  PruneSpec p;
  std::vector<std::string> names = compression::pruner_names();
  if (!schedules) {
    std::vector<std::string> single;
    for (const auto& n : names)
      if (n != "linear" && n != "agp" && n != "lottery") single.push_back(n);
    names = single;
  }
  f.one_of("pruner", p.pruner, names, true);
  p.config_list = config_list(f, "prune", base_dir);
  refuse_activation_targets(p.config_list, f.at("config_list"));
  f.integer("training_steps", p.training_steps, 1);
  if (schedules) {
    f.boolean("auto_dependency_groups", p.auto_dependency_groups);
    f.integer("warmup_steps", p.warmup_steps, 0);
    f.integer("interval_steps", p.interval_steps, 1);
    f.integer("total_times", p.total_times, 1);
    f.one_of("base_pruner", p.base_pruner, {"level", "l1", "l2", "fpgm"}, false);
  }
  return p;
}

QuantizeSpec quantize_spec(Fields& f, const std::string& base_dir, bool fused) {
  QuantizeSpec q;
  if (fused) f.one_of("quantizer", q.quantizer, {"qat", "lsq", "lsq_plus", "dorefa", "bnn"}, true);
  else f.one_of("quantizer", q.quantizer, {"ptq", "qat", "lsq", "lsq_plus", "dorefa", "bnn", "naive"}, true);
  q.config_list = config_list(f, "quantize", base_dir);
  refuse_key(q.config_list, f.at("config_list"), "fuse_names",
             "module fusion calibrates folded weights that the saved model does not hold; a recipe cannot use it");
  f.integer("quant_start_step", q.quant_start_step, 0);
  if (!fused) {
    f.integer("steps", q.steps, 1);
    f.one_of("observer", q.observer, {"minmax", "percentile", "mse", "kl"}, false);
    f.number("percentile", q.percentile, 0.0, true, 100.0);
    f.boolean("bias_correction", q.bias_correction);
    for (const char* key : {"observer", "percentile", "bias_correction"})
      if (f.has(key) && q.quantizer != "ptq") fail(f.at(key), "applies to the ptq quantizer only");
    if (f.has("percentile") && q.observer != "percentile") fail(f.at("percentile"), "applies to the percentile observer only");
  }
  return q;
}

DistillSpec distill_spec(Fields& f, const std::string& base_dir) {
  DistillSpec d;
  d.config_list = config_list(f, "distill", base_dir);
  f.str("teacher", d.teacher);
  f.one_of("distiller", d.distiller, {"dynamic", "adaptive1d"}, false);
  f.number("temperature", d.temperature, 0.0, true);
  f.number("origin_loss_lambda", d.origin_loss_lambda, 0.0, false);
  return d;
}

struct KindName {
  StageKind kind;
  const char* name;
};
constexpr KindName kKinds[] = {{StageKind::Train, "train"},       {StageKind::Prune, "prune"},
                               {StageKind::Speedup, "speedup"},   {StageKind::Quantize, "quantize"},
                               {StageKind::Distill, "distill"},   {StageKind::Fuse, "fuse"},
                               {StageKind::Evaluate, "evaluate"}, {StageKind::Export, "export"}};

Stage parse_stage(const json::value& v, const std::string& path, const std::string& base_dir, size_t index) {
  Fields f(v, path);
  std::vector<std::string> kinds;
  for (const auto& k : kKinds) kinds.push_back(k.name);
  std::string kind;
  f.one_of("stage", kind, kinds, true);
  Stage s;
  for (const auto& k : kKinds)
    if (kind == k.name) s.kind = k.kind;
  s.name = std::to_string(index) + "-" + kind;
  f.str("name", s.name);
  if (!std::regex_match(s.name, std::regex("[A-Za-z0-9_][A-Za-z0-9_.-]*")))
    fail(f.at("name"), "'" + s.name + "' may hold only letters, digits, '_', '-' and '.' (it names a directory)");
  switch (s.kind) {
    case StageKind::Train:
      training(f, s.training);
      if (s.training.epochs < 1) fail(f.at("epochs"), "missing or 0 (an integer: the epochs to train)");
      break;
    case StageKind::Prune:
      s.prune = prune_spec(f, base_dir, true);
      training(f, s.training);
      f.integer("finetune_epochs", s.training.epochs, 0);
      if (f.has("epochs")) fail(f.at("epochs"), "a prune stage trains for finetune_epochs");
      break;
    case StageKind::Speedup:
      f.integer("check_batch", s.check_batch, 1);
      break;
    case StageKind::Quantize:
      s.quantize = quantize_spec(f, base_dir, false);
      training(f, s.training);
      if (f.has("epochs") && (s.quantize->quantizer == "ptq" || s.quantize->quantizer == "naive"))
        fail(f.at("epochs"), "the " + s.quantize->quantizer + " quantizer does not train (ptq calibrates over steps)");
      break;
    case StageKind::Distill:
      s.distill = distill_spec(f, base_dir);
      training(f, s.training);
      if (s.training.epochs < 1) fail(f.at("epochs"), "missing or 0 (a distill stage trains: give its epochs)");
      break;
    case StageKind::Fuse: {
      if (const json::value* p = f.raw("prune")) {
        Fields pf(*p, f.at("prune"));
        s.prune = prune_spec(pf, base_dir, false);
        pf.finish();
      }
      if (const json::value* q = f.raw("quantize")) {
        Fields qf(*q, f.at("quantize"));
        s.quantize = quantize_spec(qf, base_dir, true);
        qf.finish();
      }
      if (const json::value* d = f.raw("distill")) {
        Fields df(*d, f.at("distill"));
        s.distill = distill_spec(df, base_dir);
        df.finish();
      }
      if (!s.prune && !s.quantize && !s.distill) fail(path, "a fuse stage needs at least one of prune, quantize, distill");
      training(f, s.training);
      if (s.training.epochs < 1) fail(f.at("epochs"), "missing or 0 (a fuse stage trains: give its epochs)");
      break;
    }
    case StageKind::Evaluate:
      f.boolean("int8", s.int8);
      break;
    case StageKind::Export: {
      const json::value* fm = f.raw("formats");
      if (fm) {
        if (!fm->is_array() || fm->as_array().empty())
          fail(f.at("formats"), "must be a non-empty array of format names");
        s.formats.clear();
        for (size_t i = 0; i < fm->as_array().size(); ++i) {
          const json::value& e = fm->as_array()[i];
          const std::string at = f.at("formats") + "[" + std::to_string(i) + "]";
          if (!e.is_string()) fail(at, std::string("must be a string, got ") + type_name(e));
          if (e.as_string() != "safetensors" && e.as_string() != "onnx")
            fail(at, "'" + std::string(e.as_string()) + "' is not a format (safetensors, onnx)");
          if (e.as_string() == "onnx" && !compression::onnx_export_available())
            fail(at, "this build has no ONNX exporter (configure with libonnx-dev and libprotobuf-dev installed)");
          s.formats.emplace_back(e.as_string());
        }
      }
      break;
    }
  }
  f.finish();
  return s;
}

}  // namespace

bool is_transform_quantizer(const std::string& quantizer) {
  return quantizer == "dorefa" || quantizer == "bnn" || quantizer == "naive";
}

const char* to_string(StageKind kind) {
  for (const auto& k : kKinds)
    if (k.kind == kind) return k.name;
  return "?";
}

Recipe parse_recipe(const json::value& json, const std::string& base_dir) {
  Recipe r;
  r.source = json;
  Fields f(json, "recipe");
  f.str("model", r.model);
  f.str("weights", r.weights);
  f.str("model_file", r.model_file);
  if (r.model.empty() == r.model_file.empty())
    fail(r.model.empty() ? "recipe.model" : "recipe.model_file",
         r.model.empty() ? "missing (a zoo model name, or model_file)" : "give model (with weights) or model_file, not both");
  if (!r.model_file.empty() && !r.weights.empty()) fail("recipe.weights", "a model_file holds its weights already");
  if (!r.model.empty()) {
    bool known = false;
    std::string list;
    for (const auto& n : models::model_names()) {
      known |= n == r.model;
      list += (list.empty() ? "" : ", ") + n;
    }
    if (!known) fail("recipe.model", "'" + r.model + "' is not a zoo model (" + list + ")");
  }
  r.weights = resolve(base_dir, r.weights);
  r.model_file = resolve(base_dir, r.model_file);
  for (const std::string& file : {r.weights, r.model_file})
    if (!file.empty() && !fs::is_regular_file(file))
      fail(file == r.weights ? "recipe.weights" : "recipe.model_file", "no such file '" + file + "'");
  int64_t seed = 1, threads = 0;
  f.integer("seed", seed, 0);
  f.integer("threads", threads, 0, 4096);
  r.seed = static_cast<uint64_t>(seed);
  r.threads = static_cast<int>(threads);
  if (const json::value* d = f.raw("data")) {
    Fields df(*d, "recipe.data");
    df.str("dir", r.data_dir);
    r.data_dir = resolve(base_dir, r.data_dir);
    df.integer("train_limit", r.train_limit, -1);
    df.integer("test_limit", r.test_limit, -1);
    df.integer("batch", r.batch, 1);
    if (r.train_limit == 0) fail(df.at("train_limit"), "must be positive, or -1 for the whole set");
    if (r.test_limit == 0) fail(df.at("test_limit"), "must be positive, or -1 for the whole set");
    df.finish();
  }
  const json::value* stages = f.raw("stages");
  if (!stages) fail("recipe.stages", "missing (an array of stages)");
  if (!stages->is_array() || stages->as_array().empty())
    fail("recipe.stages", std::string("must be a non-empty array of stages, got ") +
                              (stages->is_array() ? "an empty array" : type_name(*stages)));
  f.finish();

  std::set<std::string> names{"initial"};
  // What the stages before this one leave: masks, and a calibration with the quantizer that made
  // it ("bundle": a model_file's own).
  bool masks = false;
  std::string calibration;
  if (!r.model_file.empty()) {
    try {
      const cli::BundleAttachments att = cli::load_bundle_attachments(r.model_file);
      masks = !att.masks.empty();
      if (!att.calibration.empty()) calibration = "bundle";
    } catch (const Error& e) {
      fail("recipe.model_file", e.what());
    }
  }
  for (size_t i = 0; i < stages->as_array().size(); ++i) {
    const std::string path = "recipe.stages[" + std::to_string(i) + "]";
    Stage s = parse_stage(stages->as_array()[i], path, base_dir, i);
    if (s.kind == StageKind::Speedup && !masks)
      fail(path + ".stage", "a speedup stage needs the masks of an earlier prune (or fuse with prune) stage");
    if (s.kind == StageKind::Speedup && !calibration.empty())
      fail(path + ".stage", "speedup changes the layers an earlier stage calibrated; quantize after the speedup");
    if (s.int8 && calibration.empty())
      fail(path + ".int8", "int8 inference needs the calibration of an earlier quantize (or fuse with quantize) stage");
    // DoReFa's tanh transform, BNN's sign and naive's truncation are not in a calibration file:
    // int8 kernels and ONNX QDQ pairs would compute another network.
    const bool grid_only = calibration.empty() || !is_transform_quantizer(calibration);
    if (s.int8 && !grid_only)
      fail(path + ".int8", "the " + calibration + " quantizer's calibration does not describe its transform; int8 "
                           "inference needs ptq, qat, lsq or lsq_plus");
    for (size_t k = 0; k < s.formats.size(); ++k)
      if (s.formats[k] == "onnx" && !grid_only)
        fail(path + ".formats[" + std::to_string(k) + "]", "the " + calibration + " quantizer's calibration does not "
             "describe its transform; ONNX QDQ export needs ptq, qat, lsq or lsq_plus");
    masks = (masks || s.prune) && s.kind != StageKind::Speedup;
    // A stage that changes the weights without quantizing leaves the earlier calibration behind
    // (the runner drops it): its grids were fitted to other weights.
    const bool trains = s.kind == StageKind::Train || s.kind == StageKind::Prune || s.kind == StageKind::Distill ||
                        s.kind == StageKind::Fuse;
    if (s.quantize) calibration = s.quantize->quantizer;
    else if (trains) calibration.clear();
    s.calibrated_by = calibration;
    if (s.distill && !names.count(s.distill->teacher)) {
      std::string list;
      for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
      fail(path + (s.kind == StageKind::Fuse ? ".distill" : "") + ".teacher",
           "'" + s.distill->teacher + "' is not \"initial\" or an earlier stage (" + list + ")");
    }
    if (!names.insert(s.name).second) fail(path + ".name", "'" + s.name + "' names an earlier stage too");
    r.stages.push_back(std::move(s));
  }

  // The recipe with everything it refers to spelled out, for --resume to compare.
  r.resolved = json;
  json::object& top = r.resolved.as_object();
  auto absolute = [](const std::string& p) { return fs::absolute(p).lexically_normal().string(); };
  if (!r.weights.empty()) top["weights"] = absolute(r.weights);
  if (!r.model_file.empty()) top["model_file"] = absolute(r.model_file);
  if (!r.data_dir.empty()) top["data"].as_object()["dir"] = absolute(r.data_dir);
  for (size_t i = 0; i < r.stages.size(); ++i) {
    json::object& st = top["stages"].as_array()[i].as_object();
    const Stage& s = r.stages[i];
    const bool fuse = s.kind == StageKind::Fuse;
    if (s.prune) (fuse ? st["prune"].as_object() : st)["config_list"] = s.prune->config_list;
    if (s.quantize) (fuse ? st["quantize"].as_object() : st)["config_list"] = s.quantize->config_list;
    if (s.distill) (fuse ? st["distill"].as_object() : st)["config_list"] = s.distill->config_list;
  }
  return r;
}

Recipe load_recipe(const std::string& path) {
  json::value v = read_json_file(path, "recipe");
  return parse_recipe(v, fs::path(path).parent_path().string().empty() ? "." : fs::path(path).parent_path().string());
}

}  // namespace shrink::cli::recipe
