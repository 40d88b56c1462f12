#!/usr/bin/python3
"""Writes the PyTorch-trained model-zoo fixtures used by tests/golden/test_zoo_logits.cpp.

For every model in torch_zoo.MODEL_NAMES (the PyTorch twins of models/zoo.cpp):
  1. build it and train it briefly in train mode (30 SGD steps, lr 0.05, momentum 0.9, batches
     of 16 N(0,1) 1x28x28 images with random labels), so weights and BatchNorm running
     statistics move away from their initial values;
  2. snap every float parameter to a per-tensor int8 grid to keep the file small:
         scale = float32(max|w| / 127), level = clamp(round(w / scale), -127, 127) (stored I8),
         w := float32(scale) * float32(level)   (multiplied in float32, as the C++ test does,
                                                 so both sides see bit-identical weights);
     buffers stay as they are (running_mean / running_var F32, num_batches_tracked I64);
  3. in eval mode compute the float32 logits for a fixed batch of 3 N(0,1) images, and the
     same in float64 (model.double()) to report how far float32 itself is from the true value.

Each tests/data/zoo_<model>.safetensors.gz is a safetensors file (laid out by hand, as
make_safetensors_fixture.py does: the `safetensors` package is not installed here),
gzip-compressed with mtime=0 so reruns are byte-identical. It holds
    <param>.__level  I8  (param's shape)     <param>.__scale  F32 []   for each float parameter
    <buffer>         as-is                                              for each buffer
    __input          F32 [3, 1, 28, 28]
    __logits         F32 [3, 10]   the float32 PyTorch result with the snapped weights

Run with Debian's interpreter (python3-torch lives there):
    /usr/bin/python3 tests/data/make_zoo_fixture.py
"""
import gzip
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import torch_zoo  # noqa: E402
from make_safetensors_fixture import safetensors_bytes  # noqa: E402

STEPS, BATCH, LR, MOMENTUM = 30, 16, 0.05, 0.9


def train_briefly(model, gen):
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in range(STEPS):
        x = torch.randn(BATCH, 1, 28, 28, generator=gen)
        y = torch.randint(0, 10, (BATCH,), generator=gen)
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()


def snap_to_int8(model):
    """Replaces each float parameter by scale * level; returns {name: (level, scale)}."""
    snapped = {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            w = p.detach().float()
            scale = (w.abs().max() / 127).to(torch.float32)
            if scale.item() == 0.0:
                scale = torch.tensor(1.0, dtype=torch.float32)
            level = torch.clamp(torch.round(w / scale), -127, 127).to(torch.int8)
            p.copy_(scale * level.to(torch.float32))  # float32 multiply, exactly as in C++
            snapped[name] = (level, scale.reshape([]))
    return snapped


def make_fixture(name, index):
    torch.manual_seed(1000 + index)  # module initialisation
    gen = torch.Generator().manual_seed(2000 + index)  # training data and the test batch
    model = torch_zoo.make_model(name)
    train_briefly(model, gen)
    snapped = snap_to_int8(model)

    x = torch.randn(3, 1, 28, 28, generator=gen)
    model.eval()
    with torch.no_grad():
        logits = model(x).float()
        logits64 = model.double()(x.double())

    named = {}
    for pname, (level, scale) in snapped.items():
        named[pname + ".__level"] = level.contiguous()
        named[pname + ".__scale"] = scale.contiguous()
    for bname, b in model.named_buffers():
        # model.double() widened the float buffers; the fixture keeps them float32 (they were
        # float32 when the float32 logits were computed, so narrowing back is exact).
        named[bname] = (b.float() if b.is_floating_point() else b).contiguous()
    named["__input"] = x.contiguous()
    named["__logits"] = logits.contiguous()

    raw = safetensors_bytes(named, {"format": "pt", "model": name})
    path = os.path.join(HERE, "zoo_%s.safetensors.gz" % name)
    with open(path, "wb") as f:
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, compresslevel=9, mtime=0) as gz:
            gz.write(raw)
    err = (logits.double() - logits64).abs().max().item()
    size = os.path.getsize(path)
    print("%-17s %8d bytes (raw %8d)  |float32 - float64| max %.3g  logit range [%.3f, %.3f]"
          % (os.path.basename(path), size, len(raw), err, logits.min().item(), logits.max().item()))
    return size


def main():
    torch.set_num_threads(1)
    total = sum(make_fixture(name, i) for i, name in enumerate(torch_zoo.MODEL_NAMES))
    print("total %d bytes" % total)


if __name__ == "__main__":
    main()
