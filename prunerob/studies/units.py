"""Result-store units for page studies beyond the sweep: lazily trained models and stored tables.

A page study (a risk estimate, Algorithm 1's choices, a bound front, a sweet-spot grid) is a
function of one or more trained models and some parameters that returns a table. :func:`table`
makes it a result-store unit (:mod:`prunerob.engine.store`): the key holds the study's kind and
parameters, the keys of the models it reads, the identity of its data and the code of the study's
module (its import closure, plus the pruning methods and attacks it names); the models are trained
or loaded only when the table is not stored. :class:`LazyModel` is such a model: its summary (test
accuracy, device) comes from the store when the model itself is not needed.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
import torch

from prunerob.core.data import load_dataset
from prunerob.core.train import TrainConfig, train_model
from prunerob.engine import adopt, store
from prunerob.engine.experiment import TRAIN_CODE, train_fields

__all__ = ["LazyModel", "adopted_or", "encode", "frame", "info_row", "table", "value"]

#: the fields of a training info dict that the models table (``train_summary``) reads
INFO_FIELDS = ("arch", "dataset", "seed", "epochs", "train_subset", "image_size", "n_train", "test_acc",
               "epoch_times_s", "cached", "device", "data_source", "hash")


def info_row(info: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-able part of a ``train_model`` / ``fit`` info dict that the models table reads."""
    cfg = info.get("config") or {}
    out = {k: cfg.get(k, info.get(k)) for k in INFO_FIELDS}
    return json.loads(json.dumps(out, default=str))


def adopted_or(compute: Callable[[], dict[str, Any]], table_csv: str, models_csv: str, *,
               drop: Sequence[str] = ("profile", "device"), **match: Any) -> dict[str, Any]:
    """``{"table", "infos"}`` from the committed CSVs under ``$PRUNEROB_STORE_ADOPT`` (the table
    less the columns the page adds after computing it; the models rows matching ``match``), else
    ``compute()``."""
    folder = adopt.adopt_dir()
    if folder is not None:
        tab = adopt.table_rows(folder, table_csv, {})
        mod = adopt.table_rows(folder, models_csv, match)
        if tab is not None and mod is not None:
            infos = [{**{k: store.finite_or_none(r.get(k)) for k in INFO_FIELDS if k != "epoch_times_s"},
                      "epoch_times_s": [float(r.get("train_seconds") or 0.0)]}
                     for r in mod.to_dict("records")]
            return {"table": encode(tab.drop(columns=[c for c in drop if c in tab])),
                    "infos": json.loads(json.dumps(infos, default=str)), "adopted": adopt.label(folder)}
    return compute()


def _train_spec(cfg: TrainConfig) -> dict[str, Any]:
    return {"train": train_fields(cfg), "train_hash": cfg.hash(),
            "image_size": None}


class LazyModel:
    """A paper-recipe model (:meth:`TrainConfig.paper`) trained or loaded only when :meth:`get` is
    called; :meth:`info` reads its summary from the result store when it is there."""

    def __init__(self, arch: str, dataset: str, seed: int, *, device: torch.device, epochs: int | None = None,
                 train_subset: int | None = None, data_root: str | None = None,
                 precision: str = "fp32") -> None:
        over: dict[str, Any] = {"seed": seed, "precision": precision}
        if epochs is not None:
            over["epochs"] = epochs
        if train_subset is not None:
            over["train_subset"] = train_subset
        self.cfg = TrainConfig.paper(arch, dataset, **over)
        self.arch, self.dataset, self.seed = arch, dataset, seed
        self.device, self.data_root = device, data_root
        self._model: torch.nn.Module | None = None
        self._info: dict[str, Any] | None = None
        self._key: store.Key | None = None

    def key(self) -> store.Key:
        """The result-store key of the trained model (the same as the sweep's, for the same data)."""
        if self._key is None:
            test = load_dataset(self.dataset, "test", root=self.data_root)
            self._key = store.Key("train", _train_spec(self.cfg), store.data_identity(test),
                                  store.code_hash(TRAIN_CODE), store.versions(),
                                  store.device_class(self.device))
        return self._key

    def get(self) -> tuple[torch.nn.Module, dict[str, Any]]:
        """The trained model and its ``train_model`` info (trained once, then from the cache)."""
        if self._model is None:
            self._model, info = train_model(self.cfg, device=self.device, data_root=self.data_root,
                                            progress=False)
            st = store.get_store()
            if st is None:
                self._info = self._info or dict(info)
                return self._model, self._info
            if st.entry(self.key().digest) is None:
                keep = ("config", "n_train", "test_acc", "epoch_times_s", "cached", "device", "data_source",
                        "hash")
                val = json.loads(json.dumps({k: info.get(k) for k in keep}, default=str))
                val["dtype"] = str(next(self._model.parameters()).dtype)
                st.put([(self.key(), val, float(sum(info.get("epoch_times_s") or [0])))])
            # the summary is the stored one, whichever of info() and get() came first
            self._info = dict((st.entry(self.key().digest) or st.get(self.key())).value)
        return self._model, self._info or {}

    @property
    def model(self) -> torch.nn.Module:
        return self.get()[0]

    def info(self) -> dict[str, Any]:
        """The model's summary: from the store when present, else from training it."""
        if self._info is None:
            st = store.get_store()
            hit = st.get(self.key()) if st is not None else None
            if hit is not None:
                st.log.add(hit.key, hit.seconds, TRAIN_CODE, (), computed=False)
                self._info = dict(hit.value)
            else:
                self.get()
        return dict(self._info or {})


