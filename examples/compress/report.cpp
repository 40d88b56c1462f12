#include "examples/compress/report.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <map>
#include <sstream>

#include "framework/core/error.h"

namespace json = boost::json;

namespace shrink::cli::recipe {

namespace {

json::value number(double v) { return std::isfinite(v) ? json::value(v) : json::value(nullptr); }

json::array strings(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

double get_double(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  SHRINK_CHECK(v && (v->is_number() || v->is_null()), "stage.json: '", key, "' is not a number");
  return v->is_null() ? NAN : v->to_number<double>();
}
int64_t get_int(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  SHRINK_CHECK(v && v->is_number(), "stage.json: '", key, "' is not a number");
  return v->to_number<int64_t>();
}
std::string get_string(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  SHRINK_CHECK(v && v->is_string(), "stage.json: '", key, "' is not a string");
  return std::string(v->as_string());
}
std::vector<std::string> get_strings(const json::object& o, const char* key) {
  std::vector<std::string> out;
  const json::value* v = o.if_contains(key);
  SHRINK_CHECK(v && v->is_array(), "stage.json: '", key, "' is not an array");
  for (const auto& e : v->as_array()) {
    SHRINK_CHECK(e.is_string(), "stage.json: '", key, "' holds a non-string");
    out.emplace_back(e.as_string());
  }
  return out;
}

std::string fmt(double v, int precision) {
  if (!std::isfinite(v)) return "-";  // not measured (null in a stage.json)
  std::ostringstream s;
  s << std::fixed << std::setprecision(precision) << v;
  return s.str();
}
std::string kib(double bytes) { return fmt(bytes / 1024.0, 1) + " KiB"; }
std::string pct(double v) { return std::isfinite(v) ? fmt(100.0 * v, 2) + " %" : "-"; }
std::string shape_text(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "x" : "") + std::to_string(s[i]);
  return out + "]";
}
// The share of a layer's first-stage parameters that the last stage removed or zeroed.
double removed(const LayerRow& before, const LayerRow* after) {
  if (!after) return 1.0;
  return before.params ? 1.0 - static_cast<double>(after->nonzero_params) / static_cast<double>(before.params) : 0.0;
}

// Text for a Markdown table cell or list item: no line breaks, no cell separators.
std::string md(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += "\\|";
    else if (c == '\n' || c == '\r') out += ' ';
    else out += c;
  }
  return out;
}

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// Layers of the first and last stage side by side, in the first stage's order (a sped-up model
// keeps every layer's name; one it lacks shows as removed).
struct LayerPair {
  const LayerRow* before;
  const LayerRow* after;
};
std::vector<LayerPair> layer_pairs(const Report& r) {
  std::vector<LayerPair> out;
  if (r.stages.empty()) return out;
  std::map<std::string, const LayerRow*> last;
  for (const auto& l : r.stages.back().layers) last[l.name] = &l;
  for (const auto& l : r.stages.front().layers) {
    auto it = last.find(l.name);
    out.push_back({&l, it == last.end() ? nullptr : it->second});
  }
  return out;
}

// ---- SVG: small hand-made charts (no script) ----
const char* kBefore = "#9aa5b1";
const char* kAfter = "#2f6fb0";

std::string svg_open(int w, int h, const std::string& id, const std::string& title) {
  std::ostringstream s;
  s << "<svg id=\"" << id << "\" class=\"plot\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << w << "\" height=\""
    << h << "\" viewBox=\"0 0 " << w << " " << h << "\" role=\"img\" aria-label=\"" << escape(title) << "\">"
    << "<text x=\"" << w / 2 << "\" y=\"16\" text-anchor=\"middle\" class=\"title\">" << escape(title) << "</text>";
  return s.str();
}

// Horizontal grouped bars: one group per label, one bar per series (values in [0, vmax]).
std::string bar_chart(const std::string& id, const std::string& title, const std::vector<std::string>& labels,
                      const std::vector<std::vector<double>>& series, const std::vector<std::string>& series_names,
                      double vmax, const std::string& unit) {
  const int label_w = 190, plot_w = 420, bar_h = 12, gap = 8, top = 40;
  const int group_h = static_cast<int>(series.size()) * bar_h + gap;
  const int h = top + static_cast<int>(labels.size()) * group_h + 30;
  const int w = label_w + plot_w + 90;
  if (!(vmax > 0)) vmax = 1.0;
  std::ostringstream s;
  s << svg_open(w, h, id, title);
  const char* colours[] = {kBefore, kAfter};
  for (size_t k = 0; k < series_names.size(); ++k)
    s << "<rect x=\"" << label_w + 160 * static_cast<int>(k) << "\" y=\"24\" width=\"10\" height=\"10\" fill=\""
      << colours[k % 2] << "\"/><text x=\"" << label_w + 14 + 160 * static_cast<int>(k) << "\" y=\"33\">"
      << escape(series_names[k]) << "</text>";
  for (size_t i = 0; i < labels.size(); ++i) {
    const int y0 = top + static_cast<int>(i) * group_h;
    s << "<text x=\"" << label_w - 6 << "\" y=\"" << y0 + group_h / 2 + 2 << "\" text-anchor=\"end\">"
      << escape(labels[i]) << "</text>";
    for (size_t k = 0; k < series.size(); ++k) {
      const double v = std::isfinite(series[k][i]) ? series[k][i] : 0.0;
      const double len = std::max(0.0, std::min(1.0, v / vmax)) * plot_w;
      const int y = y0 + static_cast<int>(k) * bar_h;
      s << "<rect class=\"bar\" x=\"" << label_w << "\" y=\"" << y << "\" width=\"" << fmt(std::max(len, 0.5), 1)
        << "\" height=\"" << bar_h - 2 << "\" fill=\"" << colours[k % 2] << "\"><title>" << escape(labels[i]) << ": "
        << fmt(v, 3) << unit << "</title></rect><text x=\"" << label_w + len + 4 << "\" y=\"" << y + bar_h - 3
        << "\" class=\"small\">" << fmt(v, unit == " %" ? 1 : 3) << unit << "</text>";
    }
  }
  s << "<line x1=\"" << label_w << "\" y1=\"" << top - 4 << "\" x2=\"" << label_w << "\" y2=\"" << h - 26
    << "\" stroke=\"#333\"/></svg>";
  return s.str();
}

// Accuracy against model size, one labelled point per stage, joined in stage order.
std::string scatter(const Report& r) {
  const int w = 640, h = 340, left = 60, right = 30, top = 40, bottom = 50;
  double xmax = 0, ymin = 1, ymax = 0;
  std::vector<const StageRow*> drawn;  // stages with a finite size and accuracy
  for (const auto& st : r.stages)
    if (std::isfinite(st.size_bytes) && std::isfinite(st.accuracy)) drawn.push_back(&st);
  for (const StageRow* st : drawn) {
    xmax = std::max(xmax, st->size_bytes / 1024.0);
    ymin = std::min(ymin, st->accuracy);
    ymax = std::max(ymax, st->accuracy);
  }
  if (!(xmax > 0)) xmax = 1;
  const double pad = std::max(0.01, (ymax - ymin) * 0.15);
  ymin = std::max(0.0, ymin - pad);
  ymax = std::min(1.0, ymax + pad);
  if (ymax <= ymin) ymax = ymin + 0.01;
  auto X = [&](double kb) { return left + kb / (xmax * 1.08) * (w - left - right); };
  auto Y = [&](double a) { return top + (ymax - a) / (ymax - ymin) * (h - top - bottom); };
  std::ostringstream s;
  s << svg_open(w, h, "accuracy-size", "Test accuracy against model size, per stage");
  s << "<line x1=\"" << left << "\" y1=\"" << h - bottom << "\" x2=\"" << w - right << "\" y2=\"" << h - bottom
    << "\" stroke=\"#333\"/><line x1=\"" << left << "\" y1=\"" << top << "\" x2=\"" << left << "\" y2=\"" << h - bottom
    << "\" stroke=\"#333\"/>";
  for (int t = 0; t <= 4; ++t) {
    const double kb = xmax * 1.08 * t / 4, a = ymin + (ymax - ymin) * t / 4;
    s << "<text x=\"" << fmt(X(kb), 1) << "\" y=\"" << h - bottom + 16 << "\" text-anchor=\"middle\" class=\"small\">"
      << fmt(kb, 0) << "</text><text x=\"" << left - 6 << "\" y=\"" << fmt(Y(a) + 4, 1)
      << "\" text-anchor=\"end\" class=\"small\">" << fmt(100 * a, 1) << "</text>";
  }
  s << "<text x=\"" << (left + w - right) / 2 << "\" y=\"" << h - 12 << "\" text-anchor=\"middle\">model size (KiB)</text>"
    << "<text x=\"14\" y=\"" << (top + h - bottom) / 2 << "\" transform=\"rotate(-90 14 " << (top + h - bottom) / 2
    << ")\" text-anchor=\"middle\">accuracy (%)</text>";
  std::string points;
  for (const StageRow* st : drawn) points += fmt(X(st->size_bytes / 1024.0), 1) + "," + fmt(Y(st->accuracy), 1) + " ";
  s << "<polyline points=\"" << points << "\" fill=\"none\" stroke=\"" << kBefore << "\" stroke-dasharray=\"4 3\"/>";
  // Stages that leave size and accuracy as they were share one label.
  std::vector<std::pair<std::string, std::string>> labels;  // (position, names)
  for (const StageRow* row : drawn) {
    const StageRow& st = *row;
    const double x = X(st.size_bytes / 1024.0), y = Y(st.accuracy);
    const std::string at = fmt(x, 1) + "," + fmt(y, 1);
    s << "<circle class=\"point\" cx=\"" << fmt(x, 1) << "\" cy=\"" << fmt(y, 1) << "\" r=\"5\" fill=\"" << kAfter
      << "\"><title>" << escape(st.name) << ": " << pct(st.accuracy) << ", " << kib(st.size_bytes) << "</title></circle>";
    if (!labels.empty() && labels.back().first == at) labels.back().second += ", " + st.name;
    else labels.emplace_back(at, st.name);
  }
  for (const auto& [at, names] : labels) {
    const size_t comma = at.find(',');
    s << "<text x=\"" << fmt(std::stod(at.substr(0, comma)) + 7, 1) << "\" y=\""
      << fmt(std::stod(at.substr(comma + 1)) - 7, 1) << "\" class=\"small\">" << escape(names) << "</text>";
  }
  s << "</svg>";
  return s.str();
}

StageRow parse_stage_row(const json::value& v);

}  // namespace

