"""Stock-layer networks from a framework-free plan: what a user would write with each
framework's own layers (nn.Sequential of torch.nn modules; keras.Sequential of keras.layers),
for the idiomatic-loop baselines of benchmarks/frameworks.py.

Same layers, widths and kernel sizes as the plan (so the same FLOPs), but the frameworks'
default behaviour: stock BatchNorm (torch: unbiased running variance), torch's symmetric
padding for TF-'same' 5x5 stride-2 layers (padding=2, output_padding=1), CHW reshapes in
torch. Weights are left at the frameworks' own initialisers: only speed is measured.
Unconditional models only (no label embeddings).
"""
from __future__ import annotations


def torch_net(plan, bn_momentum: float, bn_eps: float):
    """nn.Sequential for a plan; input (N, latent) or (N, C, H, W)."""
    from torch import nn

    mods = []
    for layer in plan:
        k, s, p = layer.kernel, layer.stride, layer.padding
        if layer.same:  # TF 'same' -> the usual torch port: symmetric padding k // 2
            p = k // 2
        if layer.kind == "reshape":
            h, w, c = layer.shape
            mods.append(nn.Unflatten(1, (c, h, w)))
        elif layer.kind == "conv":
            mods.append(nn.Conv2d(layer.in_ch, layer.out_ch, k, s, p, bias=layer.bias))
        elif layer.kind == "convt":
            extra = s - 1 if layer.same else 0     # output_padding so the size is in * stride
            mods.append(nn.ConvTranspose2d(layer.in_ch, layer.out_ch, k, s, p, extra, bias=layer.bias))
        elif layer.kind == "dense":
            mods.append(nn.Linear(layer.in_ch, layer.out_ch, bias=layer.bias))
        elif layer.kind == "bn":
            prev = mods[-1]
            cls = nn.BatchNorm1d if isinstance(prev, nn.Linear) else nn.BatchNorm2d
            mods.append(cls(layer.out_ch, eps=bn_eps, momentum=bn_momentum))
        elif layer.kind == "relu":
            mods.append(nn.ReLU())
        elif layer.kind == "lrelu":
            mods.append(nn.LeakyReLU(layer.alpha))
        elif layer.kind == "tanh":
            mods.append(nn.Tanh())
        elif layer.kind == "flatten":
            mods.append(nn.Flatten())
        else:
            raise ValueError(f"stock torch net: unsupported plan layer kind {layer.kind!r}")
    return nn.Sequential(*mods)


def keras_net(plan, bn_momentum: float, bn_eps: float, input_shape: tuple):
    """keras.Sequential for a plan (bn_momentum in torch's convention, as the configs)."""
    import keras
    from keras import layers as L

    mods = [keras.Input(input_shape)]
    for layer in plan:
        pad = "same" if layer.same or layer.padding > 0 else "valid"
        if layer.kind == "reshape":
            mods.append(L.Reshape(layer.shape))
        elif layer.kind == "conv":
            mods.append(L.Conv2D(layer.out_ch, layer.kernel, layer.stride, pad, use_bias=layer.bias))
        elif layer.kind == "convt":
            mods.append(L.Conv2DTranspose(layer.out_ch, layer.kernel, layer.stride, pad,
                                          use_bias=layer.bias))
        elif layer.kind == "dense":
            mods.append(L.Dense(layer.out_ch, use_bias=layer.bias))
        elif layer.kind == "bn":
            mods.append(L.BatchNormalization(momentum=1.0 - bn_momentum, epsilon=bn_eps))
        elif layer.kind == "relu":
            mods.append(L.ReLU())
        elif layer.kind == "lrelu":
            mods.append(L.LeakyReLU(negative_slope=layer.alpha))
        elif layer.kind == "tanh":
            mods.append(L.Activation("tanh"))
        elif layer.kind == "flatten":
            mods.append(L.Flatten())
        else:
            raise ValueError(f"stock Keras net: unsupported plan layer kind {layer.kind!r}")
    return keras.Sequential(mods)
