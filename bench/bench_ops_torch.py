# The PyTorch twin of bench_ops: per-op overhead on 1-element tensors, without grad (each op
# alone under torch.no_grad) and with grad (forward + backward of a 10-op chain, per op); the
# same CSV. Run with Debian's python3-torch:  /usr/bin/python3 bench/bench_ops_torch.py --seconds 1
import argparse
import time

import torch

ap = argparse.ArgumentParser()
ap.add_argument("--seconds", type=float, default=1.0)
ap.add_argument("--threads", type=int, default=1)
args = ap.parse_args()
torch.set_num_threads(args.threads)


def time_per_call(fn):
    for _ in range(100):
        fn()
    calls, t0 = 0, time.perf_counter()
    while True:
        for _ in range(1000):
            fn()
        calls += 1000
        elapsed = time.perf_counter() - t0
        if elapsed >= args.seconds:
            return elapsed * 1e6 / calls


a, b = torch.tensor([1.5]), torch.tensor([-0.5])
m1, m2 = torch.tensor([[1.5]]), torch.tensor([[2.0]])
print("op,mode,us_per_op")
with torch.no_grad():
    for name, fn in [("add", lambda: torch.add(a, b)), ("mul", lambda: torch.mul(a, b)),
                     ("matmul1x1", lambda: torch.matmul(m1, m2)), ("relu", lambda: torch.relu(b)),
                     ("sum", lambda: torch.sum(a))]:
        print("%s,nograd,%.3f" % (name, time_per_call(fn)), flush=True)


def chain(name, f, leaf):
    x = leaf.clone().requires_grad_(True)

    def step():
        y = x
        for _ in range(10):
            y = f(y)
        y.sum().backward()
        x.grad = None

    print("%s,grad,%.3f" % (name, time_per_call(step) / 10), flush=True)


chain("add", lambda y: torch.add(y, b), a)
chain("mul", lambda y: torch.mul(y, b), a)
chain("matmul1x1", lambda y: torch.matmul(y, m2), m1)
chain("relu", torch.relu, a)
chain("sum", torch.sum, a)
