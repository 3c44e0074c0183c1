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
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
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
            return (f"{what}: {self.stale} stale; {self.identical} of {self.sampled} sampled cells "
                    f"identical; NOT re-keyed ({self.differences[0]})")
        return (f"{what}: {self.stale} stale; {self.identical} of {self.sampled} sampled cells "
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
                               f"(<= {max_train_seconds:.0f} s of training); recompute the pages")
    if rep.sampled and not rep.differences and not dry_run:
        batch, seen = [], set()
        for e, code in items:
            if e.key.digest in seen:
                continue
            seen.add(e.key.digest)
            k = store_mod.Key.from_dict({**e.key.as_dict(), "code": code})
            note = {"sample": rep.sampled, "changed": sorted(changed), "from_code": e.key.code}
            if against:
                note["against"] = list(against)  # the proof compared those revisions with the current code
            batch.append((k, {**e.value, "verified": note}, e.seconds))
        for kind in sorted({k.kind for k, _, _ in batch}):
            st.put([b for b in batch if b[0].kind == kind])
        rep.rekeyed = len(batch)
    return rep
