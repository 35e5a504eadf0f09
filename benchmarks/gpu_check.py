"""The GPU check: what a CPU cannot show, in one command that fits a few minutes of a lent GPU.

    python benchmarks/gpu_check.py --out gpu_check            # one CUDA GPU (sized for <= 8 min on an H200)
    python benchmarks/gpu_check.py --dry-run --out /tmp/gc    # every part on CPU at tiny shapes (CI runs this)

Writes ``OUT/gpu_check.json`` (after every part, so a run cut short keeps what it measured) and
``OUT/gpu_check.md`` (the tables for docs/benchmarks.md). Four parts, each recorded even when another fails:

1. **objectives** — every objective on the device in float32 and bfloat16 against the float64 reference formula
   (:data:`dgpo.losses.reference.REFERENCES`) on the same (rounded) inputs: the largest error of the per-token loss
   and of its gradient, relative to the largest reference value.
2. **syncs** — device-to-host synchronisations inside one objective forward + backward and its metrics, counted
   with ``torch.cuda.set_sync_debug_mode("warn")``; expected 1, the input checks' one (a ``bool`` that decides
   whether to name a bad field); the metrics add none (they stay tensors until a trainer logs).
3. **logprobs** — log π + entropy, forward and backward, at V = 151,936 and hidden 896, T = 4,096 and 16,384 tokens:
   full float32 logits, TRL's chunked kernel with its Triton tile folding (the default on CUDA), and the same kernel
   with torch folding in 512-token tiles (dgpo's CPU setting): seconds and peak memory above the inputs.
4. **trainer** — a DGPOTrainer step against a vanilla GRPOTrainer step in bf16 on a locally built Qwen2 model with
   the real vocabulary size (random weights, ~0.1B parameters, HF generation, a local word-level tokenizer): median
   seconds per step after the first, and peak memory. Nothing is downloaded.

On a machine where trl, math-verify and dgpo are not installed: install their wheels, then run with
``PYTHONPATH=src`` from the repository root (docs/benchmarks.md, "GPU check").
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import torch

#: Shapes of a real run and of the CPU dry run.
SHAPES = {
    "full": {"batch": 16, "tokens": 1024, "vocab": 151_936, "hidden": 896, "logprob_tokens": (4096, 16_384),
             "model": {"hidden_size": 512, "intermediate_size": 1536, "num_hidden_layers": 8,
                       "num_attention_heads": 8, "num_key_value_heads": 2},
             "trainer": {"batch": 16, "generations": 4, "completion": 256, "steps": 5}},
    "dry": {"batch": 2, "tokens": 16, "vocab": 1024, "hidden": 32, "logprob_tokens": (64,),
            "model": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                      "num_attention_heads": 2, "num_key_value_heads": 1},
            "trainer": {"batch": 4, "generations": 2, "completion": 8, "steps": 2}},
}  # fmt: skip
#: Largest error of the loss and its gradient relative to the reference's largest value, per dtype: float32 is
#: rounding only (~1e-7 per op); bfloat16 keeps 8 bits of mantissa (2^-8 ≈ 0.4% per rounding).
TOLERANCE = {"float32": 1e-5, "bfloat16": 5e-2}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def objective_inputs(batch: int, tokens: int, seed: int = 0):
    """float64 inputs whose ratios r = exp(logp − old) span every region of every objective (0.37 ≤ r ≤ 2.7),
    advantages of both signs, and padding at the end of each row."""
    g = torch.Generator().manual_seed(seed)
    old = -torch.rand(batch, tokens, generator=g, dtype=torch.float64) * 4
    logp = old + (torch.rand(batch, tokens, generator=g, dtype=torch.float64) * 2 - 1)
    adv = torch.randn(batch, generator=g, dtype=torch.float64)
    lengths = torch.randint(tokens // 2, tokens + 1, (batch,), generator=g)
    mask = (torch.arange(tokens)[None, :] < lengths[:, None]).to(torch.float64)
    return logp, old, adv, mask


def relative_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    scale = reference.abs().max().item() or 1.0
    return (value.double().cpu() - reference).abs().max().item() / scale


def check_objectives(device: torch.device, shape: dict) -> list[dict]:
    from dgpo.losses import LOSSES, get_loss
    from dgpo.losses.reference import REFERENCES

    logp64, old64, adv64, mask64 = objective_inputs(shape["batch"], shape["tokens"])
    rows = []
    for name in LOSSES:
        objective = get_loss(name)
        for dtype_name, dtype in DTYPES.items():
            # The reference sees the inputs as the device does (rounded to dtype), so only the arithmetic differs.
            inputs = [t.to(dtype) for t in (logp64, old64, adv64)]
            ref_logp = inputs[0].double().requires_grad_(True)
            reference = REFERENCES[name](ref_logp, inputs[1].double(), inputs[2].double(), mask64)
            (ref_grad,) = torch.autograd.grad(reference.sum(), ref_logp)
            logp = inputs[0].to(device).requires_grad_(True)
            loss, _ = objective(logp, inputs[1].to(device), inputs[2].to(device), mask64.to(device, dtype))
            (grad,) = torch.autograd.grad(loss.sum(), logp)
            value_error, grad_error = relative_error(loss, reference.detach()), relative_error(grad, ref_grad)
            rows.append({"objective": name, "dtype": dtype_name, "loss_error": value_error, "grad_error": grad_error,
                         "ok": max(value_error, grad_error) <= TOLERANCE[dtype_name]})  # fmt: skip
    return rows


def check_syncs(device: torch.device, shape: dict) -> list[dict]:
    from dgpo.losses import LOSSES, get_loss

    if device.type != "cuda":
        return [{"objective": name, "syncs": None} for name in LOSSES]  # sync debug mode is CUDA's
    logp64, old64, adv64, mask64 = objective_inputs(shape["batch"], shape["tokens"])
    logp0, old, adv, mask = (t.to(device, torch.float32) for t in (logp64, old64, adv64, mask64))
    rows = []
    for name in LOSSES:
        objective = get_loss(name)
        objective(logp0.clone().requires_grad_(True), old, adv, mask)  # warm-up: first calls may sync to allocate
        torch.cuda.synchronize()
        logp = logp0.clone().requires_grad_(True)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                loss, terms = objective(logp, old, adv, mask)
                loss.sum().backward()
                terms.metrics()
            finally:
                torch.cuda.set_sync_debug_mode("default")
        syncs = [str(w.message) for w in caught if "synchroniz" in str(w.message)]
        rows.append({"objective": name, "syncs": len(syncs), "first": syncs[0][:160] if syncs else None})
    return rows


def full_logits(hidden, weight, targets):
    """Full float32 logits → log_softmax → gather, and the entropy from the same log-probs."""
    log_probs = torch.log_softmax((hidden @ weight.T).float(), dim=-1)
    token_logp = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return token_logp, -(log_probs.exp() * log_probs).sum(-1)


@contextmanager
def torch_folding(tile: int):
    """TRL's chunked kernel with its torch tile folding and ``tile`` tokens per tile (Triton off)."""
    import trl.kernels.chunked_logprob as kernel

    from dgpo.integrations.trl_logprob_tiles import token_tile

    previous = kernel._TRITON_AVAILABLE
    kernel._TRITON_AVAILABLE = False
    try:
        with token_tile(tile):
            yield
    finally:
        kernel._TRITON_AVAILABLE = previous


