// What every benchmark's main shares: parse the options; --help prints them.
#pragma once
#include <boost/program_options.hpp>
#include <iostream>

namespace shrink::bench {

// False when --help was given (the options were printed and main should return 0).
inline bool parse_args(int argc, char** argv, const boost::program_options::options_description& desc) {
  namespace po = boost::program_options;
  po::variables_map vm;
  po::store(po::parse_command_line(argc, argv, desc), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return false;
  }
  return true;
}

}  // namespace shrink::bench
