#include "framework/train/progress.h"

#include <cstdio>
#include <ostream>

namespace shrink::progress {

namespace {
std::ostream* g_sink = nullptr;

std::string clock_text(double seconds) {
  const auto s = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                               static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  else std::snprintf(buf, sizeof buf, "%lld:%02lld", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  return buf;
}
}  // namespace

void set_sink(std::ostream* out, bool tty) { g_sink = tty ? out : nullptr; }

std::string format_line(const std::string& label, int64_t done, int64_t total, double seconds, const std::string& extra) {
  const int width = 24;
  const int filled = total > 0 ? static_cast<int>(width * std::min(done, total) / total) : width;
  std::string line = "  " + label + " [" + std::string(static_cast<size_t>(filled), '=') +
                     std::string(static_cast<size_t>(width - filled), ' ') + "] " + std::to_string(done) + "/" +
                     std::to_string(total);
  char buf[64];
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;
  std::snprintf(buf, sizeof buf, "  %.1f/s", rate);
  line += buf;
  if (rate > 0 && total > done) line += "  ETA " + clock_text(static_cast<double>(total - done) / rate);
  if (!extra.empty()) line += "  " + extra;
  return line;
}

Bar::Bar(std::string label, int64_t total, std::ostream* out, bool tty)
    : label_(std::move(label)), total_(total), out_(out ? (tty ? out : nullptr) : g_sink),
      start_(std::chrono::steady_clock::now()), last_(start_) {}

Bar::~Bar() {
  if (drawn_) *out_ << "\r\033[K" << std::flush;  // clear the line for what comes next
}

void Bar::update(int64_t done, const std::string& extra) {
  done_ = done;
  if (!out_) return;
  const auto now = std::chrono::steady_clock::now();
  if (drawn_ && done < total_ && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  const double seconds = std::chrono::duration<double>(now - start_).count();
  *out_ << "\r\033[K" << format_line(label_, done, total_, seconds, extra) << std::flush;
  drawn_ = true;
}

}  // namespace shrink::progress
