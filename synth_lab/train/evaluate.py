"""The evaluation hook: score a trained model's generations on a validation set.

Each validation record is split into a prompt (every message before the last assistant turn)
and a reference (that turn's text). The model replies greedily; a scorer compares reply and
reference and gives a number in [0, 1] (``True``/``False`` count as 1/0). The run records the
mean as the metric ``eval.score``, next to ``val.loss``.

Scorers: ``"exact"`` (the reply equals the reference, ignoring surrounding space), ``"contains"``
(the reference appears in the reply, ignoring case), ``"regex:PATTERN"`` or a compiled pattern
(the reply matches, the reference is not used), or any callable ``(reply, reference) -> float``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from synth_lab.errors import TrainingError

Scorer = Callable[[str, str], "float | bool"]


def exact_match(reply: str, reference: str) -> float:
    """1.0 when the reply equals the reference, ignoring surrounding whitespace."""
    return float(reply.strip() == reference.strip())


def contains(reply: str, reference: str) -> float:
    """1.0 when the reference appears in the reply, ignoring case."""
    return float(reference.strip().lower() in reply.lower())


def regex(pattern: str | re.Pattern[str]) -> Scorer:
    """A scorer giving 1.0 when the reply matches ``pattern`` (``re.search``)."""
    compiled = re.compile(pattern) if isinstance(pattern, str) else pattern

    def score(reply: str, reference: str) -> float:
        return float(compiled.search(reply) is not None)

    score.__name__ = f"regex:{compiled.pattern}"
    return score


_NAMED: dict[str, Scorer] = {"exact": exact_match, "exact_match": exact_match, "contains": contains}


def resolve_scorer(scorer: str | re.Pattern[str] | Scorer) -> Scorer:
    """A scorer from a name (``exact``, ``contains``, ``regex:PATTERN``), a pattern or a callable.

    Raises:
        TrainingError: An unknown name or an invalid regular expression.
    """
    if isinstance(scorer, re.Pattern):
        return regex(scorer)
    if callable(scorer):
        return scorer
    if isinstance(scorer, str):
        if scorer.startswith("regex:"):
            try:
                return regex(scorer[len("regex:") :])
            except re.error as exc:
                raise TrainingError(
                    f"evaluation scorer {scorer!r}: invalid regular expression: {exc}",
                    hint="fix the pattern after 'regex:'",
                ) from exc
        if scorer in _NAMED:
            return _NAMED[scorer]
    raise TrainingError(
        f"unknown evaluation scorer {scorer!r}",
        hint="use 'exact', 'contains', 'regex:PATTERN', or a function (reply, reference) -> float",
    )


@dataclass(frozen=True)
class Evaluation:
    """What the hook scores, and how.

    Attributes:
        scorer: ``"exact"``, ``"contains"``, ``"regex:PATTERN"``, a compiled pattern, or a
            callable ``(reply, reference) -> float | bool``.
        data: Validation records (path, Dataset or list); default: the run's validation data.
        max_new_tokens: Reply length limit.
        limit: Score only the first N records.
    """

    scorer: Any = "exact"
    data: Any = None
    max_new_tokens: int = 64
    limit: int | None = None

    @classmethod
    def coerce(cls, value: Any) -> Evaluation:
        """An :class:`Evaluation` from itself, a scorer name, a pattern or a callable."""
        if isinstance(value, Evaluation):
            resolve_scorer(value.scorer)  # a bad scorer fails before training, not after
            return value
        resolve_scorer(value)
        return cls(scorer=value)


@dataclass
class EvalReport:
    """The mean score and, per record, prompt, reference, reply and score."""

    score: float
    rows: list[dict[str, Any]]

    @property
    def df(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, "rows": self.rows}


def split_record(record: Mapping[str, Any]) -> tuple[list[dict[str, Any]], str] | None:
    """``(prompt messages, reference)`` at the last assistant turn; ``None`` if there is none."""
    messages = list(record.get("messages") or [])
    for i in range(len(messages) - 1, -1, -1):
        message = messages[i]
        if message.get("role") == "assistant" and isinstance(message.get("content"), str):
            return [dict(m) for m in messages[:i]], message["content"]
    return None


def evaluate(
    model: Any,
    tokenizer: Any,
    records: Sequence[Mapping[str, Any]],
    scorer: Any,
    *,
    max_new_tokens: int = 64,
    limit: int | None = None,
) -> EvalReport:
    """Generate a reply for each record's prompt and score it against the record's reply.

    Raises:
        TrainingError: No record has an assistant turn, or a scorer returns a non-number.
    """
    from synth_lab.train.compare import generate_all

    score = resolve_scorer(scorer)
    pairs = [p for p in (split_record(r) for r in records) if p is not None and p[0]]
    if limit is not None:
        pairs = pairs[:limit]
    if not pairs:
        raise TrainingError(
            "no validation record has an assistant reply to score against",
            hint="evaluation needs records whose last assistant turn is the expected answer",
        )
    prompts = [p for p, _ in pairs]
    replies = generate_all(model, tokenizer, prompts, max_new_tokens=max_new_tokens, seed=0)
    rows = []
    for (prompt, reference), reply in zip(pairs, replies, strict=True):
        value = score(reply, reference)
        if not isinstance(value, (int, float)):
            raise TrainingError(
                f"the evaluation scorer returned {type(value).__name__}, not a number",
                hint="return a float in [0, 1] or a bool",
            )
        user = next((m["content"] for m in reversed(prompt) if m.get("role") == "user"), "")
        rows.append({"prompt": user, "reference": reference, "reply": reply, "score": float(value)})
    return EvalReport(sum(r["score"] for r in rows) / len(rows), rows)
