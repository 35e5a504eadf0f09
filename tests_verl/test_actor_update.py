"""verl 0.9.1's own actor update on CPU equals one SGD step on the by-hand gradient of the whole batch.

actor_update_script.py runs ``ActorRolloutRefWorker(role="actor").update_actor`` (FSDP2, gloo) in 1 process and in 2
(torchrun), over micro-batch sizes 1/2/4, the whole mini-batch and dynamic batch size, token-mean and
seq-mean-token-mean. The reference here is the dgpo objective on the full batch's log-probs aggregated by verl's
``agg_loss`` with the *global* batch counts, in one process: splitting the batch into micro-batches and ranks must
not change the gradient (≤ 2e-6 norm-relative). The negative control runs the plugin with the global batch info
dropped (each micro-batch normalised by its own counts): it must miss the same reference by far more.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from verl.trainer.ppo import core_algos

from dgpo.losses import get_loss

SCRIPT = Path(__file__).with_name("actor_update_script.py")
#: Norm-relative error of the gradient and the SGD update against the float64 reference. float32 rounding in verl's
#: forward and backward gave 4e-7 and 6e-7 on the development machine; other CPUs take other GEMM kernels (AVX2 vs
#: AVX-512) with other rounding, so the bound sits 15–25× above that, and still 10⁵× below the negative control's
#: misses (order 1), which must exceed 1000 × TOLERANCE.
TOLERANCE = 1e-5
LAUNCH_TIMEOUT_S = 240
BATCH, N, PROMPT, RESPONSE, VOCAB = 16, 4, 6, 10, 128
LR = 1.0
#: verl → dgpo parameters of the script's actor config (clip_ratio_low/high 0.2/0.28, clip_ratio_c 3, n = m = 2).
EPS = {"eps_low": 0.2, "eps_high": 0.28}
OBJECTIVES = {
    "dgpo": ("dgpo", {"n": 2, "m": 2, **EPS}),
    "dgpo_grpo": ("grpo", {**EPS, "dual_clip_c": 3.0}),
    "dgpo_pg": ("pg", {}),
    "dgpo_dapo": ("dapo", {**EPS, "dual_clip_c": 3.0}),
    "dgpo_cispo": ("cispo", EPS),
    "dgpo_gppo": ("gppo", {**EPS, "dual_clip_c": 3.0}),
    "dgpo_ce_gppo": ("ce_gppo", {**EPS, "dual_clip_c": 3.0}),
    "dgpo_aspo": ("aspo", {**EPS, "dual_clip_c": 3.0}),
    "dgpo_gspo": ("gspo", EPS),
    "dgpo_sapo": ("sapo", {"tau_pos": 1.0, "tau_neg": 1.05}),
}
#: Objectives that get one split each here (dgpo and dgpo_grpo get every split): every plugin loss completes a
#: step of verl's own actor update in the suite (dgpo and dgpo_cispo also run verl's whole trainer, test_cpu_e2e).
ONE_SPLIT = [mode for mode in OBJECTIVES if mode not in ("dgpo", "dgpo_grpo")]
TOKEN, SEQ = "token-mean", "seq-mean-token-mean"


def runs_for(world: int) -> list[dict]:
    """Every split of the one mini-batch: micro-batches per rank (``micro``) or a token budget (``max_tokens``)."""
    whole = BATCH // world
    runs = [
        {"loss_mode": "dgpo", "agg": TOKEN, "micro": whole},
        {"loss_mode": "dgpo", "agg": TOKEN, "micro": 1},
        {"loss_mode": "dgpo", "agg": TOKEN, "micro": 2},
        {"loss_mode": "dgpo", "agg": TOKEN, "micro": 4},
        {"loss_mode": "dgpo", "agg": TOKEN, "max_tokens": 40},
        {"loss_mode": "dgpo", "agg": SEQ, "micro": whole},
        {"loss_mode": "dgpo", "agg": SEQ, "micro": 2},
        {"loss_mode": "dgpo", "agg": SEQ, "max_tokens": 40},
        {"loss_mode": "dgpo_grpo", "agg": TOKEN, "micro": whole},
        {"loss_mode": "dgpo_grpo", "agg": TOKEN, "micro": 4},
        *({"loss_mode": mode, "agg": TOKEN, "micro": 4} for mode in ONE_SPLIT),
        {"loss_mode": "dgpo", "agg": TOKEN, "micro": 4, "control": True},
        {"loss_mode": "dgpo", "agg": SEQ, "micro": 4, "control": True},
    ]
    for run in runs:
        split = f"micro{run['micro']}" if "micro" in run else f"tokens{run['max_tokens']}"
        run["name"] = f"{run['loss_mode']}-{run['agg']}-{split}" + ("-control" if run.get("control") else "")
    return runs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build_model(path: Path) -> None:
    """A tiny random Qwen2 in fp32 with eager attention (no tokenizer: the script passes load_tokenizer=false)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=False,
    )  # fmt: skip
    Qwen2ForCausalLM(config).save_pretrained(path)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[int, dict]:
    """Both launches (1 process, and 2 under torchrun) run concurrently; each in its own process group."""
    tmp = tmp_path_factory.mktemp("actor_update")
    build_model(tmp / "model")
    env = {**os.environ, "DGPO_TORCH_THREADS": "1", "OMP_NUM_THREADS": "1", "VERL_ENGINE_DEVICE": "cuda"}
    env["PYTHONPATH"] = os.pathsep.join([str(SCRIPT.parents[1] / "src"), env.get("PYTHONPATH", "")])
    procs = {}
    try:
        for world in (1, 2):
            spec = {
                "model": str(tmp / "model"), "out": str(tmp), "seed": 0, "rollout_n": N, "batch_size": BATCH,
                "prompt_len": PROMPT, "response_len": RESPONSE, "vocab": VOCAB, "temperature": 1.0,
                "masked_rows": [5], "zero_adv_rows": [8, 9, 10, 11], "old_shift": 0.3, "lr": LR,
                "runs": runs_for(world),
            }  # fmt: skip
            spec_path = tmp / f"spec{world}.json"
            spec_path.write_text(json.dumps(spec))
            port = free_port()
            if world == 1:
                command = [sys.executable, str(SCRIPT), str(spec_path)]
                launch_env = {**env, "RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_PORT": str(port)}
            else:
                command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           "--master_addr=127.0.0.1", f"--master_port={port}", str(SCRIPT), str(spec_path)]  # fmt: skip
                launch_env = env
            log = open(tmp / f"log{world}.txt", "w")  # noqa: SIM115  (closed with the process below)
            procs[world] = (subprocess.Popen(command, env=launch_env, stdout=log, stderr=subprocess.STDOUT,
                                             start_new_session=True), log)  # fmt: skip
        deadline = time.monotonic() + LAUNCH_TIMEOUT_S
        for proc, _ in procs.values():
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for proc, log in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            log.close()
    for world, (proc, _) in procs.items():
        tail = (tmp / f"log{world}.txt").read_text()[-4000:]
        assert proc.returncode == 0, f"world {world} failed:\n{tail}"
    out = {world: torch.load(tmp / f"results_world{world}.pt") for world in (1, 2)}
    out["model"] = tmp / "model"
    return out


