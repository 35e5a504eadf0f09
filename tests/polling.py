"""Waiting on a child process's progress in kill-and-resume tests: poll a condition, never sleep a fixed time."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable


def wait_for(condition: Callable[[], bool], process: subprocess.Popen, what: str, give_up_s: float = 600) -> None:
    """Poll ``condition`` until it holds; fail clearly if ``process`` exits first (the deadline only stops a hang)."""
    give_up = time.monotonic() + give_up_s
    while not condition():
        assert process.poll() is None, f"the process exited with {process.returncode} before {what}"
        assert time.monotonic() < give_up, f"gave up after {give_up_s:g} s waiting for {what}"
        time.sleep(0.05)
