"""torch.utils.data adapter: an ArrayDataset served in the core's seeded order."""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from gan_diffusion.data import ArrayDataset, batch_indices


class _Batches(Dataset):
    """Map-style dataset indexed by a whole batch of indices (no per-item collation)."""

    def __init__(self, data: ArrayDataset):
        self.images = torch.from_numpy(data.images)              # uint8 (N, H, W, C)
        self.labels = None if data.labels is None else torch.from_numpy(data.labels)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, idx):
        idx = torch.as_tensor(np.asarray(idx))
        x = self.images[idx].permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)  # (B, C, H, W) in [-1, 1]
        return x.contiguous(), (None if self.labels is None else self.labels[idx])


def to_torch_loader(data: ArrayDataset, batch_size: int, seed: int, epoch: int,
                    drop_last: bool = True) -> DataLoader:
    """A DataLoader yielding (float32 NCHW images in [-1, 1], int64 labels or None).

    The batches are exactly those of `gan_diffusion.data.batch_indices(...)`, the same
    order the TF adapter serves.

    Example:
        >>> for images, labels in to_torch_loader(ds, 128, seed=0, epoch=0): ...
    """
    order = batch_indices(len(data), batch_size, seed, epoch, drop_last=drop_last)
    return DataLoader(_Batches(data), sampler=order, batch_size=None, num_workers=0)
