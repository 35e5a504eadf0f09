"""Sampling backends for evaluation: vLLM when installed with a GPU, else transformers' batched ``generate``."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dgpo.ranges import check_range


@dataclass(frozen=True)
class Generation:
    text: str
    tokens: int


@dataclass(frozen=True)
class SamplingSettings:
    """The settings of one generate call, and the one check of their ranges. No defaults: ``dgpo eval``'s are
    :class:`dgpo.eval.runner.EvalConfig`'s (the paper's protocol), held-out evaluation's are ``HeldOutConfig``'s."""

    temperature: float  # 0 = greedy (top_p is then unused)
    top_p: float
    max_new_tokens: int

    def __post_init__(self) -> None:
        check_range("temperature", self.temperature, 0)
        check_range("top_p", self.top_p, 0, 1, open_low=True)
        check_range("max_new_tokens", self.max_new_tokens, 1)


class Backend(Protocol):
    name: str
    tokenizer: object

    def generate(self, prompts: list[str], settings: SamplingSettings, seeds: list[int]) -> list[Generation]:
        """One generation per prompt; ``seeds`` holds one seed per sample (identical prompts must differ)."""


def check_model_path(model: str) -> None:
    """A local-looking path must exist; a hub id (``org/name``) is left to :func:`check_model_available`."""
    looks_local = model.startswith((".", "/", "~")) or model.count("/") > 1
    if looks_local and not Path(model).expanduser().exists():
        raise FileNotFoundError(f"model path not found: {model}")


def hub_offline() -> bool:
    """Whether Hugging Face downloads are switched off (``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE``)."""
    from huggingface_hub import constants

    flag = os.environ.get("TRANSFORMERS_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")
    return bool(constants.HF_HUB_OFFLINE) or flag


def check_model_available(model: str) -> None:
    """Fail at once, in one line, on a model that is neither on disk, in the Hugging Face cache, nor on the hub.

    Left to transformers, an offline or unknown hub id is retried five times and ends in a traceback of about 250
    lines, after the run directory was created. A cached model (``config.json`` in the hub cache) is accepted
    offline; online, one metadata request (10 s timeout) tells a missing repository from an unreachable hub.
    """
    check_model_path(model)
    local = Path(model).expanduser()
    if local.exists():
        if not (local / "config.json").is_file():
            raise FileNotFoundError(f"model path {model} holds no config.json (not a Hugging Face model directory)")
        return
    from huggingface_hub import model_info, try_to_load_from_cache
    from huggingface_hub.errors import GatedRepoError, HFValidationError, RepositoryNotFoundError

    try:
        cached = try_to_load_from_cache(model, "config.json")
    except HFValidationError as err:
        raise FileNotFoundError(f"model {model} is neither a local path nor a valid hub id") from err
    if isinstance(cached, str):
        return
    if hub_offline():
        raise FileNotFoundError(
            f"model {model} not found locally and the hub is offline (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE)"
        )
    try:
        model_info(model, timeout=10)
    except GatedRepoError:
        return  # it exists; loading it needs access, and transformers says so
    except RepositoryNotFoundError as err:
        raise FileNotFoundError(f"model {model} not found locally or on the hub (or private: log in first)") from err
    except Exception as err:  # connection errors come from httpx/requests, whichever huggingface_hub uses
        raise FileNotFoundError(f"model {model} not found locally and the hub is unreachable ({err})") from err


def check_template(template: str, name: str = "template") -> None:
    """The prompt is built with ``str.format(problem=...)``: ``{problem}`` must be there, and every other brace
    doubled. A bare ``\\boxed{}`` would raise ``IndexError`` at the first prompt, after the output was created."""
    if "{problem}" not in template:
        raise ValueError(f"{name} must contain '{{problem}}', got {template!r}")
    try:
        template.format(problem="")
    except (IndexError, KeyError, ValueError) as err:
        raise ValueError(
            f"{name} {template!r} has braces other than {{problem}} ({type(err).__name__}: {err}); "
            "double literal braces, e.g. \\boxed{{}}"
        ) from err


def check_backend(backend: str) -> None:
    """A valid backend name, and vLLM installed (with a GPU) when it is asked for by name."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
    if backend == "vllm":
        import torch

        if importlib.util.find_spec("vllm") is None:
            raise ValueError("backend vllm needs vLLM, which is not installed (pip install vllm; it needs a GPU)")
        if not torch.cuda.is_available():
            raise ValueError("backend vllm needs a GPU, and none is visible; use the transformers backend")


def vllm_available() -> bool:
    import torch

    return importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()


