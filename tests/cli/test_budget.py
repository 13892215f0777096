"""--budget-minutes (train and compare): a run stops at the first epoch end past its
training-time budget, records the budget, resumes under a new one, and refuses a rerun (a
clock cannot be repeated). Budgets far below one epoch (1e-6 min = 60 us) and far above the
whole run (1000 min) make the stopping epoch certain whatever the machine's speed."""
import json

import pytest

from gan_diffusion import cli
from gan_diffusion.compare.presets import BUDGET_EPOCH_CAP, resolve
from gan_diffusion.compare.runner import train_options
from gan_diffusion.errors import ConfigError

TINY = ["--backend", "torch", "--limit", "64", "--batch-size", "32", "--set", "g_features=8",
        "--set", "d_features=8", "--no-progress"]


def epochs_of(run):
    return len(json.loads((run / "history.json").read_text())["epochs"])


def test_budget_stops_at_the_first_epoch_end_past_it_and_is_recorded(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", *TINY, "--epochs", "3", "--budget-minutes", "1e-6", "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert "time budget:" in out and "in 1 epoch(s)" in out and epochs_of(run) == 1
    record = json.loads((run / "config.json").read_text())
    assert record["options"]["budget_minutes"] == 1e-6 and record["options"]["epochs"] == 3
    # the same budget again: spent, nothing trained, nothing rewritten
    before = (run / "config.json").read_text()
    assert cli.main(["train", "--out", str(run), "--resume"]) == 0
    assert "its budget of 1e-06 min" in capsys.readouterr().out
    assert epochs_of(run) == 1 and (run / "config.json").read_text() == before
    # a resume may raise the budget: the epoch cap then ends the run
    assert cli.main(["train", "--out", str(run), "--resume", "--budget-minutes", "1000"]) == 0
    assert "time budget:" not in capsys.readouterr().out and epochs_of(run) == 3
    assert json.loads((run / "config.json").read_text())["options"]["budget_minutes"] == 1000


def test_without_a_budget_every_epoch_runs(tmp_path):
    run = tmp_path / "run"
    assert cli.main(["train", *TINY, "--epochs", "2", "--out", str(run)]) == 0
    assert epochs_of(run) == 2
    assert json.loads((run / "config.json").read_text())["options"]["budget_minutes"] is None


def test_a_budgeted_run_cannot_be_rerun(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", *TINY, "--epochs", "2", "--budget-minutes", "1e-6", "--out", str(run)]) == 0
    capsys.readouterr()
    assert cli.main(["train", "--rerun", str(run / "config.json"), "--out", str(tmp_path / "again")]) == 2
    err = capsys.readouterr().err
    assert "trained to a time budget (--budget-minutes 1e-06)" in err and "--epochs N" in err
    assert "Traceback" not in err and not (tmp_path / "again").exists()


@pytest.mark.parametrize("args, message", [
    (["--budget-minutes", "0"], "--budget-minutes must be a positive number of minutes, got 0.0"),
    (["--budget-minutes", "-2"], "--budget-minutes must be a positive number of minutes"),
    (["--budget-minutes", "nan"], "--budget-minutes must be a positive number of minutes, got nan"),
    (["--model", "ldm", "--budget-minutes", "1"], "--budget-minutes applies to one-stage models"),
])
def test_bad_budgets_are_refused_before_anything_is_written(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    assert cli.main(["train", "--backend", "torch", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and not out.exists()


def test_compare_budget_reaches_every_run_with_an_epoch_cap(tmp_path):
    opts = resolve(None, models="dcgan,stylegan2", backends="tf,torch", budget_minutes=2)
    assert opts.budget_minutes == 2.0 and opts.epochs == BUDGET_EPOCH_CAP
    spec = train_options(opts, tmp_path, "stylegan2", "torch", 1)
    assert spec["budget_minutes"] == 2.0 and spec["epochs"] == BUDGET_EPOCH_CAP
    assert opts.run_key("dcgan")["budget_minutes"] == 2.0     # another budget: other runs
    assert "budget_minutes" not in resolve(None, models="dcgan").run_key("dcgan")
    capped = resolve(None, models="dcgan", budget_minutes=2, epochs=7)
    assert capped.epochs == 7 and train_options(capped, tmp_path, "dcgan", "tf", 0)["epochs"] == 7


@pytest.mark.parametrize("kwargs, message", [
    ({"models": "dcgan", "budget_minutes": 0}, "positive number of minutes"),
    ({"models": "ddpm,ldm", "budget_minutes": 1}, "ldm trains two stages"),
])
def test_compare_refuses_bad_budgets(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        resolve(None, **kwargs)
