"""Both request forms end to end with the real trainer: the CLI's and the Python SDK's.

The same config and data go to ``synth-lab serve`` (the tiny model behind a model map) once as
synth-ai's CLI sends them and once as its SDK does (top-level ``validation_file``, a
``total_steps`` budget, ``suffix`` and ``integrations``). Both validate; the SDK job runs exactly
its budget.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import chat, write_jsonl

from synth_lab.client import SynthClient, submit
from synth_lab.client.remote import RemoteJob
from synth_lab.server.process import ServerProcess

pytest.importorskip("torch")
pytest.importorskip("peft")

CONFIG = """
[job]
model = "Qwen/Qwen3-0.6B"

[compute]
gpu_type = "H100"
gpu_count = 1

[training]
mode = "lora"

[training.lora]
r = 4
alpha = 8

[training.validation]
enabled = true
eval_steps = 2

[hyperparameters]
n_epochs = 1
per_device_batch = 2
gradient_accumulation_steps = 1
learning_rate = 1e-3
sequence_length = 128
train_kind = "peft"
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    args = ["--accept-any-compute", "--model-map", "Qwen/Qwen3-0.6B=synth-lab/tiny-chat"]
    with ServerProcess(tmp_path_factory.mktemp("sdk-e2e"), extra_args=args) as srv:
        yield srv


def records(n: int) -> list[dict]:
    return [chat(f"What is {i} times 2?", f"{i} times 2 is {2 * i}.") for i in range(n)]


def steps_of(job: RemoteJob, name: str) -> list[int]:
    return [p["step"] for p in job.points if p["name"] == name]


def test_cli_and_sdk_forms_train_and_validate_alike(server: ServerProcess, tmp_path: Path) -> None:
    train = write_jsonl(tmp_path / "train.jsonl", records(6))  # 3 steps per epoch at batch 2
    val = write_jsonl(tmp_path / "val.jsonl", records(2))
    config = CONFIG + f'\n[data]\nvalidation_path = "{val}"\n'
    api = SynthClient(api_key=server.api_key, base_url=server.url, dotenv=None)
    watch = {"client": api, "poll_interval": 0.2, "live": False, "timeout": 300}

    cli = submit(config, train, **watch)
    sdk = submit(
        config,
        train,
        form="sdk",
        total_steps=4,
        suffix="times-two",
        integrations={"wandb": {"project": "demo"}},
        **watch,
    )

    for job in (cli, sdk):
        assert job.succeeded, job.failure_reason()
        assert all(math.isfinite(p["value"]) for p in job.points if p["name"] == "train.loss")
    # The CLI's job runs its epoch; the SDK's runs exactly its budget, past the epoch's end.
    assert steps_of(cli, "train.loss") == [1, 2, 3]
    assert steps_of(sdk, "train.loss") == [1, 2, 3, 4]
    assert cli.doc["result"]["steps"] == 3 and sdk.doc["result"]["steps"] == 4
    # Validation happened in both, from either placement of the validation file.
    assert 2 in steps_of(cli, "val.loss") and steps_of(sdk, "val.loss")[:2] == [2, 4]
    assert sdk.doc["validation_file"] and cli.doc["validation_file"]
    assert cli.doc["step_budget"]["governed_by"] == "n_epochs"
    assert sdk.doc["step_budget"] == {"governed_by": "total_steps", "n_epochs": 1, "total_steps": 4}
    assert "n_epochs" not in sdk.doc["hyperparameters"]

    assert cli.doc["fine_tuned_model"] == f"ft:Qwen/Qwen3-0.6B:{cli.id}"
    assert sdk.doc["fine_tuned_model"] == f"ft:Qwen/Qwen3-0.6B:times-two:{sdk.id}"
    assert sdk.doc["integrations"] == {"wandb": {"project": "demo"}}
    warned = [e for e in sdk.events if e["type"] == "sft.request.ignored"]
    assert [(e["level"], e["data"]["field"]) for e in warned] == [("warning", "integrations")]
    assert not [e for e in cli.events if e["type"] == "sft.request.ignored"]
