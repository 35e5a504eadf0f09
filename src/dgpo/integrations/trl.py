"""TRL integration: ``DGPOConfig`` (TRL's ``GRPOConfig`` plus the dgpo objective, advantage and aggregation) and
``DGPOTrainer`` (TRL's ``GRPOTrainer`` whose loss and advantage step are dgpo's).

**DGPOConfig.** The objective's parameters live in one place only — its config dataclass in :mod:`dgpo.losses`;
``objective_kwargs`` overrides them. TRL options that the dgpo loss replaces are refused when set, never ignored:

* ``epsilon`` / ``epsilon_high`` map onto the objective's ``eps_low`` / ``eps_high`` (TRL's clip-range meaning:
  r ∈ [1 − epsilon, 1 + epsilon_high]) when the objective has them and ``objective_kwargs`` does not set them;
  set to non-defaults for an objective without a trust region (``pg``, ``sapo``) they are an error.
* ``loss_type`` is replaced by ``objective`` + ``aggregation``; ``scale_rewards`` and
  ``multi_objective_aggregation`` by ``advantage``; ``delta`` by the objective's ``dual_clip_c``;
  ``importance_sampling_level="sequence"`` by ``objective="gspo"``. Non-default values are errors.
* ``use_liger_kernel`` (deprecated in TRL 1.16) and ``use_adaptive_entropy`` are refused.

The defaults of ``objective``, ``advantage``, ``aggregation`` and ``num_iterations`` are :mod:`dgpo.choices`'
(``dgpo train``'s ``RLConfig`` reads them there too), the one place they are written. Off-policy by default:
``num_iterations = 2``, so every generation batch is used for two optimiser passes and the second sees a ratio
π_θ/π_old ≠ 1 — without that, every clipping objective reduces to plain PG and the choice of objective does not
matter (TRL's default, 1 iteration, keeps the ratio identically 1).

**DGPOTrainer.** What it overrides, and nothing else:

* ``_compute_loss``: log-probs and entropies from TRL's own helper (its chunked path), then the dgpo objective,
  then everything TRL's loss also applies — tool mask, off-policy sequence mask, high-entropy token mask, the vLLM
  importance-sampling ratio, the KL penalty (``beta``, with TRL's bias correction option), the static entropy bonus
  and the MoE aux loss — and the chosen aggregation. Every aggregation divides by a *global* count of the
  optimiser step (tokens, or non-empty sequences, over all processes and accumulation micro-batches), so the
  gradient of a step is that of one big batch whatever its split into processes and micro-batches.
* ``log``: the objective metrics, ``loss/policy``, ``entropy`` and ``kl/ref`` are accumulated as sums, counts and
  maxima over the micro-batches since the last log and reduced over processes once per log
  (:class:`dgpo.metrics.MetricTotals`): the logged values are those of the one big batch.
* ``training_step``: runs TRL's step with the chunked log-prob kernel's token tile of
  :mod:`dgpo.integrations.trl_logprob_tiles` (512 tokens without Triton: about a quarter of the peak memory of
  TRL's 4096 on CPU).
* the advantage step: TRL's rewards (all processes) are captured in ``_calculate_rewards`` and the advantages
  recomputed with :mod:`dgpo.advantages` (``DGPOConfig.advantage``), replacing TRL's ``scale_rewards`` step.

Generation (transformers or vLLM), the reference model, PEFT and accelerate are TRL's, untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from trl import GRPOConfig, GRPOTrainer

from dgpo.advantages import ADVANTAGES, compute_advantages
from dgpo.aggregation import AGGREGATIONS, aggregate
from dgpo.choices import (
    DEFAULT_ADVANTAGE,
    DEFAULT_AGGREGATION,
    DEFAULT_NUM_ITERATIONS,
    DEFAULT_OBJECTIVE,
    check_choices,
)
from dgpo.fileio import write_atomically
from dgpo.integrations.trl_checkpoints import COMPLETE_MARKER
from dgpo.integrations.trl_logprob_tiles import default_token_tile, token_tile
from dgpo.losses import LOSSES, Objective, ObjectiveTerms, config_class, get_loss
from dgpo.metrics import TOKENS_ACTIVE, MetricTotals

_TRL_DEFAULTS = {f.name: f.default for f in fields(GRPOConfig)}


@dataclass
class DGPOConfig(GRPOConfig):
    """GRPOConfig with ``objective``, ``objective_kwargs``, ``advantage`` and ``aggregation`` (see module doc)."""

    objective: str = field(default=DEFAULT_OBJECTIVE, metadata={"help": f"Objective: one of {', '.join(LOSSES)}."})
    objective_kwargs: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "Parameters of the objective, e.g. {'n': 2, 'm': 2}."}
    )
    advantage: str = field(default=DEFAULT_ADVANTAGE, metadata={"help": f"Advantage: one of {', '.join(ADVANTAGES)}."})
    aggregation: str = field(
        default=DEFAULT_AGGREGATION,
        metadata={"help": f"Aggregation: one of {', '.join(AGGREGATIONS)}."},
    )
    num_iterations: int = field(
        default=DEFAULT_NUM_ITERATIONS,
        metadata={"help": "Optimiser passes per generation batch (off-policy)."},
    )
    logprob_token_tile: int | None = field(
        default=None,
        metadata={
            "help": "Tokens per tile of TRL's chunked log-prob kernel; None: 512 without Triton (CPU), TRL's "
            "4096 with it (see dgpo.integrations.trl_logprob_tiles)."
        },
    )

    def __post_init__(self) -> None:
        self._refuse_replaced_options()
        if self.logprob_token_tile is not None and not (
            isinstance(self.logprob_token_tile, int) and self.logprob_token_tile > 0
        ):
            raise ValueError(
                f"DGPOConfig.logprob_token_tile must be a positive integer or None, got {self.logprob_token_tile!r}"
            )
        super().__post_init__()
        # Validates every choice and parameter now, not at the first training step.
        check_choices(self.objective, self.objective_params(), self.advantage, self.aggregation)

    def _refuse_replaced_options(self) -> None:
        if self.use_liger_kernel:
            raise ValueError("use_liger_kernel=True is not supported (deprecated in TRL 1.16); leave it False")
        replaced = {
            "loss_type": "objective and aggregation",
            "scale_rewards": "advantage",
            "multi_objective_aggregation": "advantage",
            "delta": "the objective's dual_clip_c (objective_kwargs)",
            "importance_sampling_level": 'objective="gspo"',
            "use_adaptive_entropy": "a static entropy_coef",
        }
        for name, instead in replaced.items():
            if getattr(self, name) != _TRL_DEFAULTS[name]:
                raise ValueError(
                    f"DGPOConfig.{name}={getattr(self, name)!r} is not used by the dgpo loss; use {instead} instead"
                )

    def objective_params(self) -> dict[str, Any]:
        """``objective_kwargs`` plus TRL's epsilon/epsilon_high mapped onto eps_low/eps_high (see module doc)."""
        params = dict(self.objective_kwargs)
        accepted = {f.name for f in fields(config_class(self.objective))}
        for trl_name, ours in (("epsilon", "eps_low"), ("epsilon_high", "eps_high")):
            value = getattr(self, trl_name)
            if value == _TRL_DEFAULTS[trl_name]:
                continue
            if ours not in accepted:
                raise ValueError(
                    f"DGPOConfig.{trl_name}={value!r} has no meaning for objective {self.objective!r} "
                    f"(it has no {ours}); leave {trl_name} at its default"
                )
            if ours in params and params[ours] != value:
                raise ValueError(
                    f"DGPOConfig.{trl_name}={value!r} conflicts with objective_kwargs {ours}={params[ours]!r}"
                )
            params[ours] = value
        return params

    def build_objective(self) -> Objective:
        return get_loss(self.objective, **self.objective_params())


