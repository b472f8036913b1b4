"""The embedded tiny-chat model: deterministic build, offline loading, a working forward pass."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest_data import multi_turn, tiny_tokenizer

from synth_lab.data.chat import IGNORE_INDEX, encode_chat
from synth_lab.models import TINY_CHAT_ID, load_tokenizer, tiny_chat_path

torch = pytest.importorskip("torch")


def digests(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_chat_path(tmp_path_factory.mktemp("cache-a"))


def test_build_is_deterministic(built: Path, tmp_path: Path) -> None:
    again = tiny_chat_path(tmp_path / "cache-b")
    assert again != built
    first = digests(built)
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"} <= set(
        first
    )
    assert digests(again) == first


def test_cached_build_is_reused(built: Path) -> None:
    stamp = (built / "model.safetensors").stat().st_mtime_ns
    assert tiny_chat_path(built.parent) == built
    assert (built / "model.safetensors").stat().st_mtime_ns == stamp


def test_env_override_and_tokenizer_lookup(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTH_LAB_CACHE", str(built.parent))
    assert tiny_chat_path() == built
    # The cached tokenizer and the one trained in memory are the same tokenizer.
    cached = load_tokenizer(TINY_CHAT_ID)
    assert cached.get_vocab() == tiny_tokenizer().get_vocab()
    assert cached.chat_template == tiny_tokenizer().chat_template


def test_concurrent_first_use(tmp_path: Path) -> None:
    results: list[Path] = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            results.append(tiny_chat_path(tmp_path))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(set(results)) == 1
    # No temporary build folder is left behind.
    assert [p.name for p in tmp_path.iterdir()] == ["tiny-chat-v1"]


def test_loads_with_auto_classes_and_trains_one_step(built: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(built)
    model = AutoModelForCausalLM.from_pretrained(built)
    params = sum(p.numel() for p in model.parameters())
    assert params < 3_000_000
    assert model.config.vocab_size == len(tokenizer)
    assert model.config.eos_token_id == tokenizer.convert_tokens_to_ids("<|im_end|>")

    enc = encode_chat(tokenizer, multi_turn())
    ids = torch.tensor([enc.input_ids])
    labels = torch.tensor([enc.labels])
    assert (labels != IGNORE_INDEX).any()
    out = model(input_ids=ids, labels=labels)
    assert out.logits.shape == (1, len(enc.input_ids), len(tokenizer))
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert model.get_input_embeddings().weight.grad is not None


def test_tokenizer_builds_without_torch_and_identically_in_another_process() -> None:
    code = (
        "import sys, hashlib\n"
        "from synth_lab.models import build_tiny_tokenizer\n"
        "tok = build_tiny_tokenizer()\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print(hashlib.sha256(tok.backend_tokenizer.to_str().encode()).hexdigest())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    here = hashlib.sha256(tiny_tokenizer().backend_tokenizer.to_str().encode()).hexdigest()
    assert done.stdout.strip() == here
