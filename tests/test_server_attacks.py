"""The server probed like an attacker: two tenants on the real server on loopback.

Alice and Bob (and Carol, whose quotas are filled) share one ``synth-lab serve``. Every probe
asserts the exact status and code, and that nothing of the other tenant leaks: not its ids,
file names or paths, not even whether something exists.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import chat, write_jsonl
from job_events import wait_terminal
from server_doubles import FINAL, FakeServer

from synth_lab.server.process import ServerProcess

ALICE, BOB, CAROL = (
    "sk-alice-0123456789abcdef",
    "sk-bob-0123456789abcdef00",
    "sk-carol-0123456789abcd",
)
FILE_PART = b'--B\r\nContent-Disposition: form-data; name="file"; filename="t.jsonl"\r\n\r\n'
RECORD = b'{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}\n'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("attacks")
    (root / "keys.txt").write_text(f"{ALICE} alice\n{BOB} bob\n{CAROL} carol\n")
    house = root / "models" / "house-model"
    house.mkdir(parents=True)
    (house / "config.json").write_text("{}")
    secret = root / "secret-model"  # a model folder the operator did not list
    secret.mkdir()
    (secret / "config.json").write_text("{}")
    args = [
        "--keys-file", str(root / "keys.txt"), "--runner", FINAL, "--gpus", "2",
        "--accept-any-compute", "--max-upload-mb", "1", "--models-dir", str(root / "models"),
        "--model-map", "Qwen/Qwen3-4B=synth-lab/tiny-chat", "--max-steps", "5000",
        "--max-gpus", "8", "--max-queued-jobs", "6", "--max-stored-bytes", "2000000",
    ]  # fmt: skip
    with FakeServer(root / "data", extra_args=args) as srv:
        yield srv


def http(server: ServerProcess, key: str | None = ALICE) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=30.0)


def upload(server: ServerProcess, key: str, tmp_path: Path, records: int = 6) -> str:
    path = write_jsonl(tmp_path / f"{key[3:8]}.jsonl", [chat(f"q{i}", "a") for i in range(records)])
    with http(server, key) as client, path.open("rb") as handle:
        response = client.post("/files", files={"file": ("private-name.jsonl", handle)})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def job(file_id: str, model: str = "Qwen/Qwen3-4B", **hyper: Any) -> dict[str, Any]:
    return {
        "model": model,
        "training_file_id": file_id,
        "training_type": "sft_offline",
        "hyperparameters": {"n_epochs": 1, "per_device_batch": 1, **hyper},
        "metadata": {"effective_config": {"compute": {"gpu_type": "H100", "gpu_count": 1}}},
    }


def run_job(server: ServerProcess, key: str, body: dict[str, Any]) -> dict[str, Any]:
    with http(server, key) as client:
        created = client.post("/learning/jobs", json=body)
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]
        client.post(f"/learning/jobs/{job_id}/start", json={})
        return wait_terminal(client, job_id)


def refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and body["detail"]["code"] == code, body
    return dict(body["detail"])


# -- 1. models: the allow-list, and a tenant's own outputs by id only -------------------------


def test_models_are_ids_from_the_allow_list_never_paths(
    server: ServerProcess, tmp_path: Path
) -> None:
    alice_file, bob_file = upload(server, ALICE, tmp_path), upload(server, BOB, tmp_path)
    done = run_job(server, ALICE, job(alice_file))
    assert done["status"] == "succeeded"
    mine = done["fine_tuned_model"]
    final = server.data_dir / "jobs" / done["id"] / done["result"]["final_dir"]
    assert (final / "config.json").is_file() and not Path(done["result"]["final_dir"]).is_absolute()
    secret = server.data_dir.parent / "secret-model"
    with http(server, ALICE) as alice, http(server, BOB) as bob:
        assert alice.post("/learning/jobs", json=job(alice_file, mine)).status_code == 201
        assert alice.post("/learning/jobs", json=job(alice_file, "house-model")).status_code == 201
        probes = {
            "bob uses alice's fine-tuned id": (bob, job(bob_file, mine)),
            "bob uses alice's output by path": (bob, job(bob_file, str(final))),
            "alice uses her own output by path": (alice, job(alice_file, str(final))),
            "an unlisted folder on the server": (bob, job(bob_file, str(secret))),
            "a folder that does not exist": (bob, job(bob_file, str(secret) + "-nope")),
            "traversal out of the models dir": (
                bob,
                job(bob_file, "house-model/../../secret-model"),
            ),
            "a forged fine-tuned id": (bob, job(bob_file, f"ft:Qwen/Qwen3-4B:{done['id']}x")),
        }
        answers = {
            name: client.post("/learning/jobs", json=body)
            for name, (client, body) in probes.items()
        }
    details = {name: refused(r, 400, "model_not_available") for name, r in answers.items()}
    # The same words whether or not the path exists: only the echoed model id differs.
    shapes = {d["message"].replace(f"'{d['model']}'", "M") for d in details.values()}
    assert len(shapes) == 1


# -- 2. limits and quotas ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "limit", "field"),
    [
        ({"n_epochs": 10**9}, "max_steps", "hyperparameters.n_epochs"),
        ({"total_steps": 10**9}, "max_steps", "hyperparameters.total_steps"),
        ({"sequence_length": 10**7}, "max_sequence_length", "hyperparameters.sequence_length"),
        ({"per_device_batch": 10**6}, "max_batch", "hyperparameters.global_batch"),
        ({"train_kind": "peft", "lora_rank": 10**5}, "max_lora_rank", "training.lora.r"),
    ],
)
def test_a_job_over_a_limit_is_400_naming_it(
    server: ServerProcess, tmp_path: Path, change: dict[str, Any], limit: str, field: str
) -> None:
    file_id = upload(server, BOB, tmp_path)
    with http(server, BOB) as client:
        detail = refused(
            client.post("/learning/jobs", json=job(file_id, **change)), 400, "limit_exceeded"
        )
    assert detail["limit"] == limit and detail["field"] == field and limit in detail["message"]


def test_gpu_count_over_the_limit_even_with_accept_any_compute(
    server: ServerProcess, tmp_path: Path
) -> None:
    body = job(upload(server, BOB, tmp_path))
    body["metadata"]["effective_config"]["compute"]["gpu_count"] = 10**9
    with http(server, BOB) as client:
        detail = refused(client.post("/learning/jobs", json=body), 400, "limit_exceeded")
    assert detail["limit"] == "max_gpus"


def test_quotas_are_per_tenant_and_429(server: ServerProcess, tmp_path: Path) -> None:
    file_id = upload(server, CAROL, tmp_path)
    with http(server, CAROL) as carol, http(server, BOB) as bob:
        made = [carol.post("/learning/jobs", json=job(file_id)).status_code for _ in range(6)]
        over = carol.post("/learning/jobs", json=job(file_id))
        bob_still = bob.post("/learning/jobs", json=job(upload(server, BOB, tmp_path)))
        big = tmp_path / "big.jsonl"
        big.write_bytes(RECORD * 11_000)  # 0.9 MB: two fit in the 2 MB quota, three do not
        first = [carol.post("/files", files={"file": ("a.jsonl", big.read_bytes())}) for _ in "ab"]
        second = carol.post("/files", files={"file": ("b.jsonl", big.read_bytes())})
        names = [f["filename"] for f in carol.get("/files").json()["files"]]
    assert made == [201] * 6 and bob_still.status_code == 201
    assert refused(over, 429, "quota_exceeded")["limit"] == "max_queued_jobs"
    assert [r.status_code for r in first] == [201, 201]
    assert refused(second, 429, "quota_exceeded")["limit"] == "max_stored_bytes"
    assert "b.jsonl" not in names and not list((server.data_dir / "files").glob(".*.part"))


# -- 3. multipart -----------------------------------------------------------------------------


def _form(*parts: bytes, end: bytes = b"--B--\r\n") -> bytes:
    return b"".join(parts) + end


def _field(name: str, value: bytes) -> bytes:
    return b'--B\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (
        name.encode(),
        value,
    )


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (FILE_PART + RECORD * 3, 400),  # no closing boundary
        (FILE_PART + RECORD * 3 + b"\r\n--B", 400),  # cut inside it
        (_form(*[_field(f"f{i}", b"x") for i in range(20)], FILE_PART + RECORD + b"\r\n"), 400),
        (
            _form(
                *[_field(f"f{i}", b"x" * 60_000) for i in range(15)],
                FILE_PART + RECORD * 2000 + b"\r\n",
            ),
            413,
        ),
    ],
    ids=["truncated", "cut-in-boundary", "too-many-fields", "fields-count-against-the-limit"],
)
def test_bad_multipart_bodies_leave_nothing_behind(
    server: ServerProcess, body: bytes, status: int
) -> None:
    headers = {"Content-Type": "multipart/form-data; boundary=B"}
    with http(server, BOB) as client:
        before = client.get("/files").json()["files"]
        response = client.post("/files", content=body, headers=headers)
        after = client.get("/files").json()["files"]
    assert response.status_code == status, response.text
    assert before == after and not list((server.data_dir / "files").glob(".*.part"))


# -- 4. wrong types and huge integers ----------------------------------------------------------


def _set(path: str, value: Any) -> Any:
    def change(body: dict[str, Any]) -> dict[str, Any]:
        *parents, last = path.split(".")
        node = body
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
        return body

    return change


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("metadata.effective_config.compute", "x", "metadata.effective_config.compute"),
        (
            "metadata.effective_config.training",
            {"validation": "x"},
            "metadata.effective_config.training.validation",
        ),
        ("metadata.effective_config.data", ["x"], "metadata.effective_config.data"),
        (
            "hyperparameters.gradient_accumulation_steps",
            "abc",
            "hyperparameters.gradient_accumulation_steps",
        ),
        (
            "metadata.effective_config.compute.gpu_count",
            "4",
            "metadata.effective_config.compute.gpu_count",
        ),
    ],
)
def test_wrong_types_are_400_naming_the_field(
    server: ServerProcess, tmp_path: Path, path: str, value: Any, field: str
) -> None:
    body = job(upload(server, BOB, tmp_path))
    body["metadata"]["effective_config"]["compute"]["gpu_count"] = 4  # 4 asked, 2 here: adjusted
    with http(server, BOB) as client:
        detail = refused(
            client.post("/learning/jobs", json=_set(path, value)(body)), 400, "invalid_payload"
        )
    assert detail["field"] == field


def test_huge_integers_in_queries_are_400_before_any_stream(
    server: ServerProcess, tmp_path: Path
) -> None:
    with http(server, BOB) as client:
        job_id = client.post("/learning/jobs", json=job(upload(server, BOB, tmp_path))).json()["id"]
        url = f"/learning/jobs/{job_id}"
        events = client.get(url + "/events", params={"since_seq": 10**20})
        metrics = client.get(url + "/metrics", params={"after_step": 10**20})
        with client.stream(
            "GET",
            url + "/events",
            params={"since_seq": 10**20},
            headers={"Accept": "text/event-stream"},
        ) as stream:
            stream.read()
        limit = client.get("/learning/jobs", params={"limit": 10**20})
        clamped = client.get("/learning/jobs", params={"limit": 10**9})
    checks = [
        (events, "since_seq"),
        (metrics, "after_step"),
        (stream, "since_seq"),
        (limit, "limit"),
    ]
    for response, name in checks:
        assert refused(response, 400, "invalid_request")["field"] == name
    assert clamped.status_code == 200


# -- 5. idempotency ----------------------------------------------------------------------------


def test_an_idempotency_key_reused_with_another_body_is_422(
    server: ServerProcess, tmp_path: Path
) -> None:
    alice_file, bob_file = upload(server, ALICE, tmp_path), upload(server, BOB, tmp_path)
    key = {"Idempotency-Key": "order-1"}
    with http(server, ALICE) as alice, http(server, BOB) as bob:
        first = alice.post("/learning/jobs", json=job(alice_file), headers=key)
        same = alice.post("/learning/jobs", json=job(alice_file), headers=key)
        other = alice.post("/learning/jobs", json=job(alice_file, n_epochs=2), headers=key)
        bobs = bob.post("/learning/jobs", json=job(bob_file), headers=key)
    assert first.status_code == 201 and same.status_code == 200
    assert same.json()["id"] == first.json()["id"]
    refused(other, 422, "idempotency_key_reused")
    assert first.json()["id"] not in other.text
    assert bobs.status_code == 201 and bobs.json()["id"] != first.json()["id"]


def test_an_idempotency_key_reused_for_another_file_is_422(server: ServerProcess) -> None:
    key = {"Idempotency-Key": "upload-1"}
    with http(server, BOB) as client:
        before = len(client.get("/files").json()["files"])
        first = client.post("/files", files={"file": ("a.jsonl", RECORD)}, headers=key)
        same = client.post("/files", files={"file": ("a.jsonl", RECORD)}, headers=key)
        other = client.post("/files", files={"file": ("a.jsonl", RECORD * 2)}, headers=key)
        listed = [f["id"] for f in client.get("/files").json()["files"]]
    assert first.status_code == 201 and same.status_code == 200
    assert same.json()["id"] == first.json()["id"] and len(listed) == before + 1
    refused(other, 422, "idempotency_key_reused")
    assert not list((server.data_dir / "files").glob(".*.part"))


# -- 7. what a client learns about the server ------------------------------------------------


def test_failures_health_and_redirects_reveal_nothing(
    server: ServerProcess, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "fail.jsonl", [chat("q", "a"), chat("fake-fail", "x")])
    with http(server, BOB) as client, path.open("rb") as handle:
        file_id = client.post("/files", files={"file": ("fail.jsonl", handle)}).json()["id"]
    failed = run_job(server, BOB, job(file_id))
    with http(server, BOB) as client:
        events = client.get(f"/learning/jobs/{failed['id']}/events").text
        slash = client.get("/learning/jobs/", headers={"Host": "evil.example"})
    with http(server, None) as anonymous:
        health = anonymous.get("/health")
    assert failed["status"] == "failed" and "injected failure" in failed["error"]
    assert "Traceback" not in events and str(server.data_dir) not in events + str(failed)
    assert health.json() == {"status": "ok"}
    assert slash.status_code == 200 and "evil.example" not in str(slash.headers) + slash.text


# -- isolation, ids, keys ----------------------------------------------------------------------


def test_the_other_tenants_things_are_404_and_never_listed(
    server: ServerProcess, tmp_path: Path
) -> None:
    alice_file = upload(server, ALICE, tmp_path)
    with http(server, ALICE) as alice, http(server, BOB) as bob:
        alice_job = alice.post("/learning/jobs", json=job(alice_file)).json()["id"]
        probes = [
            bob.get(f"/files/{alice_file}"),
            bob.get(f"/learning/files/{alice_file}"),
            bob.get(f"/learning/jobs/{alice_job}"),
            bob.post(f"/learning/jobs/{alice_job}/start", json={}),
            bob.post(f"/learning/jobs/{alice_job}/cancel"),
            bob.get(f"/learning/jobs/{alice_job}/events"),
            bob.get(f"/learning/jobs/{alice_job}/metrics"),
            bob.get(f"/learning/jobs/{alice_job}/timeline"),
        ]
        uses = bob.post("/learning/jobs", json=job(alice_file))
        listed = bob.get("/files").text + bob.get("/learning/jobs", params={"limit": 1000}).text
        still = alice.get(f"/learning/jobs/{alice_job}").json()["status"]
    assert [p.status_code for p in probes] == [404] * len(probes)
    refused(uses, 400, "file_not_found")
    assert alice_file not in listed and alice_job not in listed and still == "queued"


@pytest.mark.parametrize(
    "job_id",
    ["job_x' OR '1'='1", 'job_x" OR 1=1 --', "%25", "..%2F..%2Fserver.db", "job_x;DROP TABLE jobs"],
)
def test_sql_looking_and_traversal_ids_are_plain_404(server: ServerProcess, job_id: str) -> None:
    with http(server, BOB) as client:
        answers = [client.get(f"/learning/jobs/{job_id}"), client.get(f"/files/{job_id}")]
        alive = client.get("/learning/jobs")
    assert [a.status_code for a in answers] == [404, 404] and alive.status_code == 200


def test_traversal_in_file_names_stays_a_name(server: ServerProcess) -> None:
    with http(server, BOB) as client:
        response = client.post("/files", files={"file": ("../../../evil.jsonl", RECORD)})
        windows = client.post("/files", files={"file": ("..\\..\\evil2.jsonl", RECORD)})
    assert response.status_code == windows.status_code == 201
    assert (
        response.json()["filename"] == "evil.jsonl" and windows.json()["filename"] == "evil2.jsonl"
    )
    assert not (server.data_dir.parent / "evil.jsonl").exists()
    assert not list(server.data_dir.parent.parent.glob("evil*"))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer sk-nope"},
        {"Authorization": f"Basic {ALICE}"},
        {"Authorization": f"Bearer {ALICE}x"},
        {"Authorization": f"Bearer {ALICE[:-1]}"},
        {"X-API-Key": ALICE},
        {"Cookie": f"api_key={ALICE}"},
    ],
    ids=["none", "wrong", "basic", "longer", "shorter", "x-api-key", "cookie"],
)
def test_wrong_keys_and_keys_in_odd_places_are_401(
    server: ServerProcess, headers: dict[str, str]
) -> None:
    with httpx.Client(base_url=server.url, headers=headers, timeout=30.0) as client:
        answers = [
            client.get("/files"),
            client.get("/learning/jobs", params={"api_key": ALICE}),
            client.post("/learning/jobs", json={}),
        ]
    for response in answers:
        assert (
            refused(response, 401, "unauthorized")
            and response.headers["WWW-Authenticate"] == "Bearer"
        )
        assert ALICE not in response.text