def chunked(hidden, weight, targets):
    from trl.kernels import ChunkedLogProbFunction

    token_logp, entropy, *_ = ChunkedLogProbFunction.apply(
        hidden, weight, None, targets, 1.0, 32_768, None, 1.0, ("entropy",)
    )
    return token_logp, entropy


def measure(device: torch.device, fn: Callable[[], None]) -> dict:
    """Seconds of ``fn`` and, on CUDA, its peak memory above what was allocated before it."""
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    start = time.perf_counter()
    fn()
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_bytes": torch.cuda.max_memory_allocated() - base if cuda else None}


def check_logprobs(device: torch.device, shape: dict) -> list[dict]:
    import trl.kernels.chunked_logprob as kernel

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    paths = {"full_logits": (full_logits, None), "trl_chunked_triton": (chunked, "triton"),
             "token_tiles_512": (chunked, 512)}  # fmt: skip
    rows = []
    for tokens in shape["logprob_tokens"]:
        g = torch.Generator(device=device).manual_seed(0)
        hidden = torch.randn(tokens, shape["hidden"], device=device, dtype=dtype, generator=g)
        weight = 0.02 * torch.randn(shape["vocab"], shape["hidden"], device=device, dtype=dtype, generator=g)
        targets = torch.randint(0, shape["vocab"], (tokens,), device=device, generator=g)
        a, b = torch.randn(tokens, device=device, generator=g), torch.randn(tokens, device=device, generator=g)
        for path, (fn, tile) in paths.items():
            if tile == "triton" and not kernel._use_triton(device):
                rows.append({"tokens": tokens, "path": path, "skipped": f"no Triton on {device.type}"})
                continue
            h, w = hidden.clone().requires_grad_(True), weight.clone().requires_grad_(True)

            def step(fn=fn, h=h, w=w, targets=targets, a=a, b=b):
                token_logp, entropy = fn(h, w, targets)
                ((token_logp.float() * a).sum() + (entropy.float() * b).sum()).backward()

            context = torch_folding(tile) if isinstance(tile, int) else _nothing()
            with context:
                step()  # warm-up (Triton compiles, cuBLAS picks its kernels)
                h.grad = w.grad = None
                rows.append({"tokens": tokens, "path": path, **measure(device, step)})
            del h, w
    return rows


