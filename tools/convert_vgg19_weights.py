#!/usr/bin/env python3
"""Converts a VGG19 checkpoint into the weights file stylesweep's engine loads.

The engine (LibTorch 1.13) reads zip-format torch.save files and TorchScript
modules, but not PyTorch's legacy (pre-1.6) format, in which torchvision's
vgg19-dcbb9e9d.pth is published. This script reads anything torch.load can:
legacy or zip, a state dict (dict or OrderedDict), a checkpoint wrapping one
under "state_dict"/"model", a pickled or scripted VGG19 or its `features`;
keeps the 16 convolutions of `features`; checks their shapes; and writes them
as a plain dict {"features.N.weight": ..., "features.N.bias": ...} in the zip
format. The classifier (480 MB of a full VGG19) is dropped.

Needs only torch. Example:
    python3 tools/convert_vgg19_weights.py vgg19-dcbb9e9d.pth vgg19-features.pth
"""

import argparse
import re
import sys

import torch

# Index in torchvision's vgg19().features of each convolution, its Keras name,
# and its output channels (input channels are the previous one's, 3 first).
CONV_INDICES = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
CONV_NAMES = [f"block{b}_conv{c}" for b, n in [(1, 2), (2, 2), (3, 4), (4, 4), (5, 4)] for c in range(1, n + 1)]
CONV_CHANNELS = [64, 64, 128, 128] + [256] * 4 + [512] * 8

# "features.N.weight", with any prefix ("module.", "vgg."), or a bare
# `features` module's "N.weight".
KEY = re.compile(r"^(?:(?:.*\.)?features\.)?(\d+)\.(weight|bias)$")


def fail(message):
    sys.exit(f"convert_vgg19_weights: {message}")


def state_dict_of(obj, path):
    """Finds the tensors in whatever torch.load returned."""
    if isinstance(obj, torch.nn.Module):  # also covers TorchScript modules
        return obj.state_dict()
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if key in obj and isinstance(obj[key], (dict, torch.nn.Module)):
                return state_dict_of(obj[key], path)
        return obj
    fail(f"{path} holds a {type(obj).__name__}, not a VGG19 state dict or module")


def extract_convs(state, path):
    """Returns {features index: (weight, bias)} after checking VGG19's shapes."""
    found = {}
    for key, value in state.items():
        match = KEY.match(str(key)) if isinstance(value, torch.Tensor) else None
        if match:
            found.setdefault(int(match.group(1)), {})[match.group(2)] = value
    convs = {}
    for i, (index, name) in enumerate(zip(CONV_INDICES, CONV_NAMES)):
        tensors = found.get(index)
        if tensors is None:
            later = [n for n, j in zip(CONV_NAMES[i + 1:], CONV_INDICES[i + 1:]) if j in found]
            if later:
                fail(f"{path} has {later[0]} but lacks {name} (features.{index}) before it")
            break
        if set(tensors) != {"weight", "bias"}:
            fail(f"{path} has only the {', '.join(tensors)} of {name} (features.{index})")
        out_channels, in_channels = CONV_CHANNELS[i], CONV_CHANNELS[i - 1] if i else 3
        weight, bias = tensors["weight"], tensors["bias"]
        if tuple(weight.shape) != (out_channels, in_channels, 3, 3) or tuple(bias.shape) != (out_channels,):
            fail(f"{path}: {name} (features.{index}) is shaped {tuple(weight.shape)} + {tuple(bias.shape)}; "
                 f"VGG19 needs {(out_channels, in_channels, 3, 3)} + {(out_channels,)}")
        convs[index] = (weight, bias)
    if not convs:
        sample = ", ".join(list(map(str, state.keys()))[:5])
        fail(f"{path} holds no VGG19 convolutions (expected keys like features.0.weight; found {sample or 'nothing'})")
    return convs


def main():
    parser = argparse.ArgumentParser(
        description="Convert a VGG19 checkpoint (legacy or zip torch.save, state dict or module, TorchScript) "
        "into the zip-format dict of features.N.weight/bias tensors that stylesweep's engine loads.")
    parser.add_argument("input", metavar="IN.pth", help="checkpoint to convert, e.g. torchvision's vgg19-dcbb9e9d.pth")
    parser.add_argument("output", metavar="OUT.pth", help="where to write the converted weights")
    args = parser.parse_args()

    try:
        loaded = torch.load(args.input, map_location="cpu")
    except AttributeError as e:  # a pickled whole model whose class is not importable here
        fail(f"cannot load {args.input}: {e}; save model.state_dict() instead of the model and convert that")
    except Exception as e:  # torch.load raises many kinds; the message is what matters
        fail(f"cannot load {args.input}: {e}")
    convs = extract_convs(state_dict_of(loaded, args.input), args.input)

    out = {}
    for index, (weight, bias) in convs.items():
        # clone(): a view would save its whole (possibly shared) storage.
        out[f"features.{index}.weight"] = weight.detach().float().contiguous().clone()
        out[f"features.{index}.bias"] = bias.detach().float().contiguous().clone()
    torch.save(out, args.output, _use_new_zipfile_serialization=True)
    last = CONV_NAMES[len(convs) - 1]
    count = f"{len(convs)} convolution{'s' if len(convs) > 1 else ''}"
    print(f"wrote {args.output}: {count} (block1_conv1 .. {last}) from {args.input}")


if __name__ == "__main__":
    main()
