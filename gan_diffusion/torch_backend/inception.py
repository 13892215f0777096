"""The FID Inception-v3 feature network in PyTorch. Mirrors tf_backend/inception.py line for line.

Module names and state_dict keys are torchvision's / pytorch-fid's (`Mixed_5b.branch1x1.conv.
weight`, ...), so pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` loads as is. The
architecture (channels, kernels, paddings) comes from gan_diffusion/models/inception.py;
weights, batching and ids are backend-neutral (metrics/extractor_base.py).

Example:
    >>> ext = build()                        # finds, verifies and loads the official weights
    >>> ext.features(images_uint8).shape     # NHWC uint8 in, pool3 out
    (16, 2048)
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gan_diffusion.metrics.extractor_base import InceptionExtractorBase
from gan_diffusion.models import inception as spec
from gan_diffusion.models.inception import convert_fid_weights, read_fid_weights  # noqa: F401  (re-exported)
from gan_diffusion.torch_backend.layers import assign, to_canonical


# -- pool branches ------------------------------------------------------------------------
def avg_pool_3x3(x: torch.Tensor) -> torch.Tensor:
    """3x3 average, stride 1, padding 1, padded zeros not counted (as TF's 'SAME' avg pool)."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def max_pool_3x3(x: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """3x3 max pool: stride 1 with padding 1 (FIDInceptionE_2), or stride 2 without padding."""
    return F.max_pool2d(x, kernel_size=3, stride=stride, padding=1 if stride == 1 else 0)


def resize_bilinear(x: torch.Tensor, size: int = spec.INPUT_SIZE) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, size, size): pytorch-fid's F.interpolate(bilinear, align_corners=False),
    no antialiasing (the reference the TF version reproduces)."""
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


# -- layers -------------------------------------------------------------------------------
class BasicConv2d(nn.Module):
    """Conv (no bias) -> BatchNorm(eps=0.001, running statistics) -> ReLU.

    Without autograd (feature extraction) the BatchNorm is folded into the convolution's
    weights and bias (torch.nn.utils.fusion.fuse_conv_bn_eval, rebuilt whenever a weight
    changes) and the ReLU runs in place: the separate BatchNorm and ReLU passes over the large
    early activations took a third of the extraction time (issue 18). The result differs
    from the unfolded form by float32 round-off (measured ~1e-6 relative on pool3)."""

    def __init__(self, c: spec.Conv):
        super().__init__()
        self.conv = nn.Conv2d(c.in_ch, c.out_ch, c.kernel, c.stride, c.padding, bias=False)
        self.bn = nn.BatchNorm2d(c.out_ch, eps=spec.BN_EPS)
        self._folded: tuple[tuple, nn.Conv2d] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or torch.is_grad_enabled():
            return F.relu(self.bn(self.conv(x)))
        return F.relu(self.folded()(x), inplace=True)

    def folded(self) -> nn.Conv2d:
        """The conv with this BatchNorm folded in, for the current weights."""
        ts = (self.conv.weight, self.bn.weight, self.bn.bias, self.bn.running_mean,
              self.bn.running_var)
        key = tuple((id(t), t._version) for t in ts)
        if self._folded is None or self._folded[0] != key:
            self._folded = (key, torch.nn.utils.fusion.fuse_conv_bn_eval(self.conv, self.bn))
        return self._folded[1]


class _Block(nn.Module):
    """A Mixed_* block: one BasicConv2d per branch conv, named as in torchvision."""

    def __init__(self, block: spec.Block):
        super().__init__()
        for branch, c in block.convs.items():
            setattr(self, branch, BasicConv2d(c))


class FIDInceptionA(_Block):
    """Mixed_5b/5c/5d (35x35): 1x1 | 5x5 | double 3x3 | avg pool (padding not counted) + 1x1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(avg_pool_3x3(x))
        return torch.cat([b1, b5, b3, bp], dim=1)    # (N, 224 + pool_features, 35, 35)


class InceptionB(_Block):
    """Mixed_6a: 35x35 -> 17x17 (stride-2 3x3 | double 3x3 | max pool)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([b3, bd, max_pool_3x3(x, stride=2)], dim=1)  # (N, 768, 17, 17)


class FIDInceptionC(_Block):
    """Mixed_6b..6e (17x17): 1x1 | 1x7,7x1 | 7x1,1x7,7x1,1x7 | avg pool (padding not counted) + 1x1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for conv in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = conv(bd)
        bp = self.branch_pool(avg_pool_3x3(x))
        return torch.cat([b1, b7, bd, bp], dim=1)    # (N, 768, 17, 17)


