// ONNX export (Debian's libonnx): a model as standard ONNX ops, read off one traced forward
// (speedup/graph.h), so a sped-up model exports with its new sizes like any other.
//
//   Conv2d -> Conv, Linear -> Gemm (2-d input; MatMul + Add otherwise), BatchNorm (eval) ->
//   BatchNormalization, ReLU -> Relu, max pooling -> MaxPool, average pooling without padding ->
//   AveragePool,
//   adaptive average pooling to 1x1 -> GlobalAveragePool, add -> Add, reshape / flatten -> Reshape
//   (batch dimension kept: 0), dropout (eval) -> Identity.
//
// With a calibration, each 8-bit target of a Conv2d or Linear becomes a QuantizeLinear /
// DequantizeLinear pair (QDQ): `weight` (per tensor, or per channel along one axis) on its
// initializer, `_input_0` before the op, `_output_0` after it. ONNX saturates to the whole int8 /
// uint8 range, so a narrower calibrated range (int8's symmetric [-127, 127], DECISIONS 13) is
// applied first: a weight is clamped in its initializer, an activation goes through Min and Max. The
// exported graph then computes what the fake-quantized model computes. Targets that are not 8-bit
// (or not of a Conv2d / Linear) stay float, and the report says why.
//
// Before anything is written, every op the exporter cannot express is listed in one error.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "compression/quantization/quantizer.h"
#include "framework/nn/module.h"

namespace shrink::compression {

struct OnnxExportOptions {
  Shape input_shape;                                 // e.g. {1, 1, 28, 28}
  const CalibrationConfig* calibration = nullptr;    // QDQ pairs for its 8-bit targets
  bool dynamic_batch = true;                         // input and output dim 0 named "N"
};

struct OnnxExportReport {
  std::vector<std::string> qdq;                                // calibrated targets exported as QDQ
  std::vector<std::pair<std::string, std::string>> kept_float;  // (target, why)
  int nodes = 0;
};

// Whether this build has the exporter (it needs libonnx-dev at configure time).
bool onnx_export_available();

// Exports `model` (traced in eval mode on zeros of `input_shape`) to `path` (opset 13), written
// atomically. Throws shrink::Error naming each op it cannot export, or when unavailable.
OnnxExportReport export_onnx(nn::Module& model, const std::string& path, const OnnxExportOptions& options);

}  // namespace shrink::compression
