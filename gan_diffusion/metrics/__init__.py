"""Sample-quality metrics: FID, KID, IS, precision/recall, PSNR/SSIM.

Two levels:
- on images (`fid`, `kid`, `isc`, `prc`, `compute_metrics`, `dataset_stats`): uint8 arrays,
  folders, dataset names or cached statistics; features come from a named extractor
  (`EXTRACTORS`: "inception", "lenet-mnist", "cnn-cifar10", "cnn-cifar10-resized32", or
  "auto"), built lazily in a backend (torch if installed, else tf);
- on arrays (`fid_from_features`, `frechet_distance`, `kid_from_features`, ...): NumPy/SciPy in
  float64, never importing TensorFlow or PyTorch.

Example:
    >>> from gan_diffusion import metrics
    >>> print(metrics.fid(real_uint8, fake_uint8))   # FID-LeNet(MNIST)=... (n_real=..., ...)
    >>> score = metrics.fid_from_features(real_feats, fake_feats, extractor="inception-v3")
"""
from gan_diffusion.metrics._checks import FewSamplesWarning, MetricInputError, MetricWarning
from gan_diffusion.metrics.frechet import (FeatureStats, feature_statistics, fid_from_features,
                                           fid_from_stats, frechet_distance,
                                           frechet_distance_sqrtm_reference)
from gan_diffusion.metrics.inception_score import (check_probabilities, inception_score,
                                                   is_from_probs)
from gan_diffusion.metrics.kid import (kernel_inception_distance, kid_from_features,
                                       mmd2_unbiased, polynomial_kernel)
from gan_diffusion.metrics.precision_recall import (precision_recall,
                                                    precision_recall_from_features)
from gan_diffusion.metrics.reconstruction import mean_psnr, mean_ssim, psnr, ssim
from gan_diffusion.metrics.score import Score
from gan_diffusion.metrics.extractors import DEFAULTS, EXTRACTORS, default_backend
from gan_diffusion.metrics.api import (compute_metrics, dataset_stats, extract, fid, isc, kid,
                                       prc, stats_cache_dir)

__all__ = [
    "fid",
    "kid",
    "isc",
    "prc",
    "compute_metrics",
    "dataset_stats",
    "extract",
    "stats_cache_dir",
    "DEFAULTS",
    "EXTRACTORS",
    "default_backend",
    "Score",
    "FewSamplesWarning",
    "MetricInputError",
    "MetricWarning",
    "FeatureStats",
    "feature_statistics",
    "frechet_distance",
    "frechet_distance_sqrtm_reference",
    "fid_from_features",
    "fid_from_stats",
    "polynomial_kernel",
    "mmd2_unbiased",
    "kernel_inception_distance",
    "kid_from_features",
    "check_probabilities",
    "inception_score",
    "is_from_probs",
    "precision_recall",
    "precision_recall_from_features",
    "psnr",
    "ssim",
    "mean_psnr",
    "mean_ssim",
]
