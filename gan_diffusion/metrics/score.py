"""`Score`: one metric value together with what it was measured on."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Score:
    """A metric value with its spread, sample counts and feature extractor.

    Scores from different sample counts or extractors are not comparable (FID in particular
    is biased by n), so every score carries them.

    Attributes:
        name: metric name, e.g. "fid", "kid", "is", "precision", "recall", "psnr", "ssim".
        value: the metric (mean over subsets/splits/images where there are several).
        std: standard deviation over subsets/splits/images, or None for single-shot metrics.
        n_real: number of real (reference) samples, or None if the metric uses none (IS).
        n_fake: number of generated (or reconstructed) samples.
        extractor: id of the feature extractor (e.g. "inception-v3-pool3"); "" if unknown,
            "pixels" for pixel-space metrics.
        params: the metric's settings (e.g. {"subset_size": 1000, "n_subsets": 100}).

    Example:
        >>> s = Score("fid", 12.5, n_real=10000, n_fake=10000, extractor="inception-v3")
        >>> float(s), s.to_dict()["n_real"]
        (12.5, 10000)
    """

    name: str
    value: float
    std: float | None = None
    n_real: int | None = None
    n_fake: int | None = None
    extractor: str = ""
    params: dict[str, Any] = field(default_factory=dict, hash=False)

    def __float__(self) -> float:
        return float(self.value)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of all fields."""
        return asdict(self)

    def __str__(self) -> str:
        spread = "" if self.std is None or math.isnan(self.std) else f" ± {self.std:.4g}"
        return (f"{self.name}={self.value:.6g}{spread} (n_real={self.n_real}, "
                f"n_fake={self.n_fake}, extractor={self.extractor or '?'})")
