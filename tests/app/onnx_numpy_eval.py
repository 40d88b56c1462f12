#!/usr/bin/env python3
"""Checks an ONNX file the way the ONNX project does, then runs it with a small numpy evaluator.

    onnx_numpy_eval.py MODEL.onnx INPUT.f32 OUTPUT.f32 [N C H W ...]

INPUT.f32 holds the input (float32, little-endian) of the shape given after the files; the graph's
output is written to OUTPUT.f32. The model is checked with onnx.checker (full check) and strict
shape inference first. The evaluator implements, from the ONNX operator specification (opset 13),
exactly the ops shrink's exporter emits; any other op is an error. Used by tests/app (skipped where
python3-onnx or python3-numpy is missing). Exit status: 0 ok, 1 on any failure.
"""
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def conv(x, w, b, a):
    n, c, h, wd = x.shape
    oc, icg, kh, kw = w.shape
    sh, sw = a.get("strides", [1, 1])
    dh, dw = a.get("dilations", [1, 1])
    pt, pl, pb, pr = a.get("pads", [0, 0, 0, 0])
    g = a.get("group", 1)
    x = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh = (x.shape[2] - (dh * (kh - 1) + 1)) // sh + 1
    ow = (x.shape[3] - (dw * (kw - 1) + 1)) // sw + 1
    y = np.zeros((n, oc, oh, ow), dtype=np.float64)
    ocg = oc // g
    for gi in range(g):
        xs = x[:, gi * icg:(gi + 1) * icg].astype(np.float64)
        ws = w[gi * ocg:(gi + 1) * ocg].astype(np.float64)
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
                y[:, gi * ocg:(gi + 1) * ocg] += np.einsum("nchw,oc->nohw", patch, ws[:, :, i, j])
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y.astype(np.float32)


def pool(x, a, reduce):
    k = a["kernel_shape"]
    s = a.get("strides", [1, 1])
    p = a.get("pads", [0, 0, 0, 0])
    fill = -np.inf if reduce is np.max else 0.0
    x = np.pad(x, ((0, 0), (0, 0), (p[0], p[2]), (p[1], p[3])), constant_values=fill)
    oh = (x.shape[2] - k[0]) // s[0] + 1
    ow = (x.shape[3] - k[1]) // s[1] + 1
    windows = np.stack([x[:, :, i:i + s[0] * (oh - 1) + 1:s[0], j:j + s[1] * (ow - 1) + 1:s[1]]
                        for i in range(k[0]) for j in range(k[1])])
    return reduce(windows, axis=0).astype(np.float32)


def along(v, axis, rank):
    if v.ndim == 0 or axis is None:
        return v
    shape = [1] * rank
    shape[axis] = -1
    return v.reshape(shape)


def quantize(x, s, z, a):
    axis = a.get("axis", 1) if s.ndim == 1 else None
    s = along(s, axis, x.ndim)
    zi = along(z, axis, x.ndim).astype(np.int32)
    lo, hi = (-128, 127) if z.dtype == np.int8 else (0, 255)
    q = np.rint(x.astype(np.float32) / s.astype(np.float32)) + zi  # round half to even
    return np.clip(q, lo, hi).astype(z.dtype)


def dequantize(q, s, z, a):
    axis = a.get("axis", 1) if s.ndim == 1 else None
    s = along(s, axis, q.ndim)
    zi = along(z, axis, q.ndim).astype(np.int32)
    return ((q.astype(np.int32) - zi).astype(np.float32) * s).astype(np.float32)


def run(model, x):
    env = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    env[model.graph.input[0].name] = x
    for node in model.graph.node:
        a = attrs(node)
        ins = [env[i] if i else None for i in node.input]
        op = node.op_type
        if op == "Conv":
            y = conv(ins[0], ins[1], ins[2] if len(ins) > 2 else None, a)
        elif op == "Gemm":
            w = ins[1].T if a.get("transB", 0) else ins[1]
            y = (ins[0].astype(np.float64) @ w.astype(np.float64)).astype(np.float32)
            if len(ins) > 2:
                y = y + ins[2]
        elif op == "MatMul":
            y = np.matmul(ins[0], ins[1])
        elif op == "Transpose":
            y = np.transpose(ins[0], a.get("perm"))
        elif op == "BatchNormalization":
            x0, sc, b, m, v = ins
            sh = (1, -1) + (1,) * (x0.ndim - 2)
            y = (x0 - m.reshape(sh)) / np.sqrt(v.reshape(sh) + a.get("epsilon", 1e-5)) * sc.reshape(sh) + b.reshape(sh)
        elif op == "Relu":
            y = np.maximum(ins[0], 0)
        elif op == "Identity":
            y = ins[0]
        elif op == "Add":
            y = ins[0] + ins[1]
        elif op == "Min":
            y = np.minimum(ins[0], ins[1])
        elif op == "Max":
            y = np.maximum(ins[0], ins[1])
        elif op == "MaxPool":
            y = pool(ins[0], a, np.max)
        elif op == "AveragePool":
            y = pool(ins[0], a, np.mean)
        elif op == "GlobalAveragePool":
            y = ins[0].mean(axis=(2, 3), keepdims=True)
        elif op == "Reshape":
            shape = [ins[0].shape[i] if d == 0 else d for i, d in enumerate(ins[1])]
            y = ins[0].reshape(shape)
        elif op == "QuantizeLinear":
            y = quantize(ins[0], ins[1], ins[2], a)
        elif op == "DequantizeLinear":
            y = dequantize(ins[0], ins[1], ins[2], a)
        else:
            raise SystemExit(f"onnx_numpy_eval: no evaluator for op {op} (node {node.name})")
        env[node.output[0]] = y.astype(np.float32) if y.dtype == np.float64 else y
    return env[model.graph.output[0].name]


def main():
    path, in_path, out_path = sys.argv[1:4]
    shape = [int(d) for d in sys.argv[4:]]
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    x = np.fromfile(in_path, dtype="<f4").reshape(shape)
    y = run(model, x)
    np.asarray(y, dtype="<f4").tofile(out_path)
    print("ok", " ".join(str(d) for d in y.shape))


if __name__ == "__main__":
    main()
