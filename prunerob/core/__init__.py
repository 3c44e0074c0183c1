"""Core: data, architectures, training, pruning methods and attacks (paper Secs. 3 and 6.1, App. I).

Imports run one way: ``core`` depends only on :mod:`prunerob.config`; every other subpackage may
depend on it. Nothing is imported eagerly here, so ``import prunerob.core.registry`` stays light.
"""
