"""A CPU rollout for verl: HF ``generate`` behind verl's rollout-server interface (``rollout.name=hf_cpu``).

verl 0.9.1 creates rollouts only as servers (vLLM, SGLang, TRT-LLM) driven by its agent loop, and none of them runs
on a CPU. Three small pieces stand in for them, one per role verl gives a rollout:

* :class:`HFCPUServer` — the server (a Ray actor, one per replica): holds an HF copy of the policy in fp32 and
  answers verl's token-in/token-out ``generate`` with sampled token ids, their log-probs and a stop reason. One
  request at a time (a lock), which on a CPU is as fast as batching a tiny model and keeps weight updates atomic.
* :class:`HFCPUReplica` — what the LLM server manager builds per replica: starts the server, names it so the
  training worker can find it, and forwards sleep / wake-up / abort to it (all no-ops on a CPU).
* :class:`HFCPUServerAdapter` — lives in each training worker (``ActorRolloutRefWorker``): with
  ``checkpoint_engine.backend=naive`` verl hands it the trained weights after every step, and it sends them to its
  replica's server through Ray's object store.

Log-probs are those of the sampling distribution, ``log_softmax(logits / temperature)`` before top-k/top-p — what
vLLM returns with verl's default ``logprobs_mode=processed_logprobs`` and what the actor recomputes — so the
rollout-vs-actor mismatch verl logs (``training/rollout_probs_diff_*``) measures weight sync, not a convention.
Greedy requests (temperature 0) report log-probs at temperature 1.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import ray
import torch
from verl.utils.config import omega_conf_to_dataclass
from verl.workers.config import HFModelConfig, RolloutConfig
from verl.workers.rollout.base import BaseRollout
from verl.workers.rollout.replica import RolloutReplica, TokenOutput

ROLLOUT_NAME = "hf_cpu"


def server_name(replica_rank: int, suffix: str = "") -> str:
    """The Ray actor name of a replica's server (the adapter in the training worker looks it up by name)."""
    return f"dgpo_hf_cpu_server_{replica_rank}{suffix}"


def load_policy(model_path: str) -> torch.nn.Module:
    """The HF causal LM at ``model_path`` in fp32 with eager attention, as the FSDP actor runs it on CPU."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_path, torch_dtype=torch.float32, attn_implementation="eager")
    return model.eval()


def sample(model: torch.nn.Module, prompt_ids: list[int], max_tokens: int, params: dict[str, Any], eos: set[int]):
    """Sample up to ``max_tokens`` tokens after ``prompt_ids``; return (token ids, their log-probs, stopped on EOS).

    A plain decoding loop over the KV cache rather than ``model.generate``: it needs the log-prob of each sampled
    token under the sampling distribution, exactly, and nothing else of ``generate``'s machinery.
    """
    temperature = float(params.get("temperature", 1.0))
    top_k = int(params.get("top_k", -1) or -1)
    top_p = float(params.get("top_p", 1.0))
    tokens: list[int] = []
    log_probs: list[float] = []
    with torch.no_grad():
        input_ids = torch.tensor([prompt_ids], dtype=torch.long)
        past = None
        for _ in range(max_tokens):
            out = model(input_ids=input_ids, past_key_values=past, use_cache=True)
            past = out.past_key_values
            logits = out.logits[0, -1].float()
            scaled = logits / temperature if temperature > 0 else logits
            log_p = torch.log_softmax(scaled, dim=-1)
            if temperature > 0:
                token = int(torch.multinomial(torch.softmax(_truncate(scaled, top_k, top_p), -1), 1))
            else:
                token = int(torch.argmax(logits))
            tokens.append(token)
            log_probs.append(float(log_p[token]))
            if token in eos:
                return tokens, log_probs, True
            input_ids = torch.tensor([[token]], dtype=torch.long)
    return tokens, log_probs, False


def _truncate(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Logits with everything outside the top-k and the top-p nucleus set to −inf (k ≤ 0 or p ≥ 1: no cut)."""
    if 0 < top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        probs = torch.softmax(sorted_logits, -1)
        drop = probs.cumsum(-1) - probs >= top_p  # mass before each token: keep the token that crosses p
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), float("-inf"))
    return logits


def _field(config: Any, key: str) -> Any:
    """A field of a verl config that may be a DictConfig (the replica passes the trainer's) or a dataclass."""
    return config.get(key) if hasattr(config, "get") else getattr(config, key, None)


