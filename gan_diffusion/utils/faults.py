"""Fault injection for crash tests: kill this process at a named point, as `kill -9` would.

    GAN_DIFFUSION_FAULT="checkpoint-committed@2"   die the 2nd time that point is reached
    GAN_DIFFUSION_FAULT="rename:latest.npz@1"      die before the 1st rename onto latest.npz

A training run passes its points once per epoch in this order (gan_diffusion/callbacks.py):
"epoch-trained", "rename:latest.npz", "checkpoint-committed", "history-written",
"epoch-done". Every atomic write passes "rename:<file name>" (gan_diffusion/utils/io.py).
Unset (the normal case), `point` is a dictionary lookup and nothing else.
"""
from __future__ import annotations

import os
import signal

ENV = "GAN_DIFFUSION_FAULT"
_hits: dict[str, int] = {}


def point(name: str) -> None:
    """Count a pass through `name`; SIGKILL this process on the pass $GAN_DIFFUSION_FAULT names."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    want, _, nth = spec.rpartition("@") if "@" in spec else (spec, "", "1")
    if want != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
