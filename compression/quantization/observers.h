// Observers: how a quantizer turns the values a target sees into the range its scale and zero
// point come from (TargetState::tracked_min / tracked_max, per block of the target's
// granularity).
//   observe_min_max  running minimum and maximum over every observation (NNI's PTQ)
//   observe_ema      t = decay * t + (1 - decay) * current, the first observation copied (NNI's
//                    QAT); computed in float32 as torch does (decay and 1 - decay rounded to
//                    float from their double values)
// Under data parallelism each observation's range is the global batch's: the per-block minimum
// and maximum are reduced across the ranks of `comm` before they enter the running range, so
// every rank tracks what one process seeing the whole batch would.
#pragma once
#include "compression/wrapper/target_state.h"
#include "framework/dist/communicator.h"

namespace shrink::compression {

void observe_min_max(TargetState& t, const Tensor& value, dist::Communicator& comm);
void observe_ema(TargetState& t, const Tensor& value, double decay, dist::Communicator& comm);

}  // namespace shrink::compression
