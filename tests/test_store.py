"""The result store (prunerob.engine.store): keys, validation, concurrency, lookups before compute,
staleness at the grain of the code a unit runs, merging and proving a refactor identical."""
from __future__ import annotations

import json
import multiprocessing as mp
import shutil
import warnings
from pathlib import Path

import pytest

from prunerob.engine import codehash, store
from prunerob.engine.experiment import ExperimentSpec, run_experiment
from prunerob.runner.imports import render_hash

PKG = Path(__file__).resolve().parents[1] / "prunerob"


def _key(i: int = 0, kind: str = "memo", device: str = "cpu") -> store.Key:
    return store.Key(kind, {"i": i}, "data0", "code0", {"torch": "x"}, device)


def _spec(seeds=(0,), keeps=(1.0, 0.5)) -> ExperimentSpec:
    return ExperimentSpec(datasets=["mnist"], models="mlp", methods=["magnitude", "random"],
                          keeps=list(keeps), attacks=["fgsm", "pgd"], seeds=list(seeds), n=64, epochs=1,
                          train_subset=300, device="cpu")


# ---- keys and files ----------------------------------------------------------------------------
def test_key_digest_depends_on_every_component():
    base = _key()
    variants = [store.Key("memo", {"i": 1}, "data0", "code0", {"torch": "x"}, "cpu"),
                store.Key("memo", {"i": 0}, "data1", "code0", {"torch": "x"}, "cpu"),
                store.Key("memo", {"i": 0}, "data0", "code1", {"torch": "x"}, "cpu"),
                store.Key("memo", {"i": 0}, "data0", "code0", {"torch": "y"}, "cpu"),
                store.Key("cell", {"i": 0}, "data0", "code0", {"torch": "x"}, "cpu"),
                _key(device="cuda:H100")]
    assert len({base.digest, *(v.digest for v in variants)}) == 7
    assert _key(device="cuda:H100").spec_digest == base.spec_digest  # found across devices


def test_round_trip_and_other_device_lookup(tmp_path):
    st = store.Store(tmp_path)
    st.put([(_key(0, device="cuda:H100"), {"x": 1.5, "y": None}, 2.0)])
    fresh = store.Store(tmp_path)
    assert fresh.get(_key(0, device="cuda:H100")).value == {"x": 1.5, "y": None}
    assert fresh.get(_key(0)).key.device_class == "cuda:H100"  # labelled with the device that made it
    assert fresh.get(_key(0), other_devices=False) is None


def test_tampered_or_truncated_batch_is_refused_with_a_warning(tmp_path):
    st = store.Store(tmp_path)
    path = st.put([(_key(i), {"x": i}, 0.0) for i in range(3)])
    text = path.read_text()
    path.write_text(text.replace('"x":1', '"x":7'))
    with pytest.warns(UserWarning, match="does not match its sha256"):
        assert len(store.Store(tmp_path)) == 0
    path.write_text(text[: len(text) // 2])
    with pytest.warns(UserWarning, match="ignoring"):
        assert len(store.Store(tmp_path)) == 0


def test_a_unit_that_breaks_its_schema_is_refused(tmp_path):
    with pytest.raises(Exception, match="lacks cols, vals"):
        store.Store(tmp_path).put([(_key(0, kind="cell"), {"clean_bits": "ff"}, 0.0)])


def _writer(root: str, start: int) -> None:
    st = store.Store(root)
    for i in range(start, start + 20):
        st.put([(_key(i), {"x": i}, 0.0)])


def test_two_processes_writing_at_once(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), s)) for s in (0, 10)]  # overlapping units
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no half-written file
        st = store.Store(tmp_path)
        assert sorted(e.value["x"] for e in st.entries()) == list(range(30))


def test_merge_adds_only_new_units_and_writes_a_manifest(tmp_path):
    a, b = store.Store(tmp_path / "a"), store.Store(tmp_path / "b")
    a.put([(_key(i), {"x": i}, 0.0) for i in range(3)])
    b.put([(_key(2), {"x": 2}, 0.0), (_key(9, device="cuda:H100"), {"x": 9}, 0.0)])
    assert a.merge(tmp_path / "b") == 1
    assert len(store.Store(tmp_path / "a")) == 4
    assert (tmp_path / "a" / "MANIFEST.tsv").read_text().count("\n") == 3  # header + 2 batches


