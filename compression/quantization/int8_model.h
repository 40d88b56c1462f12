// Real int8 inference from a calibration (nni-semantics §4.3: NNI needs TensorRT for this; shrink
// runs it on its own CPU kernels, framework/ops/int8.h).
//
// Int8Model converts a float model in place, layer by layer: every Conv2d (groups 1) and Linear
// whose calibration holds a `weight` target that fits int8 (q - zero point in -128..127) and a
// per-tensor `_input_0` target of at most a byte's range runs the integer kernels instead of its
// forward — int8 weights, the input quantized on entry with the calibrated grid, 32-bit sums.
// A calibrated `bias` is fake-quantized once; a calibrated per-tensor `_output_0` becomes the
// epilogue's requantization. So each converted layer computes what the fake-quantized layer
// computes, up to float rounding of the sums.
//
// Folding, from one traced forward of `probe`: a BatchNorm (eval statistics) that alone consumes
// a converted layer's output, and a ReLU that alone consumes that, each called once and without
// calibration of its own, move into the layer's epilogue and become the identity.
//
// Links: a convolution whose value reaches another int8 convolution alone — through a ReLU and a
// max pooling at most — hands it the bytes that convolution would make of the floats (NHWC, in
// its input grid), so nothing in between is float and nothing is quantized twice. Likewise a Linear
// whose value reaches another int8 Linear alone, through a ReLU at most (rows of bytes). A ReLU or
// pooling module that also runs elsewhere keeps its float path: bytes pass a ReLU (already
// applied by the producer) and pool as bytes. No link passes a module with hooks (they would see
// bytes); the converted model is run once on `probe` and must still return floats.
//
// Everything else keeps running in float, and report() says why for each Conv2d and Linear left
// so. Give the model in eval mode, on the CPU, without compressors attached; destroying the
// Int8Model restores the model (as does a conversion that throws). A calibration made with
// fuse_names describes folded weights the model file does not hold: bake() the quantizer's model
// first (the calibration file does not record the fusion, so this is not detected).
// NaN inputs quantize to the grid's qmin (the fake quantizer would give NaN).
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "compression/quantization/quantizer.h"
#include "framework/nn/module.h"
#include "framework/nn/value.h"

namespace shrink::compression {

struct Int8Report {
  std::vector<std::string> converted;                         // modules running int8 kernels
  std::vector<std::pair<std::string, std::string>> kept_float;  // (module, why)
  std::vector<std::string> folded;                            // batch norms and ReLUs folded in
  std::vector<std::pair<std::string, std::string>> linked;    // (layer, int8 layer it hands bytes)
};

class Int8Model {
 public:
  Int8Model(nn::Module& model, const CalibrationConfig& calibration, const std::vector<nn::Value>& probe);
  ~Int8Model();
  Int8Model(const Int8Model&) = delete;
  Int8Model& operator=(const Int8Model&) = delete;

  const Int8Report& report() const { return report_; }

 private:
  void convert(nn::Module& model, const CalibrationConfig& calibration, const std::vector<nn::Value>& probe);
  void remove_overrides();

  std::vector<nn::HookHandle> overrides_;
  Int8Report report_;
};

}  // namespace shrink::compression