class HFBackend:
    """transformers ``generate`` with left padding; works on CPU (slowly) and GPU."""

    name = "transformers"
    #: Prompts per generate call of ``dgpo eval`` unless ``--batch-size`` says otherwise.
    DEFAULT_BATCH_SIZE = 8

    @classmethod
    def from_model(cls, model, tokenizer, batch_size: int = 64) -> HFBackend:
        """Wrap an already loaded model and tokenizer (e.g. during training)."""
        backend = cls.__new__(cls)
        backend.model, backend.tokenizer, backend.batch_size = model, tokenizer, batch_size
        backend.device = next(model.parameters()).device
        return backend

    def __init__(self, model: str, batch_size: int = DEFAULT_BATCH_SIZE):
        import torch
        from transformers import AutoModelForCausalLM
        from transformers.utils import logging as hf_logging

        from dgpo.tiny import load_tokenizer

        hf_logging.disable_progress_bar()  # our own progress bar is the one to watch

        check_model_path(model)
        try:
            self.tokenizer = load_tokenizer(model)
            dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
            self.model = AutoModelForCausalLM.from_pretrained(model, dtype=dtype)
        except OSError as err:
            raise FileNotFoundError(f"could not load model {model!r}: {err}") from err
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model.to(self.device).eval()
        self.batch_size = batch_size

    def generate(self, prompts: list[str], settings: SamplingSettings, seeds: list[int]) -> list[Generation]:
        import torch

        was_training = self.model.training
        self.model.eval()
        # One batch shares torch's RNG; seeding it with the first sample's seed keeps reruns of a batch identical.
        torch.manual_seed(seeds[0])
        batch = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        sampling = settings.temperature > 0
        with torch.no_grad():
            output = self.model.generate(
                **batch,
                max_new_tokens=settings.max_new_tokens,
                do_sample=sampling,
                temperature=settings.temperature if sampling else None,
                top_p=settings.top_p if sampling else None,
                top_k=None,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        self.model.train(was_training)
        new_tokens = output[:, batch["input_ids"].shape[1] :]
        results = []
        for row in new_tokens:
            length = int((row != self.tokenizer.pad_token_id).sum())
            results.append(Generation(self.tokenizer.decode(row, skip_special_tokens=True), length))
        return results


class VLLMBackend:
    """vLLM offline generation (GPU only; not exercised in CI)."""

    name = "vllm"
    #: Prompts per generate call of ``dgpo eval`` unless ``--batch-size`` says otherwise.
    DEFAULT_BATCH_SIZE = 256

    def __init__(self, model: str, batch_size: int = DEFAULT_BATCH_SIZE):
        from vllm import LLM

        check_model_path(model)
        self.llm = LLM(model=model)
        self.tokenizer = self.llm.get_tokenizer()
        self.batch_size = batch_size

    def generate(self, prompts: list[str], settings: SamplingSettings, seeds: list[int]) -> list[Generation]:
        from vllm import SamplingParams

        # A seed per request: the k copies of one prompt would otherwise sample identical completions.
        params = [
            SamplingParams(
                temperature=settings.temperature, top_p=settings.top_p, max_tokens=settings.max_new_tokens, seed=seed
            )
            for seed in seeds
        ]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        return [Generation(o.outputs[0].text, len(o.outputs[0].token_ids)) for o in outputs]


def generate_rows(backend: Backend, problems: list[dict], template: str, settings, seeds: list[int]):
    """One completion per problem row (its ``problem`` in ``template``), aligned with ``problems``."""
    from dgpo.data.prompts import build_prompt

    prompts = [build_prompt(backend.tokenizer, row["problem"], template) for row in problems]
    return backend.generate(prompts, settings, seeds)


def sample_and_score(backend: Backend, verifier, problems: list[dict], template: str, settings, seeds: list[int]):
    """Generate one completion per problem row (``problem``, ``answer``) and score it with ``verifier``.

    Returns (generations, scored answers), aligned with ``problems``.
    """
    generations = generate_rows(backend, problems, template, settings, seeds)
    return generations, verifier.score([g.text for g in generations], [row["answer"] for row in problems])


BACKENDS = ("auto", "transformers", "vllm")


def make_backend(model: str, backend: str = "auto", batch_size: int | None = None) -> Backend:
    """The requested backend; ``auto`` picks vLLM when it is installed and a GPU is present."""
    check_backend(backend)
    if backend == "vllm" or (backend == "auto" and vllm_available()):
        return VLLMBackend(model, batch_size or VLLMBackend.DEFAULT_BATCH_SIZE)
    return HFBackend(model, batch_size or HFBackend.DEFAULT_BATCH_SIZE)
