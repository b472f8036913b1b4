"""FSDP2 (``torch.distributed.fsdp.fully_shard``): parameters, gradients and optimizer state
sharded across ranks, one parameter at a time.

Per-parameter sharding (DTensors) lets one unit hold a frozen bf16 base and fp32 LoRA weights,
which FSDP1's flat parameters refuse ("Must flatten tensors with uniform dtype"). Parameters keep
their names and shapes, so the optimizer's groups and the checkpoints read as without FSDP.

QLoRA: the 4-bit base weights stay out of sharding (``ignored_params``). They are frozen, a
quarter of the bf16 size, and carry their quantization state beside the tensor, which a DTensor
shard would lose; every rank quantizes its own copy on load. Everything else (adapters,
embeddings, norms, the output layer) is sharded as for LoRA.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import torch

from synth_lab.train.distributed import Strategy, transformer_block_classes

SHARDED_OPTIMIZER = "optimizer"  # a torch.distributed.checkpoint folder inside a checkpoint


def _mesh(strategy: str, device_type: str) -> Any:
    """The device mesh: 1-D for full/grad-op sharding, replicate × shard for the others."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh

    world = dist.get_world_size()
    if strategy == "no_shard":  # every rank a replica: DDP's memory, FSDP's code path
        return init_device_mesh(device_type, (world, 1), mesh_dim_names=("replicate", "shard"))
    if strategy == "hybrid_shard":  # shard within a node, replicate across nodes
        local = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
        return init_device_mesh(
            device_type, (world // local, local), mesh_dim_names=("replicate", "shard")
        )
    return init_device_mesh(device_type, (world,), mesh_dim_names=("shard",))


def quantized_parameters(model: Any) -> set[Any]:
    """The 4-bit (bitsandbytes) weights of a QLoRA model: frozen, never sharded."""
    return {p for p in model.parameters() if type(p).__name__ == "Params4bit"}


class FSDPStrategy(Strategy):
    """FSDP2 over the transformer blocks and the root, with a mixed-precision policy."""

    def wrap(self, model: Any) -> Any:
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        par = self.config.parallelism
        self.sharding = (par.fsdp_sharding_strategy or "full_shard").lower()
        self.name = f"FSDP ({self.sharding})"
        # Compute in the autocast dtype, reduce gradients in fp32 (bf16 sums lose the small
        # updates); fp32 runs keep fp32 throughout.
        policy = MixedPrecisionPolicy(
            param_dtype=self.precision.autocast, reduce_dtype=torch.float32
        )
        kwargs: dict[str, Any] = {
            "mesh": _mesh(self.sharding, self.env.device.type),
            "mp_policy": policy,
            # shard_grad_op keeps parameters gathered from forward to backward (ZeRO-2).
            "reshard_after_forward": self.sharding != "shard_grad_op",
            "ignored_params": quantized_parameters(model),
        }
        qlora = bool(kwargs["ignored_params"])
        # Rank 0 loaded the weights; the others hold an empty (meta) model. Keep rank 0's
        # full tensors until they are sent: sharding replaces the module's parameters.
        # (QLoRA: every rank loaded and quantized the same weights; nothing to send.)
        full = model.state_dict() if self.env.is_main and not qlora else {}
        if (par.fsdp_auto_wrap_policy or "transformer_block") == "transformer_block":
            blocks = tuple(transformer_block_classes(model))
            for module in list(model.modules()):
                if blocks and isinstance(module, blocks):
                    fully_shard(module, **kwargs)
        fully_shard(model, **kwargs)
        if not qlora:
            self._fill_from_rank0(model, full)
        del full
        if self.scaler is not None:
            from torch.distributed.fsdp.sharded_grad_scaler import ShardedGradScaler

            self.scaler = ShardedGradScaler(self.env.device.type)
        return model

    def _fill_from_rank0(self, model: Any, full: dict[str, Any]) -> None:
        """Give every rank its shards of rank 0's weights, and rank 0's buffers."""
        import torch.distributed as dist
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

        if any(p.is_meta for p in model.parameters()) or any(b.is_meta for b in model.buffers()):
            model.to_empty(device=self.env.device)
        options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True)
        set_model_state_dict(model, full, options=options)
        # Buffers are not sharded, and non-persistent ones (rotary frequencies) are not in
        # any state dict: rank 0 computed them, everyone takes its copy.
        for buffer in model.buffers():
            dist.broadcast(buffer.data, src=0)

    @property
    def bare(self) -> Any:
        return self.model  # fully_shard changes the class in place; nothing to unwrap

    def accumulate(self, last: bool) -> contextlib.AbstractContextManager[Any]:
        """Gradient accumulation without full-size gradients on every rank.

        Full and hybrid sharding reduce-scatter every micro-batch, so gradients only ever
        exist as this rank's shard (``set_requires_gradient_sync(False)`` would keep them whole,
        in fp32, until the last micro-batch); hybrid sharding skips the all-reduce between
        replicas until the last one. ``shard_grad_op`` and ``no_shard`` trade memory for speed
        anyway: they skip all gradient communication until the last micro-batch.
        """
        if self.sharding in ("shard_grad_op", "no_shard"):
            self.model.set_requires_gradient_sync(last)
        elif self.sharding == "hybrid_shard":
            self.model.set_requires_all_reduce(last)
        return contextlib.nullcontext()

    def _clip(self, max_norm: float) -> torch.Tensor:
        params = [p for p in self.model.parameters() if p.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        return norm.full_tensor() if hasattr(norm, "full_tensor") else norm

    def _options(self, **kwargs: Any) -> Any:
        from torch.distributed.checkpoint.state_dict import StateDictOptions

        # The full state only on rank 0, in host memory: no rank holds two copies on device.
        return StateDictOptions(full_state_dict=True, cpu_offload=True, **kwargs)

    def model_state(self) -> dict[str, Any] | None:
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        state = get_model_state_dict(self.model, options=self._options())
        return state if self.env.is_main else None

    def save_model(self, folder: Path) -> None:
        bare = self.bare
        if not hasattr(bare, "peft_config"):
            super().save_model(folder)
            return
        # The parameters are shards: gather the adapter weights and write peft's layout.
        state = self.model_state()
        if self.env.is_main:
            import dataclasses

            from safetensors.torch import save_file

            name = getattr(bare, "active_adapter", "default")
            adapter = {
                k.replace(f".{name}.", "."): v.contiguous()
                for k, v in (state or {}).items()
                if "lora_" in k
            }
            folder.mkdir(parents=True, exist_ok=True)
            save_file(adapter, str(folder / "adapter_model.safetensors"), {"format": "pt"})
            config = dataclasses.replace(bare.peft_config[name], inference_mode=True)
            config.save_pretrained(str(folder))

    def optimizer_state(self) -> dict[str, Any] | None:
        return None  # sharded, see save_sharded

    def save_sharded(self, folder: Path) -> None:
        """The optimizer state with ``torch.distributed.checkpoint``: each rank writes its own
        shards into ``optimizer/``; nothing is gathered."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        state = {"optimizer": get_optimizer_state_dict(self.model, self.optimizer)}
        dcp.save(state, checkpoint_id=str(folder / SHARDED_OPTIMIZER))

    def load_sharded(self, folder: Path) -> bool:
        """Read this rank's shards back (any world size: DCP reshards on load)."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import (
            get_optimizer_state_dict,
            set_optimizer_state_dict,
        )

        path = folder / SHARDED_OPTIMIZER
        if not path.is_dir():
            return False
        # The template (this rank's shards, state initialised) says what to read and where.
        state = {"optimizer": get_optimizer_state_dict(self.model, self.optimizer)}
        dcp.load(state, checkpoint_id=str(path))
        set_optimizer_state_dict(self.model, self.optimizer, state["optimizer"])
        return True

    def load_optimizer_state(self, state: dict[str, Any]) -> None:
        """A full optimizer state (``optimizer.pt`` of checkpoints before sharded saving)."""
        from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

        options = self._options(broadcast_from_rank0=False)
        set_optimizer_state_dict(self.model, self.optimizer, state, options=options)
