"""The result store: every computed unit, keyed by what it depends on, committed with the book.

Compute once, render anywhere. A *unit* is the smallest independent computation of the
experiments (Sec. 6.3, App. H):

* ``train``: one trained model (its summary: test accuracy, epoch times, device, data source);
* ``cell``: one evaluation cell, model x method x keep x attack x eps x example subset, with its
  per-example correctness bits (the row of the sweep table, Fig. 2);
* ``curve``: the test accuracy of one training run after every epoch;
* any other kind a page study registers through :func:`cached`.

Each unit has a :class:`Key` built from its canonical specification, the identity of the data
(sha256 of the evaluation arrays), the library versions that matter, the device class and the hash
of the code that computes it (:mod:`prunerob.engine.codehash`: the import closure of the engine
plus the pruning method and attack modules the unit uses). A change in any of them gives another
key, so an old result is never reused silently, and a change elsewhere (plotting, statistics,
verdicts, page prose, a new method file) leaves every key as it was.

Units live in ``book/experiments/store/`` (``$PRUNEROB_STORE`` overrides it; ``off`` disables the
store) as JSON-lines batch files, one per batch of units computed together: a header line (format,
kind, unit count, sha256 of the body) and one line per unit (its key, digest, value and compute
seconds). A batch is written atomically under a name derived from its units' digests, so two
processes writing at once never corrupt each other; the store validates every file on load
(header, body hash, each unit's digest recomputed from its key, the required value fields,
:func:`read_batch`) and
skips a bad file with a warning naming it. ``MANIFEST.tsv`` lists the batches (path, kind, units,
sha256); ``prunerob store`` rebuilds it, merges a store computed elsewhere and proves a refactor
left results identical on a sample of units (:func:`prunerob.engine.verify.verify_and_rekey`).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prunerob.config import ConfigError, atomic_write_text

#: format of the batch files
STORE_FORMAT = 1
#: environment variable naming the store folder (``off``: no store)
STORE_ENV = "PRUNEROB_STORE"
#: environment variable: ``1`` makes every lookup miss and every computed unit replace the stored one
RECOMPUTE_ENV = "PRUNEROB_STORE_RECOMPUTE"
#: value fields every unit of a kind must hold (validated on load)
REQUIRED: dict[str, tuple[str, ...]] = {
    "train": ("test_acc", "config"),
    "cell": ("cols", "vals"),
    "curve": ("rows",),
}
_REPO = Path(__file__).resolve().parents[2]


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_native, allow_nan=True)


def _native(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, set)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in the result store")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def versions() -> dict[str, str]:
    """The library versions that change numbers: torch and torchattacks (major.minor.patch)."""
    import torch

    try:
        import torchattacks

        ta = torchattacks.__version__
    except Exception:  # pragma: no cover - optional
        ta = "n/a"
    return {"torch": torch.__version__.split("+")[0], "torchattacks": ta}


def device_class(device: Any) -> str:
    """``cpu`` or ``cuda:<device name>``: results of one class are comparable bit for bit."""
    import torch

    dev = torch.device(device) if not isinstance(device, torch.device) else device
    if dev.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(dev)}"
    return dev.type


def data_identity(ds: Any) -> str:
    """sha256 (16 hex) of a data set's arrays as held in memory (dtype, shape and bytes of x and y);
    computed once per object."""
    cached = getattr(ds, "_store_identity", None)
    if cached is not None:
        return cached
    h = hashlib.sha256()
    for t in (ds.x, ds.y):
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(__import__("torch").uint8).numpy().tobytes())
    ident = h.hexdigest()[:16]
    try:
        object.__setattr__(ds, "_store_identity", ident)
    except (AttributeError, TypeError):  # pragma: no cover - slotted objects
        pass
    return ident


@dataclass(frozen=True)
class Key:
    """What a unit depends on. ``digest`` names the unit; ``spec_digest`` is the same without the
    device class (a unit computed on another device is found through it and labelled so)."""

    kind: str
    spec: Mapping[str, Any]
    data: str
    code: str
    versions: Mapping[str, str]
    device_class: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "spec": dict(self.spec), "data": self.data, "code": self.code,
                "versions": dict(self.versions), "device_class": self.device_class}

    @property
    def identity(self) -> str:
        """What the unit *is* (kind, specification and data), without the code, versions or device
        that computed it: how another unit names a model it reads (its own code hash then holds
        the training code, so a change there shows as its staleness)."""
        return _sha(_canonical({"kind": self.kind, "spec": dict(self.spec), "data": self.data}))

    @property
    def spec_digest(self) -> str:
        d = self.as_dict()
        d.pop("device_class")
        return _sha(_canonical(d))

    @property
    def digest(self) -> str:
        return _sha(self.spec_digest + "|" + self.device_class)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Key:
        return cls(kind=d["kind"], spec=d["spec"], data=d["data"], code=d["code"], versions=d["versions"],
                   device_class=d["device_class"])


@dataclass
class Entry:
    """One stored unit: its key, value, compute seconds and the batch file holding it."""

    key: Key
    value: dict[str, Any]
    seconds: float
    path: Path | None = None


@dataclass
class UnitLog:
    """The units a page used, written to ``units.json`` beside its tables: one entry per *code
    group* (the modules and registry entries its units run, with the hash of every file of that
    code, :func:`group_files`) and one row per unit naming its group. ``prunerob reproduce --list``
    reads it to tell compute-stale pages from render-stale ones, and ``prunerob store verify``
    to see which files changed since a unit was computed."""

    units: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, key: Key, seconds: float, code_seeds: Iterable[str], uses: Iterable[str],
            computed: bool) -> None:
        self.units.setdefault(key.digest, {
            "kind": key.kind, "code": key.code, "seeds": sorted(code_seeds), "uses": sorted(uses),
            "seconds": round(float(seconds), 3), "device_class": key.device_class, "computed": computed})

    def summary(self) -> dict[str, int]:
        out = {"units": len(self.units), "computed": sum(u["computed"] for u in self.units.values())}
        return out

    def write(self, out_dir: str | os.PathLike) -> Path:
        groups: dict[str, dict[str, Any]] = {}
        rows = []
        for d, u in sorted(self.units.items()):
            gid = _sha(_canonical([u["seeds"], u["uses"], u["code"]]))[:12]
            if gid not in groups:
                files = _FILES_OF_CODE.get(u["code"]) or group_files(u["seeds"], u["uses"])
                groups[gid] = {"seeds": u["seeds"], "uses": u["uses"], "code": u["code"], "files": files}
            rows.append({"digest": d, "kind": u["kind"], "group": gid, "seconds": u["seconds"],
                         "device_class": u["device_class"]})
        text = json.dumps({"format": STORE_FORMAT + 1, "groups": groups, "units": rows}, indent=0)
        return atomic_write_text(Path(out_dir) / "units.json", text + "\n")


def read_units(out_dir: str | os.PathLike) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """``(groups, units)`` of a page's ``units.json`` (empty when it is missing or unreadable)."""
    try:
        data = json.loads((Path(out_dir) / "units.json").read_text())
        return dict(data["groups"]), list(data["units"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}, []


def group_files(seeds: Iterable[str], uses: Iterable[str] = ()) -> dict[str, str]:
    """Package-relative path -> sha256 (16 hex) of every file of a code group's closure."""
    from prunerob.engine import codehash

    files = codehash.unit_files([s.split(".")[1:] for s in seeds], uses, codehash.PACKAGE_DIR)
    return {f.relative_to(codehash.PACKAGE_DIR).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()[:16]
            for f in files if f != codehash.PACKAGE_DIR / "__init__.py"}


class Store:
    """A folder of unit batches with an in-memory index (built on first use)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self._by_digest: dict[str, Entry] | None = None
        self._by_spec: dict[str, list[Entry]] = {}
        self._lock = threading.Lock()
        self.log = UnitLog()

    # loading -------------------------------------------------------------------------------
    def _index(self) -> dict[str, Entry]:
        with self._lock:
            if self._by_digest is None:
                self._by_digest = {}
                for f in sorted(self.root.rglob("*.jsonl")) if self.root.is_dir() else []:
                    for e in read_batch(f):
                        self._add(e)
            return self._by_digest

    def _add(self, e: Entry) -> None:
        assert self._by_digest is not None
        if e.key.digest not in self._by_digest:
            self._by_digest[e.key.digest] = e
            self._by_spec.setdefault(e.key.spec_digest, []).append(e)

    def __len__(self) -> int:
        return len(self._index())

    def entries(self) -> list[Entry]:
        return list(self._index().values())

    def get(self, key: Key, *, other_devices: bool = True) -> Entry | None:
        """The unit of ``key``; else (``other_devices``) the same unit computed on another device.
        Under ``$PRUNEROB_STORE_RECOMPUTE=1`` (``prunerob reproduce --force --recompute``) every
        lookup misses, so the units are computed again and replace the stored ones."""
        if os.environ.get(RECOMPUTE_ENV) == "1":
            return None
        idx = self._index()
        if key.digest in idx:
            return idx[key.digest]
        if other_devices:
            found = sorted(self._by_spec.get(key.spec_digest, []), key=lambda e: e.key.device_class)
            return found[0] if found else None
        return None

    def entry(self, digest: str) -> Entry | None:
        """The unit named ``digest``, or None."""
        return self._index().get(digest)

    def has(self, digest: str) -> bool:
        return digest in self._index()

    # writing -------------------------------------------------------------------------------
    def put(self, items: Iterable[tuple[Key, Mapping[str, Any], float]]) -> Path | None:
        """Write a batch of ``(key, value, seconds)`` (atomically; units already stored are skipped)."""
        idx = self._index()
        replace = os.environ.get(RECOMPUTE_ENV) == "1"
        fresh = [(k, dict(v), float(s)) for k, v, s in items if replace or k.digest not in idx]
        if not fresh:
            return None
        if replace:
            self._drop({k.digest for k, _, _ in fresh if k.digest in idx})
        for k, v, _ in fresh:
            problem = _invalid(k.kind, v)
            if problem:
                raise ConfigError(f"result store: a {k.kind!r} unit {problem}")
        kind = fresh[0][0].kind
        name = _sha("".join(k.digest for k, _, _ in fresh))[:24]
        path = self.root / _safe(kind) / name[:2] / f"{name}.jsonl"
        _write_batch(path, kind, fresh)
        with self._lock:
            for k, v, s in fresh:
                self._add(Entry(k, v, s, path))
        return path

    def _drop(self, digests: set[str]) -> None:
        """Remove units from the batch files holding them (each file rewritten atomically)."""
        idx = self._index()
        for path in sorted({idx[d].path for d in digests if idx[d].path is not None}):
            keep = [e for e in read_batch(path) if e.key.digest not in digests]
            if keep:
                _write_batch(path, keep[0].key.kind, [(e.key, e.value, e.seconds) for e in keep])
            else:
                path.unlink(missing_ok=True)
        with self._lock:
            for d in digests:
                e = idx.pop(d, None)
                if e is not None:
                    self._by_spec[e.key.spec_digest] = [x for x in self._by_spec.get(e.key.spec_digest, [])
                                                        if x.key.digest != d]

    def merge(self, other: str | os.PathLike) -> int:
        """Copy every valid batch of the store folder ``other`` into this one; returns units added."""
        src = Store(other)
        added: dict[str, list[Entry]] = {}
        for e in src.entries():
            if not self.has(e.key.digest):
                added.setdefault(str(e.path), []).append(e)
        for batch in added.values():
            self.put((e.key, e.value, e.seconds) for e in batch)
        self.write_manifest()
        return sum(len(b) for b in added.values())

    def write_manifest(self) -> Path:
        """``MANIFEST.tsv``: one line per batch file (path, kind, units, sha256 of the file)."""
        lines = ["path\tkind\tunits\tsha256"]
        for f in sorted(self.root.rglob("*.jsonl")):
            head = json.loads(f.open().readline())
            lines.append(f"{f.relative_to(self.root).as_posix()}\t{head.get('kind')}\t{head.get('units')}\t"
                         f"{hashlib.sha256(f.read_bytes()).hexdigest()}")
        return atomic_write_text(self.root / "MANIFEST.tsv", "\n".join(lines) + "\n")


#: columns every evaluation cell row holds (the per-example bits make paired tests possible)
CELL_COLUMNS = ("method", "keep_ratio", "attack", "eps", "n", "clean_correct", "adv_correct", "clean_bits",
                "adv_bits", "device")


def _invalid(kind: str, value: Mapping[str, Any]) -> str | None:
    """Why ``value`` is not a valid unit of ``kind`` (the schema), or None."""
    missing = [f for f in REQUIRED.get(kind, ()) if f not in value]
    if missing:
        return f"lacks {', '.join(missing)}"
    if kind == "cell":
        cols, vals = value["cols"], value["vals"]
        if len(cols) != len(vals):
            return f"has {len(cols)} columns but {len(vals)} values"
        lack = [c for c in CELL_COLUMNS if c not in cols]
        if lack:
            return f"row lacks {', '.join(lack)}"
    return None


def _write_batch(path: Path, kind: str, items: list[tuple[Key, Mapping[str, Any], float]]) -> None:
    body = "\n".join(_canonical({"key": k.as_dict(), "digest": k.digest, "value": v,
                                 "seconds": round(s, 3)}) for k, v, s in items) + "\n"
    header = _canonical({"format": STORE_FORMAT, "kind": kind, "units": len(items),
                         "body_sha256": _sha(body)})
    atomic_write_text(path, header + "\n" + body)


def _safe(kind: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in kind)


def read_batch(path: Path) -> list[Entry]:
    """The valid units of one batch file; an invalid file gives a warning naming it and no units."""
    try:
        text = path.read_text()
        head_line, _, body = text.partition("\n")
        head = json.loads(head_line)
        if head.get("format") != STORE_FORMAT:
            raise ValueError(f"format {head.get('format')!r}, expected {STORE_FORMAT}")
        if _sha(body) != head.get("body_sha256"):
            raise ValueError("body does not match its sha256 (edited or truncated)")
        out = []
        for line in body.splitlines():
            rec = json.loads(line)
            key = Key.from_dict(rec["key"])
            if key.digest != rec["digest"]:
                raise ValueError(f"unit {rec['digest'][:12]}: digest does not match its key")
            problem = _invalid(key.kind, rec["value"])
            if problem:
                raise ValueError(f"unit {rec['digest'][:12]}: {problem}")
            out.append(Entry(key, rec["value"], float(rec.get("seconds", 0.0)), path))
        if len(out) != head.get("units"):
            raise ValueError(f"{len(out)} units, header says {head.get('units')}")
        return out
    except (OSError, ValueError, KeyError, TypeError) as exc:
        warnings.warn(f"result store: ignoring {path}: {exc}", stacklevel=2)
        return []


# ------------------------------------------------------------------------------------------------
# the process-wide store
# ------------------------------------------------------------------------------------------------
_STORES: dict[str, Store] = {}


def default_root() -> Path | None:
    """``$PRUNEROB_STORE`` (``off``: None), else ``book/experiments/store`` of this checkout, else
    ``<cache>/store``."""
    env = os.environ.get(STORE_ENV)
    if env is not None:
        return None if env.strip().lower() in ("off", "none", "") else Path(env)
    if (_REPO / "book" / "experiments").is_dir():
        return _REPO / "book" / "experiments" / "store"
    from prunerob.config import cache_dir

    return cache_dir() / "store"


def get_store(root: str | os.PathLike | None = None) -> Store | None:
    """The store at ``root`` (default :func:`default_root`), one object per folder and process."""
    r = Path(root) if root is not None else default_root()
    if r is None:
        return None
    key = str(r.resolve())
    if key not in _STORES:
        _STORES[key] = Store(r)
    return _STORES[key]


def code_hash(seeds: Iterable[str], uses: Iterable[str] = ()) -> str:
    """The code part of a key: :func:`prunerob.engine.codehash.unit_code_hash` of dotted module
    names (``"prunerob.engine.sweep"``) and used registry entries (``"method:magnitude"``)."""
    from prunerob.engine import codehash

    return _code_hash_cached(tuple(sorted(seeds)), tuple(sorted(uses)), codehash.PACKAGE_DIR)


_CODE_CACHE: dict[tuple, str] = {}

#: modification times of the package's source files when this process imported the store: a key
#: must name the code that ran, and a long run keeps the modules it imported even when the files
#: change on disk (a merge, an edit) while it runs
_PACKAGE_DIR = Path(__file__).resolve().parents[1]
_SOURCE_AT_START: dict[Path, int] = {f: f.stat().st_mtime_ns for f in _PACKAGE_DIR.rglob("*.py")}


class SourceChangedError(RuntimeError):
    """prunerob's source changed on disk while this process ran (its results would be keyed by code
    it did not run)."""


def check_source_unchanged(files: Iterable[Path]) -> None:
    """Raise :class:`SourceChangedError` when one of ``files`` (of the installed package) is not the
    file this process started with."""
    changed = [f for f in files if f.is_relative_to(_PACKAGE_DIR)
               and _SOURCE_AT_START.get(f) != f.stat().st_mtime_ns]
    if changed:
        names = ", ".join(sorted(f.relative_to(_PACKAGE_DIR).as_posix() for f in changed))
        raise SourceChangedError(f"prunerob's source changed while this process ran ({names}): a result "
                                 "computed now would be keyed by code it did not run; restart it (the "
                                 "finished units are stored and are read again)")


def _code_hash_cached(seeds: tuple[str, ...], uses: tuple[str, ...], package_dir: Path) -> str:
    from prunerob.engine import codehash

    files = codehash.unit_files([s.split(".")[1:] for s in seeds], uses, package_dir)
    files = [f for f in files if f != package_dir / "__init__.py"]  # the version string only
    check_source_unchanged(f.resolve() for f in files)
    stamp = tuple((str(f), f.stat().st_mtime_ns) for f in files)
    ck = (seeds, uses, stamp)
    if ck not in _CODE_CACHE:
        _CODE_CACHE[ck] = code = codehash.files_hash(files, package_dir)
        # the files this hash was computed from, for units.json (read now, not when the log is written)
        _FILES_OF_CODE[code] = {f.relative_to(package_dir).as_posix():
                                hashlib.sha256(f.read_bytes()).hexdigest()[:16] for f in files}
    return _CODE_CACHE[ck]


#: code hash -> {package-relative path: sha256 (16 hex)} of the files it was computed from
_FILES_OF_CODE: dict[str, dict[str, str]] = {}


def cached(kind: str, spec: Mapping[str, Any], compute: Callable[[], Mapping[str, Any]], *,
           data: str, device: Any, code_seeds: Iterable[str], uses: Iterable[str] = (),
           store: Store | None = None) -> dict[str, Any]:
    """The value of the unit ``(kind, spec)``: from the store when present, else ``compute()``
    (timed and stored). For page studies whose result is one JSON-able dict."""
    import time

    st = store if store is not None else get_store()
    seeds = list(code_seeds)
    key = Key(kind, json.loads(_canonical(spec)), data, code_hash(seeds, uses), versions(),
              device_class(device))
    if st is not None:
        hit = st.get(key)
        if hit is not None:
            st.log.add(hit.key, hit.seconds, seeds, uses, computed=False)
            return hit.value
    t0 = time.perf_counter()
    value = json.loads(_canonical(dict(compute())))
    secs = time.perf_counter() - t0
    if st is not None:
        st.put([(key, value, secs)])
        st.log.add(key, secs, seeds, uses, computed=True)
    return value


def finite_or_none(x: Any) -> Any:
    """NaN -> None (JSON has no NaN), for values stored in units."""
    return None if isinstance(x, float) and math.isnan(x) else x
