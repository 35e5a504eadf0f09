"""Run verl's own trainer (``python -m verl.trainer.main_ppo``) on a CPU with a dgpo loss: the tested recipe.

    python -m dgpo.integrations.verl_cpu.launch OUT_DIR [hydra overrides...]

(``examples/verl/cpu_e2e.sh`` calls this with the checkout's ``.venv-verl``.) Loads the CPU shim
(:mod:`dgpo.integrations.verl_cpu`; every Ray worker loads it through ``VERL_USE_EXTERNAL_MODULES``), checks the
overrides by composing verl's ``ppo_trainer.yaml`` with them and running verl's ``validate_config`` (a mistake is one
``error:`` line, before anything is written or started), builds the tiny model and the a + b task in
``OUT_DIR/task`` when missing, then runs ``main_ppo`` with :data:`CPU_RECIPE` followed by the user's overrides,
which win over the recipe's. verl's file logger writes one JSON object per training step to
``OUT_DIR/metrics.jsonl`` (``{"step": N, "data": {...verl's keys...}}``); checkpoints go to
``OUT_DIR/checkpoints`` and ``trainer.resume_mode=auto`` continues from the latest one. The number of logical GPUs
Ray is given follows ``trainer.n_gpus_per_node``: each is one FSDP2 rank and one rollout replica.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import warnings
from pathlib import Path

from dgpo.integrations.verl_cpu import task as addition

#: The CPU settings: what differs from verl's defaults to run its trainer on 2 cores; ``<task>``, ``<out>``,
#: ``<reward>``, ``<cpus>`` and ``<gpus>`` are filled in by :func:`recipe`. The command line overrides any of them.
CPU_RECIPE = [
    "algorithm.adv_estimator=grpo",
    "data.train_files=<task>/train.parquet",
    "data.val_files=<task>/val.parquet",
    "data.train_batch_size=8",
    "data.max_prompt_length=32",
    "data.max_response_length=8",
    "data.dataloader_num_workers=0",
    "actor_rollout_ref.model.path=<task>/model",
    "+actor_rollout_ref.model.override_config.attn_implementation=eager",  # no flash-attention on CPU
    "actor_rollout_ref.model.use_remove_padding=false",
    "actor_rollout_ref.model.enable_gradient_checkpointing=false",
    "actor_rollout_ref.actor.strategy=fsdp2",  # FSDP1 syncs module states through the GPU
    "actor_rollout_ref.actor.use_torch_compile=false",
    "+actor_rollout_ref.actor.fsdp_config.mixed_precision={param_dtype:fp32,reduce_dtype:fp32,buffer_dtype:fp32}",
    "actor_rollout_ref.actor.ppo_mini_batch_size=4",  # two updates per step: the second is off-policy
    "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4",
    "actor_rollout_ref.actor.optim.lr=1e-3",  # 2e-3 collapsed after 40 steps in one of two runs (docs/verl.md)
    "actor_rollout_ref.actor.use_kl_loss=false",
    "actor_rollout_ref.actor.entropy_coeff=0",
    "actor_rollout_ref.actor.policy_loss.loss_mode=dgpo",
    "actor_rollout_ref.rollout.name=hf_cpu",
    "actor_rollout_ref.rollout.n=4",
    "actor_rollout_ref.rollout.tensor_model_parallel_size=1",
    "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=16",
    "actor_rollout_ref.rollout.checkpoint_engine.backend=naive",
    "actor_rollout_ref.rollout.agent.num_workers=1",
    "reward.num_workers=1",
    "reward.custom_reward_function.path=<reward>",
    "reward.custom_reward_function.name=compute_score",
    "trainer.use_v1=false",  # RayPPOTrainer; the v1 trainer (true) needs TransferQueue (verl's verl-core extra)
    "transfer_queue.backend.SimpleStorage.num_data_storage_units=1",  # v1 only: one storage actor, not 8
    "trainer.device=cpu",
    "trainer.nnodes=1",
    "trainer.n_gpus_per_node=1",
    "trainer.total_training_steps=4",
    "trainer.total_epochs=1000",
    "trainer.val_before_train=false",
    "trainer.test_freq=-1",
    "trainer.save_freq=-1",
    "trainer.logger=[console,file]",
    "trainer.project_name=dgpo",
    "trainer.experiment_name=cpu_e2e",
    "trainer.default_local_dir=<out>/checkpoints",
    "ray_kwargs.ray_init.num_cpus=<cpus>",
    "+ray_kwargs.ray_init.num_gpus=<gpus>",
    "+ray_kwargs.ray_init.include_dashboard=false",  # seconds of start-up on 2 cores, nothing to look at here
]


class UserError(Exception):
    """A mistake in the command line: printed as one ``error:`` line."""


def override_key(override: str) -> str:
    """The config key an override sets: ``+a.b=1`` → ``a.b``."""
    return override.split("=", 1)[0].lstrip("+~")


def merge(recipe: list[str], user: list[str]) -> list[str]:
    """The recipe without the keys the user sets, then the user's overrides unchanged (Hydra takes each key once)."""
    for override in user:
        if "=" not in override and not override.startswith("~"):
            raise UserError(f"override {override!r} is not KEY=VALUE (Hydra syntax)")
    taken = {override_key(o) for o in user}
    return [o for o in recipe if override_key(o) not in taken] + list(user)