@pytest.fixture(scope="module")
def model(results):
    from transformers import Qwen2ForCausalLM

    return Qwen2ForCausalLM.from_pretrained(results["model"], dtype=torch.float64, attn_implementation="eager")


def response_log_probs(model, batch) -> torch.Tensor:
    """Log-probs of the response tokens, each sequence forwarded alone without padding (0 past its end)."""
    rows = []
    for ids, attention in zip(batch["input_ids"], batch["attention_mask"], strict=True):
        sequence = ids[attention.bool()][None]
        prompt_len = int(attention[:PROMPT].sum())
        logits = model(input_ids=sequence).logits[0, prompt_len - 1 : -1]
        logp = torch.log_softmax(logits, dim=-1).gather(-1, sequence[0, prompt_len:, None]).squeeze(-1)
        rows.append(torch.cat([logp, logp.new_zeros(RESPONSE - len(logp))]))
    return torch.stack(rows)


def reference(model, batch, loss_mode: str, agg: str) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The gradient (float64) of the objective on the whole batch, aggregated with the global batch counts."""
    name, params = OBJECTIVES[loss_mode]
    model.zero_grad()
    mask = batch["response_mask"].double()
    per_token, _ = get_loss(name, **params)(
        response_log_probs(model, batch), batch["old_log_probs"].double(), batch["advantages"].double(), mask
    )
    loss = core_algos.agg_loss(
        loss_mat=per_token, loss_mask=mask, loss_agg_mode=agg, dp_size=1,
        batch_num_tokens=int(mask.sum()), global_batch_size=BATCH,
    )  # fmt: skip
    loss.backward()
    return {k: p.grad.detach().clone() for k, p in model.named_parameters()}, loss.detach()


def relative_error(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> float:
    got_flat = torch.cat([got[k].double().flatten() for k in want])
    want_flat = torch.cat([want[k].flatten() for k in want])
    return float((got_flat - want_flat).norm() / want_flat.norm())


@pytest.fixture(scope="module")
def errors(results, model) -> dict[tuple[int, str], tuple[float, float]]:
    """(world, run) → norm-relative error of verl's gradient and of its SGD update against the reference."""
    out, cache = {}, {}
    for world in (1, 2):
        batch = results[world]["batch"]
        for run in runs_for(world):
            key = (world, run["loss_mode"], run["agg"])
            if key not in cache:
                cache[key] = reference(model, batch, run["loss_mode"], run["agg"])
            want, _ = cache[key]
            got = results[world]["runs"][run["name"]]
            out[world, run["name"]] = (
                relative_error(got["grad"], want),
                relative_error({k: -v / LR for k, v in got["delta"].items()}, want),
            )
    for (world, name), (grad_error, update_error) in out.items():  # shown with pytest -s
        print(f"world {world} {name:45s} gradient {grad_error:.2e} update {update_error:.2e}")
    return out


