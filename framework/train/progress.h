// Progress bars on a terminal: "  calibration [=========           ] 12/40  31.2/s  ETA 0:01".
// Library code (the Trainer, calibration, mask generation, speedup) opens a Bar; where it is drawn
// is the program's choice (set_sink): nowhere by default, and only on a terminal — a
// program whose stderr is a file or a pipe prints its own plain lines (one per epoch, per stage)
// instead of redraws. The line is cleared when the bar ends.
#pragma once
#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>

namespace shrink::progress {

// Where bars go; `out` null (the default) or `tty` false draws nothing. Not thread-safe: set it
// once, before work starts.
void set_sink(std::ostream* out, bool tty);
// The formatted line (no "\r"), for drawing elsewhere and for tests: label, bar, done/total, rate
// per second, the time left at that rate, and `extra`.
std::string format_line(const std::string& label, int64_t done, int64_t total, double seconds,
                        const std::string& extra = "");

class Bar {
 public:
  // `out` null: the sink of set_sink.
  Bar(std::string label, int64_t total, std::ostream* out = nullptr, bool tty = false);
  ~Bar();
  Bar(const Bar&) = delete;
  Bar& operator=(const Bar&) = delete;
  // Redraws at most every 0.1 s (and always at done == total).
  void update(int64_t done, const std::string& extra = "");
  void step(const std::string& extra = "") { update(done_ + 1, extra); }

 private:
  std::string label_;
  int64_t total_, done_ = 0;
  std::ostream* out_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace shrink::progress
