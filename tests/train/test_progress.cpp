// Progress bars (framework/train/progress.h): the line's fields against hand-computed values,
// nothing drawn off a terminal, and the line cleared when the bar ends.
#include <boost/test/unit_test.hpp>
#include <sstream>

#include "framework/train/progress.h"

using namespace shrink;

BOOST_AUTO_TEST_SUITE(progress_bars)

BOOST_AUTO_TEST_CASE(line_has_bar_count_rate_and_eta) {
  // 12 of 40 in 0.5 s: 7 of 24 cells, 24 per second, 28 left = 1.17 s.
  BOOST_TEST(progress::format_line("calibration", 12, 40, 0.5) ==
             "  calibration [=======                 ] 12/40  24.0/s  ETA 0:01");
  // 1 of 3600 in 1 s: an hour left; done: no ETA; extra text at the end.
  BOOST_TEST(progress::format_line("x", 1, 3601, 1.0).find("ETA 1:00:00") != std::string::npos);
  BOOST_TEST(progress::format_line("masks", 5, 5, 2.0, "fc1.weight") ==
             "  masks [========================] 5/5  2.5/s  fc1.weight");
}

BOOST_AUTO_TEST_CASE(drawn_only_on_a_terminal_and_cleared_at_the_end) {
  std::ostringstream file, tty;
  {
    progress::Bar off("a", 2, &file, false);
    off.step();
    off.step();
  }
  BOOST_TEST(file.str().empty());
  {
    progress::Bar on("b", 2, &tty, true);
    on.step();
    on.step();  // the last step always draws
  }
  const std::string s = tty.str();
  BOOST_TEST(s.find("2/2") != std::string::npos);
  BOOST_TEST(s.substr(s.size() - 4) == "\r\033[K");
  // Library bars (no stream of their own) draw on the sink, and only when it is a terminal.
  std::ostringstream sink;
  struct Reset {  // the sink must not outlive this test, however it ends
    ~Reset() { progress::set_sink(nullptr, false); }
  } reset;
  progress::set_sink(&sink, false);
  { progress::Bar quiet("c", 1); quiet.step(); }
  BOOST_TEST(sink.str().empty());
  progress::set_sink(&sink, true);
  { progress::Bar shown("c", 1); shown.step(); }
  BOOST_TEST(sink.str().find("  c [") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
