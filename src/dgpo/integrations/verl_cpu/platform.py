"""A verl platform for plain CPU processes (verl 0.9.1 ships nvidia, huawei and amd platforms only).

Registered as ``cpu`` with verl's ``PlatformRegistry`` and selected by ``VERL_PLATFORM=cpu``. The device is the
CPU (``device_name == "cpu"``, gloo for collectives); to Ray it reports the accelerator resource ``"GPU"``, so
verl's resource-pool check (which counts only GPU/NPU) and its placement bundles work unchanged once
``ray_init.num_gpus`` declares that many logical "GPUs". Every memory query answers 0 and every device call is a
no-op: the CPU has nothing to synchronise, cache or seed apart from torch's own generator.
"""

from __future__ import annotations

import types
from contextlib import contextmanager

import torch
from verl.plugin.platform.platform_base import PlatformBase

PLATFORM_NAME = "cpu"


def _zero(*args, **kwargs) -> int:
    return 0


def _none(*args, **kwargs) -> None:
    return None


def cpu_device_module() -> types.ModuleType:
    """The ``torch.cuda``-like namespace verl calls for memory logging, seeding and synchronisation."""
    module = types.ModuleType("dgpo_cpu_device")
    for name in ("max_memory_allocated", "max_memory_reserved", "memory_allocated", "memory_reserved"):
        setattr(module, name, _zero)
    no_ops = ("synchronize", "empty_cache", "set_device", "manual_seed", "manual_seed_all", "reset_peak_memory_stats")
    for name in no_ops:
        setattr(module, name, _none)
    module.is_available = lambda: True
    module.device_count = lambda: 1
    module.current_device = lambda: "cpu"
    module.get_device_name = lambda *args: "cpu"
    module.mem_get_info = lambda *args: (0, 0)
    module.get_rng_state = lambda *args: torch.get_rng_state()
    module.set_rng_state = lambda state, *args: torch.set_rng_state(state)
    return module


class CPUPlatform(PlatformBase):
    """verl's platform interface on the CPU; Ray sees each training process as holding one logical "GPU"."""

    _module = cpu_device_module()

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> types.ModuleType:
        return self._module

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        return True

    def current_device(self) -> str:
        return "cpu"

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index) -> None:
        pass

    def synchronize(self, device_index=None) -> None:
        pass

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        pass

    def empty_cache(self) -> None:
        pass

    def get_device_capability(self, device_index: int = 0):
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        return "CUDA_VISIBLE_DEVICES"

    @contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        pass

    def profiler_stop(self) -> None:
        pass

    def ray_resource_name(self) -> str:
        # verl's resource check counts GPU/NPU only; logical GPUs declared in ray_init.num_gpus stand in for cores.
        return "GPU"

    def ray_noset_envvars(self) -> list[str]:
        return []

    def is_ipc_supported(self) -> bool:
        return False

    def cudart(self):
        return None
