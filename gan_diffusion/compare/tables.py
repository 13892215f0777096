"""The comparison tables, computed from the run records only (config.json, history.json,
run.json, quality.json of each run folder), written as Markdown and CSV.

Definitions (docs/compare.md):
    epoch time         wall seconds of one epoch (history.json, data pipeline included)
    first epoch        epoch 1: includes tracing / graph building / allocator warm-up
    steady state       median over epochs 2..N of one run (N = 1: not defined)
    images/s           median over epochs 2..N of the epoch's images / seconds (N = 1: epoch 1)
    peak RSS           ru_maxrss of the run's process after training (framework, data, model)
    sampling images/s  evaluation samples / seconds of one `sample()` call after a warm-up
    quality            FID and KID of the evaluation samples (extractor named in the header),
                       plus final-epoch losses whose name contains "elbo" (VAE, training
                       mean) and the model's own evaluation on the eval split (eval_neg_elbo)
    framework effect   per model: mean(backend A) - mean(backend B), Welch's 95% interval
    model effect       per pair of models: mean(A) - mean(B) (Welch) and mean(A) / mean(B)
                       (delta method on the log ratio), 95% intervals (stats.py)
Values over seeds are mean +/- sample standard deviation (ddof 1). Evaluation-only runs
(sd-img2img: no epochs) have no timing rows and no epoch metrics.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gan_diffusion.compare.quality import extractor_note, score_label
from gan_diffusion.compare.stats import (mean_std, paired_interval, ratio_interval, seed_spread,
                                         welch_interval)
from gan_diffusion.utils.cpuload import QUIET_CORES, is_busy


@dataclasses.dataclass
class RunResult:
    """One finished run, read back from its folder."""

    model: str
    backend: str
    seed: int
    path: Path
    record: dict[str, Any]     # config.json
    run: dict[str, Any]        # run.json
    epochs: list[dict[str, Any]]  # history.json "epochs"
    quality: dict[str, Any] | None  # quality.json "scores", or None if not scored

    @property
    def epoch_seconds(self) -> list[float]:
        return [e["seconds"] for e in self.epochs]

    @property
    def first_epoch_s(self) -> float:
        return self.epochs[0]["seconds"] if self.epochs else math.nan   # evaluation-only: none

    @property
    def steady_epoch_s(self) -> float:
        later = self.epoch_seconds[1:]
        return float(np.median(later)) if later else math.nan

    @property
    def images_per_sec(self) -> float:
        rates = [e["images_per_sec"] for e in self.epochs]
        return float(np.median(rates[1:] if len(rates) > 1 else rates)) if rates else math.nan

    @property
    def train_seconds(self) -> float:
        return float(sum(self.epoch_seconds))

    @property
    def peak_rss_mb(self) -> float:
        return float(self.run["peak_rss_mb"])

    @property
    def sample_images_per_sec(self) -> float:
        v = self.run.get("sample", {}).get("images_per_sec")
        return math.nan if v is None else float(v)

    @property
    def timed_ms_per_image(self) -> float:
        """ms per image of the timed second sampler (diffusion: DDIM-50), NaN if none."""
        v = self.run.get("timed_sample", {}).get("ms_per_image")
        return math.nan if v is None else float(v)

    @property
    def first_stage_s(self) -> float:
        """Seconds of a two-stage run's first stage (ldm: the autoencoder), NaN if none."""
        v = self.run.get("stages", {}).get("autoencoder", {}).get("seconds")
        return math.nan if v is None else float(v)

    @property
    def busy_epochs(self) -> int:
        """Epochs during which other processes used QUIET_CORES cores or more (utils/cpuload)."""
        return sum(1 for e in self.epochs if is_busy(e.get("other_cores")))

    @property
    def measured_epochs(self) -> int:
        """Epochs whose machine load was measured (histories before it was recorded: none)."""
        return sum(1 for e in self.epochs if e.get("other_cores") is not None)

    @property
    def final_losses(self) -> dict[str, float]:
        return dict(self.epochs[-1]["losses"]) if self.epochs else {}

    def quality_values(self) -> dict[str, float]:
        """{"fid": v, "kid": v, <final-epoch losses named like "elbo" or listed in the model's
        history_quality>: v, "eval_<name>": the model's own evaluation (VAE: eval_neg_elbo)}."""
        from gan_diffusion.compare.models import traits

        out = {k: float(v["value"]) for k, v in (self.quality or {}).items()}
        for k, v in self.final_losses.items():
            if "elbo" in k.lower() or k in traits(self.model).history_quality:
                out[k] = float(v)
        out.update({f"eval_{k}": float(v) for k, v in self.run.get("evaluate", {}).items()})
        return out