def test_the_batch_has_what_the_comparison_needs(results):
    batch = results[1]["batch"]
    mask = batch["response_mask"]
    assert (mask.sum(-1) == 0).sum() == 1  # a fully masked response row
    assert len(set(mask.sum(-1).tolist())) > 3  # responses of several lengths
    assert ((batch["advantages"] == 0) & mask.bool()).any(-1).sum() == 4  # a group with Â exactly 0
    for world in (1, 2):
        assert results[world]["world"] == world


def test_old_log_probs_come_from_the_worker(results, model):
    """verl's compute_log_prob (FSDP2, fp32, its own micro-batches) matches the float64 reference forward."""
    for world in (1, 2):
        batch = results[world]["batch"]
        mask = batch["response_mask"].bool()
        with torch.no_grad():
            want = response_log_probs(model, batch)
        got = results[world]["worker_log_probs"].double()
        assert (got - want)[mask].abs().max() < 2e-5


@pytest.mark.parametrize("world", [1, 2])
def test_every_split_gives_the_global_batch_gradient_and_update(errors, world):
    checked = [run for run in runs_for(world) if not run.get("control")]
    report = {run["name"]: errors[world, run["name"]] for run in checked}
    for name, (grad_error, update_error) in report.items():
        assert grad_error <= TOLERANCE, (name, report)
        assert update_error <= TOLERANCE, (name, report)


@pytest.mark.parametrize("world", [1, 2])
def test_negative_control_without_global_batch_info_misses(errors, world):
    """Same comparison, plugin aggregating per micro-batch: far outside the tolerance (so the test can fail)."""
    for run in runs_for(world):
        if run.get("control"):
            grad_error, update_error = errors[world, run["name"]]
            assert grad_error > 1000 * TOLERANCE and update_error > 1000 * TOLERANCE, (run["name"], grad_error)


def test_metrics_at_micro_equal_mini_are_the_global_ones(results, model):
    """With one micro-batch per mini-batch (1 process) verl's logged loss metrics are the whole batch's."""
    batch = results[1]["batch"]
    mask = batch["response_mask"].bool()
    with torch.no_grad():
        logp = response_log_probs(model, batch)
    config = core_algos_config()
    for loss_mode in ("dgpo", "dgpo_grpo"):
        metrics = results[1]["runs"][f"{loss_mode}-{TOKEN}-micro{BATCH}"]["metrics"]
        _, loss = reference(model, batch, loss_mode, TOKEN)
        assert metrics["actor/pg_loss"] == [pytest.approx(float(loss), rel=1e-5)]
        # verl's own vanilla loss on the same batch defines pg_clipfrac (Â = 0 tokens are never clipped)
        _, vanilla = core_algos.get_policy_loss_fn("vanilla")(
            batch["old_log_probs"].double(), logp, batch["advantages"].double(), mask, config=config
        )
        for key in ("actor/pg_clipfrac", "actor/pg_clipfrac_lower", "actor/ppo_kl"):
            assert metrics[key] == [pytest.approx(vanilla[key], abs=1e-6)], key
        assert metrics["actor/dgpo/tokens/active"] == [float(mask.sum())]


def test_verl_logs_per_micro_batch_means(results):
    """verl averages each loss metric over micro-batches (unweighted): a count becomes total / #micro-batches."""
    batch = results[1]["batch"]
    total = float(batch["response_mask"].sum())
    metrics = results[1]["runs"][f"dgpo-{TOKEN}-micro4"]["metrics"]
    assert metrics["actor/dgpo/tokens/active"] == [pytest.approx(total / (BATCH // 4))]
    # the dynamic batch size really split the mini-batch (into at least 4 micro-batches of 40 tokens or fewer)
    dynamic = results[1]["runs"][f"dgpo-{TOKEN}-tokens40"]["metrics"]["actor/dgpo/tokens/active"][0]
    assert dynamic <= total / 4


def core_algos_config():
    from verl.workers.config import FSDPActorConfig

    return FSDPActorConfig(
        strategy="fsdp2", ppo_micro_batch_size_per_gpu=1, ppo_mini_batch_size=BATCH // N, rollout_n=N,
        clip_ratio_low=0.2, clip_ratio_high=0.28, clip_ratio_c=3.0,
    )  # fmt: skip
