// Checkpoints: the whole state of a run (model, optimizer, schedules, compressors, random
// streams, data position) in one safetensors file per checkpoint, so a run killed at any moment
// resumes bit-identically from the newest complete one.
//
// Layout: DIR/step-<12-digit step>.ckpt, a safetensors file whose tensors are the StateDict's
// tensors and whose __metadata__ holds its values ("v:<key>"), the format ("shrink.format") and a
// CRC-32 over every tensor (name, dtype, shape, bytes) and every value ("shrink.checksum").
// Files are written to a temporary name, fsynced and renamed (io::write_file_atomic), so a crash
// leaves either the old set of checkpoints or the new one, never a partial file under a
// checkpoint name; the checksum also rejects a file damaged afterwards.
#pragma once
#include <cstdint>
#include <iosfwd>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "framework/core/tensor.h"

namespace shrink::io {

// Named tensors and scalar values; each part of a run writes under its own key prefix
// ("model.", "optim.", "trainer.", a compressor's name). Reading a key marks it used, so a
// loader can tell whether the checkpoint held state nothing took (a different command).
class StateDict {
 public:
  // The tensor's data is copied (to the CPU) when the checkpoint is written.
  void put(const std::string& key, const Tensor& t);
  void put_int(const std::string& key, int64_t v);
  void put_real(const std::string& key, double v);  // exactly (hexadecimal float)
  void put_text(const std::string& key, const std::string& v);

  bool has(const std::string& key) const { return tensors_.count(key) || values_.count(key); }
  // The getters throw an Error naming the key and the source when it is missing or unreadable.
  Tensor tensor(const std::string& key) const;
  int64_t integer(const std::string& key) const;
  double real(const std::string& key) const;
  const std::string& text(const std::string& key) const;
  // Copies the saved tensor into `dst` in place when `dst` is defined (shapes and dtypes must
  // match: whoever holds `dst`, e.g. an optimizer, keeps seeing it), else makes `dst` a copy.
  void restore(const std::string& key, Tensor& dst) const;
  // restore() when the key is there; an undefined `dst` is left so otherwise. Returns whether
  // it was there (state that exists only once a run has made it, e.g. an optimizer buffer).
  bool restore_if_present(const std::string& key, Tensor& dst) const;
  // Keys no getter has read.
  std::vector<std::string> unused() const;

  const std::map<std::string, Tensor>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& values() const { return values_; }
  // Where the state came from (a file name), for messages.
  std::string source = "(in memory)";

 private:
  std::map<std::string, Tensor> tensors_;
  std::map<std::string, std::string> values_;
  mutable std::set<std::string> used_;
};

// The checkpoint file of `step` in `dir`.
std::string checkpoint_path(const std::string& dir, int64_t step);
// Writes the checkpoint of `step` (creating `dir` if needed), then removes every checkpoint of a
// later step (left by a run this one superseded), all but the newest `keep` of the rest and any
// temporary files an interrupted write left. Returns the file name.
std::string save_checkpoint(const std::string& dir, int64_t step, const StateDict& state, int keep = 2);
// Reads one checkpoint and verifies its format and checksum; throws naming the file and the fault.
StateDict load_checkpoint(const std::string& path);
// The same from the file's bytes; `name` appears in every error.
StateDict parse_checkpoint(const std::string& bytes, const std::string& name);
// The checkpoint files in `dir`, newest step first (an absent directory has none).
std::vector<std::string> list_checkpoints(const std::string& dir);
// The newest checkpoint in `dir` that verifies. Each newer one that does not is reported to
// `log` (when given) and skipped. nullopt when there is none.
std::optional<StateDict> load_latest_checkpoint(const std::string& dir, std::ostream* log);

}  // namespace shrink::io
