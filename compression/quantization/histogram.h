// Calibration observers beyond min/max (PtqQuantizer's percentile, mse and kl), all from one
// per-block histogram of |x|: bins of a fixed width (the first observation's max|x| / 2048),
// extended with more bins of the same width when a later value is larger, so the counts stay
// exact; only past kMaxBins are neighbouring bins merged pairwise (the width doubles), which
// bounds memory and the search when a block's range grows by orders of magnitude. From it each observer chooses a clipping magnitude `amax` per block;
// the block's range is then the observed [min, max] clipped to [-amax, amax] and goes through the
// target's scheme as usual (quant_params.h).
//
//   percentile p  amax = the upper edge of the bin where the cumulative count reaches p% of all
//   mse           amax = the candidate edge minimising the histogram's expected squared error of
//                 quantizing every bin centre with that clip (a grid search over bin edges)
//   kl            TensorRT's entropy calibration: the edge i minimising KL(P || Q), P the first i
//                 bins with the outliers folded into the last, Q P merged into the available levels
//                 and spread back over P's non-empty bins; the zero bin counted as bin 1 (a ReLU's
//                 spike of zeros would otherwise force the narrowest clip). PtqQuantizer uses it for
//                 activations only.
// The levels a clip is divided into: (qmax - qmin) / 2 on each side of zero, or qmax - qmin when
// the scheme is affine and the block never saw a negative value (e.g. after a ReLU).
#pragma once
#include <string>
#include <vector>

#include "framework/core/tensor.h"
#include "framework/dist/communicator.h"

namespace shrink::compression {

enum class RangeObserver { MinMax, Percentile, Mse, Kl };
RangeObserver parse_range_observer(const std::string& name);  // "minmax" | "percentile" | "mse" | "kl"
const char* to_string(RangeObserver o);

class AbsHistogram {
 public:
  static constexpr int64_t kBins = 2048;
  static constexpr int64_t kMaxBins = 1 << 16;

  // `rows` [blocks, n]: one row of values per block (the same number of blocks every call).
  // `block_max`, when given, is each block's max |x| (finite values) over the whole batch where
  // `rows` is one rank's part of it (block_abs_max reduced across ranks): the bins then grow as
  // they would for the whole batch, on every rank, and sum_across_ranks() makes the counts one
  // process would have counted.
  void add(const Tensor& rows, const std::vector<float>* block_max = nullptr);
  static std::vector<float> block_abs_max(const Tensor& rows);
  void sum_across_ranks(dist::Communicator& comm);
  int64_t blocks() const { return static_cast<int64_t>(counts_.size()); }
  const std::vector<double>& counts(int64_t block) const { return counts_.at(block); }
  float width(int64_t block) const { return width_.at(block); }

  // The clipping magnitude per block; `levels` as described above, per block.
  std::vector<float> amax(RangeObserver observer, double percentile, const std::vector<double>& levels) const;

 private:
  std::vector<std::vector<double>> counts_;
  std::vector<float> width_;  // 0 until the block saw a non-zero value
};

}  // namespace shrink::compression
