"""``prunerob reproduce``: run the experiment notebooks with jupytext + papermill.

Each notebook source ``notebooks/<name>.py`` (jupytext percent format, one cell tagged
``parameters``) is converted to a notebook in memory and executed by papermill with the
parameters of a profile (:mod:`prunerob.runner.profiles`) updated by ``-p KEY VALUE`` overrides. The
executed notebook is written to ``<output_dir>/<name>.ipynb`` (by default ``book/experiments``, where
the book shows it) and its result tables and figures to ``out_dir`` (a parameter, relative to
``output_dir``: by default ``<output_dir>/results/<name>/``). The kernel runs with ``output_dir`` as
its working directory, like a notebook opened in Jupyter, so a notebook that reads another
notebook's results (``profiles.DEPENDS``) finds them at ``results/<other>/``.

Guarantees:

* **Atomic output.** Papermill writes into ``<output_dir>/.partial/<name>.ipynb``; only a
  successful run is renamed onto ``<name>.ipynb``. A failed run is moved to
  ``<output_dir>/.failed/<name>.ipynb`` (with the traceback in it) and the previous output stays.
* **Skip if unchanged.** A stamp ``<output_dir>/.stamps/<name>.json`` records a hash of the
  notebook source, the final parameters, the source of the ``prunerob`` package and the stamps of
  the notebooks it depends on. A notebook is skipped when its key is unchanged and the output file
  is the one that was stamped (``--force`` reruns). Interrupting a long ``reproduce`` therefore
  loses only the notebook that was running; trained models are cached by :mod:`prunerob.core.train`.
* **Dependencies.** Selecting a notebook that reads others' results also selects those: they run
  first when they have no stamped output in ``output_dir`` yet (with the profile's parameters);
  otherwise their existing results are reused. Name them explicitly to rerun or override them.
* **Right interpreter.** By default the kernel is started with the interpreter running this code
  (``sys.executable -m ipykernel_launcher``), so ``.venv/bin/prunerob reproduce`` executes in the
  venv even when it is not activated and whatever kernel specs the user has installed elsewhere.
  ``--kernel NAME`` uses a named Jupyter kernel spec instead.
* **Compact parameters.** Papermill's ``injected-parameters`` cell gets the myst-nb tag
  ``hide-input`` (collapsed in the book); the notebook's own ``parameters`` cell is hidden
  (``remove-cell``) when every name in it was injected, else collapsed too. A short note naming
  the profile, the overrides, the run time and the command to rerun is inserted before them.

The code lives in sub-modules, all re-exported here: :mod:`~prunerob.runner.layout` (folders, tags,
result types), :mod:`~prunerob.runner.params` (the ``parameters`` cell, ``-p`` values, types),
:mod:`~prunerob.runner.checks` (:data:`PARAM_CHECKS`, output paths), :mod:`~prunerob.runner.stamps`
(hashes, stamps), :mod:`~prunerob.runner.planning` (parameters per notebook, dependency order),
:mod:`~prunerob.runner.staging` (staging, journaled swap, signals), :mod:`~prunerob.runner.execute`
(kernel, one notebook, :func:`reproduce`), :mod:`~prunerob.runner.status` (``--list``) and
:mod:`~prunerob.runner.commands` (the ``reproduce`` / ``params`` sub-commands).
"""
from __future__ import annotations

from prunerob.runner.checks import (
    PARAM_CHECKS,
    check_parameter,
    check_path_parameter,
    is_output_path_parameter,
)
from prunerob.runner.commands import (
    _cmd_reproduce,
    main,
    parameters_yaml,
    register,
    write_plain_notebook,
)
from prunerob.runner.execute import (
    reproduce,
)
from prunerob.runner.layout import (
    DEFAULT_NOTEBOOKS_DIR,
    DEFAULT_OUTPUT_DIR,
    FAILED_DIR,
    HIDDEN_TAG,
    INFO_TAG,
    PACKAGE_DIR,
    PARTIAL_DIR,
    REPO_ROOT,
    STAGING_DIR,
    STAMP_DIR,
    NotebookFailed,
    Result,
    checkout_root,
    default_notebooks_dir,
    default_output_dir,
)
from prunerob.runner.params import (
    Expression,
    check_parameter_type,
    notebook_parameter_annotations,
    notebook_parameter_defaults,
    notebook_parameter_names,
    parse_value,
)
from prunerob.runner.planning import (
    check_output_paths,
    plan,
    stamp_key,
)
from prunerob.runner.staging import (
    _swap_in,
)
from prunerob.runner.stamps import (
    _is_up_to_date,
    _sha256_file,
    _tree_sha256,
    package_hash,
    read_stamp,
    stamp_path,
)
from prunerob.runner.status import (
    executed_summary,
    status_table,
)

#: the names of the old one-file ``prunerob/runner.py`` that other code uses (the private ones for tests)
__all__ = [
    "check_output_paths",
    "check_parameter",
    "check_parameter_type",
    "check_path_parameter",
    "checkout_root",
    "_cmd_reproduce",
    "DEFAULT_NOTEBOOKS_DIR",
    "default_notebooks_dir",
    "DEFAULT_OUTPUT_DIR",
    "default_output_dir",
    "executed_summary",
    "Expression",
    "FAILED_DIR",
    "HIDDEN_TAG",
    "INFO_TAG",
    "is_output_path_parameter",
    "_is_up_to_date",
    "main",
    "notebook_parameter_annotations",
    "notebook_parameter_defaults",
    "notebook_parameter_names",
    "NotebookFailed",
    "PACKAGE_DIR",
    "package_hash",
    "PARAM_CHECKS",
    "parameters_yaml",
    "parse_value",
    "PARTIAL_DIR",
    "plan",
    "read_stamp",
    "register",
    "REPO_ROOT",
    "reproduce",
    "Result",
    "_sha256_file",
    "STAGING_DIR",
    "STAMP_DIR",
    "stamp_key",
    "stamp_path",
    "status_table",
    "_swap_in",
    "_tree_sha256",
    "write_plain_notebook",
]
