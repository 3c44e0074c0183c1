"""Dask scale-out (prunerob.engine.distributed): a LocalCluster of 2 worker processes on the loopback
address gives exactly the rows of a serial run, and the client's cache receives the checkpoints.

Skipped when ``distributed`` is not installed or MNIST is not available offline. The cluster is
closed in every case; the whole module is bounded by a time check (a hung cluster fails it).
"""
from __future__ import annotations

import time

import pandas as pd
import pytest

from prunerob.config import ConfigError
from prunerob.core.data import load_dataset
from prunerob.engine.distributed import check_scheduler, describe
from prunerob.engine.experiment import ExperimentSpec, run_experiment

distributed = pytest.importorskip("distributed")

KEY = ["model", "dataset", "seed", "part", "method", "keep_ratio", "attack", "eps"]
#: the whole test (cluster start, two experiments, shutdown) must finish within this many seconds
TIME_LIMIT_S = 300


def test_scheduler_forms():
    for ok in (None, "local:2", "tcp://127.0.0.1:8786"):
        check_scheduler(ok)
    bad_forms = (("local:x", "local:N"), ("ftp://h", "address"), ("kubernetes", "scheduler"),
                 (2, "scheduler"))
    for bad, match in bad_forms:
        with pytest.raises(ConfigError, match=match):
            check_scheduler(bad)
    assert describe(None) == "serial" and describe("local:2") == "dask local:2"


@pytest.mark.needs_mnist
def test_local_cluster_equals_serial(tmp_cache, tmp_path, monkeypatch):
    t0 = time.perf_counter()
    # CIFAR-100 is never available offline: the workers report it skipped, as the serial run does
    spec = ExperimentSpec(datasets=["mnist", "cifar100"], models={"mnist": "mlp", "cifar100": "mlp_cifar"},
                          methods=["magnitude", "random"], keeps=[1.0, 0.5],
                          attacks=["fgsm", "pgd"], eps="4/255", seeds=[0, 1], n=100, epochs=1,
                          train_subset=500, device="cpu")
    # serial, into a separate cache so that the Dask run trains its models itself
    serial_cache = tmp_path / "serial-cache"
    monkeypatch.setenv("PRUNEROB_CACHE", str(serial_cache))
    serial = run_experiment(spec)
    monkeypatch.setenv("PRUNEROB_CACHE", str(tmp_cache))
    cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                                       dashboard_address=None)
    try:
        with distributed.Client(cluster) as client:
            dask = run_experiment(spec, scheduler=client)
            assert not dask.models.cached.any()  # trained on the workers
            written = sorted((tmp_cache / "checkpoints").glob("*.safetensors"))
            assert [p.name.split("-")[0] for p in written] == ["mlp", "mlp"]  # into the client's cache
            again = run_experiment(spec, scheduler=client)  # the client sends its checkpoints: workers load
            assert again.models.cached.all()
    finally:
        cluster.close()
    for other in (dask, again):
        a = serial.sweep.sort_values(KEY).reset_index(drop=True)
        b = other.sweep.sort_values(KEY).reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b)
        pd.testing.assert_frame_equal(serial.sweep, other.sweep)  # the same order, too
    assert list(serial.models.test_acc) == list(dask.models.test_acc)
    assert set(serial.skipped) == set(dask.skipped) == {"cifar100"} and dask.sources == serial.sources
    assert dask.provenance["scheduler"].startswith("dask client")
    assert time.perf_counter() - t0 < TIME_LIMIT_S


@pytest.mark.needs_mnist
def test_a_worker_computes_only_the_cells_the_store_lacks(tmp_cache, tmp_path, monkeypatch):
    """A subset part added to a stored unit (e.g. a strong attack on a page whose main sweep is in the
    store): the client sends the unit's stored entries with it (``stored_entries``), and the worker
    (``remote_unit``, run in this process so its sweeps can be counted) runs only the subset's cells,
    whose rows equal those of a serial run; with no entries sent it runs the whole unit."""
    from prunerob.engine import experiment as E
    from prunerob.engine import store as S

    common = dict(datasets=["mnist"], models="mlp", methods=["magnitude"], keeps=[1.0, 0.5],
                  attacks=["fgsm"], eps="4/255", seeds=[0], n=60, epochs=1, train_subset=300, device="cpu")
    st = S.Store(tmp_path / "store")
    run_experiment(ExperimentSpec(**common), store=st)  # the main sweep and the model summary: stored
    spec = ExperimentSpec(**common, subset=E.SubsetSpec(attacks=["pgd"], keeps=[1.0], n=20))
    unit = E.plan_units(spec)[0]
    test = load_dataset("mnist", "test", download=False)
    known = E.stored_entries(unit, spec, test, st)
    assert sorted(k["kind"] for k, _, _ in known) == ["cell", "cell", "train"]
    calls = []
    real = E.sweep_validated

    def counted(model, examples, args, **kw):
        calls.append(sorted(a for a, _ in args.specs))
        return real(model, examples, args, **kw)

    monkeypatch.setattr(E, "sweep_validated", counted)
    out = E.remote_unit(unit, spec, E.cached_checkpoints(unit, None), known)
    assert calls == [["pgd"]], calls  # the subset alone; the main cells came from the entries sent
    calls.clear()
    whole = E.remote_unit(unit, spec, E.cached_checkpoints(unit, None))
    assert calls == [["fgsm"], ["pgd"]], calls
    serial = run_experiment(spec, store=S.Store(tmp_path / "fresh"))
    cols = ["part", "method", "keep_ratio", "attack", "adv_acc", "clean_acc", "adv_bits"]
    for tables in (out["tables"], whole["tables"]):
        got = pd.concat(tables, ignore_index=True).sort_values(KEY).reset_index(drop=True)[cols]
        want = serial.sweep.sort_values(KEY).reset_index(drop=True)[cols]
        pd.testing.assert_frame_equal(got, want)
