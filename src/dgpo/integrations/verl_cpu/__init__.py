"""verl's whole trainer on a CPU: try a verl config on a laptop before renting GPUs.

Load it in the driver and in every Ray worker through verl's own hook, then start verl as usual::

    VERL_USE_EXTERNAL_MODULES=dgpo.integrations.verl_cpu python -m verl.trainer.main_ppo \\
        trainer.use_v1=false trainer.device=cpu actor_rollout_ref.rollout.name=hf_cpu \\
        actor_rollout_ref.rollout.checkpoint_engine.backend=naive actor_rollout_ref.actor.strategy=fsdp2 \\
        +ray_kwargs.ray_init.num_gpus=1 ray_kwargs.ray_init.num_cpus=8 ...

(``examples/verl/cpu_e2e.sh`` holds the full recipe.) What it adds to verl 0.9.1, which runs on nvidia, huawei and
amd accelerators only:

1. a ``cpu`` platform (:mod:`.platform`), selected with ``VERL_PLATFORM=cpu`` (set here), that reports the Ray
   resource ``"GPU"`` so verl's resource pools accept logical GPUs declared in ``ray_init.num_gpus``;
2. the rollout ``hf_cpu`` (:mod:`.rollout`): HF sampling behind verl's rollout-server interface, with token
   log-probs and weight sync through ``checkpoint_engine.backend=naive``;
3. plain ``gloo`` for verl's process groups (verl builds ``cpu:gloo,<device>:<backend>``, which names "cpu" twice
   on a CPU device and torch refuses);
4. ``VERL_ENGINE_DEVICE=cuda`` (verl's own override): verl registers its FSDP engine for cuda/npu only, and the
   same engine runs on CPU tensors;
5. verl's ``file`` logger appends instead of truncating, so a resumed run keeps the steps before the restart.

Every private verl name this touches is listed, with the version it was read from, in
:data:`dgpo.integrations.private_api.VERL`; ``tests_verl/test_private_api.py`` fails naming the name when a verl
upgrade moves one. The dgpo losses themselves come from :mod:`dgpo.integrations.verl` (loaded by verl's
``verl.plugins`` entry point, or imported here).
"""

from __future__ import annotations

import functools
import os


def _gloo_process_group(initialize):
    """verl's process-group initialiser with plain gloo on the CPU (its default names "cpu" twice there)."""

    @functools.wraps(initialize)
    def wrapped(timeout_second=None, backend=None):
        from verl.utils.device import get_device_name

        if backend is None and get_device_name() == "cpu":
            backend = "gloo"
        return initialize(timeout_second=timeout_second, backend=backend)

    wrapped.__dgpo_cpu__ = True
    return wrapped


def appending_file_logger(file_logger_cls):
    """verl's FileLogger, opening its file for appending: verl's opens it with "wb", so a resumed run would erase
    the steps logged before the restart. Same path rules (``VERL_FILE_LOGGER_PATH``, else
    ``$VERL_FILE_LOGGER_ROOT/<project>/<experiment>.jsonl``), same line format."""

    class AppendingFileLogger(file_logger_cls):
        __dgpo_cpu__ = True

        def __init__(self, project_name: str, experiment_name: str):
            self.project_name = project_name
            self.experiment_name = experiment_name
            self.filepath = os.getenv("VERL_FILE_LOGGER_PATH")
            if self.filepath is None:
                root = os.path.expanduser(os.getenv("VERL_FILE_LOGGER_ROOT", "."))
                self.filepath = os.path.join(root, project_name, f"{experiment_name}.jsonl")
            os.makedirs(os.path.dirname(os.path.abspath(self.filepath)), exist_ok=True)
            self.fp = open(self.filepath, "ab", buffering=0)  # noqa: SIM115  (closed by verl's finish())

    return AppendingFileLogger


def install() -> None:
    """Register the cpu platform and the hf_cpu rollout, and apply the two fixes (idempotent)."""
    os.environ.setdefault("VERL_PLATFORM", "cpu")
    os.environ.setdefault("VERL_ENGINE_DEVICE", "cuda")

    import verl.utils.distributed as distributed
    import verl.utils.tracking as tracking
    from verl.plugin.platform.platform_manager import PlatformRegistry
    from verl.workers.rollout import base as rollout_base
    from verl.workers.rollout.replica import RolloutReplicaRegistry

    from dgpo.integrations.verl_cpu.platform import PLATFORM_NAME, CPUPlatform
    from dgpo.integrations.verl_cpu.rollout import ROLLOUT_NAME, HFCPUReplica

    if PlatformRegistry.get(PLATFORM_NAME) is None:
        PlatformRegistry.register(PLATFORM_NAME)(CPUPlatform)
    rollout_base._ROLLOUT_REGISTRY[(ROLLOUT_NAME, "async")] = "dgpo.integrations.verl_cpu.rollout.HFCPUServerAdapter"
    RolloutReplicaRegistry.register(ROLLOUT_NAME, lambda: HFCPUReplica)
    if not getattr(distributed.initialize_global_process_group_ray, "__dgpo_cpu__", False):
        distributed.initialize_global_process_group_ray = _gloo_process_group(
            distributed.initialize_global_process_group_ray
        )
    if not getattr(tracking.FileLogger, "__dgpo_cpu__", False):
        tracking.FileLogger = appending_file_logger(tracking.FileLogger)

    import dgpo.integrations.verl  # noqa: F401  (the losses, also where verl's plugin entry points are off)


install()
