"""Analysis of result tables: statistics, competence and verdicts (pandas/numpy/scipy only).

No module here imports torch or the sweep engine (checked by ``tests/test_layout.py``), so the
book's verdicts and every table re-render without the deep-learning stack.
"""
