"""The sweep engine and the result store: train or load, prune x attack, store every unit (Sec. 6.3).

Depends on :mod:`prunerob.core`; never on analysis, rendering, the runner or the CLI.
"""