def compose(overrides: list[str]):
    """verl's ppo_trainer.yaml with ``overrides``, as main_ppo composes it; a bad override raises UserError."""
    import verl
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import omega_conf_to_dataclass, validate_config

    config_dir = os.path.join(os.path.dirname(verl.__file__), "trainer", "config")
    try:
        with initialize_config_dir(config_dir=config_dir, version_base=None):
            config = hydra_compose("ppo_trainer", overrides=overrides)
        # the typed sections as verl's workers build them: a value of the wrong type fails here, not in a Ray worker
        omega_conf_to_dataclass(config.actor_rollout_ref.actor)
        omega_conf_to_dataclass(config.actor_rollout_ref.rollout)
        gpus = int(config.trainer.n_gpus_per_node) * int(config.trainer.nnodes)
        if gpus < 1:
            raise UserError(f"trainer.n_gpus_per_node × trainer.nnodes must be ≥ 1, got {gpus}")
        with warnings.catch_warnings():  # main_ppo repeats its notes ("Disabled critic …") when it runs
            warnings.simplefilter("ignore")
            validate_config(config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
        return config
    except UserError:
        raise
    except Exception as error:  # Hydra's, OmegaConf's and verl's checks: unknown keys, parse errors, batch sizes
        message = " ".join(str(error).split())
        raise UserError(f"verl rejects the overrides: {message}") from None


def recipe(task_dir: Path, out_dir: Path, gpus: int) -> list[str]:
    """:data:`CPU_RECIPE` for this task and run folder, with ``gpus`` logical GPUs (FSDP ranks) for Ray."""
    # verl's placement bundles ask several CPUs each: declare more logical CPUs than cores (Ray only counts them)
    values = {"<task>": task_dir, "<out>": out_dir, "<reward>": addition.__file__}
    values.update({"<cpus>": 8 * gpus + 8, "<gpus>": gpus})
    filled = []
    for override in CPU_RECIPE:
        for name, value in values.items():
            override = override.replace(name, str(value))
        filled.append(override)
    return filled


#: What every process of the run needs: verl loads the shim through its own hook in the driver and in every Ray
#: worker (workers inherit the driver's environment at ``ray.init``).
SHIM_ENVIRONMENT = {
    "VERL_USE_EXTERNAL_MODULES": "dgpo.integrations.verl_cpu",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}


def checked_overrides(out_dir: Path, user_overrides: list[str]) -> list[str]:
    """The ``main_ppo`` overrides (recipe, then the user's), checked by composing them; the task is built last."""
    task_dir = out_dir / "task"
    config = compose(merge(recipe(task_dir, out_dir, 1), user_overrides))
    gpus = int(config.trainer.n_gpus_per_node) * int(config.trainer.nnodes)
    overrides = merge(recipe(task_dir, out_dir, gpus), user_overrides)
    if any(str(task_dir) in override for override in overrides):  # not when the user brings model and data
        addition.prepare(task_dir)  # only once the overrides are known to be good: a mistake leaves nothing behind
    return overrides


def run(out_dir: Path, user_overrides: list[str]) -> int:
    """``python -m verl.trainer.main_ppo OVERRIDES`` in this process (``runpy``, as ``-m`` does), from ``out_dir``.

    In-process rather than a second interpreter: verl is already imported for the checks, and each import of it
    costs about 8 s of CPU on 2 cores. SIGTERM ends the run as Ctrl-C does, so Ray shuts its processes down.
    """
    out_dir = out_dir.resolve()
    overrides = checked_overrides(out_dir, user_overrides)
    out_dir.mkdir(parents=True, exist_ok=True)
    os.environ.update({**SHIM_ENVIRONMENT, "VERL_FILE_LOGGER_PATH": str(out_dir / "metrics.jsonl")})
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    os.chdir(out_dir)
    sys.argv = ["verl.trainer.main_ppo", *overrides]
    try:
        runpy.run_module("verl.trainer.main_ppo", run_name="__main__", alter_sys=True)
    except SystemExit as stop:  # Hydra exits 1 after printing a failed run's error
        return stop.code if isinstance(stop.code, int) else 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if args else 2
    try:
        return run(Path(args[0]), args[1:])
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
