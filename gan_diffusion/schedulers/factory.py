"""Our scheduler from a diffusers `scheduler_config.json` dict (`scheduler_from_config`).

    >>> cfg = json.loads((Path(folder) / "scheduler" / "scheduler_config.json").read_text())
    >>> s = scheduler_from_config(cfg)                                # SD v1-4: PNDM (PLMS)
    >>> s = scheduler_from_config(cfg, class_name="DDIMScheduler")    # DDIMScheduler.from_config(cfg)

As diffusers' `from_config`: a field the config lacks takes the target class's diffusers
default (so EulerDiscreteScheduler from SD v1-4's config gets "linspace" spacing, DDIM gets
clip_sample=True unless the config says otherwise); fields listed in `_use_default_values`
(a `dict(scheduler.config)` of a loaded diffusers scheduler) count as absent.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from gan_diffusion.errors import ConfigError
from gan_diffusion.schedulers.base import SPACINGS, SchedulerBase
from gan_diffusion.schedulers.ddim import DDIMScheduler
from gan_diffusion.schedulers.ddpm import VARIANCE_TYPES, DDPMScheduler
from gan_diffusion.schedulers.euler import FINAL_SIGMAS, EulerDiscreteScheduler
from gan_diffusion.schedulers.pndm import PNDMScheduler
from gan_diffusion.schedulers.schedules import NoiseSchedule, make_schedule

_COMMON = {"num_train_timesteps": 1000, "beta_start": 0.0001, "beta_end": 0.02,
           "beta_schedule": "linear", "trained_betas": None, "prediction_type": "epsilon"}
_CLIPPED = {"clip_sample": True, "thresholding": False, "dynamic_thresholding_ratio": 0.995,
            "clip_sample_range": 1.0, "sample_max_value": 1.0, "timestep_spacing": "leading",
            "steps_offset": 0, "rescale_betas_zero_snr": False}
# every __init__ field of diffusers 0.42.1's classes and its default
DEFAULTS: dict[str, dict[str, Any]] = {
    "DDIMScheduler": {**_COMMON, **_CLIPPED, "set_alpha_to_one": True},
    "DDPMScheduler": {**_COMMON, **_CLIPPED, "variance_type": "fixed_small"},
    "PNDMScheduler": {**_COMMON, "skip_prk_steps": False, "set_alpha_to_one": False,
                      "timestep_spacing": "leading", "steps_offset": 0},
    "EulerDiscreteScheduler": {**_COMMON, "interpolation_type": "linear", "use_karras_sigmas": False,
                               "use_exponential_sigmas": False, "use_beta_sigmas": False,
                               "sigma_min": None, "sigma_max": None, "timestep_spacing": "linspace",
                               "timestep_type": "discrete", "steps_offset": 0,
                               "rescale_betas_zero_snr": False, "final_sigmas_type": "zero"},
}
SCHEDULER_CLASSES = tuple(DEFAULTS)
BETA_SCHEDULES = {"linear": "linear", "scaled_linear": "scaled_linear", "squaredcos_cap_v2": "cosine"}
PREDICTIONS = {"DDIMScheduler": ("epsilon", "v_prediction", "sample"),
               "DDPMScheduler": ("epsilon", "v_prediction", "sample"),
               "PNDMScheduler": ("epsilon", "v_prediction"),
               "EulerDiscreteScheduler": ("epsilon", "v_prediction", "sample", "original_sample")}


def _require(field: str, value: Any, allowed: tuple, cls: str) -> None:
    if value not in allowed:
        raise ConfigError(f"{cls} config field {field}={value!r} is not supported; supported: "
                          f"{', '.join(repr(a) for a in allowed)}")


def _schedule(f: dict[str, Any], cls: str) -> NoiseSchedule:
    T = f["num_train_timesteps"]
    if not isinstance(T, int) or T < 1:
        raise ConfigError(f"{cls} config field num_train_timesteps must be a positive integer, got {T!r}")
    if f["trained_betas"] is not None:
        betas = np.asarray(f["trained_betas"], dtype=np.float64)
        if betas.shape != (T,):
            raise ConfigError(f"{cls} config field trained_betas has shape {betas.shape}, "
                              f"expected ({T},) (num_train_timesteps)")
        return NoiseSchedule("trained", betas)
    _require("beta_schedule", f["beta_schedule"], tuple(BETA_SCHEDULES), cls)
    return make_schedule(BETA_SCHEDULES[f["beta_schedule"]], T, f["beta_start"], f["beta_end"])


def scheduler_from_config(config: Mapping[str, Any], prediction_type: str | None = None,
                          class_name: str | None = None, eta: float = 0.0,
                          **overrides: Any) -> SchedulerBase:
    """Our scheduler for a diffusers scheduler config, its timesteps not yet set for sampling.

    Args:
        config: the scheduler_config.json dict ("_class_name" picks the class).
        prediction_type: overrides the config's ("v_prediction" for SD 2.x 768 px models).
        class_name: build this class instead of "_class_name" (diffusers'
            `OtherScheduler.from_config(config)`): DDIMScheduler, PNDMScheduler,
            EulerDiscreteScheduler or DDPMScheduler.
        eta: DDIM's eta (a step argument in diffusers; DDIM only).
        **overrides: config fields to replace (diffusers' from_config(config, **kwargs)), e.g.
            timestep_spacing="linspace".

    Returns:
        DDIMScheduler, PNDMScheduler, EulerDiscreteScheduler or DDPMScheduler.

    Fields read (each checked; a value that would change the maths and is not implemented is
    a ConfigError naming the field and the supported values): num_train_timesteps,
    beta_start, beta_end, beta_schedule (linear, scaled_linear, squaredcos_cap_v2),
    trained_betas, prediction_type, timestep_spacing, steps_offset; DDIM and DDPM:
    clip_sample, clip_sample_range, thresholding (False only), rescale_betas_zero_snr (False
    only); DDIM and PNDM: set_alpha_to_one; PNDM: skip_prk_steps; DDPM: variance_type
    (fixed_small, fixed_large); Euler: interpolation_type (linear only), use_karras_sigmas,
    use_exponential_sigmas, use_beta_sigmas (False only), timestep_type (discrete; continuous
    only where it changes nothing, i.e. not with v_prediction), final_sigmas_type (zero,
    sigma_min), rescale_betas_zero_snr (False only).

    Ignored, as they do not change the maths: keys starting with "_" (_diffusers_version...);
    dynamic_thresholding_ratio and sample_max_value (used only by thresholding); Euler's
    sigma_min and sigma_max (used only by Karras, exponential or beta sigmas); and, as
    diffusers' from_config ignores them, every field that is not a parameter of the target
    class (e.g. skip_prk_steps for DDIM, set_alpha_to_one for DDPM and Euler, clip_sample for
    PNDM and Euler, variance_type outside DDPM, another scheduler family's fields).

    Example:
        >>> sd14 = {"_class_name": "PNDMScheduler", "beta_schedule": "scaled_linear",
        ...         "beta_start": 0.00085, "beta_end": 0.012, "set_alpha_to_one": False,
        ...         "skip_prk_steps": True, "steps_offset": 1, "clip_sample": False}
        >>> type(scheduler_from_config(sd14, class_name="DDIMScheduler")).__name__
        'DDIMScheduler'
    """
    cls = class_name or config.get("_class_name")
    if cls not in DEFAULTS:
        raise ConfigError(f"scheduler class {cls!r} is not supported; supported: "
                          f"{', '.join(SCHEDULER_CLASSES)} (pass class_name= to build one of them "
                          "from this config, as diffusers' OtherScheduler.from_config(config) does)")
    defaults = DEFAULTS[cls]
    absent = set(config.get("_use_default_values", ()))
    given = {k: v for k, v in config.items() if k in defaults and k not in absent}
    for k in overrides:
        if k not in defaults:
            raise ConfigError(f"{k!r} is not a {cls} config field; fields: {', '.join(defaults)}")
    f = {**defaults, **given, **overrides}
    if prediction_type is not None:
        f["prediction_type"] = prediction_type
    _require("prediction_type", f["prediction_type"], PREDICTIONS[cls], cls)
    pred = "sample" if f["prediction_type"] == "original_sample" else f["prediction_type"]
    _require("timestep_spacing", f["timestep_spacing"], SPACINGS, cls)
    for field in ("thresholding", "rescale_betas_zero_snr", "use_karras_sigmas",
                  "use_exponential_sigmas", "use_beta_sigmas"):
        if field in f:
            _require(field, bool(f[field]), (False,), cls)
    if eta and cls != "DDIMScheduler":
        raise ConfigError(f"eta applies to DDIMScheduler only, not {cls}")
    schedule = _schedule(f, cls)
    common = dict(timestep_spacing=f["timestep_spacing"], steps_offset=int(f["steps_offset"]))
    if cls == "DDIMScheduler":
        return DDIMScheduler(schedule, eta, clip_sample=bool(f["clip_sample"]),
                             clip_range=float(f["clip_sample_range"]), **common,
                             set_alpha_to_one=bool(f["set_alpha_to_one"]), prediction_type=pred)
    if cls == "DDPMScheduler":
        _require("variance_type", f["variance_type"], VARIANCE_TYPES, cls)
        return DDPMScheduler(schedule, f["variance_type"], clip_sample=bool(f["clip_sample"]),
                             clip_range=float(f["clip_sample_range"]), **common,
                             set_alpha_to_one=True, prediction_type=pred)
    if cls == "PNDMScheduler":
        return PNDMScheduler(schedule, bool(f["skip_prk_steps"]), **common,
                             set_alpha_to_one=bool(f["set_alpha_to_one"]), prediction_type=pred)
    _require("interpolation_type", f["interpolation_type"], ("linear",), cls)
    _require("final_sigmas_type", f["final_sigmas_type"], FINAL_SIGMAS, cls)
    if not (f["timestep_type"] == "discrete" or (f["timestep_type"] == "continuous"
                                                 and pred != "v_prediction")):
        raise ConfigError(f"{cls} config field timestep_type={f['timestep_type']!r} is not supported "
                          "with this prediction_type; supported: 'discrete' (or 'continuous' "
                          "without v_prediction, where it is the same)")
    return EulerDiscreteScheduler(schedule, **common, prediction_type=pred,
                                  final_sigmas_type=f["final_sigmas_type"])
