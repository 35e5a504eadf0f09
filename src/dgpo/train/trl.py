"""``DGPOTrainer``: TRL's ``GRPOTrainer`` with the loss (and the advantage step) taken from dgpo.

What it overrides, and nothing else:

* ``_compute_loss``: log-probs and entropies from TRL's own helper (its chunked path), then the dgpo objective,
  then everything TRL's loss also applies — tool mask, off-policy sequence mask, high-entropy token mask, the vLLM
  importance-sampling ratio, the KL penalty (``beta``, with TRL's bias correction option), the static entropy bonus
  and the MoE aux loss — and the chosen aggregation, normalised like TRL so gradient accumulation and data
  parallelism give the same gradient as one big batch.
* ``training_step``: runs TRL's step with the chunked log-prob kernel's token tile of
  :mod:`dgpo.train.logprob_tiles` (512 tokens without Triton: about a quarter of the peak memory of TRL's 4096 on CPU).
* the advantage step: TRL's rewards (all processes) are captured in ``_calculate_rewards`` and the advantages
  recomputed with :mod:`dgpo.advantages` (``DGPOConfig.advantage``), replacing TRL's ``scale_rewards`` step.

Generation (transformers or vLLM), the reference model, PEFT and accelerate are TRL's, untouched.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from trl import GRPOTrainer

from dgpo.advantages import compute_advantages
from dgpo.aggregation import aggregate
from dgpo.fileio import write_atomically
from dgpo.train.config import DGPOConfig
from dgpo.train.logprob_tiles import default_token_tile, token_tile

#: Written (atomically) into a checkpoint folder once the whole checkpoint is saved.
COMPLETE_MARKER = "dgpo_checkpoint_complete"


class DGPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` whose per-token objective is any :mod:`dgpo.losses` objective (``args.objective``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, DGPOConfig):
            raise TypeError(f"DGPOTrainer needs a DGPOConfig, got {type(self.args).__name__}")
        self.objective = self.args.build_objective()
        self._captured_rewards: torch.Tensor | None = None
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
        return output

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

        per_token_loss, objective_metrics = self.objective(logps, old_logps, advantages, mask)

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
        loss = self._aggregate(per_token_loss, mask, inputs, mode)
        policy_loss = loss.detach()
        accumulation = self.current_gradient_accumulation_steps if mode == "train" else 1.0
        if self.entropy_coef != 0.0:
            effective = mask if entropy_mask is None else mask * entropy_mask
            mean_entropy = (entropies * effective).sum() / effective.sum().clamp(min=1.0)
            loss = loss - self.entropy_coef * mean_entropy / accumulation
        if self.aux_loss_enabled:
            loss = loss + self.router_aux_loss_coef * aux_loss / accumulation
            self._metrics[mode]["aux_loss"].append(self.accelerator.gather(aux_loss.detach()).mean().item())

        self._log_metrics(mode, objective_metrics, policy_loss, entropies, per_token_kl, mask)
        return loss

    def _aggregate(self, per_token_loss: torch.Tensor, mask: torch.Tensor, inputs, mode: str) -> torch.Tensor:
        """Aggregate with the global token count of the accumulation window for token-mean (TRL's ``dapo``
        normaliser), and divide the per-micro-batch modes by the accumulation steps (TRL's ``grpo``/``dr_grpo``)."""
        if self.args.aggregation == "token-mean":
            tokens = inputs["num_items_in_batch"].clamp(min=1.0) / self.accelerator.num_processes
            if mode == "train":  # num_items_in_batch spans the generation batch: rescale to one window
                tokens = tokens * self.current_gradient_accumulation_steps / self.args.steps_per_generation
            return aggregate(per_token_loss, mask, "token-mean", global_tokens=tokens)
        accumulation = self.current_gradient_accumulation_steps if mode == "train" else 1.0
        loss = aggregate(per_token_loss, mask, self.args.aggregation, norm_length=self.max_completion_length)
        return loss / accumulation

    def _log_metrics(self, mode, objective_metrics, policy_loss, entropies, per_token_kl, mask) -> None:
        # One gather for every scalar (each is a collective on a multi-GPU run), then max for the */max keys and
        # the mean over processes for the others.
        keys = [*objective_metrics, "loss/policy"]
        local = torch.stack([*objective_metrics.values(), policy_loss]).to(torch.float32)
        gathered = self.accelerator.gather(local.reshape(1, -1)).reshape(-1, len(keys))
        reduced = torch.where(
            torch.tensor([key.endswith("max") for key in keys], device=gathered.device),
            gathered.amax(dim=0),
            gathered.mean(dim=0),
        ).tolist()
        for key, value in zip(keys, reduced, strict=True):
            self._metrics[mode][key].append(value)

        def global_mean(values: torch.Tensor) -> float:
            totals = self.accelerator.reduce(torch.stack([(values * mask).sum(), mask.sum().float()]), reduction="sum")
            return (totals[0] / totals[1].clamp(min=1.0)).item()

        self._metrics[mode]["entropy"].append(global_mean(entropies))
        if per_token_kl is not None:
            self._metrics[mode]["kl/ref"].append(global_mean(per_token_kl))


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
