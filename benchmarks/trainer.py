"""Trainer overhead: DGPOTrainer's optimiser-step time against TRL's vanilla GRPOTrainer, same config and model.

Both trainers run the same steps with learning rate 0: the parameters never move, so with the same seed both
generate exactly the same completions and the comparison measures only what differs — the loss path. Each step
is split into generation (``_generate``), the rest of the rollout (rewards, old log-probs: the remainder of
``_generate_and_score_completions``), the loss forward (``_compute_loss``, model forward included), backward
(``accelerator.backward``) and everything else (optimiser, logging, callbacks). Each round runs the three
trainers back to back and ratios are taken per round, so drift on the machine hits all of them alike; the loss
path alone is also timed on a fixed batch (:func:`time_loss_path`), free of generation's noise.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback

#: name -> (hidden size, layers): dgpo's tiny test model and a ~25M-parameter one.
MODELS = {"tiny": (128, 2), "25M": (512, 6)}
PARTS = ("generation", "rollout_rest", "loss_forward", "backward", "other")


def length_reward(completions, **kwargs):
    # Identical for both trainers and nearly free, so scoring does not blur the comparison; varied per completion
    # so the advantages are non-zero and the loss has a gradient.
    return [float(len(c) % 3) for c in completions]


class StepClock(TrainerCallback):
    """Wall-clock time of the steps after the first generation cycle, and the part totals over those steps.

    The first cycle (``warmup`` steps) pays one-off costs (allocator, caches). After it, steps alternate between
    one that generates and num_iterations − 1 that reuse the batch, so whole cycles are measured.
    """

    def __init__(self, totals: dict[str, float], warmup: int) -> None:
        self.totals, self.warmup = totals, warmup
        self.start_totals: dict[str, float] = {}
        self.steps, self.seconds, self._start = 0, 0.0, 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == self.warmup:
            self.start_totals = dict(self.totals)
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step > self.warmup:  # global_step already counts the step that just ended
            self.steps += 1
            self.seconds += time.perf_counter() - self._start


def _timed(totals: dict[str, float], key: str, fn):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[key] += time.perf_counter() - start

    return wrapper


def build_trainer(kind: str, model_dir: Path, out_dir: Path, steps: int, completion_tokens: int):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from dgpo.integrations.trl import DGPOConfig, DGPOTrainer
    from dgpo.tiny import load_tokenizer

    common = dict(
        output_dir=str(out_dir / kind),
        per_device_train_batch_size=8,
        num_generations=4,
        max_completion_length=completion_tokens,
        # Every completion runs to the length limit: equal work per step for both trainers.
        generation_kwargs={"min_new_tokens": completion_tokens},
        num_iterations=2,
        learning_rate=0.0,
        max_steps=steps,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        bf16=False,  # as `dgpo train` on CPU (TRL's default turns on bf16 autocast, slow on CPU)
        seed=0,
        disable_tqdm=True,
    )
    if kind == "trl_grpo":
        cls, args = GRPOTrainer, GRPOConfig(loss_type="dapo", **common)
    else:
        cls, args = DGPOTrainer, DGPOConfig(objective=kind.removeprefix("dgpo_"), aggregation="token-mean", **common)
    prompts = [{"prompt": f"Compute {i} + {2 * i + 1}."} for i in range(64)]
    return cls(
        model=str(model_dir),
        reward_funcs=[length_reward],
        args=args,
        train_dataset=Dataset.from_list(prompts),
        processing_class=load_tokenizer(model_dir),
    )


def time_run(kind: str, model_dir: Path, out_dir: Path, steps: int, completion_tokens: int) -> dict:
    """Seconds per step of each part, over the steps after the first generation cycle (num_iterations = 2)."""
    trainer = build_trainer(kind, model_dir, out_dir, steps, completion_tokens)
    totals = dict.fromkeys(["generation", "rollout", "loss_forward", "backward"], 0.0)
    trainer._generate = _timed(totals, "generation", trainer._generate)
    trainer._generate_and_score_completions = _timed(totals, "rollout", trainer._generate_and_score_completions)
    trainer._compute_loss = _timed(totals, "loss_forward", trainer._compute_loss)
    trainer.accelerator.backward = _timed(totals, "backward", trainer.accelerator.backward)
    clock = StepClock(totals, warmup=2)
    trainer.add_callback(clock)
    trainer.remove_callback(PrinterCallback)  # no per-step log dicts on the console
    trainer.train()
    per_step = {key: (totals[key] - clock.start_totals[key]) / clock.steps for key in totals}
    per_step["rollout_rest"] = per_step.pop("rollout") - per_step["generation"]
    per_step["other"] = clock.seconds / clock.steps - sum(per_step.values())
    return {part: per_step[part] for part in PARTS}


def run(models: list[str], steps: int = 12, rounds: int = 5, completion_tokens: int = 64) -> dict:
    """Step time of each trainer per model size, split into parts, over ``rounds`` alternating runs of ``steps``
    steps (even: whole generation cycles of num_iterations = 2)."""
    from dgpo.tiny import build_tiny_model

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in models:
            hidden, layers = MODELS[size]
            model_dir = build_tiny_model(Path(tmp) / size, hidden_size=hidden, layers=layers)
            kinds = ("trl_grpo", "dgpo_grpo", "dgpo_dgpo")
            runs = {kind: [] for kind in kinds}
            for _ in range(rounds):
                for kind in kinds:
                    runs[kind].append(time_run(kind, model_dir, Path(tmp) / "runs", steps, completion_tokens))
            # Per part, the median over rounds; the step time is their sum (robust to one slow round of one part).
            # The ratio is the median of per-round ratios: each round runs the trainers back to back, so slow
            # drift of the machine cancels (generation, identical code in all three, varies by ±5% across rounds).
            parts = {kind: {p: statistics.median(r[p] for r in rs) for p in PARTS} for kind, rs in runs.items()}
            results[size] = {}
            for kind, seconds in parts.items():
                paired = [sum(r.values()) / sum(b.values()) for r, b in zip(runs[kind], runs["trl_grpo"], strict=True)]
                without_generation = [
                    (sum(r.values()) - r["generation"]) / (sum(b.values()) - b["generation"])
                    for r, b in zip(runs[kind], runs["trl_grpo"], strict=True)
                ]
                results[size][kind] = {
                    "step_seconds": sum(seconds.values()),
                    "vs_trl_grpo": statistics.median(paired),
                    "vs_trl_grpo_rounds": paired,
                    "vs_trl_grpo_without_generation": statistics.median(without_generation),
                    "seconds_per_step": seconds,
                    "shares": {p: seconds[p] / sum(seconds.values()) for p in PARTS},
                }
            results[size]["loss_path"] = time_loss_path(model_dir, Path(tmp) / "loss_path")
            results[size]["parameters"] = _count_parameters(model_dir)
    return results


def _count_parameters(model_dir: Path) -> int:
    from transformers import AutoModelForCausalLM

    return sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(model_dir).parameters())


def loss_path_inputs(trainer, batch: int, prompt_tokens: int, completion_tokens: int, seed: int = 0) -> dict:
    """A fixed training batch in the format ``_compute_loss`` takes: random token ids, old log-probs 0.3 nats away
    from the current ones (so ratios leave 1), random advantages."""
    import torch

    g = torch.Generator().manual_seed(seed)
    vocab = trainer.model.config.vocab_size
    prompt_ids = torch.randint(3, vocab, (batch, prompt_tokens), generator=g)
    completion_ids = torch.randint(3, vocab, (batch, completion_tokens), generator=g)
    ones = torch.ones(batch, completion_tokens, dtype=torch.long)
    with torch.no_grad():
        logps, _, _ = trainer._get_per_token_logps_and_entropies(
            trainer.model,
            torch.cat([prompt_ids, completion_ids], 1),
            torch.cat([torch.ones(batch, prompt_tokens, dtype=torch.long), ones], 1),
            completion_tokens,
        )
    return {
        "prompt_ids": prompt_ids,
        "prompt_mask": torch.ones(batch, prompt_tokens, dtype=torch.long),
        "completion_ids": completion_ids,
        "completion_mask": ones,
        "advantages": torch.randn(batch, generator=g),
        "old_per_token_logps": logps + 0.3 * torch.randn(logps.shape, generator=g),
        "num_items_in_batch": ones.sum(),
        "num_seqs_in_batch": torch.tensor(batch),
    }


def time_loss_path(model_dir: Path, out_dir: Path, rounds: int = 20, completion_tokens: int = 64) -> dict:
    """Median seconds of ``_compute_loss`` + backward on one fixed batch (32 × (32 + 64) tokens), each trainer in
    the way its training step runs it, rounds alternating between the trainers: the part of a step whose code
    differs, measured without generation's noise."""
    from contextlib import nullcontext

    from dgpo.integrations.trl_logprob_tiles import token_tile

    trainers = {
        kind: build_trainer(kind, model_dir, out_dir, steps=1, completion_tokens=completion_tokens)
        for kind in ("trl_grpo", "dgpo_grpo", "dgpo_dgpo")
    }
    for trainer in trainers.values():
        trainer.current_gradient_accumulation_steps = 1  # set by train() otherwise
    inputs = loss_path_inputs(trainers["trl_grpo"], 32, 32, completion_tokens)
    times: dict[str, list[float]] = {kind: [] for kind in trainers}
    for i in range(rounds + 2):
        for kind, trainer in trainers.items():
            trainer.model.train()
            trainer.model.zero_grad(set_to_none=True)
            tile = getattr(trainer, "_token_tile", None)
            start = time.perf_counter()
            with token_tile(tile) if tile else nullcontext():
                trainer._compute_loss(trainer.model, inputs).backward()
            if i >= 2:
                times[kind].append(time.perf_counter() - start)
    base = statistics.median(times["trl_grpo"])
    return {
        kind: {"seconds": statistics.median(t), "vs_trl_grpo": statistics.median(t) / base} for kind, t in times.items()
    }
