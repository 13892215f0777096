"""The comparison harness: `gan-diffusion compare` (docs/compare.md).

Runs every (model, backend, seed) in its own subprocess (one framework per process), then
builds tables (Markdown + CSV), plots (PNG) and one self-contained HTML report from the run
records. Framework-free: the frameworks are imported only by the worker subprocesses.

    runner.py    orchestration: run matrix, controlled initial weights, resume, outputs
    worker.py    the subprocess entry: one run (train + evaluation samples), or scoring
    presets.py   --preset quick | paper, and how flags override them
    models.py    the per-model table (native init, sampling arguments, trajectories)
    native.py    --native-rng: the frameworks' own RNGs for init and training noise
    quality.py   score_samples: FID/KID of generated against real images
    stats.py     mean/std over seeds, Welch and paired t intervals
    tables.py    the tables; plots.py the figures; report.py the HTML page
"""
