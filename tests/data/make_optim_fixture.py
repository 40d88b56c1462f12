# Writes optim_expected.txt: parameter values after 3 steps of each torch.optim optimizer on a
# fixed parameter with fixed per-step gradients, and LR schedules. Run with Debian's python3-torch.
import torch

p0 = [0.5, -1.0, 2.0, 0.0]
grads = [[0.1, -0.2, 0.3, 0.0], [-0.5, 0.4, 0.0, 1.0], [0.2, 0.2, -0.1, -0.3]]

cases = {
    "sgd": lambda p: torch.optim.SGD([p], lr=0.1),
    "sgd_momentum_wd": lambda p: torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01),
    "sgd_nesterov": lambda p: torch.optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True),
    "sgd_dampening": lambda p: torch.optim.SGD([p], lr=0.1, momentum=0.5, dampening=0.3),
    "adam": lambda p: torch.optim.Adam([p], lr=0.01),
    "adam_wd": lambda p: torch.optim.Adam([p], lr=0.01, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1),
    "adamw": lambda p: torch.optim.AdamW([p], lr=0.01, weight_decay=0.1),
}
lines = []
for name, make in cases.items():
    p = torch.nn.Parameter(torch.tensor(p0))
    opt = make(p)
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
    lines.append(name + " " + " ".join(repr(float(v)) for v in p.detach()))

for name, make in {
    "steplr": lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5),
    "cosine": lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=5, eta_min=0.01),
}.items():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = make(opt)
    lrs = []
    for _ in range(6):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    lines.append(name + " " + " ".join(repr(float(v)) for v in lrs))

with open(__file__.replace("make_optim_fixture.py", "optim_expected.txt"), "w") as f:
    f.write("\n".join(lines) + "\n")
