#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (tests/fuzz/corpus/<target>/): small valid inputs of
every kind each reader accepts, so fuzzing starts from the interesting parts of the formats.
Only the standard library: the checkpoint's CRC is computed here the way checkpoint.cpp does."""
import gzip, json, os, struct, zlib

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data")
DTYPE_CODE = {"F32": 0, "I64": 1, "I32": 2, "U8": 3, "I8": 4}  # shrink::DType's values
SIZE = {"F32": 4, "I64": 8, "I32": 4, "U8": 1, "I8": 1, "F16": 2, "BOOL": 1}


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape, raw bytes)] -> file bytes (sorted, 8-aligned header)."""
    header, offset, data = {}, 0, b""
    for name, dtype, shape, raw in sorted(tensors):
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        data += raw
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def f32(*v):
    return struct.pack("<%df" % len(v), *v)


def checkpoint_crc(tensors, values):
    crc = 0
    def text(s):
        b = s.encode()
        return struct.pack("<Q", len(b)) + b
    for name, dtype, shape, raw in sorted(tensors):
        crc = zlib.crc32(text(name), crc)
        crc = zlib.crc32(bytes([DTYPE_CODE[dtype]]), crc)
        crc = zlib.crc32(struct.pack("<%dq" % len(shape), *shape), crc)
        crc = zlib.crc32(raw, crc)
    for k in sorted(values):
        crc = zlib.crc32(text(k) + text(values[k]), crc)
    return "%08x" % crc


def config_list():
    configs = [
        (0, [{"op_types": ["Conv2d"], "exclude_op_names": ["conv1"], "sparse_ratio": 0.5}]),
        (0, [{"op_names": ["fc1"], "sparse_ratio": 0.75, "granularity": "out_channel", "dependency_group_id": "a",
              "internal_metric_block": 2}, {"op_names_re": ["fc.*"], "sparse_threshold": 0.1, "global_group_id": 1}]),
        (0, [{"op_types": ["default"], "sparsity_per_layer": 0.5}, {"exclude": True, "op_names": ["fc3"]}]),
        (1, [{"op_types": ["Conv2d"], "target_names": ["weight", "_input_"], "sparse_ratio": 0.3,
              "granularity": "in_channel", "max_sparse_ratio": 0.9, "min_sparse_ratio": 0.1}]),
        (3, [{"op_types": ["Conv2d", "Linear"], "target_names": ["weight", "_input_", "_output_"], "quant_dtype": "int8",
              "quant_scheme": "affine", "granularity": "out_channel", "fuse_names": [["conv1", "bn1"]]}]),
        (3, [{"quant_types": ["weight", "input"], "quant_bits": {"weight": 4, "input": 8}, "op_types": ["Linear"],
              "quant_start_step": 10}]),
        (4, [{"op_names": ["layer1.0.conv1"], "target_names": ["weight"], "quant_dtype": "uint4", "granularity": [1, -1]}]),
        (8, [{"op_names": ["head"], "target_names": ["_output_"], "lmbda": 1.0, "link": "auto", "apply_method": "kl"}]),
        (6, [{"op_types": ["Linear"], "target_names": ["_output_"], "lmbda": 0.5, "apply_method": "mse"}]),
    ]
    for i, (sel, cfg) in enumerate(configs):
        write("config_list", "seed%02d" % i, bytes([sel]) + json.dumps(cfg).encode())


def safetensors_seeds():
    for name in ["torch_fixture.safetensors", "distill_fixture.safetensors"]:
        with open(os.path.join(DATA, name), "rb") as f:
            write("safetensors", name, f.read())
    write("safetensors", "masks", safetensors([("fc1.weight", "F32", [2, 3], f32(1, 0, 1, 1, 0, 1)),
                                               ("fc1.bias", "F32", [2], f32(1, 0))]))
    write("safetensors", "dtypes", safetensors([("h", "F16", [2], struct.pack("<2e", 1.5, -0.0)),
                                                ("b", "BOOL", [3], bytes([1, 0, 1])),
                                                ("i", "I64", [1], struct.pack("<q", -7)),
                                                ("e", "F32", [0], b"")], {"note": "x"}))
    tensors = [("model.fc.weight", "F32", [2, 2], f32(0.5, -1, 2, 0)),
               ("optim.g0.p0.buf1", "F32", [2, 2], f32(0, 0, 0.25, 1))]
    values = {"trainer.global_step": "4", "trainer.loss_sum": "0x1.8p+1", "rng.default": "5489 0 0"}
    meta = {"v:" + k: v for k, v in values.items()}
    meta["shrink.format"] = "shrink-checkpoint-1"
    meta["shrink.checksum"] = checkpoint_crc(tensors, values)
    write("safetensors", "checkpoint", safetensors(tensors, meta))


def calibration_seeds():
    sidecar = {"fc1.weight": {"module": "fc1", "target": "weight", "quant_dtype": "int8", "quant_scheme": "symmetric",
                              "quant_bits": 8, "qmin": -127, "qmax": 127},
               "fc1._input_0": {"module": "fc1", "target": "_input_0", "quant_dtype": "uint8",
                                "quant_scheme": "affine", "quant_bits": 8, "qmin": 0, "qmax": 255}}
    text = json.dumps(sidecar, separators=(",", ":"))
    tensors = []
    for key, shape in [("fc1.weight", [2]), ("fc1._input_0", [])]:
        n = 1 if not shape else shape[0]
        for field in ["scale", "zero_point", "tracked_min", "tracked_max"]:
            tensors.append((key + "." + field, "F32", shape, f32(*([0.1] * n))))
    for meta in [None, {"shrink_calibration": text}]:
        body = safetensors(tensors, meta)
        write("calibration", "seed_meta" if meta else "seed", struct.pack("<H", len(text)) + text.encode() + body)


def idx_seeds():
    images = struct.pack(">IIII", 0x803, 2, 3, 3) + bytes(range(18))
    labels = struct.pack(">II", 0x801, 2) + bytes([3, 9])
    write("idx_gzip", "images.gz", gzip.compress(images, mtime=0))
    write("idx_gzip", "labels.gz", gzip.compress(labels, mtime=0))
    write("idx_gzip", "images_raw", images)
    write("idx_gzip", "two_members.gz", gzip.compress(images[:10], mtime=0) + gzip.compress(images[10:], mtime=0))


if __name__ == "__main__":
    config_list()
    safetensors_seeds()
    calibration_seeds()
    idx_seeds()
