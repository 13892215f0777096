"""Presets of `gan-diffusion compare` and the resolved options of one comparison.

    quick  minutes on 2 CPU cores: the embedded digits (offline, no data dir), 6 epochs,
           2 seeds, narrow networks and batch 32 (the `quick` overrides of compare/models.py;
           DCGAN then draws digit-like samples; the DDPM is class-conditional, batch 16, and
           draws recognisable digits of each class), 500 evaluation samples, 2 threads. What
           `make demo` runs.
    paper  full-length runs: MNIST, 50 epochs, 3 seeds, the models' default sizes, 10,000
           evaluation samples against the MNIST test set, all cores. Hours per model on a
           CPU; meant for a bigger machine.

Flags given on the command line override the preset's values.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any

from gan_diffusion.errors import ConfigError, UnknownNameError

# Models the presets compare, in report order; only the registered ones are used.
PRESET_MODELS = ("dcgan", "wgan-gp", "vae", "ddpm")

PRESETS: dict[str, dict[str, Any]] = {
    "quick": {"dataset": "digits", "epochs": 6, "seeds": 2, "n_eval": 500, "threads": 2},
    "paper": {"dataset": "mnist", "epochs": 50, "seeds": 3, "n_eval": 10000, "threads": None},
}

# --budget-minutes without --epochs: the epoch cap, high enough that the budget stops every run
BUDGET_EPOCH_CAP = 1000

DEFAULTS: dict[str, Any] = {"dataset": "digits", "epochs": 5, "seeds": 3, "n_eval": 1000,
                            "threads": None, "backends": ("tf", "torch"), "limit": None,
                            "batch_size": None, "image_size": None, "omp_wait": "default"}

# --omp-wait: the OMP_WAIT_POLICY of every worker. default: the OpenMP runtime's own (libgomp
# spins ~300,000 times before it sleeps); passive: waiting threads sleep at once.
# benchmarks/contention.py measured torch DCGAN beside another job 1.4-2.2x faster with
# passive, but on a quiet machine passive made torch 8 % (DCGAN) to 21 % (MLP GAN) slower
# per step and the quick DDPM's epochs 1.9x slower (4.8 -> 9.2 s), a bias larger than most
# framework effects; TF's own thread pool ignores it. So the default keeps the runtime's
# policy, and busy epochs are measured and flagged instead (docs/compare.md).
OMP_WAIT = {"passive": "PASSIVE", "default": None}


@dataclasses.dataclass
class CompareOptions:
    """Everything that defines a comparison (recorded in OUT/compare.json).

    Attributes:
        models, backends: what to compare (backend names canonical: "tf", "torch").
        dataset, limit, image_size, batch_size, epochs: the training setting of every run.
        seeds: number of seeds (0 .. seeds-1).
        n_eval: generated (and real) images per run for FID/KID.
        threads: intra-op threads of every run (inter-op 1); None: all cores.
        native_rng: framework RNGs for init and noise instead of the controlled shared draws.
        overrides: per-model config overrides {model: {field: value}} (preset + --set).
        extractor, score_backend: the quality feature extractor and the framework running it.
        preset: the preset the options started from ("" for none).
        budget_minutes: each run trains until this much training time (at an epoch end),
            `epochs` the cap (None: exactly `epochs`); gan_diffusion.runs.fit.
        omp_wait: the workers' OpenMP wait policy, a key of OMP_WAIT.
    """

    models: list[str]
    backends: list[str]
    dataset: str
    epochs: int
    seeds: int
    n_eval: int
    threads: int | None
    limit: int | None = None
    image_size: int | None = None
    batch_size: int | None = None
    native_rng: bool = False
    overrides: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    extractor: str = ""
    score_backend: str | None = None
    preset: str = ""
    data_dir: str | None = None
    budget_minutes: float | None = None
    omp_wait: str = "default"

    def run_key(self, model: str) -> dict[str, Any]:
        """The options a finished run must share with this comparison to be reused."""
        return {"dataset": self.dataset, "epochs": self.epochs, "limit": self.limit,
                "image_size": self.image_size, "batch_size": self.batch_size,
                "threads": self.threads, "native_rng": self.native_rng, "n_eval": self.n_eval,
                "overrides": self.overrides.get(model, {}), "omp_wait": self.omp_wait,
                **({"budget_minutes": self.budget_minutes} if self.budget_minutes else {})}


def parse_set(items: list[str] | None, models: list[str]) -> dict[str, dict[str, Any]]:
    """--set [MODEL.]FIELD=VALUE ... -> {model: {field: value}}; unqualified fields go to all
    models (a model without that field then fails with the config's own error)."""
    import json

    out: dict[str, dict[str, Any]] = {m: {} for m in models}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects [MODEL.]FIELD=VALUE, got {item!r}")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        model, dot, field = key.strip().rpartition(".")
        if dot and model not in models:
            raise ConfigError(f"--set {item!r}: {model!r} is not among --models {','.join(models)}")
        for m in ([model] if dot else models):
            out[m][field] = parsed
    return out


def resolve(preset: str | None, models: str | None = None, backends: str | None = None,
            sets: list[str] | None = None, **flags: Any) -> CompareOptions:
    """Preset values, then explicit flags (those not None), validated.

    Raises:
        UnknownNameError: an unknown preset, model or backend (listing the valid ones).
    """
    from gan_diffusion.backends import canonical_backend_name
    from gan_diffusion.compare.models import TRAITS, evaluation_only, traits
    from gan_diffusion.registry import get_spec, list_models
    from gan_diffusion.run_options import check_budget

    EVALUATION_ONLY = sorted(m for m in TRAITS if evaluation_only(m))

    if preset and preset not in PRESETS:
        raise UnknownNameError("preset", preset, PRESETS)
    values = {**DEFAULTS, **(PRESETS[preset] if preset else {})}
    values.update({k: v for k, v in flags.items() if v is not None})
    if models:
        names = [m.strip() for m in models.split(",") if m.strip()]
    else:
        names = [m for m in PRESET_MODELS if m in list_models()]
    for name in names:
        if evaluation_only(name):
            continue
        if name not in list_models():
            raise UnknownNameError("model", name, list_models() + EVALUATION_ONLY)
        if not get_spec(name).trainable:  # get_spec: "unknown model 'x'; valid models: ..."
            raise ConfigError(f"model {name!r} is not trainable, so compare cannot train it; "
                              f"trainable models: {', '.join(list_models(trainable=True))}, and "
                              f"evaluation-only: {', '.join(EVALUATION_ONLY)} "
                              "(or sample it with `gan-diffusion sd`)")
    if len(set(names)) != len(names):
        raise ConfigError(f"--models lists a model twice: {names}")
    bnames = [canonical_backend_name(b) for b in (backends.split(",") if backends
                                                  else values["backends"])]
    if len(set(bnames)) != len(bnames):
        raise ConfigError(f"--backends lists a backend twice: {bnames}")
    budget = values.get("budget_minutes")
    check_budget(budget, names, ae_epochs="--set ldm.ae_epochs=N")
    if budget is not None and flags.get("epochs") is None:
        values["epochs"] = BUDGET_EPOCH_CAP   # the clock decides, not a default length
    for key in ("epochs", "seeds", "n_eval"):
        if int(values[key]) < 1:
            raise ConfigError(f"--{key.replace('_', '-')} must be >= 1, got {values[key]}")
    user = parse_set(sets, names)
    overrides = {m: {**getattr(traits(m), preset, {}), **user[m]} if preset in ("quick", "paper")
                 else user[m] for m in names}
    for name in names:   # evaluation-only settings are checked before any run starts
        if evaluation_only(name):
            traits(name).evaluation_only.from_dict(overrides[name]).check()
    threads = values["threads"]
    if values["omp_wait"] not in OMP_WAIT:
        raise ConfigError(f"--omp-wait {values['omp_wait']!r} is not a policy; use one of "
                          f"{', '.join(OMP_WAIT)}")
    return CompareOptions(
        models=names, backends=bnames, dataset=values["dataset"], epochs=int(values["epochs"]),
        seeds=int(values["seeds"]), n_eval=int(values["n_eval"]),
        threads=int(threads) if threads else os.cpu_count() or 1,
        limit=values["limit"], image_size=values["image_size"], batch_size=values["batch_size"],
        native_rng=bool(values.get("native_rng", False)), overrides=overrides,
        extractor=values.get("extractor") or "", score_backend=values.get("score_backend"),
        preset=preset or "", data_dir=values.get("data_dir"),
        budget_minutes=float(budget) if budget is not None else None, omp_wait=values["omp_wait"])
