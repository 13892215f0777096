"""utils/cpuload: the CPU other processes took while something was timed, and its record in
every epoch of a training history."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from gan_diffusion.protocols import EpochStats
from gan_diffusion.utils import cpuload

LINUX = cpuload.machine_busy_seconds() is not None


def test_arithmetic_excludes_our_own_cpu_time():
    a = cpuload.Snapshot(wall=10.0, busy=100.0, own=5.0)
    b = cpuload.Snapshot(wall=12.0, busy=104.0, own=7.5)     # 4 busy seconds, 2.5 of them ours
    r = cpuload.others(a, b)
    assert r["other_cores"] == pytest.approx(0.75) and r["quiet"] is False
    quiet = cpuload.others(a, cpuload.Snapshot(wall=12.0, busy=102.6, own=7.5))
    assert quiet["other_cores"] == pytest.approx(0.05) and quiet["quiet"] is True
    unknown = cpuload.others(cpuload.Snapshot(1.0, None, 0.0), cpuload.Snapshot(2.0, None, 1.0))
    assert unknown["other_cores"] is None and unknown["quiet"] is None


@pytest.mark.skipif(not LINUX, reason="/proc/stat is Linux only")
def test_a_spinning_process_is_seen_and_our_own_work_is_not():
    """A competitor spinning on one core shows as >= 0.7 cores (other tests running beside this
    one can only add to it); our own spinning adds nothing to the others' count beyond what
    the competitor-free part of the machine does."""
    rival = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        a = cpuload.snapshot()
        time.sleep(1.5)
        busy = cpuload.others(a, cpuload.snapshot())
    finally:
        rival.kill()
        rival.wait()
    assert busy["other_cores"] >= 0.7 and busy["quiet"] is False
    a = cpuload.snapshot()
    end = time.perf_counter() + 1.0
    while time.perf_counter() < end:                          # our own work: one core
        pass
    b = cpuload.snapshot()
    mine = (b.own - a.own) / (b.wall - a.wall)
    assert mine >= 0.8
    whole = (b.busy - a.busy) / (b.wall - a.wall)
    assert cpuload.others(a, b)["other_cores"] == pytest.approx(max(0.0, whole - mine), abs=0.02)


def test_busy_epochs_say_so_in_the_log_line():
    stats = EpochStats(2, 10.0, 5, 160, 16.0, {"loss": 0.5}, other_cores=1.2, loadavg=3.1)
    assert "[busy machine: other processes used 1.2 cores]" in stats.log_line(4)
    assert "busy" not in EpochStats(2, 10.0, 5, 160, 16.0, {}, other_cores=0.1).log_line()
    assert "busy" not in EpochStats(2, 10.0, 5, 160, 16.0, {}).log_line()   # not measured


@pytest.mark.skipif(not LINUX, reason="/proc/stat is Linux only")
def test_fit_records_the_load_of_every_epoch():
    import gan_diffusion
    from gan_diffusion.data import load_dataset

    model = gan_diffusion.get_backend("torch").build("dcgan", g_features=8, d_features=8,
                                                     latent_dim=8, batch_size=32)
    history = model.fit(load_dataset("digits", limit=64), epochs=2, progress=False)
    for e in history.to_dict()["epochs"]:
        assert e["other_cores"] is not None and e["other_cores"] >= 0.0
        assert e["loadavg"] is not None
