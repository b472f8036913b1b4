"""Property-based fuzzing: whatever the TOML input, only our own errors come out."""

from __future__ import annotations

from conftest import GOLDEN
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synth_lab.config import ConfigError, SFTConfig

SEED = (GOLDEN / "seed_qwen3_32b_fsdp_4xh100.toml").read_text()
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def load_or_config_error(text: str) -> None:
    try:
        config = SFTConfig.from_toml(text)
    except ConfigError as exc:
        assert exc.problems, "a ConfigError always lists its problems"
        for problem in exc.problems:
            assert problem.message
            assert problem.line is None or problem.line >= 1
    else:
        config.to_dict()
        _ = (config.global_batch, config.per_device_batch, config.world_size, config.train_mode)


@FUZZ
@given(st.binary(max_size=400))
def test_arbitrary_bytes(data: bytes) -> None:
    load_or_config_error(data.decode("utf-8", errors="replace"))


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text(text: str) -> None:
    load_or_config_error(text)


@FUZZ
@given(st.data())
def test_mutated_seed(data: st.DataObject) -> None:
    text = SEED
    for _ in range(data.draw(st.integers(1, 4))):
        start = data.draw(st.integers(0, len(text)))
        end = data.draw(st.integers(start, min(len(text), start + 12)))
        insert = data.draw(st.text(alphabet='[]=."#\n 0123456789abcxyz_-+*', max_size=8))
        text = text[:start] + insert + text[end:]
    load_or_config_error(text)


values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 10**6)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
sections = st.sampled_from(
    ["job", "compute", "data", "training", "hyperparameters", "tags", "algorithm", "compte"]
)
keys = st.sampled_from(
    ["model", "gpu_count", "topology", "validation", "lora", "parallelism", "n_epochs", "r", "x"]
)


@FUZZ
@given(st.dictionaries(sections, st.dictionaries(keys, values, max_size=4), max_size=5))
def test_structured_documents(doc: dict) -> None:
    try:
        config = SFTConfig.from_dict(doc)
    except ConfigError:
        return
    config.replace({"hyperparameters.n_epochs": 2})
