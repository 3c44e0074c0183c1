"""Prove that a refactor left results identical, on a sample of units, and keep the rest.

A change to the code a unit runs gives its units new keys (:mod:`prunerob.engine.codehash`), so
they become *compute-stale*. When the change is a refactor that should not move a single bit,
recomputing hours of units is waste. ``units.json`` records the hash of every file each code group
ran, so the stale units can be grouped by *the set of files that changed*. For each such set,
:func:`verify_and_rekey` recomputes a sample of the cheapest stale evaluation cells and trained
models it touches with the current code and compares them bit for bit (clean and adversarial
per-example bits, counts, achieved keep ratio; for a model, its test accuracy after retraining).
When every sample is identical, every stale unit whose only changed code is that set (cells,
models, curves and page-study tables) is stored again under its new key with the same value and a
``verified`` note (sample size, changed files, old code hash); when one differs, nothing is
re-keyed and the differences are reported: those pages must be recomputed.

Retraining reproduces a stored model bit for bit only in the environment that trained it (on the
development CPU the reduction order of float32 kernels depends on the thread layout, so a model
retrained months later can differ in its last digits). ``against`` (``prunerob store verify
--against REV``) therefore proves the *code change* instead: each sampled unit is recomputed twice,
in two fresh processes with one torch thread, once with the code of git revision ``REV`` (checked
to be the code the stale units were computed with: its code hash must equal theirs) and once with
the current code, and the two results must be identical. That is a statement about the change
alone, independent of the machine, and the stored value (computed by ``REV``'s code) is then
also the current code's value.

A group of *page-study* units alone (risk tables, sweet-spot grids, the eps = 0.1 tables) has no cell
or model to sample: such a unit is computed by its page, not from its key. ``recomputed``
(``prunerob store verify --recomputed STORE``) takes the proof from another store instead, one that
a run of the page with the current code filled (e.g. ``prunerob reproduce eps01_gain -p seeds
'[0]'`` in a worktree, which recomputes the units of one seed): every stale unit that this store
holds under the current code is compared with the stale one, value for value except the fields that
record how it ran (:data:`VOLATILE`), and when every such pair is identical the whole group is
re-keyed, as above.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prunerob.engine import store as store_mod

#: the columns compared between a stored cell and its recomputation
COMPARED = ("clean_bits", "adv_bits", "clean_correct", "adv_correct", "n", "achieved_keep")


@dataclass
class GroupReport:
    """Outcome for one code group (the modules and registry entries its units run)."""

    seeds: tuple[str, ...]  # the changed files
    uses: tuple[str, ...]
    stale: int
    sampled: int = 0
    identical: int = 0
    rekeyed: int = 0
    differences: list[str] = field(default_factory=list)

    def line(self) -> str:
        what = "changed " + ", ".join(self.seeds)
        if self.differences:
            return (f"{what}: {self.stale} stale; {self.identical} of {self.sampled} sampled units "
                    f"identical; NOT re-keyed ({self.differences[0]})")
        return (f"{what}: {self.stale} stale; {self.identical} of {self.sampled} sampled units "
                f"identical; {self.rekeyed} re-keyed")


def stale_units(results_dirs: Iterable[Path], st: store_mod.Store,
                groups_of: dict[str, tuple[list[str], list[str]]] | None = None
                ) -> dict[frozenset[str], list[tuple[store_mod.Entry, str]]]:
    """Stale stored units of the pages in ``results_dirs`` (their ``units.json``), grouped by the
    set of files that changed since they were computed; each with its code group's current hash.
    ``groups_of`` (when given) receives each stale unit's code group (seeds, uses) by digest."""
    out: dict[frozenset[str], list[tuple[store_mod.Entry, str]]] = {}
    for d in results_dirs:
        groups, units = store_mod.read_units(d)
        now: dict[str, tuple[str, frozenset[str]]] = {}
        for gid, g in groups.items():
            try:
                files = store_mod.group_files(g["seeds"], g["uses"])
                code = store_mod.code_hash(g["seeds"], g["uses"])
            except KeyError:  # a method or attack no longer registered: nothing to prove
                continue
            old = g.get("files", {})
            changed = frozenset(f for f in set(files) | set(old) if files.get(f) != old.get(f))
            if code != g["code"] and changed:
                now[gid] = (code, changed)
        for u in units:
            if u.get("group") in now:
                e = st.entry(u["digest"])
                code, changed = now[u["group"]]
                if e is not None:
                    out.setdefault(changed, []).append((e, code))
                    if groups_of is not None:
                        g = groups[u["group"]]
                        groups_of[e.key.digest] = (list(g["seeds"]), list(g["uses"]))
    return out