@contextmanager
def _nothing():
    yield


def word_level_tokenizer(vocab: int):
    """A local tokenizer with ``vocab`` entries ("<pad>", "<eos>", "t2" … ) split on spaces: decodes any id a
    randomly initialised model samples, with no download. Passed as an object: loaded from the model's folder,
    transformers would pick Qwen2's own tokenizer class for it (from config.json) and read it wrongly."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = {"<pad>": 0, "<eos>": 1, **{f"t{i}": i for i in range(2, vocab)}}
    core = Tokenizer(models.WordLevel(words, unk_token="<pad>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<eos>")
    tokenizer.chat_template = None
    return tokenizer


def build_model(folder: Path, shape: dict) -> int:
    """A random Qwen2 model with the shape's vocabulary saved to ``folder``; returns its parameter count."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=shape["vocab"], tie_word_embeddings=True, pad_token_id=0, eos_token_id=1,
                         bos_token_id=1, max_position_embeddings=2048, **shape["model"])  # fmt: skip
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def digit_reward(completions, **kwargs) -> list[float]:
    """A reward with spread inside every group (the share of sampled words that contain a 7)."""
    return [sum("7" in word for word in c.split()) / max(1, len(c.split())) for c in completions]


def time_trainer(kind: str, folder: Path, out: Path, device: torch.device, shape: dict) -> dict:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from dgpo.integrations.trl import DGPOConfig, DGPOTrainer

    t = shape["trainer"]
    cuda = device.type == "cuda"
    common = dict(output_dir=str(out / kind), per_device_train_batch_size=t["batch"], num_generations=t["generations"],
                  max_completion_length=t["completion"], generation_kwargs={"min_new_tokens": t["completion"]},
                  num_iterations=1, learning_rate=1e-6, max_steps=t["steps"], logging_steps=1, save_strategy="no",
                  report_to=[], use_cpu=not cuda, bf16=cuda, seed=0, disable_tqdm=True)  # fmt: skip
    if kind == "grpo_trainer":
        cls, args = GRPOTrainer, GRPOConfig(loss_type="dapo", **common)
    else:
        cls, args = DGPOTrainer, DGPOConfig(objective="dgpo", aggregation="token-mean", **common)
    prompts = [{"prompt": " ".join(f"t{(7 * i + j) % 500 + 2}" for j in range(32))} for i in range(64)]
    seconds: list[float] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.start = time.perf_counter()

        def on_step_end(self, *a, **k):
            if cuda:
                torch.cuda.synchronize()
            seconds.append(time.perf_counter() - self.start)

    trainer = cls(model=str(folder), reward_funcs=[digit_reward], args=args, train_dataset=Dataset.from_list(prompts),
                  processing_class=word_level_tokenizer(shape["vocab"]), callbacks=[Clock()])  # fmt: skip
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    return {"trainer": kind, "steps": len(seconds), "median_step_s": statistics.median(seconds[1:] or seconds),
            "first_step_s": seconds[0], "peak_bytes": torch.cuda.max_memory_allocated() if cuda else None}  # fmt: skip


def check_trainer(device: torch.device, shape: dict, work: Path) -> list[dict]:
    folder = work / "qwen2-random"
    parameters = build_model(folder, shape)
    rows = [time_trainer(kind, folder, work, device, shape) for kind in ("grpo_trainer", "dgpo_trainer")]
    for row in rows:
        row["parameters"] = parameters
        row["step_vs_grpo"] = row["median_step_s"] / rows[0]["median_step_s"]
    return rows