class InceptionD(_Block):
    """Mixed_7a: 17x17 -> 8x8 (1x1, stride-2 3x3 | 1x1, 1x7, 7x1, stride-2 3x3 | max pool)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_1(x)
        for conv in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = conv(b7)
        return torch.cat([b3, b7, max_pool_3x3(x, stride=2)], dim=1)  # (N, 1280, 8, 8)


class FIDInceptionE_1(_Block):
    """Mixed_7b (8x8): 1x1 | 1x1 -> (1x3, 3x1) | 3x3 -> (1x3, 3x1) | avg pool (padding not counted)."""

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        return avg_pool_3x3(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], dim=1)      # (N, 768, 8, 8)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], dim=1)  # (N, 768, 8, 8)
        bp = self.branch_pool(self.pool(x))
        return torch.cat([b1, b3, bd, bp], dim=1)    # (N, 2048, 8, 8)


class FIDInceptionE_2(FIDInceptionE_1):
    """Mixed_7c: as E_1 but the pool branch takes a MAX pool (as the 2015-12-05 TF graph does)."""

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        return max_pool_3x3(x, stride=1)


_BLOCKS = {"FIDInceptionA": FIDInceptionA, "InceptionB": InceptionB, "FIDInceptionC": FIDInceptionC,
           "InceptionD": InceptionD, "FIDInceptionE_1": FIDInceptionE_1, "FIDInceptionE_2": FIDInceptionE_2}


class FIDInceptionV3(nn.Module):
    """The network: (N, 3, 299, 299) in [-1, 1] -> pool3 (N, 2048); `fc` gives the logits.

    Always in eval mode: BatchNorm uses its running statistics, there is no dropout.
    """

    def __init__(self):
        super().__init__()
        for c in spec.STEM:
            setattr(self, c.name, BasicConv2d(c))
        for block in spec.BLOCKS:
            setattr(self, block.name, _BLOCKS[block.kind](block))
        self.fc = nn.Linear(spec.FEATURE_DIM, spec.NUM_CLASSES)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FIDInceptionV3:
        return super().train(False)  # a fixed feature extractor: never training mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))  # (N, 64, 147, 147)
        x = max_pool_3x3(x, stride=2)                                      # (N, 64, 73, 73)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))                      # (N, 192, 71, 71)
        x = max_pool_3x3(x, stride=2)                                      # (N, 192, 35, 35)
        for block in spec.BLOCKS:
            x = getattr(self, block.name)(x)                               # ... (N, 2048, 8, 8)
        return torch.mean(x, dim=(2, 3))                                   # (N, 2048) pool3


# -- the extractor --------------------------------------------------------------------------
class InceptionExtractor(InceptionExtractorBase):
    """FID Inception-v3 on NHWC images (weights, batching and ids: metrics.extractor_base).

    Attributes:
        net: the FIDInceptionV3 module.
    """

    backend_name = "torch"
    _to_canonical = staticmethod(to_canonical)
    _assign = staticmethod(assign)

    def __init__(self):
        self.net = FIDInceptionV3()
        state = self.net.state_dict(keep_vars=True)
        super().__init__({name: (state[spec.torch_key(name)], kind) for name, kind, _ in spec.layout()})

    def preprocess(self, images: np.ndarray) -> torch.Tensor:
        """NHWC uint8 (or float in [0, 1]) -> (N, 3, 299, 299) float32 in [-1, 1], as pytorch-fid:
        bilinear resize (align_corners=False, no antialiasing), then 2x - 1."""
        x = torch.from_numpy(spec.as_unit_images(images)).permute(0, 3, 1, 2)  # (N, 3, H, W)
        x = resize_bilinear(x, spec.INPUT_SIZE)                               # (N, 3, 299, 299)
        return 2.0 * x - 1.0

    @torch.inference_mode()
    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, 299, 299) -> pool3 (N, 2048), logits (N, 1008)."""
        pool3 = self.net(x)
        return pool3, self.net.fc(pool3)


build = InceptionExtractor.build
