"""A math-verify worker process: reads JSON requests on stdin, writes one JSON result per line on stdout.

Run by :class:`dgpo.rewards.pool.VerifierPool` as ``python -m dgpo.rewards.worker`` in its own session
(process group). It dies with its parent three ways: ``PR_SET_PDEATHSIG`` (Linux), end-of-file on stdin, and
the parent's ``killpg`` on exit or on a timeout.

Protocol: request ``{"id": int, "gold": str, "pred": str, "timeout": int}``; reply ``{"id": int, "ok": bool}``
or ``{"id": int, "error": str}``. The first line written is ``{"ready": true}`` (or ``{"fatal": str}``: the
parent then raises, naming the cause). Replies are the only thing written to stdout: ``sys.stdout`` is pointed at
stderr (a temporary file the parent reads when a worker fails to start), so a library's stray ``print`` cannot
break a reply line.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import signal
import sys

from dgpo.rewards import policy


def _die_with_parent() -> None:
    # Linux: the kernel sends SIGKILL to this process when the parent exits, even if the parent was
    # SIGKILLed itself; a no-op elsewhere (stdin EOF and the parent's killpg still apply).
    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


_replies = sys.stdout


def _reply(message: dict) -> None:
    _replies.write(json.dumps(message) + "\n")
    _replies.flush()


def main() -> None:
    _die_with_parent()
    sys.stdout = sys.stderr  # the protocol keeps the real stdout (_replies) to itself
    try:
        from math_verify import parse, verify
    except ImportError as err:
        _reply({"fatal": f"math-verify is not installed ({err}); install dgpo[eval]"})
        return

    @functools.lru_cache(maxsize=4096)
    def parse_gold(gold: str, timeout: int):
        # The same gold answer is scored against k samples: parse it once.
        return policy.parse_exact(parse, gold, timeout)

    _reply({"ready": True})
    for line in sys.stdin:
        request = json.loads(line)
        try:
            # math-verify's own timeouts (SIGALRM, main thread) catch most slow cases cheaply; the parent's
            # kill catches the rest (e.g. a huge integer power in C, which no signal interrupts).
            timeout = request["timeout"]
            # The reading rules (units, ambiguous digits, set vs tuple) come first; then exact values, equations
            # as assignments only, and math-verify's verify (docs/rewards.md, "What is accepted and what is rejected").
            pair = policy.prepare_pair(request["gold"], request["pred"])
            ok = pair is not None and policy.agree(
                parse_gold(pair[0], timeout), policy.parse_exact(parse, pair[1], timeout), verify, timeout
            )
            _reply({"id": request["id"], "ok": ok})
        except Exception as err:
            _reply({"id": request["id"], "error": f"{type(err).__name__}: {err}"[:500]})


if __name__ == "__main__":
    main()