def recompute_cell(entry: store_mod.Entry, st: store_mod.Store, device: str = "cpu") -> dict[str, Any]:
    """Recompute one evaluation cell from its key with the current code (its model retrained in a
    temporary cache, so the proof covers the training code too); returns its row."""
    from prunerob.core.data import load_dataset
    from prunerob.core.pruning import get_method
    from prunerob.core.subsets import as_examples
    from prunerob.core.train import train_model
    from prunerob.engine.experiment import config_from_fields
    from prunerob.engine.sweep import sweep_validated, validate_sweep_args

    spec = entry.key.spec
    tentry = next((e for e in st.entries()
                   if e.key.kind == "train" and e.key.identity == spec["model"]), None)
    if tentry is None:
        raise LookupError("its trained model is not in the store")
    cfg = config_from_fields(tentry.key.spec["train"])
    image_size = tentry.key.spec.get("image_size")
    test = load_dataset(spec["dataset"], "test", image_size=image_size)
    if store_mod.data_identity(test) != entry.key.data:
        raise LookupError("the test data here differ from the data it was computed on")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:  # retrained with the current code, not loaded
        model, _ = train_model(cfg, device=device, cache_dir=tmp, progress=False)
    args = validate_sweep_args(methods=[spec["method"]], keeps=[spec["keep"]], attacks=[spec["attack"]],
                               eps=[spec["eps"]], seed=spec["seed"], n=spec["n"],
                               batch_size=spec["batch_size"], batched=spec["batched"],
                               subset_seed=spec["subset_seed"])
    if args.specs[(spec["attack"], spec["eps"])].as_columns() != spec["attack_params"]:
        raise LookupError("its attack parameters are not the registry defaults (overrides are not rebuilt)")
    score = None
    if get_method(spec["method"]).needs_data:
        train = load_dataset(spec["dataset"], "train", image_size=image_size)
        score = as_examples(train.subset(spec["score_examples"], seed=spec["seed"])
                            if spec["score_examples"] else train, "train_data")
    df = sweep_validated(model, as_examples(test, "test data"), args, model_name=spec["arch"],
                         dataset_name=spec["dataset"], device=model_device(device), train_data=score)
    return df.iloc[0].to_dict()


def recompute_train(entry: store_mod.Entry, device: str = "cpu") -> dict[str, Any]:
    """Retrain one stored model from its key with the current code (ignoring the checkpoint cache)."""
    import tempfile

    from prunerob.core.data import load_dataset
    from prunerob.core.train import train_model
    from prunerob.engine.experiment import config_from_fields

    cfg = config_from_fields(entry.key.spec["train"])
    test = load_dataset(cfg.dataset, "test", image_size=entry.key.spec.get("image_size"))
    if store_mod.data_identity(test) != entry.key.data:
        raise LookupError("the test data here differ from the data it was trained on")
    with tempfile.TemporaryDirectory() as tmp:
        _, info = train_model(cfg, device=device, cache_dir=tmp, progress=False)
    return info


#: the script a fresh process runs to recompute one stored unit with the code on its ``PYTHONPATH``;
#: it uses only functions that every revision with a result store has (``store.get_store``,
#: ``Store.entry``, ``store.code_hash``, ``recompute_cell``, ``recompute_train``)
_RECOMPUTE = """
import json, sys
tree = sys.argv[4]
# the package must come from the tree: not from the working directory ('' leads sys.path) nor an
# editable install's import hook
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path.insert(0, tree)
import torch
torch.set_num_threads(1)
import prunerob
from prunerob.engine import store as S, verify as V
digest, seeds, uses, fields = json.loads(sys.argv[1])
st = S.get_store(sys.argv[2])
e = st.entry(digest)
code = S.code_hash(seeds, uses)
if sys.argv[3] == "code":
    row = {}
else:
    row = V.recompute_cell(e, st) if e.key.kind == "cell" else V.recompute_train(e)
print("@@prunerob-verify@@" + json.dumps({"code": code, "file": prunerob.__file__,
                                          "row": {f: str(row.get(f)) for f in fields}}))
"""

