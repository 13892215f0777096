"""Framework-free sample-quality metrics (NumPy/SciPy, float64), computed from arrays.

Feature extraction (Inception etc.) lives in the backends; everything here takes features,
class probabilities or images as NumPy arrays, so it never imports TensorFlow or PyTorch.

Example:
    >>> from gan_diffusion import metrics
    >>> score = metrics.fid_from_features(real_feats, fake_feats, extractor="inception-v3")
    >>> print(score)          # fid=... (n_real=..., n_fake=..., extractor=inception-v3)
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

__all__ = [
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