def run_folder(out: Path, model: str, backend: str, seed: int) -> Path:
    """OUT/runs/<model>/<backend>/seed<k>: one run's folder."""
    return Path(out) / "runs" / model / backend / f"seed{seed}"


def read_run(path: Path, model: str, backend: str, seed: int) -> RunResult | None:
    """The run in `path` if it finished (run.json says so), else None."""
    try:
        run = json.loads((path / "run.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if not run.get("finished"):
        return None
    quality = None
    if (path / "quality.json").exists():
        quality = json.loads((path / "quality.json").read_text())["scores"]
    return RunResult(model, backend, seed, path, json.loads((path / "config.json").read_text()),
                     run, json.loads((path / "history.json").read_text())["epochs"], quality)


def collect(out: Path, models: list[str], backends: list[str], seeds: int) -> list[RunResult]:
    """The finished runs of a comparison, in (model, backend, seed) order."""
    found = [read_run(run_folder(out, m, b, s), m, b, s)
             for m in models for b in backends for s in range(seeds)]
    return [r for r in found if r is not None]


# -- a table: raw rows for the CSV, formatted columns for Markdown/HTML ----------------------
@dataclasses.dataclass
class Table:
    """name: file stem; title; rows: list of dicts (CSV, raw numbers); columns: (header,
    row -> text) for Markdown and HTML, applied to `display` rows if given (a wide form),
    else to `rows`; note: what the numbers are."""

    name: str
    title: str
    rows: list[dict[str, Any]]
    columns: list[tuple[str, Callable[[dict[str, Any]], str]]]
    note: str = ""
    display: list[dict[str, Any]] | None = None

    def header_and_cells(self) -> tuple[list[str], list[list[str]]]:
        shown = self.rows if self.display is None else self.display
        return [h for h, _ in self.columns], [[f(r) for _, f in self.columns] for r in shown]

    def markdown(self) -> str:
        head, cells = self.header_and_cells()
        lines = [f"### {self.title}", ""]
        if self.note:
            lines += [self.note, ""]
        esc = lambda text: text.replace("|", "\\|")  # a literal | would end the cell
        lines += ["| " + " | ".join(map(esc, head)) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(map(esc, c)) + " |" for c in cells]
        return "\n".join(lines) + "\n"

    def csv(self) -> str:
        buf = io.StringIO()
        keys = list(dict.fromkeys(k for r in self.rows for k in r))
        w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
        w.writeheader()
        for r in self.rows:
            w.writerow({k: _csv_value(r.get(k)) for k in keys})
        return buf.getvalue()


def _csv_value(v: Any) -> Any:
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    return "" if v is None else v


def fmt(v: Any, digits: int = 4) -> str:
    """A number with `digits` significant digits ("n/a" for None/NaN)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return f"{v:.{digits}g}"


def fmt_sd(std: float) -> str:
    """A spread: whole numbers from 10 up, else 2 significant digits."""
    if std is None or math.isnan(std):
        return "n/a"
    return f"{std:.0f}" if abs(std) >= 10 else fmt(std, 2)


def fmt_ms(mean: float, std: float) -> str:
    """"mean ± std" (only the mean for one seed)."""
    if math.isnan(std):
        return fmt(mean)
    return f"{fmt(mean)} ± {fmt_sd(std)}"


def _ms_col(header: str, key: str) -> tuple[str, Callable[[dict], str]]:
    return header, lambda r: fmt_ms(r[f"{key}_mean"], r[f"{key}_std"])


def _add_ms(row: dict, key: str, values: list[float]) -> None:
    m, s, _ = mean_std(values) if values and not any(math.isnan(v) for v in values) else \
        (math.nan, math.nan, 0)
    row[f"{key}_mean"], row[f"{key}_std"] = m, s


def metric_label(key: str, extractor: str, results: list[RunResult] = ()) -> str:
    """The header of a quality metric: "FID-LeNet(MNIST)" etc. for fid / kid (score_label),
    a score's own name from quality.json (e.g. "class accuracy [LeNet(MNIST)]"), "<name>
    (eval split)" for the model's own evaluation, "<name> (final epoch)" for History losses;
    timing keys by TIMING_METRICS."""
    if key in ("fid", "kid"):
        return score_label(extractor, key)
    if key in TIMING_METRICS:
        return TIMING_METRICS[key][0]
    if key.endswith("_real") and key != "_real":      # a score's value on the real images
        base = metric_label(key[:-5], extractor, results)
        if not base.endswith("(final epoch)"):
            return f"{base} of the real images"
    named = next((r.quality[key]["name"] for r in results if r.quality and isinstance(
        r.quality.get(key), dict) and r.quality[key].get("name")), None)
    if named:
        return named
    if key in EVAL_LABELS:
        return EVAL_LABELS[key]
    return f"{key[5:]} (eval split)" if key.startswith("eval_") else f"{key} (final epoch)"


# the model's own evaluation metrics with a name of their own (ldm: its autoencoder's
# reconstruction of the evaluation images)
EVAL_LABELS = {"eval_psnr": "Autoencoder PSNR (dB, eval split)",
               "eval_ssim": "Autoencoder SSIM (eval split)"}


def _groups(results: list[RunResult]) -> dict[tuple[str, str], list[RunResult]]:
    groups: dict[tuple[str, str], list[RunResult]] = {}
    for r in results:
        groups.setdefault((r.model, r.backend), []).append(r)
    return groups


# -- the tables ------------------------------------------------------------------------------
TIMING_METRICS = {  # key -> (header, RunResult -> value)
    "first_epoch_s": ("Epoch 1 (s)", lambda r: r.first_epoch_s),
    "steady_epoch_s": ("Steady state (s)", lambda r: r.steady_epoch_s),
    "images_per_sec": ("Images/s", lambda r: r.images_per_sec),
    "peak_rss_mb": ("Peak RSS (MiB)", lambda r: r.peak_rss_mb),
    "sample_images_per_sec": ("Sampling images/s", lambda r: r.sample_images_per_sec),
    "train_s": ("Training total (s)", lambda r: r.train_seconds),
    "autoencoder_s": ("Autoencoder stage (s)", lambda r: r.first_stage_s),
    "ddim50_ms_per_image": ("DDIM-50 ms / image", lambda r: r.timed_ms_per_image),
}


def runs_table(results: list[RunResult]) -> Table:
    """One row per run: the per-run numbers every other table aggregates."""
    rows = []
    for r in results:
        row = {"model": r.model, "backend": r.backend, "seed": r.seed, "epochs": len(r.epochs),
               **{k: f(r) for k, (_, f) in TIMING_METRICS.items()},
               **r.quality_values(),
               "threads": r.record.get("threads", {}).get("intra_op"),
               "rng": ("evaluation only" if r.record.get("evaluation_only")
                       else r.record.get("rng", {}).get("mode")),
               "init_sha256": r.record.get("rng", {}).get("init_sha256", ""),
               "path": str(r.path)}
        rows.append(row)
    qkeys = list(dict.fromkeys(k for r in results for k in r.quality_values()))
    cols = [("Model", lambda r: r["model"]), ("Backend", lambda r: r["backend"]),
            ("Seed", lambda r: str(r["seed"])), ("Epochs", lambda r: str(r["epochs"]))]
    cols += [(h, (lambda k: lambda r: fmt(r[k]))(k)) for k, (h, _) in TIMING_METRICS.items()]
    cols += [(k.upper() if k in ("fid", "kid") else k, (lambda k: lambda r: fmt(r.get(k)))(k))
             for k in qkeys]
    cols += [("Threads", lambda r: fmt(r["threads"])), ("RNG", lambda r: r["rng"] or "?"),
             ("Initial weights sha256", lambda r: (r["init_sha256"] or "?")[:12])]
    return Table("runs", "Runs", rows, cols, "One row per (model, backend, seed) run; the other "
                 "tables aggregate these numbers over seeds.")


def timing_table(results: list[RunResult]) -> Table:
    rows = []
    for (model, backend), runs in _groups(results).items():
        if not any(r.epochs for r in runs):      # evaluation-only (sd-img2img): nothing trained
            continue
        counts = sorted({len(r.epochs) for r in runs})   # seeds differ under --budget-minutes
        row = {"model": model, "backend": backend, "n_seeds": len(runs),
               "epochs": counts[0] if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"}
        for k, (_, f) in TIMING_METRICS.items():
            _add_ms(row, k, [f(r) for r in runs])
        row["first_over_steady"] = row["first_epoch_s_mean"] / row["steady_epoch_s_mean"] \
            if row["steady_epoch_s_mean"] and not math.isnan(row["steady_epoch_s_mean"]) else math.nan
        measured = sum(r.measured_epochs for r in runs)
        row["busy_epochs"] = (f"{sum(r.busy_epochs for r in runs)} of {measured}" if measured
                              else "not measured")
        rows.append(row)
    cols = [("Model", lambda r: r["model"]), ("Backend", lambda r: r["backend"]),
            ("Seeds", lambda r: str(r["n_seeds"])), ("Epochs", lambda r: str(r["epochs"])),
            _ms_col("Epoch 1 (s)", "first_epoch_s"),
            _ms_col("Steady state (s), median of epochs 2..N", "steady_epoch_s"),
            ("Epoch 1 / steady", lambda r: fmt(r["first_over_steady"], 3)),
            _ms_col("Images/s (steady)", "images_per_sec"),
            _ms_col("Peak RSS (MiB)", "peak_rss_mb"),
            _ms_col("Sampling images/s", "sample_images_per_sec"),
            _ms_col("Training total (s)", "train_s"),
            ("Busy epochs", lambda r: r["busy_epochs"])]
    staged = any(not math.isnan(r["autoencoder_s_mean"]) for r in rows)
    if staged:
        cols.append(_ms_col("Autoencoder stage (s)", "autoencoder_s"))
    return Table("timing", "Training time: first epoch against steady state, throughput, memory",
                 rows, cols, "Mean ± standard deviation over seeds. Steady state: the median epoch "
                 "time of epochs 2..N of each run. Peak RSS: the run process's ru_maxrss after "
                 "training (framework, data and model; CPU). Busy epochs: epochs (all seeds) "
                 f"during which other processes used {QUIET_CORES} cores or more on average "
                 "(gan_diffusion/utils/cpuload.py); 0 means the timings are the frameworks'." + (
                     " Latent diffusion (ldm): the epochs are its diffusion stage's; its "
                     "autoencoder stage, trained first, is the last column (total seconds)."
                     if staged else ""))


def epoch_table(results: list[RunResult]) -> Table:
    """Rows: (model, backend, seed, epoch) in the CSV; Markdown: a row per epoch, a column per
    (model, backend) with mean ± std seconds over seeds."""
    rows = [{"model": r.model, "backend": r.backend, "seed": r.seed, "epoch": e["epoch"],
             "seconds": e["seconds"], "images_per_sec": e["images_per_sec"], "steps": e["steps"],
             "images": e["images"], "other_cores": e.get("other_cores"),
             "loadavg": e.get("loadavg")} for r in results for e in r.epochs]
    groups = {k: v for k, v in _groups(results).items() if any(r.epochs for r in v)}
    n_epochs = max((len(r.epochs) for r in results), default=0)
    wide = []
    for ep in range(1, n_epochs + 1):
        w = {"epoch": ep}
        for (m, b), runs in groups.items():
            eps = [r.epochs[ep - 1] for r in runs if len(r.epochs) >= ep]
            vals = [e["seconds"] for e in eps]
            busy = any(is_busy(e.get("other_cores")) for e in eps)
            w[(m, b)] = (*(mean_std(vals)[:2] if vals else (math.nan, math.nan)), busy)
        wide.append(w)
    cols = [("Epoch", lambda w: str(w["epoch"]))]
    cols += [(f"{m} {b} (s)", (lambda key: lambda w: fmt_ms(*w[key][:2]) + ("*" if w[key][2] else ""))
              ((m, b))) for (m, b) in groups]
    return Table("epoch_times", "Training time of every epoch", rows, cols,
                 "Seconds per epoch, mean ± std over seeds (the CSV has every run's epochs, "
                 "images/s, and the cores other processes used meanwhile). *: in at least one "
                 f"seed, other processes used {QUIET_CORES} cores or more during that epoch.",
                 display=wide)


def quality_table(results: list[RunResult], extractor: str) -> Table:
    rows = []
    for (model, backend), runs in _groups(results).items():
        row = {"model": model, "backend": backend, "n_seeds": len(runs), "extractor": extractor}
        keys = list(dict.fromkeys(k for r in runs for k in r.quality_values()))
        for k in keys:
            _add_ms(row, k, [r.quality_values().get(k, math.nan) for r in runs])
        for k in keys:   # a score's value on the real images (class accuracy's ceiling)
            real = [(r.quality or {}).get(k, {}).get("real_value") for r in runs]
            if any(v is not None for v in real):
                _add_ms(row, f"{k}_real", [math.nan if v is None else float(v) for v in real])
        q = runs[0].quality or {}
        row["n_fake"] = q.get("fid", {}).get("n_fake")
        row["n_real"] = q.get("fid", {}).get("n_real")
        rows.append(row)
    keys = list(dict.fromkeys(k[:-5] for r in rows for k in r if k.endswith("_mean")))
    cols = [("Model", lambda r: r["model"]), ("Backend", lambda r: r["backend"]),
            ("Seeds", lambda r: str(r["n_seeds"]))]
    cols += [(metric_label(k, extractor, results),
              (lambda k: lambda r: fmt_ms(r.get(f"{k}_mean", math.nan), r.get(f"{k}_std", math.nan)))(k))
             for k in keys]
    cols += [("Samples (fake / real)", lambda r: f"{fmt(r['n_fake'])} / {fmt(r['n_real'])}")]
    note = f"Mean ± standard deviation over seeds. {extractor_note(extractor)}"
    return Table("quality", "Final sample quality", rows, cols, note)


def effect_table(results: list[RunResult], backends: list[str], paired: bool) -> Table:
    """Per model and metric: mean(backends[0]) - mean(backends[1]) with Welch's 95% interval,
    the seed-to-seed spread, and whether the difference exceeds it."""
    a_name, b_name = backends[0], backends[1]
    groups = _groups(results)
    rows = []
    for model in dict.fromkeys(r.model for r in results):
        a, b = groups.get((model, a_name), []), groups.get((model, b_name), [])
        if not a or not b:
            continue
        metrics = {k: (h, f) for k, (h, f) in TIMING_METRICS.items() if k != "train_s"}
        for k in dict.fromkeys(q for r in a + b for q in r.quality_values()):
            metrics[k] = (k.upper() if k in ("fid", "kid") else metric_label(k, "", results),
                          (lambda k: lambda r: r.quality_values().get(k, math.nan))(k))
        for key, (header, f) in metrics.items():
            va, vb = [f(r) for r in a], [f(r) for r in b]
            if any(math.isnan(v) for v in va + vb):
                continue
            iv = welch_interval(va, vb)
            spread = seed_spread(va, vb)
            row = {"model": model, "metric": key, "label": header,
                   f"{a_name}_mean": float(np.mean(va)), f"{b_name}_mean": float(np.mean(vb)),
                   "diff": iv.diff, "ci_low": iv.low, "ci_high": iv.high, "welch_df": iv.df,
                   "seed_sd": spread, "ci_excludes_0": iv.excludes_zero if not math.isnan(iv.low) else None,
                   "exceeds_seed_sd": abs(iv.diff) > spread if not math.isnan(spread) else None,
                   "n_a": len(va), "n_b": len(vb)}
            sa, sb = sorted(a, key=lambda r: r.seed), sorted(b, key=lambda r: r.seed)
            if paired and [r.seed for r in sa] == [r.seed for r in sb]:
                p = paired_interval([f(r) for r in sa], [f(r) for r in sb])
                row.update(paired_ci_low=p.low, paired_ci_high=p.high)
            rows.append(row)
    ci = lambda r: "n/a (1 seed)" if math.isnan(r["ci_low"]) else f"[{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]"
    cols = [("Model", lambda r: r["model"]), ("Metric", lambda r: r["label"]),
            (a_name, lambda r: fmt(r[f"{a_name}_mean"])), (b_name, lambda r: fmt(r[f"{b_name}_mean"])),
            (f"{a_name} − {b_name}", lambda r: fmt(r["diff"])),
            ("95% interval (Welch)", ci),
            ("Seed SD", lambda r: fmt_sd(r["seed_sd"])),
            ("Interval excludes 0", lambda r: fmt(r["ci_excludes_0"]) if r["ci_excludes_0"] is not None else "n/a"),
            ("Exceeds seed SD", lambda r: fmt(r["exceeds_seed_sd"]) if r["exceeds_seed_sd"] is not None else "n/a")]
    n = max((max(r["n_a"], r["n_b"]) for r in rows), default=0)
    width = {2: "with 2 seeds per backend (df 1-2, t 4.3-12.7) its half-width is 4.3 to 9 seed SDs",
             3: "with 3 seeds per backend (df 2-4, t 2.8-4.3) its half-width is 2.3 to 2.5 seed SDs"}
    note = (f"Framework effect = mean over seeds of {a_name} minus {b_name}. 95% interval: Welch's "
            "t interval (unequal variances, Welch-Satterthwaite df)"
            + (f"; {width[n]}" if n in width else "") + ". Seed SD: the larger of the two backends' "
            "standard deviations over seeds; 'Exceeds seed SD': |difference| > seed SD, i.e. the "
            "framework effect is bigger than the seed-to-seed spread." + (" Controlled runs are paired by seed: the CSV also gives the "
                                      "paired t interval (df = seeds - 1)." if paired else ""))
    return Table("framework_effect", f"Framework effect ({a_name} − {b_name}) per model", rows, cols, note)


MODEL_EFFECT_TIMING = {"steady_epoch_s": "Steady time per epoch (s)",
                       "ddim50_ms_per_image": "DDIM-50 ms / image"}   # timing compared between models
POOLED = "pooled"                           # the backend column of rows pooled over backends


def _metric_values(runs: list[RunResult], key: str) -> dict[int, float]:
    """seed -> finite value of `key` (a quality metric or MODEL_EFFECT_TIMING) in `runs`."""
    out = {}
    for r in runs:
        v = TIMING_METRICS[key][1](r) if key in TIMING_METRICS else r.quality_values().get(key, math.nan)
        if not math.isnan(v):
            out[r.seed] = float(v)
    return out


def _pooled_values(groups: dict, model: str, backends: list[str], key: str) -> dict[int, float]:
    """seed -> mean of `key` over `backends` for the seeds that have it in every one."""
    per = [_metric_values(groups[(model, b)], key) for b in backends]
    seeds = sorted(set.intersection(*(set(p) for p in per)))
    return {s: float(np.mean([p[s] for p in per])) for s in seeds}


def model_effect_table(results: list[RunResult], extractor: str, both_orders: bool = False) -> Table:
    """Model against model: for each pair (A, B) of models, each backend they share, and
    pooled over backends, every metric both have: mean(A) - mean(B) with Welch's 95% interval
    and mean(A) / mean(B) with the log-scale delta-method 95% interval (stats.ratio_interval).

    Args:
        results: finished runs of one comparison.
        extractor: the quality extractor (names FID/KID in the Metric column).
        both_orders: also the rows (B, A). Off by default: with these methods B - A is
            exactly -(A - B) with the negated interval and B / A exactly the reciprocal
            interval, so (A, B) with A listed before B carries everything.

    Returns:
        Table "model_effect". Metrics: every quality metric (RunResult.quality_values) and
        the steady time per epoch in seconds. A metric is shown for a pair when both models
        have it in at least one seed (in the runs that have it); missing for one model (an
        evaluation-only model has no epochs) means no row, never a 0. Pooled rows (backend
        "pooled", only when both models ran in the same two or more backends): per seed the
        mean over the backends, then the seeds are the replicates (n = seeds, not seeds x
        backends: controlled runs of one seed in two backends are near copies, not
        independent replicates). Different models share no weights, so the intervals are
        unpaired.
    """
    groups = _groups(results)
    models = list(dict.fromkeys(r.model for r in results))
    backends = list(dict.fromkeys(r.backend for r in results))
    pairs = itertools.permutations(models, 2) if both_orders else itertools.combinations(models, 2)
    rows = []
    for ma, mb in pairs:
        shared = [b for b in backends if (ma, b) in groups and (mb, b) in groups]
        same_set = {b for m, b in groups if m == ma} == {b for m, b in groups if m == mb}
        keys = list(dict.fromkeys(k for r in results if r.model in (ma, mb)
                                  for k in r.quality_values())) + list(MODEL_EFFECT_TIMING)
        for key in keys:
            cells = [(b, _metric_values(groups[(ma, b)], key), _metric_values(groups[(mb, b)], key))
                     for b in shared]
            if same_set and len(shared) >= 2:
                cells.append((POOLED, _pooled_values(groups, ma, shared, key),
                              _pooled_values(groups, mb, shared, key)))
            for backend, va, vb in cells:
                if not va or not vb:         # missing for a model: no row
                    continue
                a, b = list(va.values()), list(vb.values())
                d, q = welch_interval(a, b), ratio_interval(a, b)
                (mean_a, sd_a, n_a), (mean_b, sd_b, n_b) = mean_std(a), mean_std(b)
                rows.append({
                    "model_a": ma, "model_b": mb, "backend": backend,
                    "metric": MODEL_EFFECT_TIMING.get(key) or metric_label(key, extractor, results),
                    "key": key,
                    "mean_a": mean_a, "std_a": sd_a, "n_a": n_a,
                    "mean_b": mean_b, "std_b": sd_b, "n_b": n_b,
                    "difference": d.diff, "diff_ci_low": d.low, "diff_ci_high": d.high,
                    "diff_df": d.df, "ratio": q.ratio, "ratio_ci_low": q.low,
                    "ratio_ci_high": q.high, "ratio_df": q.df,
                    "pooled_over": ",".join(shared) if backend == POOLED else "",
                    "note": q.note})
    ci = lambda lo, hi: "n/a" if math.isnan(lo) else f"[{fmt(lo)}, {fmt(hi)}]"
    cols = [("Model A", lambda r: r["model_a"]), ("Model B", lambda r: r["model_b"]),
            ("Backend", lambda r: r["backend"] if r["backend"] != POOLED
             else f"pooled ({', '.join(r['pooled_over'].split(','))})"),
            ("Metric", lambda r: r["metric"]),
            ("Mean A", lambda r: fmt(r["mean_a"])), ("Mean B", lambda r: fmt(r["mean_b"])),
            ("A − B", lambda r: fmt(r["difference"])),
            ("95% interval (Welch)", lambda r: ci(r["diff_ci_low"], r["diff_ci_high"])),
            ("A / B", lambda r: fmt(r["ratio"])),
            ("95% interval (log-delta)", lambda r: ci(r["ratio_ci_low"], r["ratio_ci_high"])),
            ("Seeds (A / B)", lambda r: f"{r['n_a']} / {r['n_b']}")]
    note = ("Model effect of A against B: means over seeds; A − B with Welch's 95% t interval "
            "(unequal variances, unpaired: different models share no weights); A / B with the "
            "95% interval of the delta method on the log ratio (se² = CV²(mean A) + CV²(mean B), "
            "Welch-Satterthwaite df; positive, asymmetric). n/a: fewer than 2 seeds in a group, "
            "or, for the ratio, a mean of 0 or means of opposite signs (the CSV's note says "
            "which). B − A and B / A are the negated and reciprocal numbers. Pooled rows: the "
            "per-seed mean over the backends, the seeds as replicates. Metrics a model lacks "
            "(an evaluation-only model has no time per epoch) have no row. "
            + extractor_note(extractor))
    return Table("model_effect", "Model effect (A against B)", rows, cols, note)


def _sampler(r: RunResult) -> str:
    """How a run's evaluation samples were drawn, in words (e.g. "ddim 50 steps")."""
    if r.record.get("evaluation_only"):
        c = r.record.get("config", {})
        return (f"img2img {c.get('scheduler', '?')} {c.get('steps', '?')} steps x strength "
                f"{c.get('strength', '?')}, {c.get('size', '?')} px")
    kw = r.run.get("sample", {}).get("kwargs", {}) or {}
    cfg = r.record.get("model_config", {})
    sampler = kw.get("sampler", cfg.get("sampler"))
    steps = kw.get("steps", cfg.get("sample_steps"))
    if sampler is None and steps is None:
        return "one forward pass"
    return " ".join(str(v) for v in (sampler, f"{steps} steps" if steps else None) if v)


def sampling_table(results: list[RunResult]) -> Table:
    """Per model and backend: time per evaluation image (one `sample()` call of n_eval images
    after a warm-up; evaluation-only models: the whole edit loop), and how it sampled."""
    rows = []
    for (model, backend), runs in _groups(results).items():
        per = [1000.0 / r.sample_images_per_sec if r.sample_images_per_sec > 0 else math.nan
               for r in runs]
        row = {"model": model, "backend": backend, "n_seeds": len(runs), "sampler": _sampler(runs[0]),
               "n_images": runs[0].run.get("sample", {}).get("n")}
        _add_ms(row, "ms_per_image", per)
        _add_ms(row, "sample_images_per_sec", [r.sample_images_per_sec for r in runs])
        _add_ms(row, "ddim50_ms_per_image", [r.timed_ms_per_image for r in runs])
        builds = [r.record.get("seconds", {}).get("build") for r in runs]
        if all(b is not None for b in builds):
            _add_ms(row, "build_s", builds)
        rows.append(row)
    cols = [("Model", lambda r: r["model"]), ("Backend", lambda r: r["backend"]),
            ("Seeds", lambda r: str(r["n_seeds"])), ("Sampler", lambda r: r["sampler"]),
            ("Images", lambda r: fmt(r["n_images"])),
            ("ms / image", lambda r: fmt_ms(r["ms_per_image_mean"], r["ms_per_image_std"])),
            ("Images/s", lambda r: fmt_ms(r["sample_images_per_sec_mean"],
                                          r["sample_images_per_sec_std"])),
            ("Model build (s)", lambda r: fmt_ms(r["build_s_mean"], r["build_s_std"])
             if "build_s_mean" in r else "")]
    timed = any(not math.isnan(r["ddim50_ms_per_image_mean"]) for r in rows)
    if timed:
        from gan_diffusion.compare.models import TIMED_IMAGES

        cols.insert(6, ("DDIM-50 ms / image", lambda r: fmt_ms(r["ddim50_ms_per_image_mean"],
                                                               r["ddim50_ms_per_image_std"])))
    return Table("sampling", "Sampling time per image", rows, cols,
                 "Mean ± std over seeds of one sample() call drawing the evaluation images after a "
                 "warm-up call (the same latents in every backend). Evaluation-only models "
                 "(sd-img2img): the edit loop over the evaluation images; building the networks "
                 "from their weights is the last column, not included." + (
                     f" DDIM-50: diffusion models (ddpm, ldm) also timed with 50 DDIM steps on "
                     f"{TIMED_IMAGES} images in one call after a one-step warm-up (class-conditional "
                     "models: with their guidance, two network calls per step; ldm: decoding "
                     "included), the same steps for pixel and latent diffusion." if timed else ""))


def build_tables(results: list[RunResult], backends: list[str], extractor: str,
                 paired: bool) -> list[Table]:
    """All tables, in report order (the framework effect only with two backends, the model
    effect beside it only with two or more models among the finished runs)."""
    tables = [timing_table(results), epoch_table(results), sampling_table(results),
              quality_table(results, extractor)]
    if len(backends) >= 2:
        tables.append(effect_table(results, backends, paired))
    if len({r.model for r in results}) >= 2:
        tables.append(model_effect_table(results, extractor))
    tables.append(runs_table(results))
    return tables


def write_tables(tables: list[Table], folder: Path) -> list[Path]:
    """TABLE.md and TABLE.csv per table, plus tables.md with all of them."""
    from gan_diffusion.utils.io import atomic_write_text

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for t in tables:
        atomic_write_text(folder / f"{t.name}.md", t.markdown())
        atomic_write_text(folder / f"{t.name}.csv", t.csv())
        paths += [folder / f"{t.name}.md", folder / f"{t.name}.csv"]
    atomic_write_text(folder / "tables.md", "\n".join(t.markdown() for t in tables))
    return paths
