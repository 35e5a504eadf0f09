"""Every private or unstable engine name dgpo touches, per engine, with the version each was read from.

dgpo plugs into TRL, transformers and verl beyond their documented extension points: it overrides private trainer
methods, calls their helpers, reads instance attributes and batch keys, patches a kernel constant and registers in
internal registries. None of that is promised to survive a release, and a rename fails silently at best (an
override nobody calls any more) or deep inside a training run at worst. So every such name is written down here,
once, with what dgpo does with it; ``tests/test_private_api.py`` (TRL and transformers, main environment) and
``tests_verl/test_private_api.py`` (verl) resolve each one against the installed engine and fail with
``re-check NAME after upgrading ENGINE (read from VERSION)`` when it moved, changed its parameters, or (for code
dgpo copied) changed at all. After an upgrade: re-read each failing name in the new source, adapt dgpo, then update
the entry and the engine's ``version``.

Plain data and the standard library only: importable without trl or verl.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PrivateName:
    """One engine name dgpo relies on.

    Attributes:
        dotted: the importable module path, then attributes: ``pkg.module.Class.method``.
        use: where dgpo touches it and how.
        parameters: for a callable dgpo overrides or calls, its parameter names as read (compared exactly).
        in_source: strings its source must still contain: the ``self.x =`` of an instance attribute, a batch key.
        source_sha256: for code dgpo copied, the SHA-256 of ``inspect.getsource`` as read: any change fails.
    """

    dotted: str
    use: str
    parameters: tuple[str, ...] | None = None
    in_source: tuple[str, ...] = ()
    source_sha256: str | None = None


@dataclass(frozen=True)
class Engine:
    """An engine (pip distribution name), the version its names were read from, and the names."""

    name: str
    version: str
    names: tuple[PrivateName, ...]

    def problems(self, entry: PrivateName) -> list[str]:
        """What no longer holds for ``entry`` in the installed engine, each as one ``re-check …`` line."""
        try:
            obj = resolve(entry.dotted)
        except (ImportError, AttributeError) as error:
            return [self._recheck(entry.dotted, f"{type(error).__name__}: {error}")]
        found = []
        if entry.parameters is not None:
            try:
                names = tuple(inspect.signature(obj).parameters)
            except (TypeError, ValueError) as error:
                names = (f"<no signature: {error}>",)
            if names != entry.parameters:
                found.append(self._recheck(entry.dotted, f"parameters {names}, read as {entry.parameters}"))
        if entry.in_source or entry.source_sha256:
            source = inspect.getsource(obj)
            for text in entry.in_source:
                if text not in source:
                    found.append(self._recheck(entry.dotted, f"its source no longer contains {text!r}"))
            if entry.source_sha256 and hashlib.sha256(source.encode()).hexdigest() != entry.source_sha256:
                found.append(self._recheck(entry.dotted, "its source changed since dgpo copied it"))
        return found

    def _recheck(self, dotted: str, detail: str) -> str:
        return f"re-check {dotted} after upgrading {self.name} (read from {self.version}): {detail}"


def resolve(dotted: str) -> Any:
    """The object ``dotted`` names: the longest importable module prefix, then ``getattr`` for the rest.

    A dataclass field without a class-level default (``field(default_factory=...)``) resolves to its ``Field``.
    Raises ImportError or AttributeError when the name moved.
    """
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
            break
        except ModuleNotFoundError:
            if split == 1:
                raise
    for attr in parts[split:]:
        fields = getattr(obj, "__dataclass_fields__", {})
        obj = fields[attr] if attr in fields and not hasattr(obj, attr) else getattr(obj, attr)
    return obj


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _keys(text: str) -> tuple[str, ...]:
    """Batch keys as they appear quoted in the source."""
    return tuple(f'"{key}"' for key in text.split())


def _assigned(text: str) -> tuple[str, ...]:
    """Instance attributes as the source assigns them."""
    return tuple(f"self.{attr} =" for attr in text.split())


_GRPO = "trl.trainer.grpo_trainer.GRPOTrainer"
_KERNEL = "trl.kernels.chunked_logprob"

#: TRL: what dgpo.integrations.trl (DGPOTrainer), its trl_logprob_tiles and benchmarks/ touch.
TRL = Engine(
    name="trl",
    version="1.16.0",
    names=(
        PrivateName(
            f"{_GRPO}._compute_loss",
            "DGPOTrainer._compute_loss replaces it and copies its post-loss steps (tool, off-policy and entropy "
            "masks, vLLM IS ratio, KL, entropy bonus, MoE aux loss): re-read them into the copy on any change",
            parameters=("self", "model", "inputs"),
            source_sha256="80295546bbdbf6f711acce7f6e69b0100ab40aa8f23ed8052cc564ff024e3e40",
        ),
        PrivateName(
            f"{_GRPO}._get_per_token_logps_and_entropies",
            "called by DGPOTrainer._compute_loss; its multimodal keywords are copied as trl._MULTIMODAL_KEYS",
            parameters=_words(
                "self model input_ids attention_mask logits_to_keep batch_size compute_entropy compute_aux_loss "
                "pixel_values image_grid_thw num_images pixel_attention_mask spatial_shapes num_tiles image_sizes "
                "token_type_ids mm_token_type_ids image_position_ids"
            ),
        ),
        PrivateName(
            f"{_GRPO}._calculate_rewards",
            "overridden to capture the rewards of all processes for dgpo's advantages",
            parameters=("self", "inputs", "prompts", "completions", "completion_ids_list"),
        ),
        PrivateName(
            f"{_GRPO}._generate_and_score_completions",
            "overridden: its batch's advantages are replaced by dgpo's; the batch keys are read by _compute_loss",
            parameters=("self", "inputs"),
            in_source=_keys(
                "prompt_ids prompt_mask completion_ids completion_mask tool_mask advantages num_items_in_batch "
                "old_per_token_logps sampling_per_token_logps importance_sampling_ratio ref_per_token_logps"
            ),
        ),
        PrivateName(f"{_GRPO}._generate", "timed by benchmarks/trainer.py", parameters=("self", "prompts")),
        PrivateName(
            f"{_GRPO}.get_high_entropy_mask",
            "called by the copied entropy-mask step",
            parameters=("self", "entropies", "mask", "threshold"),
        ),
        PrivateName(
            f"{_GRPO}.get_off_policy_mask",
            "called by the copied off-policy-mask step",
            parameters=("advantages", "per_token_logps", "sampling_per_token_logps", "mask", "off_policy_threshold"),
        ),
        PrivateName(
            f"{_GRPO}.__init__",
            "instance attributes read by DGPOTrainer (self._metrics: the aux-loss metric, as TRL logs it)",
            in_source=_assigned(
                "_metrics aux_loss_enabled top_entropy_quantile off_policy_mask_threshold use_vllm "
                "vllm_importance_sampling_correction beta entropy_coef router_aux_loss_coef num_generations "
                "num_generations_eval reward_weights max_completion_length"
            ),
        ),
        PrivateName(
            f"{_GRPO}.training_step",
            "overridden to set the kernel's token tile around TRL's step",
            parameters=("self", "model", "inputs", "num_items_in_batch"),
        ),
        PrivateName(
            f"{_GRPO}.log", "overridden to add dgpo's reduced metrics", parameters=("self", "logs", "start_time")
        ),
        PrivateName(
            f"{_KERNEL}._use_triton",
            "dgpo.integrations.trl_logprob_tiles: Triton or torch fallback",
            parameters=("device",),
        ),
        PrivateName(
            f"{_KERNEL}.TOKEN_CHUNK_SIZE",
            "dgpo.integrations.trl_logprob_tiles sets this module constant around each step (512 without Triton); the "
            "kernel's forward and backward read it at call time (tests/test_trainer.py checks both see the tile)",
        ),
        PrivateName(f"{_KERNEL}._TRITON_AVAILABLE", "benchmarks/gpu_check.py switches Triton off to time the fallback"),
    ),
)

#: transformers: the ``Trainer`` internals DGPOTrainer and dgpo.train.rl use (read from the version TRL 1.16 ran on).
TRANSFORMERS = Engine(
    name="transformers",
    version="5.24.0",
    names=(
        PrivateName(
            "transformers.trainer.Trainer._save_checkpoint",
            "DGPOTrainer writes the completion marker after it",
            parameters=("self", "model", "trial"),
        ),
        PrivateName(
            "transformers.trainer.Trainer._get_output_dir",
            "DGPOTrainer finds the checkpoint folder it just saved",
            parameters=("self", "trial"),
        ),
        PrivateName(
            "transformers.trainer.Trainer._load_from_checkpoint",
            "dgpo.train.rl loads the last checkpoint when no step is left to train",
            parameters=("self", "resume_from_checkpoint", "model"),
        ),
        PrivateName(
            "transformers.trainer.Trainer._run_epoch",
            "sets self.current_gradient_accumulation_steps, which DGPOTrainer's normalisers read",
            in_source=("self.current_gradient_accumulation_steps =",),
        ),
    ),
)

_CORE = "verl.trainer.ppo.core_algos"
_REPLICA = "verl.workers.rollout.replica"

#: verl: what dgpo.integrations.verl (the policy losses) and dgpo.integrations.verl_cpu (the CPU shim) touch.
VERL = Engine(
    name="verl",
    version="0.9.1",
    names=(
        PrivateName(f"{_CORE}.POLICY_LOSS_REGISTRY", "read so that register() never overwrites a loss not dgpo's"),
        PrivateName(f"{_CORE}.register_policy_loss", "registers every objective as a loss_mode", ("name",)),
        PrivateName(
            f"{_CORE}.compute_policy_loss_vanilla",
            "the policy-loss signature verl calls dgpo's losses with (and vanilla's metric definitions)",
            parameters=_words("old_log_prob log_prob advantages response_mask loss_agg_mode config rollout_is_weights"),
        ),
        PrivateName(
            f"{_CORE}.agg_loss",
            "aggregates dgpo's per-token loss with the actor config's global_batch_info as keywords",
            parameters=_words(
                "loss_mat loss_mask loss_agg_mode dp_size batch_num_tokens global_batch_size loss_scale_factor"
            ),
        ),
        PrivateName("verl.workers.config.actor.PolicyLossConfig", "subclassed by DGPOPolicyLossConfig"),
        PrivateName(
            "verl.workers.config.actor.ActorConfig.global_batch_info",
            "the per-micro-batch dict verl's ppo_loss fills (dp_size, batch_num_tokens, ...), passed to agg_loss",
        ),
        PrivateName(
            "verl.workers.utils.losses.ppo_loss",
            "the caller: passes the worker's actor config, reads policy_loss.loss_mode there, and turns each metric "
            "into a Metric at once (Metric.append calls .item() on a tensor): the plugin returns floats",
            in_source=('config.policy_loss.get("loss_mode"', "Metric.from_dict(pg_metrics"),
        ),
        PrivateName(
            "verl.trainer.ppo.rollout_corr_helper.apply_bypass_mode",
            "not touched: docs/verl.md's bypass-mode behaviour (the dgpo loss stays, with the rollout's log-probs as "
            "old log-probs) was measured with it setting loss_mode in the driver's config only; re-measure on change",
            source_sha256="78736632d0c61b3433ed5019a58a7b5f07794055ed1f4d3056f6e31528f5c962",
        ),
        PrivateName("verl.plugin.platform.platform_manager.PlatformRegistry", "verl_cpu registers the cpu platform"),
        PrivateName(
            "verl.plugin.platform.platform_base.PlatformBase", "the interface verl_cpu's CPUPlatform implements"
        ),
        PrivateName("verl.workers.rollout.base._ROLLOUT_REGISTRY", "verl_cpu maps rollout.name=hf_cpu to its adapter"),
        PrivateName(
            "verl.workers.rollout.base.BaseRollout", "the adapter's interface (resume, release, update_weights)"
        ),
        PrivateName(f"{_REPLICA}.RolloutReplicaRegistry", "verl_cpu maps rollout.name=hf_cpu to its replica"),
        PrivateName(
            f"{_REPLICA}.RolloutReplica",
            "the replica's interface; verl_cpu's launch_servers sets its private server handle and address",
            in_source=("self._server_handle", "self._server_address"),
        ),
        PrivateName(f"{_REPLICA}.TokenOutput", "what verl_cpu's rollout server's generate returns"),
        PrivateName(
            "verl.utils.distributed.initialize_global_process_group_ray",
            "verl_cpu wraps it: plain gloo instead of cpu:gloo,cpu:gloo",
            parameters=("timeout_second", "backend"),
        ),
        PrivateName("verl.utils.tracking.FileLogger", "verl_cpu appends to metrics.jsonl on resume (verl truncates)"),
        PrivateName(
            "verl.trainer.ppo.utils.need_critic", "verl_cpu's launcher runs main_ppo's checks before starting Ray"
        ),
        PrivateName("verl.trainer.ppo.utils.need_reference_policy", "as need_critic"),
        PrivateName("verl.utils.config.validate_config", "as need_critic"),
    ),
)

#: Every engine, for the tests: the main environment checks TRL and transformers, .venv-verl checks verl.
ENGINES = {engine.name: engine for engine in (TRL, TRANSFORMERS, VERL)}
