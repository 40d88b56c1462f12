# Side-by-side measurement: runs each shrink benchmark and its PyTorch twin alternately for N
# rounds (the order flips every round) and prints, per row, the medians of both sides and the
# median and spread of the per-round ratios. Ratio > 1 means shrink is faster (samples/s over
# samples/s, or the twin's time over shrink's). Every performance figure in a closing note
# comes from here, with the CPU line this prints.
#   /usr/bin/python3 bench/compare.py --rounds 3 --threads 2 [train ops masks infer int8]
# (./run bench does the build and then this.) Needs Debian's python3-torch for the twins.
import argparse
import csv
import io
import os
import platform
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def run_csv(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return list(csv.DictReader(io.StringIO(out)))


def cpu_line():
    model, flags = platform.processor() or "?", []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model in ("?", ""):
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    flags = [x for x in ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16")
                             if x in have]
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical CPUs, {' '.join(flags)}"


class Suite:
    """One benchmark pair: command lines per item, the CSV key columns, value columns and
    whether larger values are better."""

    def __init__(self, name, items, shrink_cmd, torch_cmd, keys, values, higher_better):
        self.name, self.items = name, items
        self.shrink_cmd, self.torch_cmd = shrink_cmd, torch_cmd
        self.keys, self.values, self.higher_better = keys, values, higher_better


def suites(a):
    b = os.path.join(a.build, "bin")
    t, s = str(a.threads), str(a.seconds)
    return {
        "train": Suite("train", ["mlp", "lenet5", "vgg_small", "resnet20", "tiny_transformer"],
                       lambda m: [f"{b}/bench_train", "--threads", t, "--seconds", s, "--model", m],
                       lambda m: [PY, "bench/bench_train_torch.py", "--threads", t, "--seconds", s, "--model", m],
                       ["model"], ["samples_per_s"], True),
        "ops": Suite("ops", [None],
                     lambda _: [f"{b}/bench_ops", "--seconds", str(min(a.seconds, 1.0))],
                     lambda _: [PY, "bench/bench_ops_torch.py", "--seconds", str(min(a.seconds, 1.0))],
                     ["op", "mode"], ["us_per_op"], False),
        "masks": Suite("masks", ["level", "l1", "l2", "fpgm"],
                       lambda p: [f"{b}/bench_masks", "--threads", t, "--only", p],
                       lambda p: [PY, "bench/bench_masks_torch.py", "--threads", t, "--only", p],
                       ["pruner"], ["seconds"], False),
        "infer": Suite("infer", [None],
                       lambda _: [f"{b}/bench_infer", "--threads", t, "--rounds", "1", "--only", "sped_up"],
                       lambda _: [PY, "bench/bench_infer_torch.py", "--threads", t, "--rounds", "1", "--only",
                                  "sped_up"],
                       ["model", "batch"], ["dense_ms", "sped_up_ms"], False),
        # shrink's int8 kernels beside PyTorch's oneDNN int8 engine, and each side's float forward.
        "int8": Suite("int8", [None],
                      lambda _: [f"{b}/bench_infer", "--threads", t, "--rounds", "1", "--only", "int8"],
                      lambda _: [PY, "bench/bench_infer_torch.py", "--threads", t, "--rounds", "1", "--only", "int8"],
                      ["model", "batch"], ["fp32_ms", "int8_ms"], False),
    }


def measure(suite, rounds):
    """{(key..., value column): [(shrink, torch), ...]} over the rounds."""
    pairs = {}
    for r in range(rounds):
        for item in suite.items:
            order = [("shrink", suite.shrink_cmd), ("torch", suite.torch_cmd)]
            if r % 2:
                order.reverse()
            got = {}
            for side, cmd in order:
                got[side] = {tuple(row[k] for k in suite.keys): row for row in run_csv(cmd(item))}
            for key, srow in got["shrink"].items():
                trow = got["torch"].get(key)
                if trow is None:
                    continue
                for col in suite.values:
                    pairs.setdefault(key + (col,), []).append((float(srow[col]), float(trow[col])))
            print(f"  {suite.name} round {r + 1}/{rounds} {item or ''}", file=sys.stderr, flush=True)
    return pairs


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("suites", nargs="*", default=["train", "ops", "masks", "infer", "int8"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=4.0, help="measuring time per train/ops row")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    a = ap.parse_args()
    table = suites(a)
    print(f"# {cpu_line()}; {a.threads} threads, {a.rounds} rounds")
    print("| suite | row | shrink (median) | torch (median) | ratio median | ratio min-max |")
    print("|---|---|---|---|---|---|")
    for name in a.suites:
        suite = table[name]
        for key, vals in measure(suite, a.rounds).items():
            # A time printed as 0.000 counts as half its last digit (no division by zero).
            vals = [(max(s, 5e-4), max(t, 5e-4)) for s, t in vals]
            ratios = [(s / t) if suite.higher_better else (t / s) for s, t in vals]
            print(f"| {name} | {' '.join(key)} | {statistics.median(s for s, _ in vals):.4g} | "
                  f"{statistics.median(t for _, t in vals):.4g} | {statistics.median(ratios):.2f}x | "
                  f"{min(ratios):.2f}-{max(ratios):.2f} |", flush=True)


if __name__ == "__main__":
    main()