#: fields compared for a trained model (its summary after retraining)
TRAIN_COMPARED = ("test_acc", "n_train")
#: what records how a unit ran, not what it computed: left out when a recomputed unit is compared
#: (keys of a unit's value and columns of its tables)
VOLATILE = frozenset({"seconds", "epoch_times_s", "cached", "device", "path", "verified", "adopted"})


def comparable(value: Any) -> Any:
    """``value`` without its :data:`VOLATILE` fields, at any depth: a dict drops those keys, a table
    (``{"columns", "records"}`` as :func:`prunerob.studies.units.encode` writes it, or a cell's
    ``{"cols", "vals"}``) drops those columns; floats are compared by their ``repr``."""
    if isinstance(value, dict):
        for cols, rows in (("columns", "records"), ("cols", "vals")):
            if cols in value and rows in value:
                keep = [i for i, c in enumerate(value[cols]) if c not in VOLATILE]
                rest = {k: v for k, v in value.items() if k not in (cols, rows)}
                data = value[rows]
                kept = ([] if not data else [[r[i] for i in keep] for r in data] if isinstance(data[0], list)
                        else [data[i] for i in keep])
                return {**comparable(rest), cols: [value[cols][i] for i in keep], rows: comparable(kept)}
        return {k: comparable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list | tuple):
        return [comparable(v) for v in value]
    return repr(value) if isinstance(value, float) else value


def value_difference(stored: Mapping[str, Any], recomputed: Mapping[str, Any]) -> str | None:
    """None when the two unit values agree on everything but :data:`VOLATILE`; else the first
    field (key, or column of a table) where they differ."""
    a, b = comparable(dict(stored)), comparable(dict(recomputed))
    if a == b:
        return None
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            cols = a.get("columns") or a.get("cols")
            if k in ("records", "vals") and cols and a.get(k) and b.get(k):
                rows_a = a[k] if isinstance(a[k][0], list) else [a[k]]
                rows_b = b[k] if isinstance(b[k][0], list) else [b[k]]
                if len(rows_a) != len(rows_b):
                    return f"{k}: {len(rows_a)} rows against {len(rows_b)}"
                bad = sorted({c for ra, rb in zip(rows_a, rows_b, strict=True)
                              for c, x, y in zip(cols, ra, rb, strict=False) if x != y})
                return f"{k} ({', '.join(bad) or 'row length'})"
            return k
    return "value"


