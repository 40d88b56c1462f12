# The PyTorch side of bench_train: the same zoo models (same layer shapes), batch 64,
# forward + backward + SGD(momentum 0.9) step on random 1x28x28 input; prints the same CSV.
# Run with Debian's python3-torch:  /usr/bin/python3 bench/bench_train_torch.py --threads 2
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "data"))
from torch_zoo import make_model, MODEL_NAMES  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=0)
ap.add_argument("--batch", type=int, default=64)
ap.add_argument("--seconds", type=float, default=3.0)
ap.add_argument("--model", nargs="*", default=MODEL_NAMES)
args = ap.parse_args()
if args.threads > 0:
    torch.set_num_threads(args.threads)
print("model,batch,threads,steps,samples_per_s")
for name in args.model:
    torch.manual_seed(0)
    model = make_model(name)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(args.batch, 1, 28, 28)
    y = torch.arange(args.batch) % 10

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    t0 = time.perf_counter()
    steps = 0
    while time.perf_counter() - t0 < args.seconds:
        step()
        steps += 1
    elapsed = time.perf_counter() - t0
    print(f"{name},{args.batch},{torch.get_num_threads()},{steps},{steps * args.batch / elapsed:.1f}")