# ---- lookups before compute ----------------------------------------------------------------------
def test_second_run_reads_every_unit_and_gives_the_same_bytes(tmp_store):
    a = run_experiment(_spec())
    st = store.get_store()
    assert st.log.summary() == {"units": 9, "computed": 9}  # 1 model + 2 methods x 2 keeps x 2 attacks
    store._STORES.clear()
    b = run_experiment(_spec())
    assert store.get_store().log.summary() == {"units": 9, "computed": 0}
    assert a.sweep.to_csv(index=False) == b.sweep.to_csv(index=False)
    assert a.models.to_csv(index=False) == b.models.to_csv(index=False)


def test_adding_a_seed_or_a_keep_computes_only_the_new_units(tmp_store):
    a = run_experiment(_spec())
    store._STORES.clear()
    b = run_experiment(_spec(seeds=(0, 1)))
    assert store.get_store().log.summary() == {"units": 18, "computed": 9}
    assert b.sweep[b.sweep.seed == 0].drop(columns="config_hash").to_csv(index=False) == \
        a.sweep.drop(columns="config_hash").to_csv(index=False)
    store._STORES.clear()
    run_experiment(_spec(seeds=(0, 1), keeps=(1.0, 0.5, 0.25)))
    assert store.get_store().log.summary()["computed"] == 2 * 2 * 2  # 2 seeds x 2 methods x 2 attacks


def test_units_json_lists_what_a_page_used(tmp_store, tmp_path):
    run_experiment(_spec())
    path = store.get_store().log.write(tmp_path)
    data = json.loads(path.read_text())
    assert {u["kind"] for u in data["units"]} == {"train", "cell"}
    assert {tuple(g["uses"]) for g in data["groups"].values()} >= {("attack:fgsm", "method:magnitude")}
    files = next(g["files"] for g in data["groups"].values() if "method:magnitude" in g["uses"])
    assert "core/pruning/magnitude.py" in files and "core/pruning/random.py" not in files


# ---- staleness at the grain of the code -----------------------------------------------------------
@pytest.fixture
def pkg_copy(tmp_path):
    dst = tmp_path / "prunerob"
    shutil.copytree(PKG, dst, ignore=shutil.ignore_patterns("__pycache__"))
    yield dst


def test_editing_one_method_changes_only_the_keys_of_its_units(pkg_copy):
    def h(uses):
        return codehash.unit_code_hash([["engine", "sweep"]], uses, pkg_copy)

    before = {u: h(u) for u in (("method:magnitude", "attack:fgsm"), ("method:random", "attack:fgsm"),
                                ("method:magnitude_global", "attack:pgd"), ("method:taylor", "attack:pgd"))}
    with open(pkg_copy / "core" / "pruning" / "magnitude.py", "a") as f:
        f.write("\nX_CHANGED = 1\n")
    after = {u: h(u) for u in before}
    changed = {u[0] for u in before if before[u] != after[u]}
    assert changed == {"method:magnitude", "method:magnitude_global"}  # magnitude_global imports it


def test_a_new_method_file_changes_no_key_and_no_render_hash(pkg_copy):
    src = (PKG.parent / "notebooks" / "magnitude_mlp.py").read_text()
    uses = ("method:magnitude", "attack:pgd")
    h0, r0 = codehash.unit_code_hash([["engine", "sweep"]], uses, pkg_copy), render_hash(src, pkg_copy)
    (pkg_copy / "core" / "pruning" / "structured_new.py").write_text(
        "from prunerob.core.pruning.base import PruningMethod, register_method\n")
    (pkg_copy / "core" / "attacks" / "noise_new.py").write_text("X = 1\n")
    assert codehash.unit_code_hash([["engine", "sweep"]], uses, pkg_copy) == h0
    assert render_hash(src, pkg_copy) == r0


