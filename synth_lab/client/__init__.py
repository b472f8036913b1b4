"""The learning API client: files, jobs, and remote SFT runs.

>>> from synth_lab.client import SynthClient, submit, attach
>>> job = submit("sft.toml", "train.jsonl")        # doctest: +SKIP  (validate, upload, run, watch)
>>> job.metrics.tail(); job.plot()                 # doctest: +SKIP
>>> attach("job_123").wait()                       # doctest: +SKIP

Importing this package loads httpx but none of torch, transformers, pandas or matplotlib.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from synth_lab._lazy import lazy_attributes
from synth_lab.client import errors
from synth_lab.client._client import SynthClient
from synth_lab.client.errors import *  # noqa: F403  (the error classes: errors.__all__)

if TYPE_CHECKING:
    from synth_lab.client.remote import RemoteJob, attach, submit

_LAZY = {"RemoteJob", "attach", "submit"}

# The client, remote runs and their errors (listed once, in errors.__all__); key and URL helpers
# are in synth_lab.client.config.
__all__ = ["RemoteJob", "SynthClient", "attach", "submit"]
__all__ += errors.__all__


__getattr__ = lazy_attributes(__name__, dict.fromkeys(_LAZY, "synth_lab.client.remote"))
