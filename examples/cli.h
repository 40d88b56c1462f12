// Shared pieces of the `shrink` command-line tool: subcommand entry points and JSON output.
#pragma once
#include <string>
#include <vector>

namespace shrink::cli {

// Each subcommand takes its own arguments (argv without the subcommand) and returns the exit
// status: 0 ok, 2 bad usage or invalid input, 1 runtime failure.
int cmd_train(const std::vector<std::string>& args);
// `shrink explain`: the target table a config list gives a zoo model; 2 for an invalid config.
int cmd_explain(const std::vector<std::string>& args);

// Prints a JSON-safe number (no NaN/inf, which JSON cannot hold).
std::string json_number(double v);

}  // namespace shrink::cli
