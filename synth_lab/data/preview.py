"""How one record is seen by the model: rendered text with the trained tokens highlighted."""

from __future__ import annotations

from typing import Any

from synth_lab._html import escape, no_math
from synth_lab.data.chat import IGNORE_INDEX, EncodedChat

_TRAINED_STYLE = "background:#c8f0c8"
_CUT_STYLE = "color:#999;text-decoration:line-through"


class ChatPreview:
    """One record as the model sees it: the rendered text with trained tokens highlighted."""

    def __init__(
        self, encoded: EncodedChat, *, line: int | None = None, sequence_length: int | None = None
    ) -> None:
        self.encoded = encoded
        self.line = line
        self.sequence_length = sequence_length

    def segments(self) -> list[tuple[str, bool, bool]]:
        """``(text, trained, cut)`` runs covering the rendered text in order; ``cut`` marks
        what lies beyond ``sequence_length``."""
        enc = self.encoded
        limit = self.sequence_length or enc.n_tokens
        starts = [0] + [start for start, _ in enc.offsets[1:]] + [len(enc.text)]
        runs: list[tuple[str, bool, bool]] = []
        for j in range(len(enc.input_ids)):
            # A multi-byte character can span two tokens with the same offsets; show it once.
            piece = enc.text[starts[j] : max(starts[j], starts[j + 1])]
            key = (enc.labels[j] != IGNORE_INDEX, j >= limit)
            if runs and runs[-1][1:] == key:
                runs[-1] = (runs[-1][0] + piece, *key)
            else:
                runs.append((piece, *key))
        return runs

    def _caption(self) -> str:
        enc = self.encoded
        where = f"line {self.line}: " if self.line is not None else ""
        text = f"{where}{enc.n_tokens:,} tokens, {enc.n_trained:,} trained"
        if self.sequence_length and enc.n_tokens > self.sequence_length:
            lost = sum(label != IGNORE_INDEX for label in enc.labels[self.sequence_length :])
            text += f"; sequence_length {self.sequence_length:,} cuts {lost:,} trained"
        return text

    def _repr_html_(self) -> str:
        body = []
        for text, trained, cut in self.segments():
            style = _CUT_STYLE if cut else (_TRAINED_STYLE if trained else "")
            escaped = escape(text)
            body.append(f'<span style="{style}">{escaped}</span>' if style else escaped)
        rows = "".join(
            f"<tr><td>{escape(t.role)}</td><td>{t.end - t.start}</td><td>{t.n_trained}</td></tr>"
            for t in self.encoded.turns
        )
        return no_math(
            f"<p>{escape(self._caption())}; "
            f'<span style="{_TRAINED_STYLE}">trained</span></p>'
            f'<pre style="white-space:pre-wrap">{"".join(body)}</pre>'
            "<table><tr><th>role</th><th>tokens</th><th>trained</th></tr>"
            f"{rows}</table>"
        )

    def __repr__(self) -> str:
        text = "".join(f"⟦{t}⟧" if trained else t for t, trained, _ in self.segments())
        turns = ", ".join(f"{t.role} {t.n_trained}/{t.end - t.start}" for t in self.encoded.turns)
        return f"{self._caption()} (⟦trained⟧; per turn trained/tokens: {turns})\n{text}"

    def _repr_mimebundle_(self, **_: Any) -> dict[str, str]:
        return {"text/plain": repr(self), "text/html": self._repr_html_()}
