"""Status of executed notebooks: ``reproduce --list`` and the book's summary of executed notebooks."""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from prunerob.config import (
    ConfigError,
    check_choice,
)
from prunerob.runner.layout import PACKAGE_DIR, _load_profiles, default_notebooks_dir, default_output_dir
from prunerob.runner.planning import plan, stamp_key
from prunerob.runner.staging import leftovers
from prunerob.runner.stamps import _is_up_to_date, read_stamp


def status_table(profile: str = "quick", names: Iterable[str] | None = None,
                 output_dir: str | os.PathLike | None = None,
                 notebooks_dir: str | os.PathLike | None = None, profiles: Any = None,
                 overrides: Mapping[str, Any] | None = None,
                 package_dir: str | os.PathLike = PACKAGE_DIR) -> list[dict[str, Any]]:
    """One row per notebook: name, description, depends, status for this profile and overrides
    (``up to date``, ``stale``, ``not run``, ``no source`` or ``error: ...``), last profile and run
    time, and ``recovery``: what the next run will do with what a killed run of it left behind
    (:func:`~prunerob.runner.staging.leftovers`; empty when nothing is left)."""
    prof = _load_profiles(profiles)
    check_choice("profile", profile, prof.PROFILES)
    output_dir = Path(output_dir) if output_dir is not None else default_output_dir()
    notebooks_dir = Path(notebooks_dir) if notebooks_dir is not None else default_notebooks_dir()
    pending: dict[str, list[str]] = {}
    for left in leftovers(output_dir):
        pending.setdefault(left["name"], []).append(left["action"])
    rows = []
    for n in (list(names) if names else list(prof.NOTEBOOKS)):
        stamp = read_stamp(output_dir, n)
        out = output_dir / f"{n}.ipynb"
        if not (Path(notebooks_dir) / f"{n}.py").is_file():
            st = "no source"
        else:
            try:
                over = {k: v for k, v in (overrides or {}).items()}
                plans = plan([n], profile, over, notebooks_dir, profiles, Path(package_dir))
                (p,) = [q for q in plans if q.name == n]
                st = ("up to date" if _is_up_to_date(out, stamp, stamp_key(p, output_dir))
                      else ("stale" if stamp else "not run"))
                if n in getattr(prof, "STORE_BACKED", ()) and stamp:
                    st = _store_status(st, output_dir / str(p.params.get("out_dir", "")))
                    moved = changed_parameters(stamp.get("parameters") or {}, p.params)
                    if moved and st != "up to date":
                        st = (f"parameters changed ({', '.join(moved)}): a run computes what the stored "
                              f"units lack; the committed page shows the old parameters")
            except ConfigError as exc:
                st = f"error: {exc}"
        rows.append({"name": n, "status": st, "description": prof.NOTEBOOKS.get(n, ""),
                     "depends": ", ".join(prof.DEPENDS.get(n, [])),
                     "last_profile": (stamp or {}).get("profile", ""),
                     "last_seconds": (stamp or {}).get("seconds", ""),
                     "finished_at": (stamp or {}).get("finished_at", ""),
                     "recovery": "; ".join(pending.get(n, []))})
    return rows


def unit_staleness(results_dir: Path) -> tuple[int, int, float]:
    """``(units, stale, seconds)`` of the result-store units a page used (its ``units.json``):
    a unit is stale when the code it runs changed since (its group's code hash,
    :func:`prunerob.engine.store.code_hash`) or it is missing from the store; ``seconds`` is the
    recorded compute time of the stale ones (the cost of recomputing them)."""
    from prunerob.engine import store

    groups, units = store.read_units(results_dir)
    st = store.get_store()
    now: dict[str, str] = {}
    for gid, g in groups.items():
        try:
            now[gid] = store.code_hash(g["seeds"], g["uses"])
        except KeyError:  # a method or attack that is no longer registered
            now[gid] = ""
    stale, secs = 0, 0.0
    for u in units:
        g = groups.get(u.get("group"), {})
        code = now.get(u.get("group"), "")
        moved = code != g.get("code") and not _rekeyed(st, u["digest"], g.get("code"), code) if st else True
        if st is None or not st.has(u["digest"]) or moved:
            stale += 1
            secs += float(u.get("seconds", 0.0))
    return len(units), stale, secs


