# The PyTorch side of bench_infer: the same vgg_small and resnet20, dense and with the channel counts
# bench_infer's speedup leaves (50 % of every conv's outputs but the first; residual sets pruned
# together), eval-mode forward on random 1x28x28 input; the same CSV (dense time / small time).
# Run with Debian's python3-torch:  /usr/bin/python3 bench/bench_infer_torch.py --threads 2
# The int8 table (as bench_infer's): the dense models quantized by PyTorch's FX static
# quantization on its oneDNN engine (conv + batch norm + ReLU fused, int8 weights per channel,
# activations per tensor, calibrated on 4 random batches) against their float forward — oneDNN's
# int8 kernels measured on this machine, beside shrink's own.
import argparse
import copy
import statistics
import time

import torch
from torch import nn

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=0)
ap.add_argument("--rounds", type=int, default=7)
ap.add_argument("--batches", default="1,64")
ap.add_argument("--only", default="", help="sped_up or int8: one table only")
args = ap.parse_args()
if args.threads > 0:
    torch.set_num_threads(args.threads)


def vgg(widths):
    layers, cin, size = [], 1, 28
    for i, w in enumerate(widths):
        layers += [nn.Conv2d(cin, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
        cin = w
        if i % 2 == 1:
            layers.append(nn.MaxPool2d(2))
            size //= 2
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(cin * size * size, 256), nn.ReLU(), nn.Linear(256, 10))


class Block(nn.Module):
    def __init__(self, cin, mid, cout, stride):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, mid, 3, stride, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(),
                                  nn.Conv2d(mid, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return torch.relu(self.body(x) + (self.down(x) if self.down is not None else x))


def resnet(stem, stages):  # stages: (mid, out) per stage, three blocks each
    layers, cin = [nn.Conv2d(1, stem, 3, 1, 1, bias=False), nn.BatchNorm2d(stem), nn.ReLU()], stem
    for i, (mid, out) in enumerate(stages):
        for b in range(3):
            layers.append(Block(cin, mid, out, 2 if i > 0 and b == 0 else 1))
            cin = out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10))


CASES = {
    "vgg_small": (vgg([32, 32, 64, 64, 128, 128]), vgg([32, 16, 32, 32, 64, 64])),
    # layer1's conv2s share the (unpruned) stem's channels; later stages lose half of both convs.
    "resnet20": (resnet(16, [(16, 16), (32, 32), (64, 64)]), resnet(16, [(8, 16), (16, 16), (32, 32)])),
}


def seconds(model, x, reps):
    with torch.no_grad():
        t0 = time.perf_counter()
        for _ in range(reps):
            model(x)
        return (time.perf_counter() - t0) / reps


def side_by_side(name, a, b):
    for batch in [int(v) for v in args.batches.split(",")]:
        x = torch.randn(batch, 1, 28, 28)
        reps = max(2, 256 // batch)
        seconds(a, x, 1)
        seconds(b, x, 1)
        ta, tb = [], []
        for _ in range(args.rounds):
            ta.append(seconds(a, x, reps))
            tb.append(seconds(b, x, reps))
        ratio = [p / q for p, q in zip(ta, tb)]
        print(f"{name},{batch},{torch.get_num_threads()},{statistics.median(ta) * 1e3:.3f},"
              f"{statistics.median(tb) * 1e3:.3f},{statistics.median(ratio):.3f},{min(ratio):.3f},{max(ratio):.3f}",
              flush=True)


if args.only != "int8":
    print("model,batch,threads,dense_ms,sped_up_ms,median_speedup,min_speedup,max_speedup")
    for name, (dense, small) in CASES.items():
        dense.eval()
        small.eval()
        side_by_side(name, dense, small)

if args.only != "sped_up":
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "onednn"
    print("model,batch,threads,fp32_ms,int8_ms,median_speedup,min_speedup,max_speedup")
    for name, (dense, _) in CASES.items():
        dense.eval()
        example = (torch.randn(16, 1, 28, 28),)
        prepared = prepare_fx(copy.deepcopy(dense), get_default_qconfig_mapping("onednn"), example)
        with torch.no_grad():
            for _ in range(4):
                prepared(torch.randn(16, 1, 28, 28))
        side_by_side(name, dense, convert_fx(prepared))
