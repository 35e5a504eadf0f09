"""The RL stage of ``dgpo train``: DGPOTrainer on the prepared model, with metrics, progress and checkpoints."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from rich.console import Console

from dgpo import distributed
from dgpo.data.prompts import format_problem
from dgpo.integrations.trl_checkpoints import checkpoint_step, last_checkpoint
from dgpo.ranges import NonFiniteError
from dgpo.train.run_config import RunConfig


def dgpo_config(cfg: RunConfig, out: Path):
    """TRL's arguments for the run (``save_steps`` on generation-cycle boundaries is checked by ``RLConfig``).

    Building them runs TRL's and transformers' own validation, so ``run_training`` builds them once before it
    touches the run directory: a batch that does not hold whole groups fails there, not after the warm start.
    """
    from dgpo.integrations.trl import DGPOConfig

    rl = cfg.rl
    cuda = torch.cuda.is_available()
    return DGPOConfig(
        output_dir=str(out / "checkpoints"),
        objective=rl.objective,
        objective_kwargs=dict(rl.objective_kwargs),
        advantage=rl.advantage,
        aggregation=rl.aggregation,
        learning_rate=rl.learning_rate,
        max_steps=rl.max_steps,
        per_device_train_batch_size=rl.per_device_train_batch_size,
        gradient_accumulation_steps=rl.gradient_accumulation_steps,
        num_generations=rl.num_generations,
        max_completion_length=rl.max_completion_length,
        temperature=rl.temperature,
        num_iterations=rl.num_iterations,
        beta=rl.beta,
        logging_steps=1,
        save_strategy="steps",
        save_steps=rl.save_steps,
        report_to=list(rl.report_to),
        disable_tqdm=True,
        seed=cfg.seed,
        data_seed=cfg.seed,
        use_cpu=not cuda,
        bf16=cuda,
        lr_scheduler_type="constant",
        warmup_steps=0,
        max_grad_norm=1.0,
    )


def train_rl(
    cfg: RunConfig,
    args,
    model_path: str,
    rows: list[dict],
    template: str,
    out: Path,
    console: Console,
    resume: bool,
    started: Callable[[], None] | None = None,
) -> tuple[Path, dict]:
    """Train and save ``out/final`` (every rank trains; rank 0 writes); returns its path and the replica check.

    ``args`` are :func:`dgpo_config`'s (built and checked by ``run_training`` before the run directory is touched).
    ``started`` is called once the trainer is built, just before training: up to there a failure is a failed
    start, which ``run_training`` undoes.
    """
    from datasets import Dataset
    from transformers import PrinterCallback

    from dgpo.integrations.trl import DGPOTrainer
    from dgpo.tiny import load_tokenizer
    from dgpo.train.callbacks import JsonlMetricsCallback, RichProgressCallback, TimeBudgetCallback

    reward = task_reward(cfg)
    trainer = DGPOTrainer(
        model=model_path,
        reward_funcs=[reward],
        args=args,
        train_dataset=Dataset.from_list(rl_prompts(rows, template)),
        processing_class=load_tokenizer(model_path),
        callbacks=[JsonlMetricsCallback(out / "metrics.jsonl"), RichProgressCallback(console)],
    )
    if cfg.rl.max_minutes is not None:
        trainer.add_callback(TimeBudgetCallback(cfg.rl.max_minutes))
    trainer.remove_callback(PrinterCallback)
    # Rank 0 picks the checkpoint: ranks that resumed from different steps would deadlock or train apart.
    checkpoint = distributed.on_main(last_checkpoint, out / "checkpoints") if resume else None
    if resume:
        console.print(f"resuming from {checkpoint}" if checkpoint else "no checkpoint yet: starting RL from the start")
    if started is not None:
        started()
    try:
        if checkpoint is not None and checkpoint_step(checkpoint) >= cfg.rl.max_steps:
            # transformers checks max_steps only after a step, so resuming from the last one would train one more.
            console.print(f"{checkpoint} is step {cfg.rl.max_steps} of {cfg.rl.max_steps}: nothing left to train")
            trainer._load_from_checkpoint(checkpoint)
        else:
            try:
                trainer.train(resume_from_checkpoint=checkpoint)
            except NonFiniteError as err:  # log-probs or rewards went NaN/Inf: the policy diverged
                raise ValueError(diverged(cfg, trainer.state.global_step, str(err))) from err
    finally:
        reward.close()
    replicas = check_replicas(trainer, console)
    final = out / "final"
    trainer.save_model(str(final))  # on every rank: a sharded model (ZeRO-3, FSDP) is gathered for rank 0 to write
    distributed.on_main(save_tokenizer_and_marker, trainer, model_path, final)
    return final, replicas


def diverged(cfg: RunConfig, step: int, problem: str) -> str:
    """The one-line error of a run whose log-probs or rewards went NaN/Inf: what happened, and the settings to
    look at (a step too large for the model is by far the usual cause)."""
    rl = cfg.rl
    return (
        f"training diverged after step {step}: {problem}; lower rl.learning_rate (now {rl.learning_rate:g}) or "
        f"rl.num_iterations (now {rl.num_iterations}), and resume from the last checkpoint or start anew"
    )


def save_tokenizer_and_marker(trainer, model_path: str, final: Path) -> None:
    """The tokenizer next to the final weights, and the embedded model's marker (its tokenizer loads differently)."""
    trainer.processing_class.save_pretrained(str(final))
    if (Path(model_path) / "dgpo_tiny.json").exists():
        (final / "dgpo_tiny.json").write_text("{}")


def check_replicas(trainer, console: Console) -> dict:
    """Check that every rank ends with the same parameters (the model saved is rank 0's), for ``results.json``.

    ``parameters_identical`` is ``None`` where the parameters are sharded (DeepSpeed ZeRO-3, FSDP): there each
    rank holds a different slice, and no replica exists to compare.
    """
    processes = distributed.world_size()
    if _sharded(trainer):
        return {"processes": processes, "parameters_identical": None}
    distributed.check_same_parameters(trainer.model)
    if processes > 1:
        console.print(f"final parameters identical on all {processes} processes (float64 checksums)")
    return {"processes": processes, "parameters_identical": True}


def _sharded(trainer) -> bool:
    """Whether each rank holds only a slice of the parameters."""
    if getattr(trainer, "is_fsdp_enabled", False):
        return True
    plugin = getattr(trainer.accelerator.state, "deepspeed_plugin", None) if trainer.is_deepspeed_enabled else None
    return plugin is not None and plugin.zero_stage == 3


def task_reward(cfg: RunConfig):
    """The run's TRL reward function: the countdown reward on the embedded countdown task, else the math reward."""
    if cfg.embedded and cfg.task.name == "countdown":
        from dgpo.rewards.countdown import CountdownReward

        return CountdownReward()
    from dgpo.rewards import MathReward

    return MathReward(workers=cfg.rl.reward_workers)


#: Dataset columns a reward reads besides the prompt (TRL passes every column to the reward functions by name).
REWARD_COLUMNS = ("answer", "numbers", "target")


def rl_prompts(rows: list[dict], template: str) -> list[dict]:
    """TRL conversational prompts; the reward's columns ride along (``answer``; ``numbers``/``target`` on
    countdown)."""
    return [
        {
            "prompt": [{"role": "user", "content": format_problem(r["problem"], template)}],
            **{column: r[column] for column in REWARD_COLUMNS if column in r},
        }
        for r in rows
    ]