json::object to_json(const StageRow& row) {
  json::array layers;
  for (const auto& l : row.layers) {
    json::array shape;
    for (int64_t d : l.weight_shape) shape.push_back(d);
    layers.push_back(json::object{{"name", l.name}, {"type", l.type}, {"weight_shape", shape},
                                  {"params", l.params}, {"nonzero_params", l.nonzero_params}, {"macs", l.macs},
                                  {"channels", l.channels}, {"live_channels", l.live_channels}, {"bits", l.bits},
                                  {"latency_ms", number(l.latency_ms)}});
  }
  json::object o{{"name", row.name}, {"kind", row.kind}, {"seconds", number(row.seconds)},
                 {"accuracy", number(row.accuracy)}, {"float_accuracy", number(row.float_accuracy)},
                 {"samples_per_s", number(row.samples_per_s)}, {"params", row.params},
                 {"nonzero_params", row.nonzero_params}, {"macs", row.macs}, {"size_bytes", number(row.size_bytes)},
                 {"forward_ms", number(row.forward_ms)}, {"latency_batch", row.latency_batch},
                 {"layers", layers}, {"artefacts", strings(row.artefacts)}, {"notes", strings(row.notes)}};
  if (row.int8_accuracy) o["int8_accuracy"] = number(*row.int8_accuracy);
  if (row.int8_samples_per_s) o["int8_samples_per_s"] = number(*row.int8_samples_per_s);
  return o;
}

