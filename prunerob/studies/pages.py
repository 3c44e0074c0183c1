"""What every experiment page (``notebooks/*.py``) does around its package calls.

:func:`setup` is the first call of each notebook (threads, output folder, device, start time);
:func:`say` prints the computed summary sentences under the page's opening claim (issue 10: a
page opens with what the paper claims and what this run shows); :func:`table` saves a result
table and shows a short summary of it instead of the whole table (the CSV is linked from the page).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

from prunerob.analysis import competence, stats
from prunerob.analysis import verdict_rule as rule
from prunerob.analysis.summary import environment_text, tidy_table
from prunerob.config import ConfigError, device_name, format_eps, resolve_device
from prunerob.core import recipe
from prunerob.core.data import load_dataset
from prunerob.core.precision import precision_label
from prunerob.core.train import TrainConfig, train_model
from prunerob.core.train import training_curve as train_curve
from prunerob.engine import adopt, store
from prunerob.engine.experiment import TRAIN_CODE, run_experiment, train_fields, train_summary  # noqa: F401  (notebooks: pages.train_summary)
from prunerob.render.plotting import devices, save_table  # noqa: F401  (notebooks: pages.devices)

__all__ = ["Run", "setup", "say", "table", "environment", "competence_of", "panel_title", "findings",
           "report"]


@dataclass
class Run:
    """One execution of a notebook: its name, profile, device, output folder and start time."""

    name: str
    profile: str
    device: torch.device
    out: Path
    started: float = field(default_factory=time.perf_counter)

    def minutes(self) -> float:
        """Wall time since :func:`setup`, in minutes."""
        return (time.perf_counter() - self.started) / 60

    @property
    def device_text(self) -> str:
        """The device in words (e.g. ``cpu (1 threads)`` or the GPU's name), for captions."""
        return device_name(self.device)


def setup(
    name: str, params: Mapping[str, Any] | None = None, *, profile: str, device: str = "auto",
    threads: int | None = None, out_dir: str | None = None,
) -> Run:
    """Start a notebook run: torch CPU threads (``threads``; None keeps torch's default), the
    output folder ``out_dir`` (default ``results/<name>``, created), the resolved ``device``.

    ``params``: the notebook's ``globals()``. Its parameters are checked first, with the validators
    of ``prunerob reproduce`` (:func:`prunerob.runner.checks.check_notebook_parameters`), so that a
    plain ``papermill -p`` / ``-f params.yaml`` run gets the same one-line ConfigError naming the
    parameter, before any work, and cannot write outside its working folder."""
    if params is not None:
        # The runner's validators are imported by name: like ``prunerob reproduce`` checking the
        # parameters before a kernel starts, they can refuse a run but never change a result, so
        # they stay out of the page's import closure (runner/imports.py), which enters its stamp.
        checks = importlib.import_module("prunerob.runner.checks")
        checks.check_notebook_parameters(name, params)
    warnings.filterwarnings("ignore", message="IProgress not found")
    if threads:  # 1 avoids MKL/OpenMP slow-downs when the CPU cores are shared
        torch.set_num_threads(int(threads))
    out = Path(out_dir or f"results/{name}")
    out.mkdir(parents=True, exist_ok=True)
    return Run(name=name, profile=profile, device=resolve_device(device), out=out)


def say(*paragraphs: str) -> None:
    """Display the paragraphs as one Markdown output (the page's computed summary)."""
    display(Markdown("\n\n".join(p for p in paragraphs if p)))


def table(df: pd.DataFrame, run: Run, name: str, columns: Sequence[str] | None = None, rows: int = 6) -> None:
    """Save ``df`` as ``<out>/<name>.csv`` and display its size and its first ``rows`` rows
    (only ``columns`` when given) as text in fixed notation, gains in pp, ε as on the figure axes
    and no ``NaN`` / ``None`` (:func:`prunerob.analysis.summary.tidy_table`); the page links the full CSV."""
    save_table(df, run.out, name)
    if df.empty:
        display(Markdown(f"`{name}.csv`: no rows."))
        return
    shown = df[[c for c in columns if c in df.columns]] if columns else df
    display(
        Markdown(
            f"`{name}.csv`: {len(df)} rows × {df.shape[1]} columns"
            + (f"; the first {rows}:" if len(df) > rows else ":")
        )
    )
    display(tidy_table(shown.head(rows)))


def environment(run: Run) -> None:
    """The page's last line: Python and library versions, CPU model and GPU of this run
    (:func:`prunerob.analysis.summary.environment_text`), with the device the run used."""
    say(environment_text(f"This page was computed (device {run.device_text})"))


def competence_of(models: pd.DataFrame) -> pd.DataFrame:
    """:func:`prunerob.analysis.competence.summary` indexed by (model, dataset)."""
    return competence.summary(models).set_index(["model", "dataset"])


def panel_title(comp: pd.DataFrame, model: str, dataset: str, text: str) -> str:
    """``text``, with ``not competent (x % < y %) on the full test set`` appended when the model is
    below its threshold: the competence accuracy is measured on the whole test split, while the
    panel's curves are measured on the run's evaluation subset, so the two numbers differ."""
    key = (model, dataset)
    if key in comp.index and not bool(comp.loc[key, "competent"]):
        return f"{text}\n{comp.loc[key, 'competence_label']} on the full test set"
    return text


def gpu_note(models: pd.DataFrame, comp: pd.DataFrame, ran_autoattack: bool) -> str:
    """Whether each (model, data set) of ``models`` (:func:`prunerob.engine.experiment.train_summary`)
    reached its competence threshold, with the measured training budget; *not competent on this
    budget* (no verdict) unless all did. ``comp`` is :func:`competence_of` of the same table;
    ``ran_autoattack``: whether this run included AutoAttack (the paper's Fig. 14)."""
    lines = []
    for (m, d), g in models.groupby(["arch", "dataset"], sort=True):
        n_train = ", ".join(f"{int(v):,}" for v in sorted(g.n_train.unique()))
        epochs = ", ".join(str(int(v)) for v in sorted(g.epochs.unique()))
        secs = float(g.train_seconds.astype(float).mean())
        precs = sorted(g.precision.fillna("fp32").unique()) if "precision" in g.columns else ["fp32"]
        lines.append(f"- {m} on {d}: {comp.loc[(m, d), 'competence_label']} after {epochs} epoch(s) on "
                     f"{n_train} training images, {secs:.0f} s of training per model on "
                     f"{', '.join(sorted(g.device.astype(str).unique()))} in "
                     f"{', '.join(precision_label(p) for p in precs)} ({len(g)} model(s)).")
    ok = bool(comp.competent.all()) if len(comp) else False
    head = ("**Competent on this budget**: the curves above are evidence." if ok else
            "**Not competent on this budget**: no verdict from these models (the `cpu` profile trains "
            "the CCT from scratch to competence; the paper's pretrained ViT-Tiny needs a GPU and its "
            "weights).")
    aa = ("AutoAttack (Fig. 14) ran on the subset stated in the caption." if ran_autoattack else
          "AutoAttack (Fig. 14) was not run in this profile.")
    return "\n".join([head, *lines, "", aa])


def findings(sweep: pd.DataFrame, models: pd.DataFrame, method: str,
             page: str | None = None) -> tuple[list[str], dict]:
    """The sweet spot of ``method`` per (model, data set, attack, ε) in words (Sec. 6.3), for
    competent models only; a model below its competence threshold gets one line saying so and no
    verdict. Returns the lines and :func:`prunerob.analysis.stats.improvement_summary` of the competent
    rows. ``page`` (the notebook's name) decides each setting at the level of its looks
    (:func:`at_looks`), as the Findings page does."""
    comp = competence_of(models)
    ok = [tuple(k) for k in comp.index[comp.competent]]
    keep = sweep[[(m, d) in ok for m, d in zip(sweep.model, sweep.dataset, strict=True)]]
    lines = [
        f"- {m} on {d}: {comp.loc[(m, d), 'competence_label']}; no verdict."
        for m, d in comp.index
        if (m, d) not in ok and ((sweep.model == m) & (sweep.dataset == d)).any()
    ]
    mine = keep[keep.method == method]
    spots = at_looks(stats.sweet_spot(mine), mine, page) if len(keep) else pd.DataFrame()
    lines += [f"- {stats.describe_sweet_spot(r)}" for _, r in spots.iterrows()]
    if not len(spots):
        return lines, {"settings": 0, "positive": 0, **dict.fromkeys(rule.VERDICTS, 0), "table": spots}
    # stats.improvement_summary's counts, of the verdicts at the looks' level
    return lines, {"settings": len(spots), "positive": int((spots.adv_gain > 0).sum()),
                   **{v: int((spots.verdict == v).sum()) for v in rule.VERDICTS}, "table": spots}


def at_looks(spots: pd.DataFrame, rows: pd.DataFrame, page: str | None) -> pd.DataFrame:
    """:func:`prunerob.analysis.stats.sweet_spot` rows ``spots`` of the sweep ``rows``, each setting whose
    seeds were raised after a published open verdict decided again at level α/L over its L looks
    (:func:`prunerob.analysis.verdicts.level`): ``verdict``, ``verdict_keep``, ``lower``, ``upper`` and
    ``reason`` (which then names the level). The other rows are returned unchanged."""
    from prunerob.analysis import verdicts

    out = spots.copy()
    for i, r in spots.iterrows():
        alpha, note = verdicts.level(str(page), r.model, r.dataset, int(r.n_seeds))
        if not note:
            continue
        s = rows[(rows.model == r.model) & (rows.dataset == r.dataset) & (rows.method == r.method)
                 & (rows.attack == r.attack) & np.isclose(rows.eps.astype(float), float(r.eps))]
        t = rule.keep_table(s, baseline_keep=float(r.keep_dense), alpha=alpha)
        d = rule.decide(t, alpha=alpha)
        at = t[np.isclose(t.keep_ratio, float(r.keep_best))].iloc[0]
        out.loc[i, ["verdict", "verdict_keep", "lower", "upper", "reason"]] = [
            d.verdict, d.keep, float(at.lower), float(at.upper), f"{d.reason}; {note}"]
    return out


def improvement_sentence(summary: dict, what: str) -> str:
    """"In k of n settings ..." from :func:`prunerob.analysis.stats.improvement_summary`: the settings with a
    higher mean attacked accuracy after pruning, then their verdicts by the rule of
    :mod:`prunerob.analysis.verdict_rule` (stated on the findings page)."""
    if not summary.get("settings"):
        return "No competent model: no verdict."
    return (
        f"In {summary['positive']} of {summary['settings']} {what} settings some pruned model has "
        "a higher mean attacked accuracy than the unpruned one (the best keep ratio is picked on the same "
        f"runs). By the verdict rule (one-sided, corrected for the keep ratios searched, minimum effect "
        f"1 pp; see Findings) {summary['holds']} of the {summary['settings']} settings hold, "
        f"{summary['fails']} fail and {summary['inconclusive']} are inconclusive."
    )


def report(
    run: Run, res: Any, method: str, what: str, seeds: Sequence[int], more: Sequence[str] = ()
) -> None:
    """The "this run" summary of a sweet-spot page (Sec. 6.3): profile, seeds and device, then
    :func:`improvement_sentence` and the :func:`findings` lines of ``method`` in the sweep of the
    :class:`~prunerob.engine.experiment.ExperimentResult` ``res``, the ``more`` paragraphs and the data sets
    that were not run."""
    lines, summary = findings(res.sweep, res.models, method, page=run.name)
    say(
        f"**This run** (profile `{run.profile}`, {len(seeds)} seed(s), device {devices(res.sweep)}): "
        + improvement_sentence(summary, what),
        "\n".join(lines),
        *more,
        "\n".join(f"**{ds} not run:** {why}" for ds, why in res.skipped.items()),
    )


def depth_findings(trend: pd.DataFrame, comp: pd.DataFrame, models: Sequence[str], dataset: str) -> list[str]:
    """Sec. 6.4 in words from :func:`prunerob.analysis.stats.depth_trend`: per attack, the best keep ratio
    of each depth with its paired gain and whether it decreases with depth; no verdict (one line
    per model saying why) unless every depth is competent."""
    bad = [m for m in models if not bool(comp.loc[(m, dataset), "competent"])]
    if bad:
        return [f"- {m}: {comp.loc[(m, dataset), 'competence_label']}; no verdict." for m in bad]
    return [
        f"- {r.attack.upper()} at ε = {format_eps(r.eps)}: best keep ratio "
        + ", ".join(
            f"{m} {k:g} ({stats.pp(g)})" for m, k, g in zip(r.models, r.keep_best, r.gains, strict=True)
        )
        + f": {'decreases' if r.decreases else 'does not decrease'} with depth; by the verdict rule the "
        "gains " + ", ".join(f"{m} {v}" for m, v in zip(r.models, r.verdicts, strict=True)) + "."
        for r in trend.itertuples()
    ]


def run_and_save(run: Run, spec, scheduler: Any = None) -> Any:
    """:func:`prunerob.engine.experiment.run_experiment` of ``spec`` on ``run.device``, its tables saved
    under ``run.out`` (``sweep.csv``, ``models.csv``); every sweep row gets a ``profile`` column
    (``run.profile``) so that pages reading the table can name its settings. ``scheduler``: as in
    :func:`~prunerob.engine.experiment.run_experiment` (e.g. ``"local:2"``: one unit per worker process).
    A serial run keeps resume files in :func:`resume_folder`. Returns the :class:`ExperimentResult`."""
    extra = {"profile": run.profile, **dict(spec.extra_columns or {})}
    res = run_experiment(dataclasses.replace(spec, device=str(run.device), extra_columns=extra),
                         scheduler=scheduler, resume_dir=resume_folder(run) if scheduler is None else None)
    res.save(run.out)
    save_units(run)
    return res


def resume_folder(run: Run) -> Path:
    """Where :func:`run_and_save` keeps the resume files of its sweeps (serial runs), so that a part
    stopped half-way (a killed ``prunerob reproduce``, the end of a session) continues from its last
    finished (method, keep) chunk instead of from its start: ``<cache>/resume/<page>-<h>``.

    ``h`` hashes the page's output folder and every source file of prunerob: two checkouts running
    the same page at once never share a file, and rows computed by other code are never resumed
    (a store key names the code that ran). The sweep also checks each file's configuration hash
    (:mod:`prunerob.engine.resume`); :func:`~prunerob.engine.experiment.run_experiment` removes the
    files once every unit has finished."""
    from prunerob.config import cache_dir
    from prunerob.engine import codehash

    h = hashlib.sha256(str(Path(run.out).resolve()).encode())
    h.update(codehash.files_hash(codehash.PACKAGE_DIR.rglob("*.py")).encode())
    return cache_dir() / "resume" / f"{run.name}-{h.hexdigest()[:16]}"


def save_units(run: Run) -> None:
    """Write ``units.json`` (the result-store units this page used so far) into ``run.out``;
    ``prunerob reproduce --list`` reads it to tell a compute-stale page from a render-stale one."""
    st = store.get_store()
    if st is not None:
        st.log.write(run.out)


def trained_model(
    run: Run,
    arch: str,
    dataset: str,
    seed: int,
    *,
    epochs: int | None,
    train_subset: int | None,
    data_root: str | None = None,
    precision: str = "fp32",
) -> tuple[torch.nn.Module, dict]:
    """The paper-recipe model of :func:`prunerob.core.train.train_model` (trained once, then loaded from
    the checkpoint cache that :func:`prunerob.engine.experiment.run_experiment` shares) on ``run.device``,
    trained in ``precision`` (:mod:`prunerob.core.precision`)."""
    cfg = TrainConfig.paper(arch, dataset, epochs=epochs, train_subset=train_subset, seed=seed,
                            precision=precision)
    return train_model(cfg, device=run.device, data_root=data_root, progress=False)


def training_curve(run: Run, arch: str, dataset: str, seed: int, *, epochs: int,
                   train_subset: int | None = None, data_root: str | None = None,
                   precision: str | Mapping[str, str] = "fp32",
                   image_size: int | None = None) -> pd.DataFrame:
    """Test accuracy after every epoch of one paper-recipe run (on ``train_subset`` images, in
    ``precision``: one for every data set, or a mapping per data set as a page's ``precision``
    parameter gives it): trains ``epochs`` epochs once with ``snapshot_epochs`` (or loads them from the
    cache), so each shorter run of the same seed is a cache entry too; the epoch count of a notebook
    is picked from it. A recipe whose schedule depends on the run's length (``cct_2_3x2``'s
    warmup-cosine) has no snapshots: the rows are the accuracies that one run recorded after each of
    its epochs."""
    if not isinstance(precision, str):
        if dataset not in precision:
            raise ConfigError(f"precision={dict(precision)!r} has no entry for the curve's data set "
                              f"{dataset!r}; give one per data set, e.g. {{{dataset!r}: 'bf16'}}")
        precision = precision[dataset]
    over = {"image_size": image_size} if image_size is not None else {}
    cfg = TrainConfig.paper(arch, dataset, epochs=epochs, train_subset=train_subset, seed=seed,
                            precision=precision, **over)
    test = load_dataset(dataset, "test", root=data_root, image_size=image_size)

    def compute() -> dict[str, Any]:
        folder = adopt.adopt_dir()
        rows = adopt.curve_rows(folder, arch=arch, dataset=dataset, seed=seed) if folder else None
        if rows is not None and len(rows) == epochs:
            return {"rows": rows, "adopted": adopt.label(folder)}
        scheduled = recipe.SCHEDULES.get(cfg.schedule).depends_on_total
        snaps = () if scheduled else range(1, epochs)
        _model, info = train_model(cfg, device=run.device, data_root=data_root, progress=False,
                                   snapshot_epochs=snaps)
        rows = train_curve(cfg, data_key=info["data_key"])
        if snaps and len(rows) < epochs:
            # the final model was already cached by a run without snapshots (a sweep that trained it
            # first): train once more with them; CPU training is reproducible for a fixed thread
            # layout, so the final checkpoint is rewritten with the same model
            _model, info = train_model(cfg, device=run.device, data_root=data_root, progress=False,
                                       snapshot_epochs=snaps, force=True)
            rows = train_curve(cfg, data_key=info["data_key"])
        if snaps and len(rows) < epochs:
            raise RuntimeError(f"training curve of {arch} on {dataset}, seed {seed}: {len(rows)} of {epochs} "
                               "epochs recorded")
        return {"rows": rows}

    spec = {"train": train_fields(cfg), "train_hash": cfg.hash()}
    value = store.cached("curve", spec, compute, data=store.data_identity(test), device=run.device,
                         code_seeds=TRAIN_CODE)
    save_units(run)
    cols = ["epoch", "test_acc", "train_loss", "seconds"]  # stored values have sorted keys
    return pd.DataFrame(value["rows"], columns=cols).assign(model=arch, dataset=dataset, seed=seed)


def threshold_of(model: str, dataset: str) -> float | None:
    """The competence threshold of (model, data set) as a fraction, or None when none is stated."""
    t = competence.threshold(model, dataset)
    return float(t.min_acc) if t is not None else None


def threshold_source(model: str, dataset: str) -> str:
    """Where the competence threshold of (model, data set) comes from, in words."""
    t = competence.threshold(model, dataset)
    return f"{t.source}." if t is not None else "no competence threshold stated."


def curve_sentence(curve: pd.DataFrame, threshold: float | None) -> str:
    """The first epoch of :func:`training_curve` whose test accuracy reaches ``threshold``, and
    the best accuracy with its epoch and cumulative training time."""
    if curve.empty:
        return "No epoch of the curve is in the cache."
    best = curve.loc[curve.test_acc.astype(float).idxmax()]
    text = (f"Best: {100 * best.test_acc:.1f}% after {int(best.epoch)} epochs "
            f"({best.seconds / 60:.0f} min of training).")
    if threshold is None:
        return text
    hit = curve[curve.test_acc.astype(float) >= threshold]
    first = (f"First epoch at or above {100 * threshold:.0f}%: {int(hit.epoch.min())}." if len(hit) else
             f"No epoch reaches {100 * threshold:.0f}%.")
    return f"{first} {text}"


def front_points(sweep: pd.DataFrame, method: str) -> pd.DataFrame:
    """Mean (clean, attacked) accuracy per keep ratio of ``method`` with the non-dominated flag
    ``pareto`` (Definition 3 in accuracy space, both maximised; App. F, Fig. 6)."""
    m = stats.accuracy_summary(sweep[sweep.method == method])
    m["pareto"] = stats.pareto_mask(m[["clean_mean", "adv_mean"]].to_numpy())
    return m
