# PyTorch twins of shrink's model zoo (models/zoo.cpp): identical module names, parameter
# shapes and forward math, so state dicts interchange. Used by the fixture script and by
# bench/bench_train_torch.py.
import math

import torch
from torch import nn

MODEL_NAMES = ["mlp", "lenet5", "vgg_small", "resnet20", "tiny_transformer"]


class MLP(nn.Module):
    def __init__(self, c=1, size=28, classes=10):
        super().__init__()
        self.fc1 = nn.Linear(c * size * size, 256)
        self.relu1 = nn.ReLU()
        self.fc2 = nn.Linear(256, 128)
        self.relu2 = nn.ReLU()
        self.fc3 = nn.Linear(128, classes)

    def forward(self, x):
        x = torch.flatten(x, 1)
        return self.fc3(self.relu2(self.fc2(self.relu1(self.fc1(x)))))


class LeNet5(nn.Module):
    def __init__(self, c=1, size=28, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(c, 6, 5, padding=2)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        s = ((size // 2) - 4) // 2
        self.fc1 = nn.Linear(16 * s * s, 120)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(120, 84)
        self.relu4 = nn.ReLU()
        self.fc3 = nn.Linear(84, classes)

    def forward(self, x):
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = torch.flatten(x, 1)
        return self.fc3(self.relu4(self.fc2(self.relu3(self.fc1(x)))))


class VGGSmall(nn.Module):
    def __init__(self, c=1, size=28, classes=10, width=32):
        super().__init__()
        widths = [width, width, 2 * width, 2 * width, 4 * width, 4 * width]
        self.features = nn.Sequential()
        cin = c
        for i, w in enumerate(widths):
            k = str(i + 1)
            self.features.add_module("conv" + k, nn.Conv2d(cin, w, 3, padding=1, bias=False))
            self.features.add_module("bn" + k, nn.BatchNorm2d(w))
            self.features.add_module("relu" + k, nn.ReLU())
            cin = w
            if i % 2 == 1:
                self.features.add_module("pool" + str(i // 2 + 1), nn.MaxPool2d(2))
                size //= 2
        self.classifier = nn.Sequential()
        self.classifier.add_module("fc1", nn.Linear(cin * size * size, 256))
        self.classifier.add_module("relu", nn.ReLU())
        self.classifier.add_module("fc2", nn.Linear(256, classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = self.downsample(x) if self.downsample is not None else x
        return self.relu(out + identity)


class ResNet20(nn.Module):
    def __init__(self, c=1, size=28, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(c, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        cin = 16
        for name, w, s in [("layer1", 16, 1), ("layer2", 32, 2), ("layer3", 64, 2)]:
            blocks = []
            for b in range(3):
                blocks.append(BasicBlock(cin, w, s if b == 0 else 1))
                cin = w
            setattr(self, name, nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class MultiheadAttention(nn.Module):
    """Batch-first MHA with separate q/k/v/out Linear projections (shrink's layout)."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, q, k, v):
        b, l, e = q.shape
        s = k.shape[1]
        hd = e // self.heads
        q = self.q_proj(q).reshape(b, l, self.heads, hd).permute(0, 2, 1, 3)
        k = self.k_proj(k).reshape(b, s, self.heads, hd).permute(0, 2, 1, 3)
        v = self.v_proj(v).reshape(b, s, self.heads, hd).permute(0, 2, 1, 3)
        attn = torch.softmax(q @ k.transpose(2, 3) / math.sqrt(hd), dim=-1)
        out = (attn @ v).permute(0, 2, 1, 3).reshape(b, l, e)
        return self.out_proj(out), attn.mean(1)


class EncoderLayer(nn.Module):
    def __init__(self, dim, heads, hidden):
        super().__init__()
        self.attn = MultiheadAttention(dim, heads)
        self.norm1 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential()
        self.ffn.add_module("fc1", nn.Linear(dim, hidden))
        self.ffn.add_module("act", nn.GELU())
        self.ffn.add_module("fc2", nn.Linear(hidden, dim))
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x):
        h = self.norm1(x + self.attn(x, x, x)[0])
        return self.norm2(h + self.ffn(h))


class TinyTransformer(nn.Module):
    def __init__(self, c=1, size=28, classes=10, patch=4, dim=64, heads=4, hidden=128, layers=2):
        super().__init__()
        self.c, self.p, self.g = c, patch, size // patch
        self.embed = nn.Linear(c * patch * patch, dim)
        self.pos_embed = nn.Parameter(torch.randn(self.g * self.g, dim) * 0.02)
        self.layers = nn.ModuleList([EncoderLayer(dim, heads, hidden) for _ in range(layers)])
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        b, g, p, c = x.shape[0], self.g, self.p, self.c
        patches = x.reshape(b, c, g, p, g, p).permute(0, 2, 4, 1, 3, 5).reshape(b, g * g, c * p * p)
        h = self.embed(patches) + self.pos_embed
        for layer in self.layers:
            h = layer(h)
        return self.head(h.mean(1))


def make_model(name):
    return {"mlp": MLP, "lenet5": LeNet5, "vgg_small": VGGSmall, "resnet20": ResNet20,
            "tiny_transformer": TinyTransformer}[name]()