def _rekeyed(st: Any, digest: str, then: str | None, code: str) -> bool:
    """Whether the store holds the unit ``digest``, computed by the code ``then`` that ``units.json``
    records, under the current ``code`` too (``prunerob store verify`` stored it again after proving
    the change on a sample)."""
    from prunerob.engine import store

    e = st.entry(digest)
    if not code or e is None or e.key.code != then:
        return False
    return st.has(store.Key.from_dict({**e.key.as_dict(), "code": code}).digest)


def changed_parameters(then: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """Names of the parameters whose value differs between a page's stamp and its plan (``profile``
    and ``out_dir`` aside): a store-backed page then needs units that its ``units.json`` does not list."""
    return sorted(k for k in set(then) | set(now)
                  if k not in ("profile", "out_dir") and then.get(k) != now.get(k))


def _store_status(render: str, results_dir: Path) -> str:
    """``up to date``, ``render-stale (seconds)`` or ``compute-stale: N units ...`` of a store-backed page."""
    n, stale, secs = unit_staleness(results_dir)
    if stale:
        return f"compute-stale: {stale} of {n} units to compute (~{secs / 60:.0f} min recorded)"
    if render == "stale":
        return f"render-stale (re-executes from {n} stored units in seconds)"
    return render


def executed_summary(output_dir: str | os.PathLike | None = None,
                     notebooks_dir: str | os.PathLike | None = None, profiles: Any = None,
                     package_dir: str | os.PathLike = PACKAGE_DIR) -> list[dict[str, Any]]:
    """What the committed experiment pages are: one row per notebook, read from the executed
    notebooks and their stamps (shown on the book's Experiments page).

    ``current`` is ``yes`` when rerunning with the recorded profile and overrides would be skipped
    (same notebook source, parameters and prunerob code), ``no`` when something changed since,
    ``placeholder`` when the page has not been produced by ``prunerob reproduce`` yet.
    """
    import nbformat

    prof = _load_profiles(profiles)
    output_dir = Path(output_dir) if output_dir is not None else default_output_dir()
    rows = []
    for n, desc in prof.NOTEBOOKS.items():
        out = output_dir / f"{n}.ipynb"
        row = {"notebook": n, "what": desc, "profile": "", "overrides": "", "run time": "", "finished": "",
               "current": "placeholder"}
        meta = {}
        if out.is_file():
            try:
                meta = nbformat.read(out, as_version=4).metadata
            except Exception:  # unreadable output: treat as missing
                meta = {}
        stamp = read_stamp(output_dir, n)
        if meta.get("prunerob", {}).get("placeholder") or not out.is_file() or "papermill" not in meta:
            rows.append(row)
            continue
        info = meta.get("prunerob", {})
        row["profile"] = info.get("profile", "?")
        row["overrides"] = ", ".join(f"{k}={v!r}" for k, v in info.get("overrides", {}).items())
        secs = meta["papermill"].get("duration") or info.get("seconds")
        row["run time"] = f"{float(secs) / 60:.1f} min" if secs else ""
        row["finished"] = str(meta["papermill"].get("end_time", ""))[:16].replace("T", " ")
        try:
            (p,) = [q for q in plan([n], row["profile"], (stamp or {}).get("overrides", {}), notebooks_dir,
                                    profiles, Path(package_dir)) if q.name == n]
            row["current"] = "yes" if _is_up_to_date(out, stamp, stamp_key(p, output_dir)) else "no"
        except (ConfigError, ValueError):
            row["current"] = "no"
        rows.append(row)
    return rows
