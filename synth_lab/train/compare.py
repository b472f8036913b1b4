"""Before and after: the base model's replies next to the finetuned model's, for the same prompts.

Generation is greedy (and seeded, so nothing random can creep in), so a difference between the
two columns comes from the weights alone. :func:`compare_models` takes any two models;
:meth:`synth_lab.train.TrainResult.compare` passes a run's base and trained model.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from synth_lab._html import escape, no_math

Prompt = str | list[dict[str, Any]]


@dataclass
class Comparison:
    """Replies of two models to the same prompts.

    Attributes:
        prompts: The prompts (a user message, or chat messages).
        before: The base model's replies.
        after: The finetuned model's replies.
        labels: Column names for the two models.
    """

    prompts: list[Prompt]
    before: list[str]
    after: list[str]
    labels: tuple[str, str] = ("base", "finetuned")
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def changed(self) -> list[bool]:
        """Per prompt: whether the two replies differ."""
        return [a.strip() != b.strip() for a, b in zip(self.before, self.after, strict=True)]

    @property
    def df(self) -> Any:
        """A DataFrame: prompt, the two replies, changed."""
        import pandas as pd

        return pd.DataFrame(self.to_dict()["rows"])

    def to_dict(self) -> dict[str, Any]:
        before, after = self.labels
        rows = [
            {"prompt": _prompt_text(p), before: b, after: a, "changed": c}
            for p, b, a, c in zip(self.prompts, self.before, self.after, self.changed, strict=True)
        ]
        return {"labels": list(self.labels), "rows": rows, **self.meta}

    def __repr__(self) -> str:
        lines = [f"Comparison: {sum(self.changed)} of {len(self.prompts)} replies changed"]
        for prompt, b, a in zip(self.prompts, self.before, self.after, strict=True):
            lines += [f"- {_prompt_text(prompt)}", f"    {self.labels[0]}: {b}"]
            lines.append(f"    {self.labels[1]}: {a}")
        return "\n".join(lines)

    def _repr_mimebundle_(self, **_: Any) -> dict[str, Any]:
        head = "".join(f"<th>{escape(h)}</th>" for h in ("prompt", *self.labels))
        rows = []
        for prompt, b, a, changed in zip(
            self.prompts, self.before, self.after, self.changed, strict=True
        ):
            shade = " style='background:rgba(255,200,0,0.08)'" if changed else ""
            rows.append(
                f"<tr{shade}><td>{escape(_prompt_text(prompt))}</td>"
                f"<td>{_marked(a, b, 'del')}</td><td>{_marked(b, a, 'ins')}</td></tr>"
            )
        title = f"{sum(self.changed)} of {len(self.prompts)} replies changed"
        body = (
            "<div class='sl-card'><b>" + escape(title) + "</b>"
            "<table style='border-collapse:collapse;table-layout:fixed;width:100%'>"
            f"<tr style='text-align:left'>{head}</tr>{''.join(rows)}</table>"
            "<small>Words only in the base reply are struck through; words only in the "
            "finetuned reply are underlined.</small></div>"
        )
        body = body.replace("<td>", "<td style='text-align:left;vertical-align:top'>")
        return {"text/plain": repr(self), "text/html": no_math(body)}


def _prompt_text(prompt: Prompt) -> str:
    if isinstance(prompt, str):
        return prompt
    users = [m.get("content") or "" for m in prompt if m.get("role") == "user"]
    return users[-1] if users else str(prompt)


def _marked(other: str, text: str, tag: str) -> str:
    """``text`` escaped, its words that are not in ``other`` wrapped in ``<tag>``."""
    mine, theirs = text.split(" "), other.split(" ")
    out: list[str] = []
    matcher = difflib.SequenceMatcher(a=theirs, b=mine, autojunk=False)
    for op, _, _, j1, j2 in matcher.get_opcodes():
        words = escape(" ".join(mine[j1:j2]))
        if not words:
            continue
        out.append(words if op == "equal" else f"<{tag}>{words}</{tag}>")
    return " ".join(out)


def generate_all(
    model: Any, tokenizer: Any, prompts: Sequence[Prompt], *, max_new_tokens: int, seed: int
) -> list[str]:
    """Greedy replies to each prompt, under a fixed seed (the caller's RNG is left untouched)."""
    import torch

    from synth_lab.train.inference import generate

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return [generate(model, tokenizer, p, max_new_tokens=max_new_tokens) for p in prompts]


def _load(model: Any) -> tuple[Any, Any]:
    """``(model, tokenizer)`` from a pair, a :class:`TrainResult`, a model id or a folder."""
    if isinstance(model, tuple):
        return model
    if hasattr(model, "load") and hasattr(model, "model_dir"):
        return model.load()
    if isinstance(model, (str, os.PathLike)):
        if os.path.isfile(os.path.join(os.fspath(model), "config.toml")):
            from synth_lab.train.inference import load_trained

            return load_trained(model)  # a trainer's folder: final/ or a checkpoint, LoRA or not
        return load_base(model)
    raise TypeError(
        "a model is a (model, tokenizer) pair, a TrainResult, a model id or a model folder; "
        f"got {type(model).__name__}"
    )


def load_base(model: str | os.PathLike[str]) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of a model id or folder, untrained, ready to generate.

    Resolves like ``[job].model`` (``synth-lab/tiny-chat``, ``synth-lab/smollm2-135m-instruct``,
    a GGUF file, a folder, a cached Hugging Face id).
    """
    import torch

    from synth_lab.config import SFTConfig
    from synth_lab.train.model import choose_precision, load_model

    config = SFTConfig.from_toml(f"[job]\nmodel = {json.dumps(os.fspath(model))}\n")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, tokenizer = load_model(
        config, device=device, precision=choose_precision(config.precision, device), trainable=False
    )
    return model.eval(), tokenizer


def compare_models(
    before: Any,
    after: Any,
    prompts: Sequence[Prompt],
    *,
    max_new_tokens: int = 64,
    seed: int = 0,
    labels: tuple[str, str] = ("base", "finetuned"),
) -> Comparison:
    """Generate with two models for the same prompts and put the replies side by side.

    Args:
        before: The reference model: a ``(model, tokenizer)`` pair, a
            :class:`~synth_lab.train.TrainResult`, a model id (``synth-lab/smollm2-135m-instruct``)
            or a model folder (a run's ``final/`` or checkpoint folder included).
        after: The other model, given the same ways.
        prompts: User messages, or lists of chat messages.
        max_new_tokens: Reply length limit.
        seed: Seed set before generating (generation is greedy; this pins anything else).
        labels: Column names.

    Returns:
        A :class:`Comparison` (``.df``, ``.to_dict()``, an HTML table in notebooks).
    """
    prompts = list(prompts)
    kwargs = {"max_new_tokens": max_new_tokens, "seed": seed}
    first = generate_all(*_load(before), prompts, **kwargs)
    second = generate_all(*_load(after), prompts, **kwargs)
    return Comparison(prompts, first, second, labels)


def compare_result(
    result: Any, prompts: Sequence[Prompt], *, max_new_tokens: int = 64, seed: int = 0
) -> Comparison:
    """A run's base model against what it trained (LoRA: the same model, adapter off and on)."""
    prompts = list(prompts)
    kwargs = {"max_new_tokens": max_new_tokens, "seed": seed}
    model, tokenizer = result.load()
    if hasattr(model, "disable_adapter"):
        # LoRA: the base is the same model with the adapter switched off; nothing more to load.
        with model.disable_adapter():
            first = generate_all(model, tokenizer, prompts, **kwargs)
    else:
        from synth_lab.config import load_config

        model_id = load_config(result.model_dir / "config.toml").job.model
        first = generate_all(*_load(model_id), prompts, **kwargs)
    second = generate_all(model, tokenizer, prompts, **kwargs)
    meta = {"model": result.summary.get("model"), "mode": result.summary.get("mode")}
    return Comparison(prompts, first, second, meta=meta)
