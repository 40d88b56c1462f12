# The PyTorch side of bench_masks: the same wide vgg_small (width 288, 25.8 M parameters) and the
# same four one-shot pruners at 50 % on every Conv2d and Linear weight, done with the tensor
# operations NNI 3.0's pruners perform (metric, k smallest, mask expanded to the weight's shape and
# copied into the mask buffer, get_masks' clone). It is not NNI (not installable here); it gives
# a same-machine PyTorch baseline. Prints bench_masks' CSV.
# Run with Debian's python3-torch:  /usr/bin/python3 bench/bench_masks_torch.py --threads 2
import argparse
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "data"))
from torch_zoo import VGGSmall  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=0)
ap.add_argument("--only", default="")
ap.add_argument("--width", type=int, default=288)
args = ap.parse_args()
if args.threads > 0:
    torch.set_num_threads(args.threads)


def status_mb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return -1.0


def metric(name, w):
    if name == "level":
        return w.abs()
    rows = w.flatten(1)
    if name == "l1":
        return rows.norm(p=1, dim=1)
    if name == "l2":
        return rows.norm(p=2, dim=1)
    return torch.cdist(rows, rows).sum(dim=1)  # fpgm: distance to every other filter


def compress(name, weights, buffers):
    masks = {}
    for key, w in weights.items():
        m = metric(name, w)
        k = int(m.numel() * 0.5)
        shrunk = torch.ones_like(m)
        if k > 0:
            shrunk.view(-1)[torch.topk(m.view(-1), k, largest=False).indices] = 0
        full = shrunk if name == "level" else shrunk.view(-1, *([1] * (w.dim() - 1))).expand_as(w)
        buffers[key].copy_(full)
        masks[key] = buffers[key].clone()
    return masks


print("pruner,model_params,masked_elements,seconds,extra_mb,model_mb")
with torch.no_grad():
    for name in ["level", "l1", "l2", "fpgm"]:
        if args.only and args.only != name:
            continue
        torch.manual_seed(0)
        model = VGGSmall(width=args.width)
        params = sum(p.numel() for p in model.parameters())
        weights = {n + ".weight": m.weight for n, m in model.named_modules()
                   if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))}
        buffers = {k: torch.ones_like(w) for k, w in weights.items()}
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        rss = status_mb("VmRSS")
        t0 = time.perf_counter()
        masks = compress(name, weights, buffers)
        seconds = time.perf_counter() - t0
        extra = status_mb("VmHWM") - rss
        masked = sum(m.numel() for m in masks.values())
        print(f"{name},{params},{masked},{seconds:.3f},{extra:.1f},{params * 4 / 1048576:.1f}", flush=True)
