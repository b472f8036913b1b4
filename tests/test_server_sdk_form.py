"""The SDK's request form (synth-ai's ``LearningClient``/``FtClient``) against ``synth-lab serve``.

Routes and codes with the stand-in trainer; the real trainer runs both forms in
``test_sdk_form_e2e.py``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import GOLDEN, chat, write_jsonl
from server_doubles import FAKE, FakeServer

from synth_lab.config import SFTConfig
from synth_lab.errors import ConfigError
from synth_lab.job.payload import build_payload, request_form_payload, sdk_payload
from synth_lab.job.requestform import step_budget, validation_file_id
from synth_lab.server.errors import RequestError
from synth_lab.server.process import ServerProcess

SDK_PAYLOAD = json.loads((GOLDEN / "sdk_create_job.payload.json").read_text())
TERMINAL = {"succeeded", "failed", "cancelled"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    args = ["--runner", FAKE, "--gpus", "1", "--model-map", "Qwen/Qwen3-0.6B=synth-lab/tiny-chat"]
    with FakeServer(tmp_path_factory.mktemp("sdk"), extra_args=args) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {server.api_key}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30.0) as http:
        yield http


@pytest.fixture(scope="module")
def files(client: httpx.Client, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("sdk-files")
    ids = {}
    for name, n in (("train", 10), ("val", 3), ("val2", 3)):
        path = write_jsonl(root / f"{name}.jsonl", [chat(f"q{i}", f"a{i}") for i in range(n)])
        with path.open("rb") as handle:
            answer = client.post("/learning/files", files={"file": (path.name, handle)})
        assert answer.status_code == 201, answer.text
        ids[name] = answer.json()["id"]
    return ids


def sdk_body(files: dict[str, str], **changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(SDK_PAYLOAD)
    body.update({"training_file_id": files["train"], "validation_file": files["val"], **changes})
    return body


def finish(client: httpx.Client, job_id: str) -> dict[str, Any]:
    client.post(f"/learning/jobs/{job_id}/start", json={})
    # The stream ends when the job does: no polling loop, no sleeps.
    with client.stream(
        "GET", f"/learning/jobs/{job_id}/events", headers={"Accept": "text/event-stream"}
    ) as stream:
        for _ in stream.iter_lines():
            pass
    doc = client.get(f"/learning/jobs/{job_id}").json()
    assert doc["status"] in TERMINAL
    return doc


def test_the_sdk_s_own_payload_runs_its_step_budget(
    client: httpx.Client, files: dict[str, str]
) -> None:
    body = sdk_body(files, suffix="my-bot", integrations={"wandb": {"project": "p"}})
    body["hyperparameters"]["total_steps"] = 7
    created = client.post("/learning/jobs", json=body)
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["validation_file"] == files["val"]
    assert job["step_budget"] == {"governed_by": "total_steps", "n_epochs": 1, "total_steps": 7}
    assert job["integrations"] == {"wandb": {"project": "p"}} and job["suffix"] == "my-bot"

    doc = finish(client, job["id"])
    assert doc["status"] == "succeeded", doc["error"]
    assert doc["result"]["steps"] == 7  # 10 records, but the budget is 7 steps
    assert doc["fine_tuned_model"] == f"ft:Qwen/Qwen3-0.6B:my-bot:{job['id']}"
    events = client.get(f"/learning/jobs/{job['id']}/events").json()["events"]
    ignored = [e for e in events if e["type"] == "sft.request.ignored"]
    assert [(e["level"], e["data"]["field"]) for e in ignored] == [("warning", "integrations")]
    assert "wandb" in ignored[0]["message"]


def test_forwarded_keys_nothing_acts_on_are_warned_about(
    client: httpx.Client, files: dict[str, str]
) -> None:
    body = sdk_body(files)
    body["hyperparameters"]["parallelism"] = {"fsdp": False, "zero_offload": True}
    job = client.post("/learning/jobs", json=body).json()
    events = client.get(f"/learning/jobs/{job['id']}/events").json()["events"]
    ignored = [e for e in events if e["type"] == "sft.request.ignored"]
    assert [e["data"]["field"] for e in ignored] == ["hyperparameters.parallelism.zero_offload"]


@pytest.mark.parametrize("key", ["train_steps", "steps"])
def test_every_step_key_of_the_sdk_governs_over_n_epochs(
    client: httpx.Client, files: dict[str, str], key: str
) -> None:
    body = sdk_body(files)
    body["hyperparameters"] = {"n_epochs": 3, key: 4, "batch_size": 2, "per_device_batch": 1}
    job = client.post("/learning/jobs", json=body).json()
    assert job["step_budget"]["governed_by"] == key
    events = client.get(f"/learning/jobs/{job['id']}/events").json()["events"]
    fields = {e["data"]["field"] for e in events if e["type"] == "sft.request.ignored"}
    assert fields == {"hyperparameters.n_epochs", "hyperparameters.batch_size"}


def test_validation_file_in_both_places_must_agree(
    client: httpx.Client, files: dict[str, str]
) -> None:
    body = sdk_body(files)
    body["metadata"]["effective_config"]["data"] = {"validation_files": [files["val2"]]}
    answer = client.post("/learning/jobs", json=body)
    assert answer.status_code == 400
    detail = answer.json()["detail"]
    assert detail["code"] == "validation_file_conflict"
    assert files["val"] in detail["message"] and files["val2"] in detail["message"]
    assert detail["fields"] == [
        "validation_file",
        "metadata.effective_config.data.validation_files",
    ]

    body["metadata"]["effective_config"]["data"] = {"validation_files": [files["val"]]}
    agreed = client.post("/learning/jobs", json=body)
    assert agreed.status_code == 201 and agreed.json()["validation_file"] == files["val"]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"validation_files": "x"}, "validation_files", "did you mean 'validation_file'?"),
        ({"sufix": "x"}, "sufix", "did you mean 'suffix'?"),
        ({"suffix": "has spaces"}, "suffix", "1-64 characters"),
        ({"integrations": ["wandb"]}, "integrations", "must be an object"),
        ({"validation_file": 3}, None, "must be a file id"),
    ],
)
def test_top_level_keys_are_checked(
    client: httpx.Client, files: dict[str, str], change: dict, field: str | None, words: str
) -> None:
    answer = client.post("/learning/jobs", json=sdk_body(files, **change))
    assert answer.status_code == 400
    detail = answer.json()["detail"]
    assert detail["code"] == "invalid_payload" and words in detail["message"]
    assert detail.get("field") == field


@pytest.mark.parametrize(
    ("hyper", "words"),
    [
        ({"total_steps": 0}, "hyperparameters.total_steps must be a positive integer"),
        ({"steps": "12"}, "hyperparameters.steps must be a positive integer"),
        ({"total_steps": 5, "train_steps": 6}, "disagrees (total_steps=5, train_steps=6)"),
    ],
)
def test_bad_step_budgets_are_400(
    client: httpx.Client, files: dict[str, str], hyper: dict, words: str
) -> None:
    answer = client.post("/learning/jobs", json=sdk_body(files, hyperparameters=hyper))
    assert answer.status_code == 400 and words in answer.json()["detail"]["message"]


def test_unknown_hyperparameters_still_get_a_did_you_mean(
    client: httpx.Client, files: dict[str, str]
) -> None:
    body = sdk_body(files)
    body["hyperparameters"]["learning_rat"] = 1e-4
    answer = client.post("/learning/jobs", json=body)
    assert answer.status_code == 400
    problems = answer.json()["detail"]["problems"]
    assert any("learning_rate" in p["hint"] for p in problems), problems

    body = sdk_body(files)
    body["hyperparameters"]["total_step"] = 12
    problems = client.post("/learning/jobs", json=body).json()["detail"]["problems"]
    assert [p["hint"] for p in problems] == ["did you mean 'total_steps'?"]


CONFIG = """
[job]
model = "Qwen/Qwen3-0.6B"
[compute]
gpu_type = "H100"
gpu_count = 1
[data]
validation_path = "val.jsonl"
[training.validation]
enabled = true
eval_steps = 2
[hyperparameters]
n_epochs = 2
global_batch = 4
"""


def test_both_forms_name_the_same_validation_file_and_budget() -> None:
    """The client's form mapping and the server's reading of it, side by side."""
    cli = build_payload(SFTConfig.from_toml(CONFIG), "file_T", "file_V")
    sdk = sdk_payload(cli, total_steps=9, suffix="s")
    assert "validation_files" not in sdk["metadata"]["effective_config"]["data"]
    assert cli["metadata"]["effective_config"]["data"]["validation_files"] == ["file_V"]
    for body in (cli, sdk):
        assert validation_file_id(body, body["metadata"]["effective_config"]) == "file_V"
    assert step_budget(cli["hyperparameters"]).governed_by == "n_epochs"
    assert "n_epochs" not in sdk["hyperparameters"] and cli["hyperparameters"]["n_epochs"] == 2
    assert step_budget(sdk["hyperparameters"]).to_dict() == {
        "governed_by": "total_steps",
        "n_epochs": 1,
        "total_steps": 9,
    }
    assert step_budget(sdk["hyperparameters"]).total_steps(steps_per_epoch=3) == 9
    assert step_budget(cli["hyperparameters"]).total_steps(steps_per_epoch=3) == 6
    with pytest.raises(RequestError, match="disagrees"):
        step_budget({"steps": 1, "total_steps": 2})


def test_sdk_options_need_the_sdk_form() -> None:
    cli = build_payload(SFTConfig.from_toml(CONFIG), "file_T")
    with pytest.raises(ConfigError, match="only in the SDK form"):
        request_form_payload(cli, "cli", total_steps=3)
    with pytest.raises(ConfigError, match="unknown request form"):
        request_form_payload(cli, "grpc")


def test_dry_run_says_which_setting_governs_the_steps(tmp_path: Path) -> None:
    from synth_lab.job.dryrun import dry_run

    train = write_jsonl(tmp_path / "train.jsonl", [chat(f"q{i}", f"a{i}") for i in range(8)])
    write_jsonl(tmp_path / "val.jsonl", [chat("q", "a")])
    config = CONFIG.replace('"val.jsonl"', json.dumps(str(tmp_path / "val.jsonl")))
    epochs = dry_run(config, train)
    steps = dry_run(config, train, form="sdk", total_steps=5)
    assert (epochs.summary()["steps_from"], epochs.total_steps) == ("n_epochs", 4)
    assert (steps.summary()["steps_from"], steps.total_steps) == ("total_steps", 5)
    assert steps.payload["validation_file"] == "file_VAL"
    assert steps.payload["hyperparameters"]["total_steps"] == 5
    assert "total_steps governs" in steps.format_text()
