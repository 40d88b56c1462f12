// The report of a `shrink compress` run: a plain struct that the runner fills stage by stage
// (each stage's part is also its stage.json, so --resume reads back what earlier stages measured),
// and its renderings — report.json, report.md, and report.html (self-contained: inline CSS and
// SVG, no script, no network).
#pragma once
#include <boost/json.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace shrink::cli::recipe {

// One Conv2d or Linear layer (Distiller-style row).
struct LayerRow {
  std::string name, type;
  std::vector<int64_t> weight_shape;
  int64_t params = 0;          // weight + bias elements
  int64_t nonzero_params = 0;  // of those, not zero
  int64_t macs = 0;            // per sample, counting only unmasked weights while masks are carried
  int64_t channels = 0;        // output channels / features the layer has
  int64_t live_channels = 0;   // of those, with any non-zero weight
  int bits = 32;               // of the weight (its calibration's quant_bits, else float)
  double latency_ms = 0.0;     // measured per forward of one batch (eval mode, float)
};

// The model after one stage (the first row describes the model the recipe starts from).
struct StageRow {
  std::string name, kind;
  double seconds = 0.0;              // the stage's wall time
  double accuracy = 0.0;             // test accuracy as deployed (fake-quantized when calibrated)
  double float_accuracy = 0.0;       // the same model without its calibration
  double samples_per_s = 0.0;        // float inference, test set
  std::optional<double> int8_accuracy, int8_samples_per_s;  // evaluate stages with int8
  int64_t params = 0, nonzero_params = 0, macs = 0;
  double size_bytes = 0.0;           // parameters stored at their bits (float: 4 bytes)
  double forward_ms = 0.0;           // one batch, whole model (the layers' latency is a share of it)
  int64_t latency_batch = 0;
  std::vector<LayerRow> layers;
  std::vector<std::string> artefacts;  // files of the stage, relative to the output directory
  std::vector<std::string> notes;      // what the stage said (warnings, inexact speedup layers, ...)
};

struct Report {
  std::string model;  // zoo model the run starts from
  std::vector<StageRow> stages;
};

boost::json::object to_json(const StageRow& row);
StageRow stage_row_from_json(const boost::json::value& v);  // throws shrink::Error for a malformed one
boost::json::object to_json(const Report& report);

std::string render_markdown(const Report& report);
std::string render_html(const Report& report);

}  // namespace shrink::cli::recipe
