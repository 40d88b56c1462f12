// The report renderings (examples/compress/report.h) of a hand-made report: the numbers each
// table derives, the SVG marks per plot, escaping, the stage.json round trip, and — where
// Chromium is installed — that every plot is laid out and every mark drawn.
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <unistd.h>

#include "app/chromium.h"
#include "examples/compress/report.h"
#include "framework/core/error.h"

namespace fs = std::filesystem;
using namespace shrink::cli::recipe;

namespace {

// Two layers; the second stage halves conv's channels and zeroes most of fc.
Report sample() {
  Report r;
  r.model = "toy<net>";
  StageRow a;
  a.name = "initial";
  a.kind = "initial";
  a.accuracy = a.float_accuracy = 0.9;
  a.params = a.nonzero_params = 1000;
  a.size_bytes = 4000;
  a.macs = 3600 + 160;
  a.forward_ms = 2.0;
  a.latency_batch = 64;
  a.layers = {{"conv", "Conv2d", {4, 1, 3, 3}, 40, 40, 3600, 4, 4, 32, 1.0},
              {"fc", "Linear", {10, 16}, 170, 170, 160, 10, 10, 32, 0.5}};
  StageRow b = a;
  b.name = "small";
  b.kind = "speedup";
  b.accuracy = 0.85;
  b.float_accuracy = 0.86;
  b.int8_accuracy = 0.851;
  b.int8_samples_per_s = 2500.0;
  b.samples_per_s = 1000.0;
  b.seconds = 1.5;
  b.size_bytes = 1000;
  b.macs = 1800 + 16;
  b.forward_ms = 1.0;
  b.layers = {{"conv", "Conv2d", {2, 1, 3, 3}, 20, 20, 1800, 2, 2, 8, 0.25},
              {"fc", "Linear", {10, 16}, 170, 17, 16, 10, 10, 8, 0.25}};
  b.notes = {"deviation from the masked model 1.00e-07"};
  r.stages = {a, b};
  return r;
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(report)

BOOST_AUTO_TEST_CASE(stage_rows_round_trip_through_json) {
  const Report r = sample();
  for (const StageRow& row : r.stages) {
    const boost::json::object o = to_json(row);
    BOOST_TEST(boost::json::serialize(to_json(stage_row_from_json(o))) == boost::json::serialize(o));
  }
  boost::json::object broken = to_json(r.stages[1]);
  broken.erase("accuracy");
  BOOST_CHECK_THROW(stage_row_from_json(broken), shrink::Error);
  boost::json::object fraction = to_json(r.stages[1]);
  fraction["params"] = 1.5;  // Boost's own conversion error becomes shrink::Error too
  BOOST_CHECK_THROW(stage_row_from_json(fraction), shrink::Error);
}

BOOST_AUTO_TEST_CASE(markdown_derives_sparsity_channels_and_latency_shares) {
  const std::string md = render_markdown(sample());
  // conv: 40 -> 20 parameters = 50 % removed, 2 of 4 channels, latency 1.0/2.0 -> 0.25/1.0.
  BOOST_TEST(md.find("| conv | Conv2d | [4x1x3x3] -> [2x1x3x3] | 40 -> 20 | 3600 -> 1800 | 50.00 % | 2 / 4 | 32 -> 8 | "
                     "50.00 % -> 25.00 % |") != std::string::npos, md);
  // fc: 170 -> 17 non-zero = 90 % sparse.
  BOOST_TEST(md.find("| fc | Linear | [10x16] -> [10x16] | 170 -> 17 | 160 -> 16 | 90.00 % | 10 / 10 |") != std::string::npos, md);
  BOOST_TEST(md.find("| small | speedup | 85.00 % | 86.00 % | 85.10 % | 1000 (1000) | 1.0 KiB | 1816 | 1000 | 2500 | 1.5 |") !=
                 std::string::npos, md);
  BOOST_TEST(md.find("- small: deviation from the masked model 1.00e-07") != std::string::npos, md);
  Report piped = sample();
  piped.stages[1].notes = {"a | b\nc"};
  BOOST_TEST(render_markdown(piped).find("- small: a \\| b c\n") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(html_is_self_contained_with_one_mark_per_value) {
  const std::string html = render_html(sample());
  BOOST_TEST(html.find("<script") == std::string::npos);
  BOOST_TEST(html.find("http://") == html.find("http://www.w3.org/2000/svg"));  // the SVG namespace only
  BOOST_TEST(html.find("https://") == std::string::npos);
  BOOST_TEST(html.find("toy&lt;net&gt;") != std::string::npos);
  BOOST_TEST(html.find("toy<net>") == std::string::npos);
  BOOST_TEST(count(html, "<svg ") == 3u);
  for (const char* id : {"id=\"sparsity\"", "id=\"accuracy-size\"", "id=\"latency\""}) BOOST_TEST(count(html, id) == 1u, id);
  BOOST_TEST(count(html, "class=\"bar\"") == 2u + 4u);  // sparsity: one per layer; latency: two per layer
  BOOST_TEST(count(html, "class=\"point\"") == 2u);     // one per stage
  // The sparsity bar of fc is 90 % of the 420-pixel axis.
  BOOST_TEST(html.find("width=\"378.0\"") != std::string::npos);
  BOOST_TEST(html.find("<li>small: deviation from the masked model 1.00e-07</li>") != std::string::npos);
  // A stage without a measured accuracy (null in its stage.json) draws no point.
  Report nan = sample();
  nan.stages[0].accuracy = NAN;
  const std::string h2 = render_html(nan);
  BOOST_TEST(count(h2, "class=\"point\"") == 1u);
  BOOST_TEST(h2.find("nan") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(chromium_draws_every_plot) {
  if (shrink::testing::chromium_binary().empty()) {
    BOOST_TEST_MESSAGE("skipped: Chromium not installed (./run installs Debian's chromium)");
    return;
  }
  const fs::path dir = fs::temp_directory_path() / ("shrink_report_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::string html = render_html(sample());
  html.insert(html.rfind("</body>"), shrink::testing::plot_check_script());
  std::ofstream(dir / "r.html") << html;
  const std::string dom = shrink::testing::chromium_dump_dom((dir / "r.html").string());
  std::smatch m;
  BOOST_REQUIRE_MESSAGE(std::regex_search(dom, m, std::regex("PLOTS ((?:[a-z-]+:-?[0-9]+:[0-9]+ ?)+) END")), "no plot check in: " << dom.substr(0, 300));
  BOOST_TEST(m[1].str() == "sparsity:2:2 accuracy-size:2:2 latency:4:4");
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_SUITE_END()
