#!/usr/bin/python3
"""Writes distill_fixture.safetensors, the PyTorch expectations of tests/core/test_distill_ops.cpp.

For each case <c>: inputs "<c>.student", "<c>.teacher", and from PyTorch 1.13 (float32)
    "<c>.kl_T<T>"      F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction='batchmean') * T**2
    "<c>.kl_T<T>.grad" its gradient with respect to s
    "<c>.mse", "<c>.mse.grad"   F.mse_loss(s, t) and its gradient
for T in 1, 2, 4. Cases: random [8, 10] logits; rows with logits of +-80; a one-hot-like teacher
(+-80 in one row position); a [2, 3, 7] hidden state (softmax over the last dim, batchmean over
dim 0).

Run with Debian's interpreter (python3-torch):  /usr/bin/python3 tests/data/make_distill_fixture.py
The safetensors layout is written by make_safetensors_fixture.py's writer (the safetensors package
is not installed).
"""
import os

import torch
import torch.nn.functional as F

from make_safetensors_fixture import safetensors_bytes


def cases():
    g = torch.Generator().manual_seed(0)
    random = (torch.randn(8, 10, generator=g) * 3, torch.randn(8, 10, generator=g) * 3)
    big_s = torch.randn(4, 6, generator=g) * 3
    big_s[1] = torch.tensor([80.0, -80.0, 80.0, -80.0, 0.0, 79.0])
    big_t = torch.randn(4, 6, generator=g) * 3
    big_t[2] = torch.tensor([-80.0, 80.0, -80.0, -80.0, 80.0, -80.0])
    onehot_t = torch.full((3, 5), -80.0)
    onehot_t[torch.arange(3), torch.tensor([0, 2, 4])] = 80.0
    onehot = (torch.randn(3, 5, generator=g), onehot_t)
    hidden = (torch.randn(2, 3, 7, generator=g), torch.randn(2, 3, 7, generator=g))
    return {"random": random, "big": (big_s, big_t), "onehot": onehot, "hidden": hidden}


def expectations():
    out = {}
    for name, (s, t) in cases().items():
        out[name + ".student"] = s
        out[name + ".teacher"] = t
        for temperature in (1, 2, 4):
            x = s.clone().requires_grad_(True)
            loss = F.kl_div(F.log_softmax(x / temperature, -1), F.softmax(t / temperature, -1),
                            reduction="batchmean") * temperature ** 2
            loss.backward()
            out["%s.kl_T%d" % (name, temperature)] = loss.detach().reshape(1)
            out["%s.kl_T%d.grad" % (name, temperature)] = x.grad
        x = s.clone().requires_grad_(True)
        loss = F.mse_loss(x, t)
        loss.backward()
        out[name + ".mse"] = loss.detach().reshape(1)
        out[name + ".mse.grad"] = x.grad
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "distill_fixture.safetensors"), "wb") as f:
        f.write(safetensors_bytes(expectations(), {"format": "pt"}))


if __name__ == "__main__":
    main()
