"""A page's sweep part stopped half-way resumes from its resume file (``pages.run_and_save``)."""
from __future__ import annotations

import pytest
import torch

from prunerob.engine import store
from prunerob.engine.experiment import ExperimentSpec
from prunerob.studies import pages


def _run(tmp_path, name: str = "page", out: str = "out") -> pages.Run:
    return pages.Run(name=name, profile="test", device=torch.device("cpu"), out=tmp_path / out)


def test_resume_folder_is_per_output_folder(tmp_store, tmp_path):
    a, b = pages.resume_folder(_run(tmp_path)), pages.resume_folder(_run(tmp_path, out="other"))
    assert a.parent == tmp_path / "cache" / "resume" and a.name.startswith("page-")
    assert a != b and a == pages.resume_folder(_run(tmp_path))


def test_distributed_run_gets_no_resume_folder(tmp_store, tmp_path, monkeypatch):
    seen = {}

    def fake(spec, scheduler=None, *, resume_dir=None, **_):
        seen["resume_dir"] = resume_dir
        raise RuntimeError("stop")

    monkeypatch.setattr(pages, "run_experiment", fake)
    with pytest.raises(RuntimeError):
        pages.run_and_save(_run(tmp_path), ExperimentSpec(), scheduler="local:2")
    assert seen["resume_dir"] is None
    with pytest.raises(RuntimeError):
        pages.run_and_save(_run(tmp_path), ExperimentSpec())
    assert seen["resume_dir"] == pages.resume_folder(_run(tmp_path))


@pytest.mark.needs_mnist
def test_interrupted_page_part_resumes_with_the_store(tmp_store, tmp_path, monkeypatch, sweep_loop):
    """Seed 0's part finishes and is stored; seed 1's stops after one of three keeps. The rerun reads
    seed 0 from the store, seed 1's first keep from the resume file, computes two keeps, and its
    table equals an uninterrupted run's."""
    spec = ExperimentSpec(datasets=["mnist"], models="mlp", methods=["magnitude"], keeps=[1.0, 0.6, 0.3],
                          attacks=["fgsm"], seeds=[0, 1], n=100, epochs=1, train_subset=1000, batched="no")
    run = _run(tmp_path)
    sweep_loop.interrupt_at(5)
    with pytest.raises(KeyboardInterrupt):
        pages.run_and_save(run, spec)
    folder = pages.resume_folder(run)
    assert sorted(p.name for p in folder.iterdir()) == ["mlp-mnist-seed0-main.partial.json",
                                                       "mlp-mnist-seed1-main.partial.json"]
    sweep_loop.count()
    resumed = pages.run_and_save(run, spec)
    assert len(sweep_loop.calls) == 2 and list(folder.iterdir()) == []
    monkeypatch.setenv(store.STORE_ENV, str(tmp_path / "fresh-store"))
    store._STORES.clear()
    fresh = pages.run_and_save(_run(tmp_path, out="fresh"), spec)
    cols = [c for c in fresh.sweep.columns if c != "seconds"]
    assert resumed.sweep[cols].to_csv(index=False) == fresh.sweep[cols].to_csv(index=False)
