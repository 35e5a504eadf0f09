"""Test-wide settings: a fixed torch thread count and a hypothesis profile without deadline (2 loaded cores)."""

import os

import torch
from hypothesis import HealthCheck, settings

torch.set_num_threads(int(os.environ.get("DGPO_TORCH_THREADS", "2")))

settings.register_profile(
    "dgpo", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dgpo"))


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A randomly initialised tiny Qwen2 model + tokenizer, built once per test session (a few seconds)."""
    from dgpo.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))
