"""Rendering: figures, captions and tables of the book (matplotlib/pandas only).

No module here imports torch or the sweep engine (checked by ``tests/test_layout.py``).
"""
