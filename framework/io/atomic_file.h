// Whole-file reads and crash-safe whole-file writes, used by every serializer so that a
// checkpoint on disk is always either the old complete file or the new complete file.
#pragma once
#include <string>

namespace shrink::io {

// Writes `bytes` to "<path>.tmp.<pid>.<counter>" in the same directory, fsyncs it and renames
// it over `path`. On failure the temp file is removed, `path` is left as it was, and a
// shrink::Error naming `path` and the system error is thrown. The new file gets default
// permissions (0666 & ~umask), and a symlink at `path` is replaced rather than followed.
void write_file_atomic(const std::string& path, const std::string& bytes);

// Whether this process writes files at all (default: yes). A data-parallel run turns it off on
// every rank but 0: all ranks compute the same model, masks and reports, and one writes them, so
// that two ranks never race on a path. write_file_atomic then returns without touching the disk.
void set_file_writer(bool writes);
bool is_file_writer();

// Reads the whole file; throws shrink::Error naming `path` when it cannot be opened or read.
std::string read_file(const std::string& path);

}  // namespace shrink::io
