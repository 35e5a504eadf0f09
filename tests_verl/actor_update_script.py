"""verl 0.9.1's own actor update on CPU, in 1 or 2 gloo processes: the worker half of test_actor_update.py.

Run as ``python actor_update_script.py SPEC.json`` (1 process) or under ``torchrun --nproc_per_node 2``. It builds
``ActorRolloutRefWorker(role="actor")`` without Ray, computes old log-probs with the worker's ``compute_log_prob``
through ``RayPPOTrainer._compute_old_log_prob`` and updates through ``RayPPOTrainer._update_actor`` (both called
with a stand-in trainer, so the batch is prepared by verl's own code), i.e. ``update_actor`` →
``TrainingWorker.train_mini_batch`` → ``FSDPEngineWithLMHead.train_batch`` → ``ppo_loss`` → the dgpo loss. Each run
restores the initial parameters, so every run is one SGD step from the same point; rank 0 writes the gathered
gradients, parameter deltas and verl's metrics to ``SPEC["out"]``. The comparison lives in the test, not here.

What verl needs on CPU: dgpo's CPU shim (``dgpo.integrations.verl_cpu``: the cpu platform, imported before
``verl.workers``, and ``VERL_ENGINE_DEVICE=cuda``), gloo initialised before verl asks for nccl, FSDP2 (FSDP1 syncs
module states through the GPU), eager attention without remove-padding, fp32 mixed precision (bf16 differs by ~1e-2).
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import sys
import types
from contextlib import contextmanager, nullcontext
from functools import partial

import torch

torch.set_num_threads(int(os.environ.get("DGPO_TORCH_THREADS", "1")))
for key, value in {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1"}.items():
    os.environ.setdefault(key, value)

# the CPU platform (verl ships nvidia/huawei/amd only), registered before verl.workers is imported
import dgpo.integrations.verl_cpu  # noqa: E402, F401

torch.distributed.init_process_group("gloo")

from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from verl.protocol import BatchData, DataProto  # noqa: E402
from verl.trainer.ppo.ray_trainer import RayPPOTrainer  # noqa: E402
from verl.utils.config import omega_conf_to_dataclass  # noqa: E402
from verl.workers.engine_workers import ActorRolloutRefWorker  # noqa: E402
from verl.workers.utils.losses import ppo_loss  # noqa: E402

import dgpo.integrations.verl as plugin  # noqa: E402

RANK = torch.distributed.get_rank()
WORLD = torch.distributed.get_world_size()


def compose_config(spec: dict):
    """verl's ppo_trainer.yaml with the CPU settings and the model (Hydra composition: about a second)."""
    import verl

    n, batch = spec["rollout_n"], spec["batch_size"]
    actor = "actor_rollout_ref.actor"
    overrides = [
        f"actor_rollout_ref.model.path={spec['model']}",
        "+actor_rollout_ref.model.load_tokenizer=false",
        "+actor_rollout_ref.model.override_config.attn_implementation=eager",
        "actor_rollout_ref.model.use_remove_padding=false",
        "actor_rollout_ref.model.enable_gradient_checkpointing=false",
        f"actor_rollout_ref.rollout.n={n}",
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=4",
        "actor_rollout_ref.rollout.log_prob_max_token_len_per_gpu=4096",
        f"{actor}.strategy=fsdp2",
        f"{actor}.use_torch_compile=false",
        f"{actor}.fsdp_config.use_torch_compile=false",
        f"+{actor}.fsdp_config.mixed_precision={{param_dtype:fp32,reduce_dtype:fp32,buffer_dtype:fp32}}",
        f"{actor}.ppo_mini_batch_size={batch // n}",  # one mini-batch: the whole batch, one optimizer step
        f"{actor}.ppo_micro_batch_size_per_gpu=1",
        f"{actor}.ppo_max_token_len_per_gpu=4096",
        f"{actor}.optim.optimizer=SGD",
        f"{actor}.optim.lr={spec['lr']}",
        f"{actor}.optim.weight_decay=0",
        f"{actor}.optim.clip_grad=1e9",
        f"{actor}.clip_ratio_low=0.2",
        f"{actor}.clip_ratio_high=0.28",
        f"{actor}.clip_ratio_c=3.0",
        f"{actor}.policy_loss._target_=dgpo.integrations.verl.DGPOPolicyLossConfig",
        f"+{actor}.policy_loss.dgpo_n=2",
        f"+{actor}.policy_loss.dgpo_m=2",
    ]
    config_dir = os.path.join(os.path.dirname(verl.__file__), "trainer", "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        return compose("ppo_trainer", overrides=overrides)


def with_loss(config, run: dict):
    """A copy of the composed config with the run's loss mode and aggregation, as the overrides would set them."""
    config = copy.deepcopy(config)
    OmegaConf.update(config, "actor_rollout_ref.actor.policy_loss.loss_mode", run["loss_mode"])
    OmegaConf.update(config, "actor_rollout_ref.actor.loss_agg_mode", run["agg"])
    return config


def make_batch(spec: dict) -> DataProto:
    """Left-padded prompts, right-padded responses of several lengths, one fully masked response row, Â = 0 rows."""
    g = torch.Generator().manual_seed(spec["seed"])
    b, p, r, vocab = spec["batch_size"], spec["prompt_len"], spec["response_len"], spec["vocab"]
    prompt_lens = torch.randint(2, p + 1, (b,), generator=g)
    response_lens = torch.randint(1, r + 1, (b,), generator=g)
    prompt_mask = (torch.arange(p) >= p - prompt_lens[:, None]).long()
    response_attn = (torch.arange(r) < response_lens[:, None]).long()
    prompts = torch.randint(1, vocab, (b, p), generator=g) * prompt_mask
    responses = torch.randint(1, vocab, (b, r), generator=g) * response_attn
    attention_mask = torch.cat([prompt_mask, response_attn], dim=1)
    response_mask = response_attn.clone()
    for row in spec["masked_rows"]:
        response_mask[row] = 0  # e.g. a rejected or tool-output response: tokens present, none trained on
    scores = torch.randn(b, generator=g)
    for row in spec["zero_adv_rows"]:
        scores[row] = 0.0  # an all-correct / all-wrong group: Â exactly 0
    advantages = scores[:, None] * response_mask
    tensors = {
        "prompts": prompts,
        "responses": responses,
        "input_ids": torch.cat([prompts, responses], dim=1),
        "attention_mask": attention_mask,
        "position_ids": (attention_mask.cumsum(-1) - 1).clamp(min=0),
        "response_mask": response_mask,
        "advantages": advantages.float(),
    }
    # the meta info RayPPOTrainer.fit sets on every batch before computing log-probs
    meta_info = {
        "temperature": spec["temperature"],
        "global_token_num": attention_mask.sum(-1).tolist(),
        "images_seqlens": [],
    }
    return DataProto.from_dict(tensors=tensors, meta_info=meta_info)


class LocalWorkerGroup:
    """What the Ray worker group does for one process: give this rank its dp chunk, concatenate the outputs."""

    def __init__(self, worker: ActorRolloutRefWorker):
        self.worker = worker

    def _chunk(self, data):
        if WORLD == 1:
            return data
        # Ray pickles each chunk to its worker, which also unlocks the TensorDict that chunk() returns locked
        return pickle.loads(pickle.dumps(BatchData(data).chunk(chunks=WORLD)[RANK]))

    def compute_log_prob(self, data):
        output = self.worker.compute_log_prob(self._chunk(data))
        outputs = [None] * WORLD
        torch.distributed.all_gather_object(outputs, output)
        return BatchData(outputs).concat() if WORLD > 1 else output

    def update_actor(self, data):
        return self.worker.update_actor(self._chunk(data))  # metrics are already all-gathered over dp by verl


def trainer_for(config, worker) -> types.SimpleNamespace:
    """The attributes ``RayPPOTrainer._compute_old_log_prob`` / ``_update_actor`` read from ``self``."""
    return types.SimpleNamespace(config=config, distillation_config=None, actor_rollout_wg=LocalWorkerGroup(worker))


def full_tensors(module, attr: str | None) -> dict[str, torch.Tensor]:
    """Parameters (attr None) or their gradients, gathered from the FSDP2 shards (a collective: every rank calls)."""
    out = {}
    for name, param in module.named_parameters():
        value = param if attr is None else getattr(param, attr)
        value = value.full_tensor() if hasattr(value, "full_tensor") else value
        out[name] = value.detach().clone()
    return out


def record_gradients(engine) -> list[dict[str, torch.Tensor]]:
    """Gather the gradients each optimizer step is about to apply (verl zeroes them when train mode exits)."""
    captured: list[dict[str, torch.Tensor]] = []
    step = engine.optimizer_step

    def optimizer_step():
        captured.append(full_tensors(engine.module, "grad"))
        return step()

    engine.optimizer_step = optimizer_step
    return captured


@contextmanager
def local_aggregation():
    """The negative control: the plugin aggregates without verl's global batch info (per micro-batch and rank)."""
    real = plugin.core_algos

    def agg_loss(loss_mat, loss_mask, loss_agg_mode, **global_batch_info):
        return real.agg_loss(loss_mat=loss_mat, loss_mask=loss_mask, loss_agg_mode=loss_agg_mode)

    plugin.core_algos = types.SimpleNamespace(agg_loss=agg_loss)
    try:
        yield
    finally:
        plugin.core_algos = real


def main(spec_path: str) -> None:
    with open(spec_path) as f:
        spec = json.load(f)
    config = compose_config(spec)
    worker = ActorRolloutRefWorker(config=config.actor_rollout_ref, role="actor")
    worker.init_model()
    engine = worker.actor.engine
    start = [p.detach().clone() for p in engine.module.parameters()]
    captured = record_gradients(engine)

    batch = make_batch(spec)
    old, _ = RayPPOTrainer._compute_old_log_prob(trainer_for(config, worker), batch)
    worker_log_probs = old.batch["old_log_probs"].clone()
    # Old log-probs off the current policy, so the ratios fall in every region (at ratio 1 nothing is clipped).
    g = torch.Generator().manual_seed(spec["seed"] + 1)
    old.batch["old_log_probs"] = worker_log_probs + spec["old_shift"] * torch.randn(worker_log_probs.shape, generator=g)
    batch = batch.union(old)

    results = {"world": WORLD, "worker_log_probs": worker_log_probs, "batch": dict(batch.batch.items()), "runs": {}}
    for run in spec["runs"]:
        run_config = with_loss(config, run)
        worker.set_loss_fn(partial(ppo_loss, config=omega_conf_to_dataclass(run_config.actor_rollout_ref.actor)))
        engine_config = worker.actor.engine_config
        engine_config.use_dynamic_bsz = run.get("max_tokens") is not None
        engine_config.micro_batch_size_per_gpu = run.get("micro") or 1
        engine_config.max_token_len_per_gpu = run.get("max_tokens") or 4096
        with torch.no_grad():
            for param, value in zip(engine.module.parameters(), start, strict=True):
                param.copy_(value)
        before = full_tensors(engine.module, None)
        with local_aggregation() if run.get("control") else nullcontext():
            output = RayPPOTrainer._update_actor(trainer_for(run_config, worker), batch.select(deepcopy=True))
        assert len(captured) == 1, f"expected one optimizer step, got {len(captured)}"
        grads = captured.pop()
        after = full_tensors(engine.module, None)
        metrics = {k: plain(v) for k, v in output.meta_info["metrics"].items()}
        results["runs"][run["name"]] = {
            "grad": grads,
            "delta": {name: after[name] - before[name] for name in after},
            "metrics": metrics,
        }
    if RANK == 0:
        torch.save(results, os.path.join(spec["out"], f"results_world{WORLD}.pt"))
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


def plain(value):
    """verl's metric values (numpy scalars, lists of them) as floats, loadable with torch.load(weights_only=True)."""
    return [float(x) for x in value] if isinstance(value, list) else float(value)


if __name__ == "__main__":
    main(sys.argv[1])