def revision_tree(rev: str, into: Path) -> Path:
    """The ``prunerob`` package of git revision ``rev`` of this checkout, extracted under ``into``."""
    repo = Path(__file__).resolve().parents[2]
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(repo), "archive", rev, "prunerob"], capture_output=True,
                             check=False)
    if archive.returncode != 0:
        raise LookupError(f"git archive {rev}: {archive.stderr.decode().strip()[:200]}")
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def recompute_in(tree: Path, entry: store_mod.Entry, group: tuple[list[str], list[str]],
                 store_root: Path, code_only: bool = False) -> tuple[str, dict[str, str]]:
    """Recompute ``entry`` with the package in ``tree`` in a fresh process (one torch thread); returns
    that code's hash of the unit's code group and the compared fields of its result (``code_only``:
    the hash alone, nothing recomputed)."""
    fields = COMPARED if entry.key.kind == "cell" else TRAIN_COMPARED
    from prunerob.config import data_root

    env = {**os.environ, "PYTHONPATH": str(tree), "PRUNEROB_STORE": str(store_root),
           "PRUNEROB_DATA": str(data_root()), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    arg = json.dumps([entry.key.digest, group[0], group[1], list(fields)])
    what = "code" if code_only else "row"
    r = subprocess.run([sys.executable, "-c", _RECOMPUTE, arg, str(store_root), what, str(tree)], env=env,
                       capture_output=True, text=True, check=False)
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("@@prunerob-verify@@")), None)
    if r.returncode != 0 or line is None:
        raise LookupError(f"the recomputation failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
    out = json.loads(line[len("@@prunerob-verify@@"):])
    if not Path(out["file"]).resolve().is_relative_to(Path(tree).resolve()):
        raise LookupError(f"the recomputation imported prunerob from {out['file']}, not from {tree}")
    return out["code"], out["row"]


def compare_revisions(entry: store_mod.Entry, group: tuple[list[str], list[str]], trees: dict[str, Path],
                      current: Path, store_root: Path) -> str | None:
    """Recompute ``entry`` with the revision whose code hash is the entry's (one of ``trees``) and with
    the ``current`` package; None when identical, else what differs."""
    for rev, tree in trees.items():
        if recompute_in(tree, entry, group, store_root, code_only=True)[0] != entry.key.code:
            continue  # not the code this unit was computed with: try the next revision
        _, old = recompute_in(tree, entry, group, store_root)
        _, new = recompute_in(current, entry, group, store_root)
        diff = [f for f in old if old[f] != new.get(f)]
        if diff:
            return f"{entry.key.kind} {entry.key.digest[:12]} differs from {rev} in {', '.join(diff)}"
        return None
    raise LookupError(f"none of the revisions {', '.join(trees)} has the code it was computed with")


def model_device(device: str) -> Any:
    from prunerob.config import resolve_device

    return resolve_device(device)


def train_seconds(entry: store_mod.Entry, st: store_mod.Store) -> float:
    """Recorded training seconds of the model behind a cell (inf when its model is not stored)."""
    want = entry.key.spec["model"]
    t = next((e for e in st.entries() if e.key.kind == "train" and e.key.identity == want), None)
    return float(sum(t.value.get("epoch_times_s") or [0])) if t is not None else float("inf")


def verify_and_rekey(results_dirs: Iterable[Path], st: store_mod.Store, *, sample: int = 3, seed: int = 0,
                     dry_run: bool = False, max_train_seconds: float = 600.0,
                     against: Sequence[str] = ()) -> list[GroupReport]:
    """For every set of changed files: recompute ``sample`` of the stale trained models and ``sample``
    of the stale evaluation cells that this change touches, the cheapest ones (recorded training time
    at most ``max_train_seconds``: rebuilding a CIFAR model for a proof costs hours), and compare
    them bit for bit; when all match, every stale unit whose only changed code is that set (cells,
    models, curves and page-study tables alike) is stored again under its new key. The proof is
    a sample, stated as such in each re-keyed unit's ``verified`` note.

    With ``against`` (git revisions), each sample is recomputed with the revision that computed it
    and with the current code, in fresh one-thread processes, and those two must agree (the module
    docstring says why); the stored value is not recomputed."""
    reports = []
    rng = random.Random(seed)
    groups_of: dict[str, tuple[list[str], list[str]]] = {}
    stale = stale_units(results_dirs, st, groups_of)
    with tempfile.TemporaryDirectory(prefix="prunerob-verify-") as tmp:
        trees = {rev: revision_tree(rev, Path(tmp) / rev) for rev in against}
        current = Path(__file__).resolve().parents[2]

        def check(e: store_mod.Entry) -> str | None:
            if trees:
                return compare_revisions(e, groups_of[e.key.digest], trees, current, st.root)
            if e.key.kind == "cell":
                stored = dict(zip(e.value["cols"], e.value["vals"], strict=True))
                row = recompute_cell(e, st)
                diff = [c for c in COMPARED if str(row.get(c)) != str(stored.get(c))]
                return f"cell {e.key.digest[:12]} differs in {', '.join(diff)}" if diff else None
            got = recompute_train(e)
            diff = [f for f in TRAIN_COMPARED if str(got.get(f)) != str(e.value.get(f))]
            return f"model {e.key.digest[:12]} differs in {', '.join(diff)}" if diff else None

        for changed, items in sorted(stale.items(), key=lambda kv: sorted(kv[0])):
            reports.append(_verify_group(changed, items, st, check, rng, sample, dry_run, max_train_seconds,
                                         against))
    return reports


def _verify_group(changed: frozenset[str], items: list[tuple[store_mod.Entry, str]], st: store_mod.Store,
                  check: Callable[[store_mod.Entry], str | None], rng: random.Random, sample: int,
                  dry_run: bool, max_train_seconds: float, against: Sequence[str]) -> GroupReport:
    """:func:`verify_and_rekey` for the stale units of one set of changed files: ``check`` says how a
    sampled unit differs (None: identical)."""
    entries = [e for e, _ in items]
    rep = GroupReport(tuple(sorted(changed)), (), len({e.key.digest for e in entries}))
    cells = [e for e in entries if e.key.kind == "cell" and train_seconds(e, st) <= max_train_seconds]
    cheapest = min((train_seconds(e, st), e.key.spec["model"]) for e in cells)[1] if cells else None
    cells = [e for e in cells if e.key.spec["model"] == cheapest]
    trains = sorted((e for e in entries if e.key.kind == "train"
                     and float(sum(e.value.get("epoch_times_s") or [0])) <= max_train_seconds),
                    key=lambda e: float(sum(e.value.get("epoch_times_s") or [0])))
    # cells: a sample of those of the cheapest model; trained models: the cheapest (retrained)
    for e in [*rng.sample(cells, min(sample, len(cells))), *trains[:sample]]:
        rep.sampled += 1
        try:
            diff = check(e)
        except LookupError as exc:
            rep.differences.append(f"cannot recompute {e.key.kind} {e.key.digest[:12]}: {exc}")
            continue
        if diff:
            rep.differences.append(diff)
        else:
            rep.identical += 1
    if not rep.sampled and not rep.differences:
        rep.differences.append("no stale model or cell cheap enough to recompute touches these files "
                               f"(<= {max_train_seconds:.0f} s of training); recompute the pages, or "
                               "give --recomputed STORE: a run of one page's cheapest part with this code")
    if rep.sampled and not rep.differences and not dry_run:
        rep.rekeyed = _rekey(items, changed, st, {"sample": rep.sampled, **(
            {"against": list(against)} if against else {})})  # against: the revisions compared
    return rep


def _rekey(items: list[tuple[store_mod.Entry, str]], changed: frozenset[str], st: store_mod.Store,
           proof: Mapping[str, Any]) -> int:
    """Store every unit of ``items`` again under its current code hash, with a ``verified`` note
    (``proof``, the changed files, the old code hash); returns how many."""
    batch, seen = [], set()
    for e, code in items:
        if e.key.digest in seen:
            continue
        seen.add(e.key.digest)
        k = store_mod.Key.from_dict({**e.key.as_dict(), "code": code})
        note = {**proof, "changed": sorted(changed), "from_code": e.key.code}
        batch.append((k, {**e.value, "verified": note}, e.seconds))
    for kind in sorted({k.kind for k, _, _ in batch}):
        st.put([b for b in batch if b[0].kind == kind])
    return len(batch)


def verify_with_recomputed(results_dirs: Iterable[Path], st: store_mod.Store, proof: store_mod.Store, *,
                           dry_run: bool = False) -> list[GroupReport]:
    """For every set of changed files: compare each stale unit that ``proof`` holds recomputed with the
    current code (same kind, specification, data and device class; its code hash the group's current
    one) with the stored one (:func:`value_difference`); when at least one was recomputed and every
    one is identical, re-key every stale unit of that set (the module docstring says when to use
    this: page-study units, which only their page computes)."""
    stale = stale_units(results_dirs, st)
    found: dict[tuple[str, str, str], store_mod.Entry] = {
        (e.key.identity, e.key.device_class, e.key.code): e for e in proof.entries()}
    reports = []
    for changed, items in sorted(stale.items(), key=lambda kv: sorted(kv[0])):
        # a unit that this store already holds under the current code needs nothing; and a copy of
        # this store (a worktree's) then proves nothing, since its current-code units are these
        items = [(e, code) for e, code in items
                 if not st.has(store_mod.Key.from_dict({**e.key.as_dict(), "code": code}).digest)]
        if not items:
            continue
        rep = GroupReport(tuple(sorted(changed)), (), len({e.key.digest for e, _ in items}))
        seen, sampled = set(), []
        for e, code in items:
            redo = found.get((e.key.identity, e.key.device_class, code))
            if redo is None or e.key.digest in seen:
                continue
            seen.add(e.key.digest)
            sampled.append(f"{e.key.kind} {e.key.identity[:12]}")
            rep.sampled += 1
            diff = value_difference(e.value, redo.value)
            if diff:
                rep.differences.append(f"{e.key.kind} {e.key.digest[:12]} differs in {diff}")
            else:
                rep.identical += 1
        if not rep.sampled:
            rep.differences.append(f"{proof.root} holds none of these units recomputed with the current code "
                                   "(run the page there with the current code first)")
        elif not rep.differences and not dry_run:
            rep.rekeyed = _rekey(items, changed, st, {"sample": rep.sampled, "recomputed": sampled})
        reports.append(rep)
    return reports
