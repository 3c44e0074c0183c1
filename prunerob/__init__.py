"""prunerob: reproducible companion to *When Less Is More: Uncovering the Robustness
Advantage of Model Pruning*.

Naming convention used everywhere in this package: the paper's ``p`` (``p_ij``) is the
probability of **keeping** a weight, called ``keep`` / ``keep_ratio`` / ``keep_probs`` here.
The fraction removed is ``prune_rate = 1 - keep``.
"""
__version__ = "0.1.0"
