"""A pool of math-verify worker processes with a hard per-answer timeout.

Why processes and not threads: math-verify's own timeout uses SIGALRM, which works only in the main thread,
and some inputs (``10^{10^{10^{10}}}``) spend minutes inside C code that no signal interrupts. A worker that
passes its deadline is killed (its whole process group) and replaced; the answer scores 0 and is counted.

Workers die with their parent: each runs in its own session, sets ``PR_SET_PDEATHSIG`` on Linux, exits on stdin
EOF, and :meth:`VerifierPool.close` (also registered with ``atexit``) kills every worker's group.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dgpo

#: Outcome of one verification: "correct", "incorrect", "timeout" or "error".
Verdict = str


@dataclass
class _Worker:
    process: subprocess.Popen
    buffer: bytes = b""
    ready: bool = False
    dead: bool = False
    item: int | None = None
    deadline: float = math.inf
    started: float = field(default_factory=time.monotonic)


class VerifierPool:
    """``verify_many(pairs, timeout)`` → one verdict per (gold, pred) pair, never raising for bad input."""

    def __init__(self, workers: int = 2, start_timeout: float = 120.0):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.size = workers
        self.start_timeout = start_timeout
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        atexit.register(self.close)

    # -- process management ------------------------------------------------------------------------------
    def _spawn(self) -> _Worker:
        package_root = str(Path(dgpo.__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        process = subprocess.Popen(
            [sys.executable, "-m", "dgpo.rewards.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # never hold the caller's stderr (a CI log) open
            start_new_session=True,  # its own process group, killed as a whole
            env=env,
        )
        os.set_blocking(process.stdout.fileno(), False)
        return _Worker(process)

    @staticmethod
    def _kill(worker: _Worker) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(worker.process.pid, signal.SIGKILL)
        for stream in (worker.process.stdin, worker.process.stdout):
            with contextlib.suppress(OSError):
                stream.close()
        worker.process.wait()

    def close(self) -> None:
        """Stop every worker (idempotent)."""
        with self._lock:
            for worker in self._workers:
                self._kill(worker)
            self._workers = []
            self._closed = True

    @property
    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers]

    # -- verification ------------------------------------------------------------------------------------
    def verify_many(self, pairs: Sequence[tuple[str, str]], timeout: float = 5.0) -> list[Verdict]:
        """Verify each (gold, pred) with math-verify in the workers; ``timeout`` seconds per pair."""
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        if not pairs:
            return []
        with self._lock:
            self._closed = False
            while len(self._workers) < self.size:
                self._workers.append(self._spawn())
            return self._run(pairs, timeout)

    def _run(self, pairs: Sequence[tuple[str, str]], timeout: float) -> list[Verdict]:
        verdicts: list[Verdict | None] = [None] * len(pairs)
        pending = deque(range(len(pairs)))
        inner_timeout = max(1, int(timeout))  # math-verify's SIGALRM takes whole seconds
        selector = selectors.DefaultSelector()
        try:
            for worker in self._workers:
                selector.register(worker.process.stdout, selectors.EVENT_READ, worker)
            while pending or any(w.item is not None for w in self._workers):
                for worker in self._workers:
                    if worker.ready and worker.item is None and pending:
                        self._send(worker, pending.popleft(), pairs, inner_timeout, timeout)
                now = time.monotonic()
                deadlines = [w.deadline for w in self._workers if w.item is not None]
                wait = min([*deadlines, now + 1.0]) - now
                for key, _ in selector.select(timeout=max(wait, 0.0)):
                    self._receive(key.data, verdicts, selector)
                self._enforce_deadlines(verdicts, selector)
        finally:
            selector.close()
        return [v if v is not None else "error" for v in verdicts]

    def _send(self, worker: _Worker, index: int, pairs, inner_timeout: int, timeout: float) -> None:
        gold, pred = pairs[index]
        request = json.dumps({"id": index, "gold": gold, "pred": pred, "timeout": inner_timeout}) + "\n"
        worker.item = index
        worker.deadline = time.monotonic() + timeout
        try:
            worker.process.stdin.write(request.encode())
            worker.process.stdin.flush()
        except (BrokenPipeError, OSError):
            worker.dead = True  # _enforce_deadlines replaces it and scores the item

    def _receive(self, worker: _Worker, verdicts: list, selector: selectors.BaseSelector) -> None:
        try:
            chunk = os.read(worker.process.stdout.fileno(), 1 << 16)
        except BlockingIOError:
            return
        if not chunk:  # the worker died (crash, OOM kill)
            if not worker.ready:
                raise RuntimeError("reward worker exited during start-up (is dgpo importable by sys.executable?)")
            worker.dead = True
            selector.unregister(worker.process.stdout)
            return
        worker.buffer += chunk
        while b"\n" in worker.buffer:
            line, worker.buffer = worker.buffer.split(b"\n", 1)
            message = json.loads(line)
            if "fatal" in message:
                raise RuntimeError(f"reward worker failed to start: {message['fatal']}")
            if message.get("ready"):
                worker.ready = True
                continue
            if message.get("id") == worker.item:
                verdicts[worker.item] = "error" if "error" in message else ("correct" if message["ok"] else "incorrect")
                worker.item = None
                worker.deadline = math.inf

    def _enforce_deadlines(self, verdicts: list, selector: selectors.BaseSelector) -> None:
        now = time.monotonic()
        for i, worker in enumerate(self._workers):
            if not worker.ready and now - worker.started > self.start_timeout:
                raise RuntimeError(f"reward worker did not start within {self.start_timeout:.0f} s")
            if not worker.dead and (worker.item is None or now < worker.deadline):
                continue
            if worker.item is not None:
                verdicts[worker.item] = "error" if worker.dead else "timeout"
            if not worker.dead:
                selector.unregister(worker.process.stdout)
            self._kill(worker)
            replacement = self._spawn()
            self._workers[i] = replacement
            selector.register(replacement.process.stdout, selectors.EVENT_READ, replacement)
