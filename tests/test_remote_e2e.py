"""End to end with the real trainer: ``submit`` to ``synth-lab serve``, the tiny model behind a
model map, on whatever this machine has (``--accept-any-compute``)."""

from __future__ import annotations

import json
import math
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import chat, write_jsonl
from server_doubles import restart_while_watching

from synth_lab.client import SynthClient, submit
from synth_lab.client.remote import RemoteJob
from synth_lab.server.process import ServerProcess
from synth_lab.train.metrics import POINT_COLUMNS

pytest.importorskip("torch")
pytest.importorskip("peft")

CONFIG = """
[job]
model = "Qwen/Qwen3-0.6B"

[compute]
gpu_type = "H100"
gpu_count = 2

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
    with ServerProcess(tmp_path_factory.mktemp("e2e"), extra_args=args) as srv:
        yield srv


def records(n: int) -> list[dict]:
    return [chat(f"What is {i} plus {i}?", f"{i} plus {i} is {2 * i}.") for i in range(n)]


def test_submit_trains_the_tiny_model_with_lora(server: ServerProcess, tmp_path: Path) -> None:
    train = write_jsonl(tmp_path / "train.jsonl", records(8))
    val = write_jsonl(tmp_path / "val.jsonl", records(2))
    config = CONFIG + f'\n[data]\nvalidation_path = "{val}"\n'
    api = SynthClient(api_key=server.api_key, base_url=server.url, dotenv=None)
    job = submit(config, train, client=api, poll_interval=0.2, live=False, timeout=300)

    assert job.succeeded, job.failure_reason()
    # Two GPUs asked, none here: one process with twice the accumulation keeps the batch of 4.
    adjusted = [e for e in job.events if e["type"] == "sft.compute.adjusted"]
    assert adjusted and adjusted[0]["data"]["requested_gpus"] == 2
    train_loss = [p for p in job.points if p["name"] == "train.loss"]
    assert [p["step"] for p in train_loss] == [1, 2]
    assert all(math.isfinite(p["value"]) for p in train_loss)
    assert [p["step"] for p in job.points if p["name"] == "val.loss"] == [2]
    assert {"train.learning_rate", "train.tokens_per_second"} <= {p["name"] for p in job.points}
    table = job.metrics  # the same columns and types as a local run's TrainResult.metrics
    assert list(table.columns) == list(POINT_COLUMNS)
    assert str(table["created_at"].dtype) == "datetime64[ns, UTC]"
    final = server.data_dir / "jobs" / job.id / job.doc["result"]["final_dir"]
    assert not Path(job.doc["result"]["final_dir"]).is_absolute()  # no server paths
    adapter = json.loads((final / "adapter_config.json").read_text())
    assert adapter["r"] == 4 and adapter["lora_alpha"] == 8  # [training.lora] reached the trainer
    assert job.doc["fine_tuned_model"] == f"ft:Qwen/Qwen3-0.6B:{job.id}"


@pytest.mark.slow
def test_restart_resumes_the_real_trainer_from_its_checkpoint(tmp_path: Path) -> None:
    steps = 240
    train = write_jsonl(tmp_path / "train.jsonl", records(steps))
    config = CONFIG.replace("per_device_batch = 2", "per_device_batch = 1").replace(
        "gpu_count = 2", "gpu_count = 1"
    )
    config = config.replace("[training.validation]\nenabled = true\neval_steps = 2\n", "")
    args = ["--accept-any-compute", "--model-map", "Qwen/Qwen3-0.6B=synth-lab/tiny-chat"]
    with ServerProcess(tmp_path / "srv", extra_args=args) as srv:
        api = SynthClient(api_key=srv.api_key, base_url=srv.url, dotenv=None)
        job = submit(config, train, client=api, wait=False)
        watcher = RemoteJob(api, job.id, poll_interval=0.2)
        restart_while_watching(srv, watcher, after_step=30, sig=signal.SIGTERM, timeout=300)

        assert watcher.status == "succeeded", watcher.failure_reason()
        events = api.jobs.events(job.id, limit=1000)
        types = Counter(e["type"] for e in events)
        assert types["sft.job.resumed"] == 1 and types["sft.job.completed"] == 1
        started = [e["data"] for e in events if e["type"] == "sft.training.started"]
        assert started[0]["start_step"] == 0 and started[1]["start_step"] >= 30
        points = api.jobs.metrics(job.id, name="train.loss", limit=5000)
        assert [p["step"] for p in points] == list(range(1, steps + 1))
        assert [j["id"] for j in api.jobs.list()] == [job.id]
