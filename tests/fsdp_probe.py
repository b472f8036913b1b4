"""Run under torchrun (2 ranks, gloo): after a micro-batch that is not the last of its step,
what does FSDP hold as gradients? Rank 0 prints one JSON line."""

from __future__ import annotations

import json
import sys

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from synth_lab.config import load_config
from synth_lab.train.distributed import (
    DistEnv,
    decay_parameter_names,
    init_process_group,
    make_strategy,
    param_groups,
)
from synth_lab.train.model import Precision


def main() -> None:
    sharding = sys.argv[1]
    env = DistEnv.from_environ()
    init_process_group(env)
    torch.manual_seed(0)
    cfg = Qwen2Config(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2,
    )  # fmt: skip
    model = Qwen2ForCausalLM(cfg)
    config = load_config(
        '[job]\nmodel = "synth-lab/tiny-chat"\n[hyperparameters]\nn_epochs = 1\n'
        f'[hyperparameters.parallelism]\nfsdp = true\nfsdp_sharding_strategy = "{sharding}"\n'
    )
    strategy = make_strategy(config, env, Precision("fp32", None, False, "probe"), 2)
    decay = decay_parameter_names(model)
    model, _, _ = strategy.setup(
        model,
        lambda m: torch.optim.AdamW(param_groups(m, 0.1, decay)),
        lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0),
    )
    ids = torch.randint(0, 64, (1, 16))
    with strategy.accumulate(last=False):
        model(input_ids=ids, labels=ids).loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    held = sum(g.to_local().numel() if hasattr(g, "to_local") else g.numel() for g in grads)
    full = sum(p.numel() for p in model.parameters())
    if env.is_main:
        print(json.dumps({"grad_elements": held, "param_elements": full}), flush=True)
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