def markdown(results: dict) -> str:
    """The tables of docs/benchmarks.md's "GPU check" section."""
    lines = [f"GPU check on {results['device_name']} ({results['mode']}), torch {results['torch']}.", ""]
    if isinstance(results.get("objectives"), list):
        lines += ["| objective | dtype | loss error | grad error | ok |", "|---|---|---:|---:|---|"]
        lines += [f"| `{r['objective']}` | {r['dtype']} | {r['loss_error']:.1e} | {r['grad_error']:.1e} | "
                  f"{'yes' if r['ok'] else '**no**'} |" for r in results["objectives"]]  # fmt: skip
        lines.append("")
    if isinstance(results.get("syncs"), list):
        lines += ["| objective | host syncs in forward + backward |", "|---|---:|"]
        lines += [f"| `{r['objective']}` | {'n/a (CPU)' if r['syncs'] is None else r['syncs']} |"
                  for r in results["syncs"]]  # fmt: skip
        lines.append("")
    if isinstance(results.get("logprobs"), list):
        lines += ["| tokens | path | seconds | peak MiB |", "|---:|---|---:|---:|"]
        for r in results["logprobs"]:
            if "skipped" in r:
                lines.append(f"| {r['tokens']:,} | {r['path']} | {r['skipped']} | |")
            else:
                peak = "n/a" if r["peak_bytes"] is None else f"{r['peak_bytes'] / 2**20:,.0f}"
                lines.append(f"| {r['tokens']:,} | {r['path']} | {r['seconds']:.3f} | {peak} |")
        lines.append("")
    if isinstance(results.get("trainer"), list):
        lines += ["| trainer | parameters | median s/step | × GRPOTrainer | peak MiB |", "|---|---:|---:|---:|---:|"]
        for r in results["trainer"]:
            peak = "n/a" if r["peak_bytes"] is None else f"{r['peak_bytes'] / 2**20:,.0f}"
            lines.append(f"| {r['trainer']} | {r['parameters'] / 1e6:.1f}M | {r['median_step_s']:.3f} | "
                         f"{r['step_vs_grpo']:.2f} | {peak} |")  # fmt: skip
    for part in PARTS:
        if isinstance(results.get(part), dict) and "error" in results[part]:
            lines += ["", f"**{part} failed**: `{results[part]['error']}`"]
    return "\n".join(lines) + "\n"


PARTS = ("objectives", "syncs", "logprobs", "trainer")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for gpu_check.json and gpu_check.md")
    parser.add_argument("--dry-run", action="store_true", help="every part on CPU at tiny shapes (seconds)")
    parser.add_argument("--only", choices=PARTS, action="append", help="run only these parts (repeatable)")
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available() and not args.dry_run
    if not cuda and not args.dry_run:
        parser.error("no CUDA device: run on a GPU, or give --dry-run")
    device = torch.device("cuda" if cuda else "cpu")
    shape = SHAPES["dry" if args.dry_run else "full"]
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict = {"mode": "dry run" if args.dry_run else "full", "torch": torch.__version__,
                     "device_name": torch.cuda.get_device_name() if cuda else "cpu", "seconds": {}}  # fmt: skip
    with tempfile.TemporaryDirectory() as work:
        checks = {"objectives": lambda: check_objectives(device, shape), "syncs": lambda: check_syncs(device, shape),
                  "logprobs": lambda: check_logprobs(device, shape),
                  "trainer": lambda: check_trainer(device, shape, Path(work))}  # fmt: skip
        for part in args.only or PARTS:
            start = time.perf_counter()
            print(f"gpu_check: {part} ...", flush=True)
            try:
                results[part] = checks[part]()
            except Exception as err:  # one failing part must not cost the others their (scarce) device time
                traceback.print_exc()
                results[part] = {"error": f"{type(err).__name__}: {err}"[:500]}
            results["seconds"][part] = time.perf_counter() - start
            (args.out / "gpu_check.json").write_text(json.dumps(results, indent=2))
            (args.out / "gpu_check.md").write_text(markdown(results))
    print(markdown(results))
    return results


if __name__ == "__main__":
    outcome = main()
    sys.exit(1 if any(isinstance(outcome.get(p), dict) for p in PARTS) else 0)