def frame(value: Mapping[str, Any]) -> pd.DataFrame:
    """The table of an :func:`encode`-d unit value."""
    return pd.DataFrame(value["records"], columns=value["columns"])


def encode(df: pd.DataFrame) -> dict[str, Any]:
    """A table as a JSON-able unit value (column order and values kept; NaN as None)."""
    records = [[store.finite_or_none(v.item() if hasattr(v, "item") else v) for v in row]
               for row in df.itertuples(index=False, name=None)]
    return {"columns": [str(c) for c in df.columns], "records": records}


def value(kind: str, spec: Mapping[str, Any], compute: Callable[[], Mapping[str, Any]], *,
          device: torch.device, data: Iterable[Any] = (), models: Sequence[LazyModel] = (),
          code: Sequence[str] = (), uses: Sequence[str] = ()) -> dict[str, Any]:
    """A JSON-able unit: stored, else ``compute()`` (timed) and stored. ``data``: the data sets it
    reads (their identities enter the key); ``models``: the models it reads (their keys enter it);
    ``code``: the modules whose closure computes it; ``uses``: registry entries it runs."""
    ids = "|".join(store.data_identity(d) for d in data)
    full = {**dict(spec), "models": [m.key().identity for m in models]}
    seeds = [*code, *(TRAIN_CODE if models else ())]  # the models' training code is part of the unit's
    return store.cached(kind, full, lambda: dict(compute()), data=ids, device=device, code_seeds=seeds,
                        uses=uses)


def table(kind: str, spec: Mapping[str, Any], compute: Callable[[], pd.DataFrame], *, device: torch.device,
          data: Iterable[Any] = (), models: Sequence[LazyModel] = (), code: Sequence[str] = (),
          uses: Sequence[str] = (), adopt_file: str | None = None,
          adopt_match: Mapping[str, Any] | None = None, adopt_drop: Sequence[str] = ()) -> pd.DataFrame:
    """A stored table (column order kept): the study ``compute()`` runs only when the unit is missing.

    ``adopt_file`` / ``adopt_match``: under ``$PRUNEROB_STORE_ADOPT`` (a one-off migration,
    :mod:`prunerob.engine.adopt`), the rows of that committed CSV matching ``adopt_match`` are
    taken instead of computing."""
    def run() -> dict[str, Any]:
        folder = adopt.adopt_dir()
        if folder is not None and adopt_file is not None:
            df = adopt.table_rows(folder, adopt_file, adopt_match or {})
            if df is not None:
                return {**encode(df.drop(columns=list(adopt_drop))), "adopted": adopt.label(folder)}
        t0 = time.perf_counter()
        out = encode(compute())
        out["seconds"] = round(time.perf_counter() - t0, 3)
        return out

    return frame(value(kind, spec, run, device=device, data=data, models=models, code=code, uses=uses))


def _jsonable(v: Any) -> Any:
    if isinstance(v, pd.DataFrame):
        return encode(v)
    if isinstance(v, torch.device):
        return v.type
    return v


def call(fn: Callable[..., pd.DataFrame], kind: str, *, unit_device: torch.device,
         unit_data: Iterable[Any] = (), adopt_file: str | None = None, uses: Sequence[str] = (),
         **kwargs: Any) -> pd.DataFrame:
    """``fn(**kwargs)`` as a stored table unit: its key holds ``kind``, every keyword argument but
    ``device`` / ``data_root`` (data frames by value), the identities of ``unit_data``, the device
    class of ``unit_device`` and the code of ``fn``'s module plus the pruning methods and attacks
    named by ``methods`` / ``method`` / ``attacks`` (and ``uses``)."""
    names = [*([kwargs["method"]] if "method" in kwargs else []), *kwargs.get("methods", ())]
    used = [*(f"method:{m}" for m in names), *(f"attack:{a}" for a in kwargs.get("attacks", ())), *uses]
    spec = {k: _jsonable(v) for k, v in kwargs.items() if k not in ("device", "data_root")}
    return table(kind, spec, lambda: fn(**kwargs), device=unit_device, data=unit_data,
                 code=[fn.__module__],
                 uses=sorted(set(used)), adopt_file=adopt_file)
