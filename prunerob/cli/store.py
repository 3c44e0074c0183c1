"""``prunerob store``: list, merge, index and verify the committed result store
(:mod:`prunerob.engine.store`)."""
from __future__ import annotations

import argparse
import collections
from pathlib import Path
from typing import Any

from prunerob.config import ConfigError


def _store(args: argparse.Namespace):
    from prunerob.engine import store

    st = store.get_store(args.store)
    if st is None:
        raise ConfigError(f"--store: no result store ({store.STORE_ENV} is 'off'); give --store FOLDER")
    return st


def cmd_list(args: argparse.Namespace) -> int:
    st = _store(args)
    by = collections.Counter((e.key.kind, e.key.device_class) for e in st.entries())
    print(f"result store {st.root}: {len(st)} units")
    for (kind, dev), n in sorted(by.items()):
        print(f"  {kind:<8} {dev:<28} {n}")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    src = Path(args.source)
    if not src.is_dir():
        raise ConfigError(f"SOURCE={str(src)!r} is not a folder; give the store folder to merge in")
    n = _store(args).merge(src)
    print(f"merged {n} new units from {src}")
    return 0


def cmd_manifest(args: argparse.Namespace) -> int:
    print(f"wrote {_store(args).write_manifest()}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from prunerob.engine import verify
    from prunerob.runner.layout import default_output_dir

    if args.sample < 1:
        raise ConfigError(f"--sample={args.sample} must be an integer >= 1")
    results = sorted((default_output_dir() / "results").glob("*/"))
    if args.recomputed is not None:
        from prunerob.engine import store

        if args.against:
            raise ConfigError("--recomputed and --against are two proofs: give one of them")
        src = Path(args.recomputed)
        if not src.is_dir():
            raise ConfigError(f"--recomputed={str(src)!r} is not a folder; give the store folder of a run "
                              "of the page with the current code")
        reps = verify.verify_with_recomputed(results, _store(args), store.Store(src), dry_run=args.dry_run)
    else:
        reps = verify.verify_and_rekey(results, _store(args), sample=args.sample, dry_run=args.dry_run,
                                       max_train_seconds=args.max_train_seconds, against=args.against or ())
    if not reps:
        print("no compute-stale units: nothing to verify")
    for r in reps:
        print(r.line())
    _store(args).write_manifest()
    return 1 if any(r.differences for r in reps) else 0


def register(subparsers: Any) -> None:
    """Add ``store`` with its actions to ``subparsers``."""
    p = subparsers.add_parser("store", help="the committed result store: list, merge, manifest, verify",
                              description="Every computed unit (trained model, evaluation cell, training "
                                          "curve) is kept in the result store, keyed by what it depends on.")
    p.add_argument("--store", default=None, metavar="FOLDER",
                   help="store folder (default: $PRUNEROB_STORE or book/experiments/store)")
    acts = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = acts.add_parser("list", help="units per kind and device class")
    a.set_defaults(func=cmd_list)
    a = acts.add_parser("merge", help="merge a store computed elsewhere (a GPU, a cluster) into this one")
    a.add_argument("source", help="the other store folder")
    a.set_defaults(func=cmd_merge)
    a = acts.add_parser("manifest", help="rewrite MANIFEST.tsv")
    a.set_defaults(func=cmd_manifest)
    a = acts.add_parser("verify", help="after a refactor: recompute a sample of the compute-stale cells of "
                                       "every code group; re-key the group when all are identical")
    a.add_argument("--sample", type=int, default=3, help="cells recomputed per code group (default 3)")
    a.add_argument("--dry-run", action="store_true", help="compare only; re-key nothing")
    a.add_argument("--max-train-seconds", type=float, default=600.0,
                   help="sample only cells whose model trained in at most this many seconds (default 600)")
    a.add_argument("--against", action="append", metavar="REV",
                   help="git revision whose code computed the stale units (repeatable): recompute "
                        "each sample with it and with the current code, in fresh one-thread processes, "
                        "and require the two to agree, instead of comparing with the stored value "
                        "(training is reproducible only in the environment that trained a model)")
    a.add_argument("--recomputed", metavar="STORE", default=None,
                   help="take the proof from another store, filled by a run of the page with the current "
                        "code (page-study units, which only their page computes): each stale unit found "
                        "there is compared with the stored one, all but timing and provenance fields")
    a.set_defaults(func=cmd_verify)
