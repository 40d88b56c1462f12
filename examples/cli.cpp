// Helpers shared by the `shrink` subcommands.
#include <cmath>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "examples/cli.h"

namespace po = boost::program_options;

namespace shrink::cli {

std::optional<int> parse_args(const std::vector<std::string>& args, const po::options_description& desc,
                              po::variables_map& vm, const char* command) {
  try {
    po::store(po::command_line_parser(args).options(desc).run(), vm);
    if (vm.count("help")) {
      std::cout << desc << "\n";
      return 0;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "shrink " << command << ": " << e.what() << "\n" << desc << "\n";
    return 2;
  }
  return std::nullopt;
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  std::ostringstream os;
  os << std::setprecision(10) << v;
  return os.str();
}

}  // namespace shrink::cli
