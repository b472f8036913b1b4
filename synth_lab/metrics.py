"""The names of metrics, defined once and named like the remote learning API's.

The trainer, the server's worker, the client, sweeps and widgets use these constants, so one
plot, one table and one stopping rule serve local and remote runs alike. This module imports
nothing, so the config layer can use it too.
"""

from __future__ import annotations

TRAIN_LOSS = "train.loss"
TRAIN_LR = "train.learning_rate"
TRAIN_GRAD_NORM = "train.grad_norm"  # before clipping
TRAIN_TOKENS_PER_SECOND = "train.tokens_per_second"
TRAIN_TOKENS = "train.tokens"  # cumulative real (non-padding) tokens trained on
VAL_LOSS = "val.loss"
VAL_LOSS_BEST = "val.loss.best"  # the lowest validation loss of a run, in its summary
EVAL_SCORE = "eval.score"  # a sweep's custom evaluation of a finished run

NAMES = (
    TRAIN_LOSS,
    TRAIN_LR,
    TRAIN_GRAD_NORM,
    TRAIN_TOKENS_PER_SECOND,
    TRAIN_TOKENS,
    VAL_LOSS,
    VAL_LOSS_BEST,
    EVAL_SCORE,
)
"""Every name above (a test checks no other module of the package spells one out)."""
