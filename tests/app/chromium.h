// Headless Chromium for the report tests (Debian's `chromium`, installed by ./run): loads a page,
// lets its scripts run, and returns the DOM it ends with.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <string>

namespace shrink::testing {

inline std::string chromium_binary() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"})
    if (std::FILE* f = std::fopen(p, "r")) {
      std::fclose(f);
      return p;
    }
  return "";
}

// The DOM after load (and scripts) of `html_path`, "" when Chromium fails.
inline std::string chromium_dump_dom(const std::string& html_path) {
  const std::string cmd = chromium_binary() +
                          " --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run"
                          " --virtual-time-budget=2000 --dump-dom 'file://" +
                          html_path + "' 2>/dev/null";
  std::FILE* p = popen(cmd.c_str(), "r");
  if (!p) return "";
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

// A script appended to a copy of a report: for every <svg class="plot">, whether Chromium laid it
// out with a size and drew each of its marks (bars, points) with a non-empty box, written into
// the DOM as <pre id="plot-check">id:marks:drawn ...</pre>.
inline const char* plot_check_script() {
  return R"(<script>
const lines = [];
for (const svg of document.querySelectorAll('svg.plot')) {
  const box = svg.getBoundingClientRect();
  const marks = svg.querySelectorAll('.bar, .point');
  let drawn = 0;
  for (const m of marks) { const b = m.getBBox(); if (b.width > 0 && b.height > 0) ++drawn; }
  lines.push(svg.id + ':' + (box.width > 0 && box.height > 0 ? marks.length : -1) + ':' + drawn);
}
const pre = document.createElement('pre');
pre.id = 'plot-check';
pre.textContent = 'PLOTS ' + lines.join(' ') + ' END';
document.body.appendChild(pre);
</script>)";
}

}  // namespace shrink::testing
