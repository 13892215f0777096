"""How much CPU other processes took while something was timed (issue 18).

A timing says something about a framework only if the machine was quiet: on 2 shared cores,
torch's epochs ran 3-5x slower beside one other job. `snapshot()` before and `others(a, b)`
after give the mean number of cores that other processes kept busy in between:

    busy CPU seconds of the whole machine (/proc/stat: user + nice + system + irq + softirq +
    steal) minus this process's own CPU seconds (time.process_time, all its threads),
    divided by the wall time.

A measurement is "quiet" when other processes used under QUIET_CORES cores on average.
Linux only (elsewhere the fields are None). In a container /proc/stat counts the host, so
other containers' work shows as load too, which is what it is for the timings.
"""
from __future__ import annotations

import dataclasses
import os
import time

QUIET_CORES = 0.25   # other processes' mean cores below which a timing counts as quiet


@dataclasses.dataclass(frozen=True)
class Snapshot:
    wall: float              # time.perf_counter()
    busy: float | None       # the machine's busy CPU seconds since boot (None: not Linux)
    own: float               # this process's CPU seconds


def machine_busy_seconds() -> float | None:
    """Busy CPU seconds of all cores since boot, from /proc/stat (None where it is absent)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = [int(v) for v in fields[1:9]]      # user nice system idle iowait irq softirq steal
    busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7]
    return busy / os.sysconf("SC_CLK_TCK")


def snapshot() -> Snapshot:
    return Snapshot(time.perf_counter(), machine_busy_seconds(), time.process_time())


def others(a: Snapshot, b: Snapshot) -> dict[str, float | bool | None]:
    """{"other_cores": mean cores other processes used between a and b, "loadavg": the
    1-minute load average at b, "quiet": other_cores < QUIET_CORES} (None where unknown)."""
    wall = b.wall - a.wall
    try:
        load = round(os.getloadavg()[0], 2)
    except OSError:
        load = None
    if a.busy is None or b.busy is None or wall <= 0:
        return {"other_cores": None, "loadavg": load, "quiet": None}
    cores = max(0.0, (b.busy - a.busy) - (b.own - a.own)) / wall
    return {"other_cores": round(cores, 3), "loadavg": load, "quiet": cores < QUIET_CORES}


def is_busy(other_cores: float | None) -> bool:
    """Whether other processes used QUIET_CORES cores or more (False when not measured)."""
    return other_cores is not None and other_cores >= QUIET_CORES


def describe(other_cores: float | None) -> str:
    """"" when quiet or unknown, else a short warning for log lines."""
    if not is_busy(other_cores):
        return ""
    return f"  [busy machine: other processes used {other_cores:.1f} cores]"