def test_rendering_code_changes_the_render_hash_but_no_unit_key(pkg_copy):
    src = (PKG.parent / "notebooks" / "magnitude_mlp.py").read_text()
    uses = ("method:magnitude", "attack:pgd")
    h0, r0 = codehash.unit_code_hash([["engine", "sweep"]], uses, pkg_copy), render_hash(src, pkg_copy)
    for f in ("render/plotting.py", "analysis/stats.py"):
        with open(pkg_copy / f, "a") as fh:
            fh.write("\n# a comment\n")
    assert codehash.unit_code_hash([["engine", "sweep"]], uses, pkg_copy) == h0
    assert render_hash(src, pkg_copy) != r0


def test_unit_code_follows_names_reexported_by_a_registry():
    files = {f.relative_to(PKG).as_posix() for f in codehash.unit_files([["theory", "risk"]], ())}
    assert "core/pruning/bernoulli.py" in files  # risk imports bernoulli_masks from the package
    assert "core/pruning/taylor.py" not in files


def test_compute_stale_units_are_counted_from_units_json(tmp_store, tmp_path):
    from prunerob.runner.status import unit_staleness

    run_experiment(_spec())
    out = tmp_path / "page"
    store.get_store().log.write(out)
    assert unit_staleness(out)[:2] == (9, 0)
    data = json.loads((out / "units.json").read_text())
    for g in data["groups"].values():
        if "method:random" in g["uses"]:
            g["code"] = "0" * 64  # as if random.py had changed since the page ran
    (out / "units.json").write_text(json.dumps(data))
    assert unit_staleness(out)[:2] == (9, 4)


def test_verify_recomputes_a_sample_bit_for_bit_and_reports_a_difference(tmp_store, tmp_path):
    from prunerob.engine import verify

    run_experiment(_spec())
    st = store.get_store()
    out = tmp_path / "page"
    st.log.write(out)
    data = json.loads((out / "units.json").read_text())
    for g in data["groups"].values():  # as if magnitude.py had been refactored since the page ran
        if "method:magnitude" in g["uses"]:
            g["code"] = "0" * 64
            g["files"]["core/pruning/magnitude.py"] = "0" * 16
    (out / "units.json").write_text(json.dumps(data))
    stale = verify.stale_units([out], st)
    assert list(stale) == [frozenset({"core/pruning/magnitude.py"})]
    assert len(stale[frozenset({"core/pruning/magnitude.py"})]) == 4  # 2 keeps x 2 attacks
    reps = verify.verify_and_rekey([out], st, sample=2, dry_run=True)
    assert [(r.sampled, r.identical, r.differences) for r in reps] == [(2, 2, [])]
    # a stored cell whose bits are not what the code computes is caught, and nothing is re-keyed
    for e, _ in stale[frozenset({"core/pruning/magnitude.py"})]:
        vals = dict(zip(e.value["cols"], e.value["vals"], strict=True))
        vals["adv_correct"] = -1
        e.value["vals"] = [vals[c] for c in e.value["cols"]]
    reps = verify.verify_and_rekey([out], st, sample=2)
    assert any("differs in adv_correct" in d for r in reps for d in r.differences)
    assert all(r.rekeyed == 0 for r in reps)


