"""Test-wide settings: a fixed torch thread count and a hypothesis profile without deadline (2 loaded cores)."""

import os

import torch
from hypothesis import HealthCheck, settings

torch.set_num_threads(int(os.environ.get("DGPO_TORCH_THREADS", "2")))

settings.register_profile(
    "dgpo", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dgpo"))
