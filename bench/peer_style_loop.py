#!/usr/bin/python3
"""The engine's loop in PyTorch/Python, the peer engine_bench measures against.

Same algorithm as agent/engine/style_transfer.cc with its defaults: VGG19's
convolutions with seeded random weights (no torchvision needed), taps after
the ReLUs of block1..5_conv1 (style) and block5_conv2 (content), Gram matrices
normalised by H*W, mean-squared losses, L1 total variation, TF-form Adam
(lr 0.02, beta1 0.99, beta2 0.999, eps 0.1 before bias correction), clipping,
float32, channels-last, the thread count given.

Prints one JSON object: the image size, the mean seconds per step and each
step's seconds (the first step, a warm-up, excluded), the total loss after the
last step and peak RSS.

  /usr/bin/python3 bench/peer_style_loop.py CONTENT STYLE --size 256 --steps 6 --threads 2
"""

import argparse
import json
import math
import resource
import time

import numpy as np
import torch
from PIL import Image

CONV_CHANNELS = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512]
STYLE_CONVS = [0, 2, 4, 8, 12]  # ordinals of block1..5_conv1 among the convolutions
CONTENT_CONV = 13  # block5_conv2


def load(path, long_side):
    image = Image.open(path).convert("RGB")
    w, h = image.size
    scale = long_side / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    image = image.resize(size, Image.BILINEAR, reducing_gap=None)
    x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)
    return x.permute(2, 0, 1).unsqueeze(0).contiguous()


def make_convs(seed):
    generator = torch.Generator().manual_seed(seed)
    convs, in_channels = [], 3
    for entry in CONV_CHANNELS:
        if entry == "M":
            convs.append("M")
            continue
        bound = 1 / math.sqrt(in_channels * 9)
        w = (torch.rand(entry, in_channels, 3, 3, generator=generator) * 2 - 1) * bound
        b = (torch.rand(entry, generator=generator) * 2 - 1) * bound
        convs.append((w.contiguous(memory_format=torch.channels_last), b))
        in_channels = entry
    return convs


MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def features(convs, rgb):
    x = ((rgb - MEAN) / STD).contiguous(memory_format=torch.channels_last)
    taps, ordinal = {}, 0
    for entry in convs:
        if entry == "M":
            x = torch.nn.functional.max_pool2d(x, 2)
            continue
        x = torch.relu(torch.nn.functional.conv2d(x, entry[0], entry[1], padding=1))
        taps[ordinal] = x
        ordinal += 1
    return [taps[i] for i in STYLE_CONVS], taps[CONTENT_CONV]


def gram(f):
    c, positions = f.size(1), f.size(2) * f.size(3)
    m = f.permute(0, 2, 3, 1).reshape(positions, c)
    return m.t().mm(m) / positions


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("content")
    parser.add_argument("style")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    convs = make_convs(0)
    content = load(args.content, args.size)
    style = load(args.style, args.size)
    with torch.no_grad():
        style_targets = [gram(f) for f in features(convs, style)[0]]
        content_target = features(convs, content)[1]
        # A random network needs each term normalised by its target (NOTES.md).
        style_coef = [1e-2 / 5 / g.square().mean().item() for g in style_targets]
        content_coef = 1e4 / content_target.square().mean().item()

    x = content.clone().requires_grad_(True)
    m, v = torch.zeros_like(x), torch.zeros_like(x)
    lr, beta1, beta2, eps = 0.02, 0.99, 0.999, 0.1
    seconds = []
    total = None
    for t in range(1, args.steps + 1):
        start = time.perf_counter()
        style_f, content_f = features(convs, x)
        style_loss = sum(c * torch.nn.functional.mse_loss(gram(f), g)
                         for c, f, g in zip(style_coef, style_f, style_targets))
        content_loss = content_coef * torch.nn.functional.mse_loss(content_f, content_target)
        tv = 30 * ((x[:, :, 1:, :] - x[:, :, :-1, :]).abs().sum() + (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().sum())
        total = style_loss + content_loss + tv
        values = torch.stack([total, style_loss, content_loss, tv]).tolist()  # the engine reports these each step
        (grad,) = torch.autograd.grad(total, x)
        with torch.no_grad():
            m.mul_(beta1).add_(grad, alpha=1 - beta1)
            v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            step = lr * math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
            x.addcdiv_(m, v.sqrt().add_(eps), value=-step)
            x.clamp_(0, 1)
        seconds.append(time.perf_counter() - start)
        total = values[0]
    timed = seconds[1:] if len(seconds) > 1 else seconds
    print(json.dumps({
        "width": x.size(3), "height": x.size(2), "threads": torch.get_num_threads(),
        "step_seconds": sum(timed) / len(timed), "step_seconds_each": timed, "total": total,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