def test_verify_against_a_revision_compares_old_and_new_code_not_the_stored_value(tmp_store, tmp_path):
    """``store verify --against REV``: the sample is recomputed with the code that computed it and with
    the current code (fresh one-thread processes); a stored value from another environment does not
    matter, a change of the code's output does."""
    from prunerob.engine import verify

    run_experiment(_spec())
    st = store.get_store()
    out = tmp_path / "page"
    st.log.write(out)
    groups_of: dict = {}
    data = json.loads((out / "units.json").read_text())
    for g in data["groups"].values():
        if "method:magnitude" in g["uses"]:
            g["code"] = "0" * 64
            g["files"]["core/pruning/magnitude.py"] = "0" * 16
    (out / "units.json").write_text(json.dumps(data))
    stale = verify.stale_units([out], st, groups_of)[frozenset({"core/pruning/magnitude.py"})]
    e = next(e for e, _ in stale if e.key.spec["keep"] < 1.0)  # a cell that prunes
    here = Path(verify.__file__).resolve().parents[2]
    # the stored value was computed elsewhere: its bits differ, but old and new code agree here
    vals = dict(zip(e.value["cols"], e.value["vals"], strict=True))
    vals["adv_correct"] = -1
    e.value["vals"] = [vals[c] for c in e.value["cols"]]
    assert verify.compare_revisions(e, groups_of[e.key.digest], {"old": here}, here, st.root) is None
    # new code that computes something else is caught
    changed = tmp_path / "changed"
    shutil.copytree(here / "prunerob", changed / "prunerob", ignore=shutil.ignore_patterns("__pycache__"))
    mag = changed / "prunerob" / "core" / "pruning" / "magnitude.py"
    mag.write_text(mag.read_text().replace(".abs()", ".abs().neg()", 1))
    diff = verify.compare_revisions(e, groups_of[e.key.digest], {"old": here}, changed, st.root)
    assert diff is not None and "differs from old" in diff
    # a revision whose code is not the one that computed the unit is refused
    with pytest.raises(LookupError, match="none of the revisions"):
        verify.compare_revisions(e, groups_of[e.key.digest], {"other": changed}, here, st.root)


def test_verify_takes_a_page_study_proof_from_a_store_recomputed_with_the_current_code(tmp_store, tmp_path):
    """``store verify --recomputed STORE``: page-study units have no cell or model to sample; a run of
    the page with the current code elsewhere fills STORE, each stale unit found there is compared with
    the stored one (all but how it ran) and the group is re-keyed only when every pair agrees."""
    import pandas as pd

    from prunerob.engine import verify
    from prunerob.studies import units

    table = pd.DataFrame({"keep_ratio": [1.0, 0.5], "adv_acc": [0.25, 0.5],
                          "device": ["cpu (1 threads)"] * 2})
    for seed in (0, 1):
        units.table("demo_study", {"seed": seed}, lambda: table, device="cpu",
                    code=["prunerob.studies.risk_sweep"])
    st = store.get_store()
    out = tmp_path / "page"
    st.log.write(out)
    data = json.loads((out / "units.json").read_text())
    ((_, g),) = data["groups"].items()
    current = g["code"]
    g["code"], g["files"]["studies/risk_sweep.py"] = "0" * 64, "0" * 16  # as if risk_sweep.py had changed
    (out / "units.json").write_text(json.dumps(data))
    old, computed = {}, st
    st = store.Store(tmp_path / "committed")  # holds the units as the old code stored them
    for u in data["units"]:
        e = computed.entry(u["digest"])
        k = store.Key.from_dict({**e.key.as_dict(), "code": "0" * 64})
        st.put([(k, e.value, e.seconds)])
        u["digest"] = k.digest
        old[e.key.spec["seed"]] = (k, e.value)
    (out / "units.json").write_text(json.dumps(data))
    assert verify.stale_units([out], st)  # compute-stale, and no cell or model to sample
    assert "no stale model or cell" in verify.verify_and_rekey([out], st, dry_run=True)[0].differences[0]

    def proof(name, value):
        p = store.Store(tmp_path / name)
        k, _ = old[0]
        p.put([(store.Key.from_dict({**k.as_dict(), "code": current}), value, 9.9)])
        p.put([(k, {"columns": ["x"], "records": [[1]]}, 1.0)])  # an old-code unit there is no proof
        return p

    (rep,) = verify.verify_with_recomputed([out], st, store.Store(tmp_path / "empty"), dry_run=True)
    assert rep.sampled == 0 and "holds none" in rep.differences[0]
    v = old[0][1]
    moved = {**v, "records": [[r[0], r[1] + (0.25 if r[0] < 1 else 0), r[2]] for r in v["records"]]}
    (rep,) = verify.verify_with_recomputed([out], st, proof("moved", moved))
    assert rep.rekeyed == 0 and "differs in records (adv_acc)" in rep.differences[0]
    assert verify.stale_units([out], st)
    # the same numbers, computed on two threads in another time: identical; the group is re-keyed
    again = {**v, "seconds": 123.0, "records": [[*r[:2], "cpu (2 threads)"] for r in v["records"]]}
    (rep,) = verify.verify_with_recomputed([out], st, proof("again", again))
    assert (rep.sampled, rep.identical, rep.differences, rep.rekeyed) == (1, 1, [], 2)
    for seed in (0, 1):
        k = store.Key.from_dict({**old[seed][0].as_dict(), "code": current})
        # each re-keyed unit names the units whose recomputation proved its group (seed 0's here)
        assert st.entry(k.digest).value["verified"]["recomputed"] == [f"demo_study {old[0][0].identity[:12]}"]
    # now nothing is stale: a copy of this store (a worktree's) is no proof of anything, and says nothing
    shutil.copytree(st.root, tmp_path / "copy")
    assert verify.verify_with_recomputed([out], st, store.Store(tmp_path / "copy")) == []


