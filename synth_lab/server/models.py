"""Which models a tenant may train: the server's allow-list, and each tenant's own outputs.

A job's ``model`` is an id, never a path. It resolves through ``--model-map ID=LOCAL``, an
``--allow-model ID`` (loaded by that id: the built-in tiny model or a Hugging Face cache
entry), a folder listed in ``--models-dir DIR`` (by its folder name), or the
``fine_tuned_model`` id of one of the caller's own succeeded jobs. Anything else is refused
with the same answer whether or not something of that name exists on the server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from synth_lab.models import TINY_CHAT_ID


@dataclass(frozen=True)
class ModelCatalog:
    """The models this server lets tenants train.

    Attributes:
        model_map: Requested id -> local model id or path (the operator's choice).
        allowed: Ids loaded as they are (``--allow-model``).
        models_dir: A folder whose subfolders with a ``config.json`` are models, by name.
    """

    model_map: Mapping[str, str] = field(default_factory=dict)
    allowed: Sequence[str] = ()
    models_dir: Path | None = None

    def _listed(self) -> dict[str, Path]:
        if self.models_dir is None or not self.models_dir.is_dir():
            return {}
        return {
            entry.name: entry
            for entry in self.models_dir.iterdir()
            if entry.is_dir() and (entry / "config.json").is_file()
        }

    def ids(self) -> list[str]:
        """Every model id a tenant may ask for (their own fine-tuned ids aside)."""
        names = [*self.model_map, *self.allowed, *self._listed(), TINY_CHAT_ID]
        return sorted(set(names))

    def resolve(self, model: str, finetuned: Callable[[str], str | None]) -> str | None:
        """The local model to load for ``model``, or ``None`` if the caller may not use it.

        Args:
            model: The requested id.
            finetuned: ``fine_tuned_model`` id -> output folder, for the caller's own
                succeeded jobs only (``None`` otherwise).
        """
        if model in self.model_map:
            return self.model_map[model]
        if model == TINY_CHAT_ID or model in self.allowed:
            return model
        listed = self._listed().get(model)  # matched against the listing: no path tricks
        if listed is not None:
            return str(listed)
        if model.startswith("ft:"):
            return finetuned(model)
        return None