class HFCPUServer:
    """One replica's generation server (a Ray actor): verl's token-in/token-out ``generate`` on an HF model."""

    def __init__(self, config: RolloutConfig, model_config: HFModelConfig, replica_rank: int):
        torch.set_num_threads(int(os.environ.get("DGPO_ROLLOUT_THREADS", "1")))
        self.config = omega_conf_to_dataclass(config)
        self.replica_rank = replica_rank
        # the path as given (a local folder here); HFModelConfig would also load the tokenizer and processor
        self.model = load_policy(_field(model_config, "local_path") or _field(model_config, "path"))
        generation = self.model.generation_config
        eos = generation.eos_token_id if generation.eos_token_id is not None else self.model.config.eos_token_id
        self.eos = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
        self.global_steps: int | None = None
        self.lock = asyncio.Lock()
        torch.manual_seed(self.config.seed + replica_rank)

    def max_tokens(self, prompt_ids: list[int], sampling_params: dict[str, Any]) -> int:
        """verl's bound: the request's max_tokens, else the response length, within the model length."""
        room = self.config.prompt_length + self.config.response_length - len(prompt_ids)
        asked = sampling_params.get("max_tokens", sampling_params.get("max_new_tokens", self.config.response_length))
        max_model_len = self.config.max_model_len or self.config.prompt_length + self.config.response_length
        return max(1, min(int(asked), self.config.response_length, room, max_model_len - len(prompt_ids)))

    async def generate(self, prompt_ids: list[int], sampling_params: dict[str, Any], request_id: str, **kwargs):
        if kwargs.get("image_data") or kwargs.get("video_data") or kwargs.get("audio_data"):
            raise ValueError("the hf_cpu rollout is text-only: image, video and audio inputs are not supported")
        params = dict(sampling_params)
        max_tokens = self.max_tokens(list(prompt_ids), params)
        async with self.lock:
            tokens, log_probs, stopped = await asyncio.to_thread(
                sample, self.model, list(prompt_ids), max_tokens, params, self.eos
            )
        return TokenOutput(
            token_ids=tokens,
            log_probs=log_probs if params.get("logprobs") else None,
            stop_reason="completed",
            num_preempted=0,
            extra_fields={"global_steps": self.global_steps, "stopped_on_eos": stopped},
        )

    async def load_weights(self, weights: dict[str, torch.Tensor], global_steps: int | None = None) -> int:
        """Copy the trained weights in (names as in the HF checkpoint); return how many tensors were loaded."""
        async with self.lock:
            missing, unexpected = self.model.load_state_dict(weights, strict=False)
            # tied embeddings: the actor sends lm_head.weight or not depending on its own tying, either is fine
            missing = [name for name in missing if name != "lm_head.weight"]
            if missing or unexpected:
                raise RuntimeError(f"weight sync to the hf_cpu rollout: missing {missing}, unexpected {unexpected}")
            self.global_steps = global_steps
        return len(weights)

    async def set_global_steps(self, global_steps: int) -> None:
        self.global_steps = global_steps

    # verl's memory management and partial-rollout controls have nothing to do on a CPU.
    async def wake_up(self, tags: list[str] | None = None) -> None: ...

    async def sleep(self) -> None: ...

    async def clear_kv_cache(self) -> None: ...

    async def release_kv_cache(self) -> None: ...

    async def resume_kv_cache(self) -> None: ...

    async def abort_all_requests(self, reset_prefix_cache: bool = True, reject_request: bool = False) -> dict:
        return {"aborted_count": 0, "request_ids": []}

    async def abort_request(self, request_id: str, reset_prefix_cache: bool = True) -> dict:
        return {"aborted": False, "request_id": request_id}

    async def resume_generation(self) -> None: ...

    async def wait_for_requests_to_drain(self) -> None:
        async with self.lock:
            return None

    async def start_profile(self, **kwargs) -> None: ...

    async def stop_profile(self) -> None: ...


class HFCPUReplica(RolloutReplica):
    """verl's rollout replica for ``rollout.name=hf_cpu``: one :class:`HFCPUServer` actor per replica."""

    async def launch_servers(self) -> None:
        if self.world_size != 1:
            raise ValueError(
                "the hf_cpu rollout runs one process per replica: set actor_rollout_ref.rollout.tensor_model_parallel_"
                f"size, data_parallel_size and pipeline_model_parallel_size to 1 (replica world {self.world_size})"
            )
        name = server_name(self.replica_rank, self.name_suffix)
        server = (
            ray.remote(HFCPUServer)
            .options(name=name, num_cpus=0, max_concurrency=self.max_concurrency)
            .remote(config=self.config, model_config=self.model_config, replica_rank=self.replica_rank)
        )
        self.servers = [server]
        self._server_handle = server
        self._server_address = name  # the load balancer's key; there is no HTTP endpoint


class HFCPUServerAdapter(BaseRollout):
    """The rollout inside a training worker: sends the weights verl hands it to this rank's replica server."""

    def __init__(self, config, model_config, device_mesh, replica_rank: int = -1):
        super().__init__(config, model_config, device_mesh)
        rank = int(os.environ.get("RANK", "0"))
        self.replica_rank = rank if replica_rank == -1 else replica_rank  # one process per replica (checked above)
        self.server = None

    async def resume(self, tags: list[str]) -> None: ...

    async def release(self) -> None: ...

    async def update_weights(self, weights, wire_format: str = "named_tensors", **kwargs) -> None:
        if wire_format != "named_tensors":
            raise ValueError(f"the hf_cpu rollout takes full named tensors, not {wire_format!r}")
        if kwargs.get("peft_config") is not None:
            raise ValueError("the hf_cpu rollout takes merged weights: set actor_rollout_ref.model.lora.merge=True")
        state = {}
        async for name, tensor in _iterate(weights):
            state[name] = tensor.detach().to("cpu", torch.float32).clone()
        if self.server is None:
            self.server = ray.get_actor(server_name(self.replica_rank))
        await self.server.load_weights.remote(state, kwargs.get("global_steps"))


async def _iterate(weights):
    """The (name, tensor) pairs of a sync or async generator."""
    if hasattr(weights, "__aiter__"):
        async for item in weights:
            yield item
    else:
        for item in weights:
            yield item
