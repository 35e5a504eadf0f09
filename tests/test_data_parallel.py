"""One optimiser step gives the same gradient and metrics on 1 process × B, 1 × (B/2, accumulation 2),
2 processes × B/2 and 2 × (B/4, accumulation 2) — torchrun, gloo, CPU — for every aggregation, with and without a
fully masked completion; and the negative control (per-micro-batch counts) does not.

The work runs in tests/data_parallel_script.py, launched as subprocesses (see its docstring).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dgpo.metrics import MAX_KEYS, OBJECTIVE_METRIC_KEYS

pytestmark = pytest.mark.slow  # every test reads the results of torchrun launches (a module fixture)

SCRIPT = Path(__file__).with_name("data_parallel_script.py")
AGGREGATIONS = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm")
#: (processes, accumulation) splits of the same 8-row batch; (1, 1) is the one big batch.
SPLITS = [(1, 2), (2, 1), (2, 2)]
TOLERANCE = 1e-5  # norm-relative


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(model: Path, out: Path, processes: int, accumulation: list[int], control: bool) -> subprocess.Popen:
    out.mkdir(parents=True, exist_ok=True)
    script = [str(SCRIPT), str(model), str(out), "--accumulation", *map(str, accumulation)]
    if control:
        script.append("--drop-global-counts")
    if processes == 1:
        command = [sys.executable, *script]
    else:
        torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
        command = [torchrun, "--nproc_per_node", str(processes), "--master-port", str(free_port()), *script]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    # Own session: on timeout or failure the whole group (torchrun and its workers) is killed, no orphans.
    return subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_all(launches: list[tuple[subprocess.Popen, Path]], timeout: float = 300) -> dict:
    results = {}
    try:
        for proc, out in launches:
            output, _ = proc.communicate(timeout=timeout)
            assert proc.returncode == 0, output.decode()[-4000:]
            for path in out.glob("results-*.pt"):
                results.update(torch.load(path, weights_only=False))
    finally:
        for proc, _ in launches:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return results


@pytest.fixture(scope="module")
def runs(tiny_model_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("data-parallel")
    one = launch(tiny_model_dir, tmp / "one", 1, [1, 2], control=False)
    two = launch(tiny_model_dir, tmp / "two", 2, [1, 2], control=False)
    results = wait_all([(one, tmp / "one"), (two, tmp / "two")])
    one = launch(tiny_model_dir, tmp / "one-control", 1, [1, 2], control=True)
    two = launch(tiny_model_dir, tmp / "two-control", 2, [1], control=True)
    controls = wait_all([(one, tmp / "one-control"), (two, tmp / "two-control")])
    return results, controls


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("empty_row", [False, True], ids=["full-rows", "empty-row"])
@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_gradient_and_metrics_do_not_depend_on_the_split(runs, aggregation, empty_row):
    results, _ = runs
    reference = results[(aggregation, empty_row, 1, 1)]
    assert reference["grad"].norm() > 0
    for processes, accumulation in SPLITS:
        case = results[(aggregation, empty_row, processes, accumulation)]
        assert relative(case["grad"], reference["grad"]) <= TOLERANCE, (processes, accumulation)
        for key in (*OBJECTIVE_METRIC_KEYS, "loss/policy", "entropy"):
            expected = reference["logged"][key]
            assert case["logged"][key] == pytest.approx(expected, rel=1e-5, abs=1e-7), (key, processes, accumulation)
    logged = reference["logged"]
    # The batch has Â = 0 rows and tokens beyond the trust region: the checks above compare real numbers.
    assert logged["region/zero_adv"] > 0 and logged["region/ln"] + logged["region/hp"] > 0
    assert logged["tokens/active"] == (38 - 5 if empty_row else 38)


def test_maxima_are_true_maxima_over_micro_batches_and_processes(runs):
    results, _ = runs
    for key in MAX_KEYS:
        values = [results[("token-mean", True, p, a)]["logged"][key] for p, a in [(1, 1), *SPLITS]]
        # The same token's value whatever the split, up to float32 rounding: the log-probs come from forwards over
        # 8, 4 or 2 rows, and a CPU's BLAS may round rows differently by batch size. A maximum over one micro-batch
        # or one process only would miss the global one by far more.
        assert max(values) - min(values) <= 1e-6 * max(abs(v) for v in values), (key, values)


def test_negative_control_per_micro_batch_counts_break_invariance(runs):
    """Dropping the global counts (each micro-batch normalised by its own tokens or sequences) must fail the check
    above for every aggregation on the batch with an empty completion — so the check can fail."""
    _, controls = runs
    for aggregation in AGGREGATIONS:
        reference = controls[(aggregation, True, 1, 1)]["grad"]
        worst = max(relative(controls[(aggregation, True, p, a)]["grad"], reference) for p, a in [(1, 2), (2, 1)])
        assert worst > 100 * TOLERANCE, (aggregation, worst)
