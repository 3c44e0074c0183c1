"""Scale an experiment out on Dask: one task per independent (architecture, data set, seed) unit.

The paper's runs took about 200 GPU-hours; its units (train one model, then sweep it) are
independent, so :func:`prunerob.engine.experiment.run_experiment` can hand them to a Dask cluster
(``distributed``; ``dask_jobqueue`` for Slurm and PBS) instead of running them one after the other.

``scheduler`` is one of

* ``None``: serial, in this process (the default);
* ``"local:N"``: a ``LocalCluster`` of N single-threaded worker processes on this machine
  (loopback address, no dashboard);
* ``"tcp://host:8786"``: a running scheduler (``dask scheduler`` + ``dask worker tcp://host:8786``);
* ``"slurm"`` / ``"pbs"``: a ``dask_jobqueue.SLURMCluster`` / ``PBSCluster`` configured in
  ``~/.config/dask/jobqueue.yaml`` (queue, cores, memory, walltime), one job per unit at most;
* a ``distributed.Client`` the caller made (it is used, and left open).

Workers need prunerob, its data (``data_root``) and nothing else: each trains into a private
temporary cache and returns its tables and the checkpoint's bytes; the client writes the
checkpoint into its own cache with the atomic rules of :mod:`prunerob.config`, so no shared
file system is needed. A checkpoint the client already has is sent to the worker, which loads
it instead of training. Results are the rows of a serial run, in the same order.
"""
from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prunerob.config import ConfigError

#: jobqueue cluster classes by scheduler name
JOBQUEUE = {"slurm": "SLURMCluster", "pbs": "PBSCluster"}
SCHEDULER_FORMS = "None, 'local:N', 'tcp://host:port', 'slurm', 'pbs' or a distributed.Client"


def _import(module: str, extra: str) -> Any:
    """Import an optional dependency, or one ConfigError saying how to install it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module.split(".")[0]:
            raise
        raise ConfigError(f"scheduler needs the Python package {module.split('.')[0]!r}: "
                          f"pip install {extra}") from None


def _is_client(scheduler: Any) -> bool:
    return type(scheduler).__name__ == "Client" and hasattr(scheduler, "submit")


def check_scheduler(scheduler: Any) -> None:
    """Raise ConfigError unless ``scheduler`` is one of the forms of this module (no connection made)."""
    if scheduler is None or _is_client(scheduler):
        return
    if not isinstance(scheduler, str):
        raise ConfigError(f"scheduler={scheduler!r} must be {SCHEDULER_FORMS}")
    s = scheduler.strip()
    if s.startswith("local:"):
        n = s.split(":", 1)[1]
        if not n.isdigit() or int(n) < 1:
            raise ConfigError(f"scheduler={scheduler!r}: give 'local:N' with N >= 1 worker processes")
        _import("distributed", "distributed")
    elif "://" in s:
        proto, _, rest = s.partition("://")
        if proto not in ("tcp", "tls", "inproc", "ucx", "ws", "wss") or not rest:
            raise ConfigError(f"scheduler={scheduler!r}: give a scheduler address like tcp://host:8786")
        _import("distributed", "distributed")
    elif s in JOBQUEUE:
        _import("distributed", "distributed")
        _import("dask_jobqueue", "dask-jobqueue")
    else:
        raise ConfigError(f"scheduler={scheduler!r} must be {SCHEDULER_FORMS}")


def probe_scheduler(scheduler: Any, timeout: float = 5.0) -> None:
    """Fail fast when a ``tcp://`` / ``tls://`` scheduler address cannot be reached: one TCP
    connection with a ``timeout`` (seconds) before any work, instead of Dask's 30 s wait and an
    ``OSError``. ConfigError naming the scheduler; other forms are not probed."""
    if not isinstance(scheduler, str):
        return
    s = scheduler.strip()
    proto, _, rest = s.partition("://")
    if proto not in ("tcp", "tls") or not rest:
        return
    import socket
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(f"tcp://{rest}")
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise ConfigError(f"scheduler={scheduler!r}: not an address like tcp://host:8786 ({exc})") from None
    if not host or port is None:
        raise ConfigError(f"scheduler={scheduler!r}: give host and port, e.g. tcp://host:8786")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise ConfigError(f"scheduler={scheduler!r}: cannot connect to {host}:{port} ({why}); start the "
                          "scheduler (dask scheduler) and its workers, or give another --scheduler") from None


def describe(scheduler: Any) -> str:
    """How the units ran, for provenance."""
    if scheduler is None:
        return "serial"
    if _is_client(scheduler):
        return f"dask client {getattr(scheduler, 'scheduler', None) and scheduler.scheduler.address}"
    return f"dask {scheduler}"


@contextlib.contextmanager
def client_for(scheduler: Any, n_units: int) -> Iterator[Any]:
    """A ``distributed.Client`` for ``scheduler`` (closed afterwards unless the caller gave it)."""
    if _is_client(scheduler):
        yield scheduler
        return
    dd = _import("distributed", "distributed")
    s = str(scheduler).strip()
    if s.startswith("local:"):
        cluster = dd.LocalCluster(n_workers=int(s.split(":", 1)[1]), threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None)
    elif s in JOBQUEUE:
        jq = _import("dask_jobqueue", "dask-jobqueue")
        cluster = getattr(jq, JOBQUEUE[s])()
        cluster.adapt(minimum_jobs=0, maximum_jobs=max(1, n_units))
    else:
        cluster = None
    try:
        client = dd.Client(cluster if cluster is not None else s, timeout="10s")
    except (OSError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        raise ConfigError(f"scheduler={scheduler!r}: cannot connect ({type(exc).__name__}: "
                          f"{' '.join(str(exc).split())[:200]})") from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def map_units(fn: Callable[..., Any], payloads: Sequence[tuple], scheduler: Any) -> list[Any]:
    """``[fn(*p) for p in payloads]`` computed on the Dask cluster of ``scheduler``, in order.

    Each payload is one task (``pure=False``: a unit is never deduplicated). The first failing
    task's exception is raised here.
    """
    check_scheduler(scheduler)
    with client_for(scheduler, len(payloads)) as client:
        futures = [client.submit(fn, *p, pure=False) for p in payloads]
        return client.gather(futures)
