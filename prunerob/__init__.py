"""prunerob: reproducible companion to *When Less Is More: Uncovering the Robustness
Advantage of Model Pruning*.

Naming convention used everywhere in this package: the paper's ``p`` (``p_ij``) is the
probability of **keeping** a weight, called ``keep`` / ``keep_ratio`` / ``keep_probs`` here.
The fraction removed is ``prune_rate = 1 - keep``.
"""
import warnings as _warnings

__version__ = "0.1.0"

# tqdm.auto warns "IProgress not found" (with the path of its own file) when it is imported in a
# Jupyter kernel without ipywidgets, as on the book's build and the papermill runs; the progress
# bars fall back to text and nothing is lost. Filtered here, before any prunerob module imports it,
# so that no page shows the warning.
_warnings.filterwarnings("ignore", message="IProgress not found")