StageRow stage_row_from_json(const json::value& v) {
  try {
    return parse_stage_row(v);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {  // Boost's conversions (a fraction where an integer belongs, ...)
    fail("stage.json: malformed (", e.what(), ")");
  }
}

namespace {
StageRow parse_stage_row(const json::value& v) {
  SHRINK_CHECK(v.is_object(), "stage.json: not an object");
  const json::object& o = v.as_object();
  StageRow r;
  r.name = get_string(o, "name");
  r.kind = get_string(o, "kind");
  r.seconds = get_double(o, "seconds");
  r.accuracy = get_double(o, "accuracy");
  r.float_accuracy = get_double(o, "float_accuracy");
  r.samples_per_s = get_double(o, "samples_per_s");
  r.params = get_int(o, "params");
  r.nonzero_params = get_int(o, "nonzero_params");
  r.macs = get_int(o, "macs");
  r.size_bytes = get_double(o, "size_bytes");
  r.forward_ms = get_double(o, "forward_ms");
  r.latency_batch = get_int(o, "latency_batch");
  if (o.contains("int8_accuracy")) r.int8_accuracy = get_double(o, "int8_accuracy");
  if (o.contains("int8_samples_per_s")) r.int8_samples_per_s = get_double(o, "int8_samples_per_s");
  r.artefacts = get_strings(o, "artefacts");
  r.notes = get_strings(o, "notes");
  const json::value* layers = o.if_contains("layers");
  SHRINK_CHECK(layers && layers->is_array(), "stage.json: 'layers' is not an array");
  for (const auto& lv : layers->as_array()) {
    SHRINK_CHECK(lv.is_object(), "stage.json: a layer is not an object");
    const json::object& lo = lv.as_object();
    LayerRow l;
    l.name = get_string(lo, "name");
    l.type = get_string(lo, "type");
    const json::value* shape = lo.if_contains("weight_shape");
    SHRINK_CHECK(shape && shape->is_array(), "stage.json: layer '", l.name, "' has no weight_shape");
    for (const auto& d : shape->as_array()) l.weight_shape.push_back(d.to_number<int64_t>());
    l.params = get_int(lo, "params");
    l.nonzero_params = get_int(lo, "nonzero_params");
    l.macs = get_int(lo, "macs");
    l.channels = get_int(lo, "channels");
    l.live_channels = get_int(lo, "live_channels");
    l.bits = static_cast<int>(get_int(lo, "bits"));
    l.latency_ms = get_double(lo, "latency_ms");
    r.layers.push_back(std::move(l));
  }
  return r;
}
}  // namespace

json::object to_json(const Report& report) {
  json::array stages;
  for (const auto& s : report.stages) stages.push_back(to_json(s));
  return json::object{{"model", report.model}, {"stages", stages}};
}

std::string render_markdown(const Report& r) {
  std::ostringstream s;
  s << "# shrink compress: " << md(r.model) << "\n\n## Stages\n\n"
    << "| stage | kind | accuracy | float accuracy | int8 accuracy | params (non-zero) | size | MACs/sample | "
       "samples/s | int8 samples/s | seconds |\n|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& st : r.stages)
    s << "| " << st.name << " | " << st.kind << " | " << pct(st.accuracy) << " | " << pct(st.float_accuracy) << " | "
      << (st.int8_accuracy ? pct(*st.int8_accuracy) : std::string("-")) << " | " << st.params << " ("
      << st.nonzero_params << ") | " << kib(st.size_bytes) << " | " << st.macs << " | " << fmt(st.samples_per_s, 0)
      << " | " << (st.int8_samples_per_s ? fmt(*st.int8_samples_per_s, 0) : std::string("-")) << " | "
      << fmt(st.seconds, 1) << " |\n";
  if (r.stages.empty()) return s.str();
  const StageRow& first = r.stages.front();
  const StageRow& last = r.stages.back();
  s << "\n## Layers: " << first.name << " -> " << last.name << "\n\n"
    << "| layer | type | weight | params | MACs | sparsity | channels kept | bits | latency share |\n"
    << "|---|---|---|---|---|---|---|---|---|\n";
  for (const LayerPair& p : layer_pairs(r)) {
    const LayerRow& b = *p.before;
    if (!p.after) {
      s << "| " << b.name << " | " << b.type << " | " << shape_text(b.weight_shape) << " -> removed | | | | | | |\n";
      continue;
    }
    const LayerRow& a = *p.after;
    s << "| " << b.name << " | " << b.type << " | " << shape_text(b.weight_shape) << " -> "
      << shape_text(a.weight_shape) << " | " << b.params << " -> " << a.nonzero_params << " | " << b.macs << " -> "
      << a.macs << " | " << pct(removed(b, &a)) << " | " << a.live_channels << " / " << b.channels << " | " << b.bits << " -> "
      << a.bits << " | " << pct(first.forward_ms > 0 ? b.latency_ms / first.forward_ms : 0.0) << " -> "
      << pct(last.forward_ms > 0 ? a.latency_ms / last.forward_ms : 0.0) << " |\n";
  }
  s << "\nSparsity counts the zeros of the final weights against the first stage's parameters; latency "
       "shares are of one eval-mode float forward of a batch of "
    << first.latency_batch << " (" << fmt(first.forward_ms, 2) << " ms -> " << fmt(last.forward_ms, 2) << " ms).\n";
  bool any_notes = false;
  for (const auto& st : r.stages)
    for (const auto& n : st.notes) {
      if (!any_notes) s << "\n## Notes\n\n";
      any_notes = true;
      s << "- " << md(st.name) << ": " << md(n) << "\n";
    }
  return s.str();
}

std::string render_html(const Report& r) {
  std::ostringstream s;
  s << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>shrink compress: " << escape(r.model)
    << "</title><style>body{font:14px sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 "
       "20px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:"
       "left}svg text{font:12px sans-serif}svg text.small{font-size:10px}svg text.title{font-weight:bold}"
       "</style></head><body>\n<h1>shrink compress: "
    << escape(r.model) << "</h1>\n<h2>Stages</h2>\n<table><tr><th>stage</th><th>kind</th><th>accuracy</th><th>float "
       "accuracy</th><th>int8 accuracy</th><th>params</th><th>non-zero</th><th>size</th><th>MACs/sample</th>"
       "<th>samples/s</th><th>int8 samples/s</th><th>seconds</th></tr>\n";
  for (const auto& st : r.stages)
    s << "<tr><td>" << escape(st.name) << "</td><td>" << escape(st.kind) << "</td><td>" << pct(st.accuracy)
      << "</td><td>" << pct(st.float_accuracy) << "</td><td>"
      << (st.int8_accuracy ? pct(*st.int8_accuracy) : std::string("-")) << "</td><td>" << st.params << "</td><td>"
      << st.nonzero_params << "</td><td>" << kib(st.size_bytes) << "</td><td>" << st.macs << "</td><td>"
      << fmt(st.samples_per_s, 0) << "</td><td>"
      << (st.int8_samples_per_s ? fmt(*st.int8_samples_per_s, 0) : std::string("-")) << "</td><td>"
      << fmt(st.seconds, 1) << "</td></tr>\n";
  s << "</table>\n";
  if (!r.stages.empty()) {
    const StageRow& first = r.stages.front();
    const StageRow& last = r.stages.back();
    std::vector<std::string> labels;
    std::vector<double> sparse, lat_before, lat_after;
    for (const LayerPair& p : layer_pairs(r)) {
      labels.push_back(p.before->name);
      sparse.push_back(100.0 * removed(*p.before, p.after));
      lat_before.push_back(p.before->latency_ms);
      lat_after.push_back(p.after ? p.after->latency_ms : 0.0);
    }
    s << "<h2>Plots</h2>\n"
      << bar_chart("sparsity", "Per-layer sparsity (" + first.name + " -> " + last.name + ")", labels, {sparse},
                   {"parameters removed or zero"}, 100.0, " %")
      << "\n" << scatter(r) << "\n";
    double lmax = 0;
    for (double v : lat_before) lmax = std::max(lmax, v);
    for (double v : lat_after) lmax = std::max(lmax, v);
    s << bar_chart("latency", "Latency per layer, one batch of " + std::to_string(first.latency_batch) + " (ms)",
                   labels, {lat_before, lat_after}, {first.name, last.name}, lmax, " ms")
      << "\n<h2>Layers</h2>\n<table><tr><th>layer</th><th>type</th><th>weight</th><th>params</th><th>MACs</th>"
         "<th>sparsity</th><th>channels kept</th><th>bits</th><th>latency (ms)</th></tr>\n";
    for (const LayerPair& p : layer_pairs(r)) {
      const LayerRow& b = *p.before;
      s << "<tr><td>" << escape(b.name) << "</td><td>" << escape(b.type) << "</td>";
      if (!p.after) {
        s << "<td>" << shape_text(b.weight_shape) << " &rarr; removed</td><td></td><td></td><td></td><td></td><td>"
          << "</td><td></td></tr>\n";
        continue;
      }
      const LayerRow& a = *p.after;
      s << "<td>" << shape_text(b.weight_shape) << " &rarr; " << shape_text(a.weight_shape) << "</td><td>" << b.params
        << " &rarr; " << a.nonzero_params << "</td><td>" << b.macs << " &rarr; " << a.macs << "</td><td>"
        << pct(removed(b, &a))
        << "</td><td>" << a.live_channels << " / " << b.channels << "</td><td>" << b.bits << " &rarr; " << a.bits
        << "</td><td>" << fmt(b.latency_ms, 3) << " &rarr; " << fmt(a.latency_ms, 3) << "</td></tr>\n";
    }
    s << "</table>\n";
  }
  bool any_notes = false;
  for (const auto& st : r.stages)
    for (const auto& n : st.notes) {
      if (!any_notes) s << "<h2>Notes</h2>\n<ul>\n";
      any_notes = true;
      s << "<li>" << escape(st.name) << ": " << escape(n) << "</li>\n";
    }
  if (any_notes) s << "</ul>\n";
  s << "</body></html>\n";
  return s.str();
}

}  // namespace shrink::cli::recipe