#: Key of the generation batch holding its number of non-empty completions over all processes (0-d tensor).
NUM_SEQUENCES = "num_seqs_in_batch"
#: Trainer metrics that are means over the objective's active tokens.
TOKEN_MEANS = {"entropy": TOKENS_ACTIVE, "kl/ref": TOKENS_ACTIVE}


class DGPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` whose per-token objective is any :mod:`dgpo.losses` objective (``args.objective``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, DGPOConfig):
            raise TypeError(f"DGPOTrainer needs a DGPOConfig, got {type(self.args).__name__}")
        self.objective = self.args.build_objective()
        self._captured_rewards: torch.Tensor | None = None
        # Per mode: metric totals and the number of optimiser steps (train) or eval batches since the last log.
        self._totals = {mode: MetricTotals(TOKEN_MEANS, summed=("loss/policy",)) for mode in ("train", "eval")}
        self._windows = {"train": 0.0, "eval": 0.0}
        tile = self.args.logprob_token_tile
        self._token_tile = default_token_tile(self.accelerator.device) if tile is None else tile

    def training_step(self, model, inputs, num_items_in_batch=None):
        # Generation (old log-probs included), the loss forward and its backward all run inside the step.
        with token_tile(self._token_tile):
            return super().training_step(model, inputs, num_items_in_batch)

    # -- checkpoints ---------------------------------------------------------------------------------------
    def _save_checkpoint(self, model, trial):
        """Mark a checkpoint complete only after everything is on disk: a kill mid-write leaves an unmarked
        directory that resume ignores, so the previous checkpoint stays the one resumed from."""
        super()._save_checkpoint(model, trial)
        # Every rank writes its own RNG state into the folder: mark it complete only once all of them have.
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            folder = Path(self._get_output_dir(trial=trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            write_atomically(folder / COMPLETE_MARKER, f"{self.state.global_step}\n")

    # -- advantages --------------------------------------------------------------------------------------
    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._captured_rewards = rewards_per_func  # gathered over all processes, (B_global, n_funcs)
        return rewards_per_func

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        mode = "train" if self.model.training else "eval"
        group = self.num_generations if mode == "train" else self.num_generations_eval
        output["advantages"] = self._dgpo_advantages(group, len(output["advantages"]))
        output[NUM_SEQUENCES] = self._count_sequences(output)
        return output

    def _count_sequences(self, batch: dict) -> torch.Tensor:
        """Completions with at least one loss token in the generation batch, over all processes (0-d).

        Empty completions (e.g. truncated ones under ``mask_truncated_completions``) are not sequences of the
        ``seq-mean-*`` aggregations: they carry no loss, so they must not dilute the others — on every split alike.
        """
        mask = batch["completion_mask"] if "tool_mask" not in batch else batch["completion_mask"] * batch["tool_mask"]
        return self.accelerator.gather((mask.sum(dim=1) > 0).sum()).sum()

    def _dgpo_advantages(self, group: int, local_size: int) -> torch.Tensor:
        rewards_per_func = self._captured_rewards
        if group < 2:  # one sample per prompt (TRL's eval default): no group baseline, no advantage
            return torch.zeros(local_size, device=rewards_per_func.device)
        weights = self.reward_weights.to(rewards_per_func.device)
        unscorable = torch.isnan(rewards_per_func).all(dim=1)
        rewards = (rewards_per_func * weights).nansum(dim=1)
        if unscorable.any():  # no reward at all: give the group's mean, so it moves neither baseline nor policy
            grouped = rewards.view(-1, group).clone()
            grouped[unscorable.view(-1, group)] = float("nan")
            fill = grouped.nanmean(dim=1, keepdim=True).nan_to_num(0.0).expand_as(grouped)
            rewards = torch.where(unscorable, fill.reshape(-1), rewards)
        advantages = compute_advantages(rewards.float(), group, self.args.advantage)
        advantages = torch.where(unscorable, torch.zeros_like(advantages), advantages)
        start = self.accelerator.process_index * local_size
        return advantages[start : start + local_size]

    # -- loss ----------------------------------------------------------------------------------------------
    # Copied from TRL 1.16.0, trl/trainer/grpo_trainer.py, GRPOTrainer._compute_loss (lines 3020–3290), every step
    # but TRL's own loss, aggregation and metrics: the log-prob call (3030–3047), the old log-probs (3065–3066),
    # the entropy mask (3049–3052, 3143–3144), the off-policy mask (3068–3080, 3140–3141), the vLLM IS ratio
    # (3146–3147), the k3 KL (3098–3105, 3149–3150), the entropy bonus (3189–3211, static coefficient only) and
    # the MoE aux loss (3248–3251). dgpo.integrations.private_api.TRL holds a hash of that method:
    # tests/test_private_api.py fails on any TRL whose _compute_loss differs until this copy is re-read against it.
    def _compute_loss(self, model, inputs):
        prompt_ids, prompt_mask = inputs["prompt_ids"], inputs["prompt_mask"]
        completion_ids, completion_mask = inputs["completion_ids"], inputs["completion_mask"]
        input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
        attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)
        mask = completion_mask if "tool_mask" not in inputs else completion_mask * inputs["tool_mask"]
        logps, entropies, aux_loss = self._get_per_token_logps_and_entropies(
            model,
            input_ids,
            attention_mask,
            completion_ids.size(1),
            compute_entropy=True,
            compute_aux_loss=self.aux_loss_enabled,
            **{k: inputs.get(k) for k in _MULTIMODAL_KEYS if k in inputs},
        )
        old_logps = inputs.get("old_per_token_logps")
        old_logps = logps.detach() if old_logps is None else old_logps
        advantages = inputs["advantages"]

        per_token_loss, objective_terms = self.objective(logps, old_logps, advantages, mask)

        # The token masks TRL applies after its loss: they zero tokens but keep them in the normaliser.
        entropy_mask = None
        if self.top_entropy_quantile < 1.0:
            entropy_mask = self.get_high_entropy_mask(entropies, mask, 1 - self.top_entropy_quantile)
            per_token_loss = per_token_loss * entropy_mask
        if self.off_policy_mask_threshold is not None:
            sampling_logps = inputs.get("sampling_per_token_logps", old_logps)
            adv_column = advantages.unsqueeze(1) if advantages.dim() == 1 else advantages
            per_token_loss = per_token_loss * self.get_off_policy_mask(
                adv_column, logps, sampling_logps, mask, self.off_policy_mask_threshold
            )
        if self.use_vllm and self.vllm_importance_sampling_correction:
            per_token_loss = per_token_loss * inputs["importance_sampling_ratio"]
        per_token_kl = None
        if self.beta != 0.0:
            ref_logps = inputs["ref_per_token_logps"]
            # k3 estimator of KL(π_θ ‖ π_ref), as TRL
            per_token_kl = torch.exp(ref_logps - logps) - (ref_logps - logps) - 1
            if self.args.use_bias_correction_kl:
                per_token_kl = per_token_kl * torch.exp(logps - old_logps).detach()
            per_token_loss = per_token_loss + self.beta * per_token_kl

        mode = "train" if self.model.training else "eval"
        share = self._process_share(mode)
        loss = self._aggregate(per_token_loss, mask, inputs, share)
        policy_loss = loss.detach()
        if self.entropy_coef != 0.0:
            # Σ H over the effective tokens / the step's token count: split-invariant like token-mean (TRL divides
            # each micro-batch's mean by the accumulation steps instead).
            effective = mask if entropy_mask is None else mask * entropy_mask
            window_tokens = inputs["num_items_in_batch"].clamp(min=1.0) * share
            loss = loss - self.entropy_coef * (entropies * effective).sum() / window_tokens
        if self.aux_loss_enabled:
            accumulation = self.current_gradient_accumulation_steps if mode == "train" else 1.0
            loss = loss + self.router_aux_loss_coef * aux_loss / accumulation
            self._metrics[mode]["aux_loss"].append(self.accelerator.gather(aux_loss.detach()).mean().item())

        self._add_metrics(mode, objective_terms, policy_loss, entropies, per_token_kl, mask)
        return loss

    def _process_share(self, mode: str) -> float:
        """This micro-batch's share of the generation batch's global counts, per process.

        ``num_items_in_batch`` and :data:`NUM_SEQUENCES` count the whole generation batch (``steps_per_generation``
        micro-batches on each of the P processes); one optimiser step uses ``gradient_accumulation_steps`` of them.
        Dividing by count × GA/steps_per_generation / P makes the sum over a step's micro-batches, averaged over
        processes by DDP, equal the big batch's normalised loss. In eval, a batch is neither split nor accumulated.
        """
        window = self.current_gradient_accumulation_steps / self.args.steps_per_generation if mode == "train" else 1.0
        return window / self.accelerator.num_processes

    def _aggregate(self, per_token_loss: torch.Tensor, mask: torch.Tensor, inputs, share: float) -> torch.Tensor:
        """The chosen aggregation with the step's global token or sequence count (see :meth:`_process_share`)."""
        if self.args.aggregation == "token-mean":
            tokens = inputs["num_items_in_batch"].clamp(min=1.0) * share
            return aggregate(per_token_loss, mask, "token-mean", global_tokens=tokens)
        if NUM_SEQUENCES not in inputs:
            raise KeyError(f"aggregation {self.args.aggregation!r} needs inputs[{NUM_SEQUENCES!r}]")
        sequences = inputs[NUM_SEQUENCES].clamp(min=1.0) * share
        return aggregate(
            per_token_loss, mask, self.args.aggregation, global_seqs=sequences, norm_length=self.max_completion_length
        )

    def _add_metrics(self, mode, terms: ObjectiveTerms, policy_loss, entropies, per_token_kl, mask) -> None:
        """Accumulate this micro-batch's metrics as sums, counts and maxima; reduced over processes in :meth:`log`.

        The objective's metrics are computed here, from its terms, on every micro-batch: a log reports every
        micro-batch since the last one. They stay tensors (no host sync) until :meth:`log` reduces them.
        """
        tokens = terms[TOKENS_ACTIVE].clamp(min=1.0)
        metrics = {**terms.metrics(), "entropy": (entropies.detach() * mask).sum() / tokens}
        if per_token_kl is not None:
            metrics["kl/ref"] = (per_token_kl.detach() * mask).sum() / tokens
        # The loss of a step is the sum of its micro-batches' losses averaged over processes (DDP's mean).
        metrics["loss/policy"] = policy_loss / self.accelerator.num_processes
        self._totals[mode].add(metrics)
        self._windows[mode] += 1.0 / self.current_gradient_accumulation_steps if mode == "train" else 1.0

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the global metrics of everything since the last log, then TRL's log (all processes call it)."""
        mode = "train" if self.model.training else "eval"
        reduced = self._totals[mode].reduce(
            sum_all=lambda t: self.accelerator.reduce(t, reduction="sum"),
            max_all=lambda t: self.accelerator.gather(t.unsqueeze(0)).amax(dim=0),
        )
        if "loss/policy" in reduced and self._windows[mode] > 0:  # mean over the window's optimiser steps/batches
            reduced["loss/policy"] /= self._windows[mode]
        self._windows[mode] = 0.0
        prefix = "eval_" if mode == "eval" else ""
        logs.update({f"{prefix}{key}": value for key, value in reduced.items()})
        super().log(logs, start_time)


_MULTIMODAL_KEYS = (
    "pixel_values",
    "image_grid_thw",
    "num_images",
    "pixel_attention_mask",
    "spatial_shapes",
    "num_tiles",
    "image_sizes",
    "token_type_ids",
    "mm_token_type_ids",
    "image_position_ids",
)