def test_value_difference_ignores_how_a_unit_ran_and_names_what_it_computed_differently():
    from prunerob.engine.verify import value_difference as diff

    cell = {"cols": ["adv_correct", "device"], "vals": [7, "cpu (1 threads)"]}
    assert diff(cell, {**cell, "vals": [7, "cuda"], "verified": {"sample": 3}}) is None
    assert diff(cell, {**cell, "vals": [8, "cpu (1 threads)"]}) == "vals (adv_correct)"
    table = {"columns": ["keep", "seconds"], "records": [[0.5, 1.0], [0.4, 2.0]], "seconds": 5.0}
    assert diff(table, {**table, "records": [[0.5, 9.0], [0.4, 9.0]], "seconds": 6.0}) is None
    assert diff(table, {**table, "records": [[0.5, 1.0]]}) == "records: 2 rows against 1"
    assert diff({"columns": ["keep"], "records": []}, {"columns": ["keep"], "records": []}) is None
    assert diff({"note": "a", "rows": [{"acc": 0.5, "seconds": 1}]},
                {"note": "a", "rows": [{"acc": 0.5000001, "seconds": 1}]}) == "rows"


def test_a_source_file_changed_while_the_process_ran_is_refused(monkeypatch):
    """A key names the code that ran: a process whose source files changed on disk since it started
    (a merge during a long run) must not key new results with the new files' hash."""
    f = store._PACKAGE_DIR / "engine" / "sweep.py"
    store.check_source_unchanged([f])  # unchanged: no error
    monkeypatch.setitem(store._SOURCE_AT_START, f, -1)
    with pytest.raises(store.SourceChangedError, match="changed while this process ran"):
        store.check_source_unchanged([f])
    store._CODE_CACHE.clear()
    with pytest.raises(store.SourceChangedError):
        store.code_hash(["prunerob.engine.sweep"])


def test_a_unit_that_verify_rekeyed_is_not_compute_stale(tmp_store, tmp_path):
    """units.json names a unit of the old code; once the store holds it under the current code too
    (store verify), the page reads it and --list does not count it as compute-stale."""
    from prunerob.runner.status import unit_staleness

    run_experiment(_spec())
    st = store.get_store()
    out = tmp_path / "page"
    st.log.write(out)
    data = json.loads((out / "units.json").read_text())
    gid = next(k for k, g in data["groups"].items() if "method:random" in g["uses"])
    old = "0" * 64
    data["groups"][gid]["code"] = old
    batch = []
    for u in data["units"]:
        if u["group"] == gid:  # the unit as the old code stored it
            e = st.entry(u["digest"])
            k = store.Key.from_dict({**e.key.as_dict(), "code": old})
            batch.append((k, e.value, e.seconds))
            u["digest"] = k.digest
    for kind in {k.kind for k, _, _ in batch}:
        st.put([b for b in batch if b[0].kind == kind])
    (out / "units.json").write_text(json.dumps(data))
    assert unit_staleness(out)[:2] == (9, 0)  # the current-code copies exist: re-keyed
