"""Pruning masks for the paper's probabilistic pruning model (Sec. 3) and the score-based
pruning of App. I, one module per registered method.

Paper, Sec. 3: a pruned weight matrix is ``W' = B ⊙ W`` with independent
``B_ij ~ Bernoulli(p_ij)``, where ``p_ij`` is the probability of **keeping** ``W_ij``
(called ``keep`` / ``keep_probs`` here; the fraction removed is ``1 - keep``).

=====================  ======================================================================
module                 contents
=====================  ======================================================================
``base``               :class:`PruningMethod`, the registry, :func:`make_masks`
``weights``            :func:`prunable_weights` (which weights are pruned), :func:`apply_masks`
``topk``               :func:`score_masks`, :func:`n_kept` (exact ``round(keep * numel)``)
``magnitude``          ``magnitude``: per-layer ``Top_p(|W|)``; threshold / smooth keep probs
``magnitude_global``   ``magnitude_global``: ``Top_p(|W|)`` over all layers
``random``             ``random``: exactly-k uniformly random masks (baseline)
``taylor``             ``taylor``: App. I scores ``E_batch |w dL/dw|`` over 20 batches
``bernoulli``          ``bernoulli_uniform`` and :func:`bernoulli_masks`, the one Bernoulli sampler
=====================  ======================================================================

Nothing here modifies a model in place: functions return boolean masks (``True`` = kept) keyed
by the names returned by :func:`prunable_weights`, and :func:`apply_masks` returns a pruned
deep copy. Ties in scores are broken by the lower flat index, so results are reproducible on
every device.

``METHODS`` is kept for old callers: it is the tuple of currently registered names
(:func:`method_names`).
"""
from __future__ import annotations

# isort: off
# One module per method; importing them registers them, in this order (= method_names()).
from prunerob.core.pruning import magnitude, magnitude_global, random, taylor, bernoulli  # noqa: F401
# isort: on
from prunerob.core.pruning.base import (
    REGISTRY,
    PruningMethod,
    get_method,
    make_masks,
    method_names,
    register_method,
)
from prunerob.core.pruning.bernoulli import bernoulli_masks
from prunerob.core.pruning.magnitude import (
    magnitude_keep_probs_threshold,
    magnitude_masks,
    smooth_magnitude_keep_probs,
)
from prunerob.core.pruning.random import random_masks
from prunerob.core.pruning.taylor import taylor_scores
from prunerob.core.pruning.topk import SCOPES, n_kept, score_masks
from prunerob.core.pruning.weights import (
    apply_masks,
    as_weights,
    masked_weights,
    prunable_weights,
    sparsity_report,
)
from prunerob.core.registry import import_submodules

# ... then every other module of the package, so a new method or attack is one new file
import_submodules("prunerob.core.pruning")

__all__ = [
    "METHODS",
    "SCOPES",
    "REGISTRY",
    "PruningMethod",
    "register_method",
    "get_method",
    "method_names",
    "prunable_weights",
    "as_weights",
    "n_kept",
    "bernoulli_masks",
    "magnitude_keep_probs_threshold",
    "smooth_magnitude_keep_probs",
    "magnitude_masks",
    "random_masks",
    "taylor_scores",
    "score_masks",
    "make_masks",
    "apply_masks",
    "masked_weights",
    "sparsity_report",
]


def __getattr__(name: str):
    if name == "METHODS":  # old name: the registered methods now
        return method_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
