"""GPU table: memory, peak dense bf16 throughput and a default price per GPU-hour.

Memory is what the driver reports (``nvidia-smi`` / ``rocm-smi`` MiB), not the marketing
figure. Peaks are the vendors' dense (no sparsity) bf16 tensor figures for the SXM/OAM parts.
Prices are indicative on-demand cloud rates in USD, a default to override (``prices=``); the
planner never looks them up on the network.
"""

from __future__ import annotations

from dataclasses import dataclass

from synth_lab.errors import ConfigError, Problem

MIB = 1 << 20
GIB = 1 << 30


@dataclass(frozen=True)
class GPU:
    name: str
    memory: int  # bytes
    peak_flops: float  # dense bf16, FLOP/s
    price_per_hour: float  # USD per GPU-hour


GPUS: dict[str, GPU] = {
    g.name: g
    for g in (
        GPU("A10G", 23028 * MIB, 70e12, 1.0),
        GPU("L4", 23034 * MIB, 121e12, 0.8),
        GPU("L40S", 46068 * MIB, 362e12, 1.9),
        GPU("A100-40GB", 40960 * MIB, 312e12, 1.6),
        GPU("A100-80GB", 81920 * MIB, 312e12, 2.0),
        GPU("H100", 81559 * MIB, 989e12, 3.0),
        GPU("H200", 143771 * MIB, 989e12, 3.8),
        GPU("B200", 183359 * MIB, 2250e12, 6.0),
        GPU("MI300X", 196592 * MIB, 1307e12, 3.5),
    )
}
_SPELLINGS = {"A100": "A100-80GB", "A100-80": "A100-80GB", "A100-40": "A100-40GB"}
DEFAULT_GPU = "H100"


def gpu_named(name: str | None, *, memory: int | None = None, price: float | None = None) -> GPU:
    """The table row for ``name`` (case-insensitive; ``None``: H100), with overrides applied.

    Raises:
        ConfigError: An unknown GPU type without a ``memory`` override.
    """
    key = (name or DEFAULT_GPU).upper().replace(" ", "").replace("_", "-")
    key = key.removesuffix("-SXM").removesuffix("-PCIE")
    key = _SPELLINGS.get(key, key)
    row = next((g for k, g in GPUS.items() if k.upper() == key), None)
    if row is None:
        if memory is None:
            known = ", ".join(GPUS)
            raise ConfigError(
                f"unknown GPU type {name!r}",
                [
                    Problem(
                        "compute.gpu_type",
                        None,
                        None,
                        f"the planner has no memory figure for {name!r}",
                        f"use one of {known}, or pass gpu_memory= (bytes)",
                        code="unknown_gpu",
                    )
                ],
            )
        row = GPU(str(name), memory, GPUS[DEFAULT_GPU].peak_flops, GPUS[DEFAULT_GPU].price_per_hour)
    return GPU(
        row.name,
        memory if memory is not None else row.memory,
        row.peak_flops,
        price if price is not None else row.price_per_hour,
    )
