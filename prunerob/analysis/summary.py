"""The book's summaries: the answer on the intro's first screen, the chapter map (one chapter per
formal result of the paper, each with the executed notebooks that test it), the verdict box that
ends each chapter, fixed-notation tables and the environment line every page states.

Nothing here decides a verdict. The experiment verdicts come from
:func:`prunerob.analysis.verdicts.claims` (the committed result tables, decided by the rule of
:mod:`prunerob.analysis.verdict_rule`) and the theory verdicts from
:func:`prunerob.analysis.verdicts.theory_claims` (``book/theory/errata.md``); this module only
counts, groups and words them, so a sentence of the book cannot drift from the tables. pandas only (no
torch), so that the intro and the chapter pages stay fast to build.

The errata table of ``book/theory/errata.md`` has a last column *Severity*, one of
:data:`SEVERITIES`; :func:`errata` reads it next to the verdicts.
"""
from __future__ import annotations

import math
import platform
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from prunerob.analysis import verdicts
from prunerob.config import ConfigError

__all__ = ["SEVERITIES", "Chapter", "CHAPTERS", "errata", "answer_sentence", "first_screen",
           "chapter_of_claim", "chapter_verdict", "corrected_statements", "tested_by", "fixed",
           "tidy_table", "environment_text", "use_fixed_notation"]

#: severities of an erratum, most serious first (column *Severity* of the errata table)
SEVERITIES = ("wrong statement", "missing assumption", "proof gap", "typo or edge case")
PLURAL = {"wrong statement": "wrong statements", "missing assumption": "missing assumptions",
          "proof gap": "proof gaps", "typo or edge case": "typos or edge cases"}
#: what each severity means, for the intro's legend
SEVERITY_HELP = {
    "wrong statement": "false as printed, with a counterexample",
    "missing assumption": "true only under an assumption the paper does not state",
    "proof gap": "a step of the proof is false; the statement itself was not refuted",
    "typo or edge case": "a typo, or a case the statement leaves undefined",
}
#: how a verdict is written in the book's tables
MARK = {"holds": "**holds**", "fails": "**fails**", "inconclusive": "*inconclusive*"}
REPO = Path(__file__).resolve().parents[2]
BOOK = REPO / "book"


@dataclass(frozen=True)
class Chapter:
    """One chapter of the book: a formal result of the paper.

    ``doc``: the chapter page (relative to ``book/``, no suffix); ``pages``: the executed notebooks
    shown as its sub-pages (each notebook is the sub-page of exactly one chapter); ``tests``:
    ``(notebook, paper reference)`` pairs selecting the claims of :data:`prunerob.analysis.verdicts.CLAIMS`
    that test the chapter's statements on trained models (an empty reference takes every claim of
    the notebook); ``what``: per notebook, what it tests here, in words."""

    doc: str
    title: str
    pages: tuple[str, ...] = ()
    tests: tuple[tuple[str, str], ...] = ()
    what: tuple[tuple[str, str], ...] = ()

    @property
    def notebooks(self) -> tuple[str, ...]:
        """Every notebook that tests this chapter: its sub-pages, then the others it links to."""
        others = [*(nb for nb, _ in self.tests), *(nb for nb, _ in self.what)]
        return tuple(dict.fromkeys([*self.pages, *others]))


#: the chapters, in the book's order (book/_toc.yml lists the same files and sub-pages)
CHAPTERS: dict[str, Chapter] = {c.doc: c for c in (
    Chapter("theory/bernoulli", "The Bernoulli pruning model (Sec. 3, 4.1)",
            tests=(("risk_vs_keep", "Fig. 1"), ("risk_vs_keep", "Fig. 7")),
            what=(("risk_vs_keep", "Bernoulli(p) masks on trained MLPs and a CNN: the risk γ and the "
                                   "deviation ζ of Definitions 1 and 2 against p (paper Figs. 1, 7)"),)),
    Chapter("theory/lemma1_theorem1", "Lemma 1 and Theorem 1: one transformer layer (Sec. 4.2)",
            pages=("score_vit",),
            tests=(("risk_vs_keep", "Fig. 16"), ("score_vit", "")),
            what=(("risk_vs_keep", "Theorem 1's bound against the worst-case risk of a trained one-layer "
                                   "transformer (paper Fig. 16)"),
                  ("score_vit", "pruning a ViT by Taylor scores, under FGSM, PGD, CW and AutoAttack "
                                "(paper Figs. 3, 10, 11, 13, 14)"))),
    Chapter("theory/theorem2", "Theorem 2: robustness of a pruned MLP (Sec. 5.1)",
            pages=("risk_vs_keep", "depth"),
            tests=(("risk_vs_keep", "Fig. 1"), ("risk_vs_keep", "Fig. 7"), ("risk_vs_keep", "Fig. 15"),
                   ("depth", "")),
            what=(("risk_vs_keep", "the risk of trained MLPs against p, and Theorem 2 (printed and "
                                   "corrected) above it (paper Figs. 1, 15)"),
                  ("depth", "the depth factor of the bound: do deeper MLPs need more pruning? "
                            "(paper Fig. 4)"))),
    Chapter("theory/proposition1", "Proposition 1: how far the pruned MLP moves (Sec. 5.2)",
            tests=(("risk_vs_keep", "Fig. 1"),),
            what=(("risk_vs_keep", "the deviation ζ of a trained MLP against p, with Proposition 1 "
                                   "(printed and corrected) above it (paper Figs. 1, 15)"),)),
    Chapter("theory/tradeoff", "The trade-off: Algorithm 1 and the Pareto front (Sec. 5.3)",
            pages=("algorithm1", "pareto"),
            tests=(("algorithm1", ""), ("pareto", "")),
            what=(("algorithm1", "the keep probabilities Algorithm 1 and the exact minimiser of J choose "
                                 "for a trained MLP, and the accuracies they give (paper Fig. 5)"),
                  ("pareto", "the fronts in accuracy space and in bound space (paper Fig. 6)"))),
    Chapter("empirical", "The empirical claims: the sweet spot and where it comes from (Sec. 6)",
            pages=("magnitude_mlp", "autoattack_mlp", "magnitude_cnn", "own_model", "sweet_spot",
                   "eps01_gain"),
            tests=(("magnitude_mlp", ""), ("autoattack_mlp", ""), ("magnitude_cnn", ""), ("score_vit", "")),
            what=(("magnitude_mlp", "magnitude pruning of the MNIST and CIFAR-10 MLPs under FGSM, PGD "
                                    "and CW (paper Figs. 2, 8, 12)"),
                  ("autoattack_mlp", "the same MNIST MLPs under AutoAttack on a fixed subset "
                                     "(paper Fig. 12, right)"),
                  ("magnitude_cnn", "magnitude pruning of a CIFAR-10 CNN (paper Figs. 2, 9)"),
                  ("own_model", "the same sweep on a model of your own (no paper figure)"),
                  ("sweet_spot", "where the sweet spot comes from: the gain over attack budget, "
                                 "attack strength, pruning rule and training, and the pitfalls that "
                                 "produce it"),
                  ("eps01_gain", "the one open region, ε ≈ 0.1: power-sized seeds, AutoAttack at the best "
                                 "keeps and FAB-T security curves"),
                  ("score_vit", "the ViT under score-based pruning (sub-page of the Theorem 1 "
                                "chapter)"))),
)}


# ----------------------------------------------------------------------------------------------
# errata with their severity and chapter
# ----------------------------------------------------------------------------------------------
def _cells(line: str) -> list[str]:
    """Cells of a Markdown table row, splitting on pipes that are not escaped (``\\|``)."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def _labels(theory_dir: Path) -> dict[str, str]:
    """``{label: doc}`` of every MyST target ``(label)=`` on the pages of ``theory_dir``."""
    out = {}
    for page in sorted(theory_dir.glob("*.md")):
        for m in re.finditer(r"^\(([\w-]+)\)=\s*$", page.read_text(encoding="utf-8"), re.M):
            out[m.group(1)] = f"theory/{page.stem}"
    return out


def errata(path: str | Path | None = None) -> pd.DataFrame:
    """The theory verdicts of :func:`prunerob.analysis.verdicts.theory_claims` with three more columns:
    ``severity`` (errata rows: the table's *Severity* column, one of :data:`SEVERITIES`; empty for
    the other rows), ``correction`` (the table's *Correction* column) and ``chapter`` (the page
    that states the erratum, found by its label; for a "What holds" row the first page its text
    links to). An erratum without a known severity raises :class:`~prunerob.config.ConfigError`."""
    path = Path(path) if path is not None else BOOK / "theory" / "errata.md"
    df = verdicts.theory_claims(path)
    extra: dict[str, dict[str, str]] = {}
    section = ""
    header: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            section = line[3:].strip().lower()
        elif section == "errata" and line.startswith("| #"):
            header = [h.lower() for h in _cells(line)]
        elif section == "errata" and line.startswith("| {ref}"):
            cells = dict(zip(header, _cells(line), strict=False))
            ident = re.match(r"\{ref\}`\"?(.+?)\"?\s*<", cells.get("#", ""))
            if ident:
                extra[ident.group(1)] = {"severity": cells.get("severity", "").strip().lower(),
                                         "correction": cells.get("correction", "")}
    bad = {k: v["severity"] for k, v in extra.items() if v["severity"] not in SEVERITIES}
    if bad:
        raise ConfigError(f"errata severity {bad}: use one of {list(SEVERITIES)} "
                          f"(column 'Severity' of {path})")
    labels = _labels(path.parent)
    docs = []
    for r in df.itertuples():
        if r.label:
            docs.append(labels.get(r.label, ""))
        else:
            m = re.search(r"\{doc\}`([\w/]+)`", r.statement)
            docs.append(f"theory/{m.group(1)}" if m else "")
    return df.assign(severity=[extra.get(i, {}).get("severity", "") for i in df.id],
                     correction=[extra.get(i, {}).get("correction", "") for i in df.id],
                     chapter=docs)


# ----------------------------------------------------------------------------------------------
# the answer on the first screen
# ----------------------------------------------------------------------------------------------
#: reason categories (:func:`prunerob.analysis.verdicts.reason_category`) of claims that were not tested on
#: a competent model
UNTESTED = ("not run", "model not competent", "competence unknown")


def _untested(reason: str) -> bool:
    return verdicts.reason_category(reason).startswith(UNTESTED)


def _gain_claims(claims: pd.DataFrame) -> pd.DataFrame:
    """The paired-gain claims ("... pruning raises ... accuracy ...") of :func:`verdicts.claims`."""
    return claims[claims.claim.str.contains(" pruning raises ", regex=False)]


def _and(items: Sequence[str]) -> str:
    items = [i for i in items if i]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1] if items else ""


def _n(k: int, one: str, many: str | None = None) -> str:
    return f"{k} {one if k == 1 else (many or one + 's')}"


def answer_sentence(claims: pd.DataFrame, errata_df: pd.DataFrame) -> str:
    """The book's answer to the paper's question in two sentences, computed from the verdicts:
    what the paired-gain claims on competent models show, what could not be tested and why, and
    how many of the paper's formal statements need an erratum, by severity."""
    g = _gain_claims(claims)
    untested = g[[v == "inconclusive" and _untested(r) for v, r in zip(g.verdict, g.reason, strict=True)]]
    tested = g.drop(untested.index)
    # claims at other budgets than the paper's x/255 (the sweet-spot chapter's eps = 0.1): own sentence
    elsewhere = tested[tested.claim.str.contains(r"raises [A-Z]+ \d*\.\d+ accuracy", regex=True)]
    tested = tested.drop(elsewhere.index)
    n_hold, n_fail = int((tested.verdict == "holds").sum()), int((tested.verdict == "fails").sum())
    n_open = len(tested) - n_hold - n_fail
    eps = sorted(set(re.findall(r"\d+/255", " ".join(tested.claim))), key=lambda e: int(e.split("/")[0]))
    at = f"At the paper's attack budget{'s' if len(eps) > 1 else ''} (ε = {_and(eps) or '4/255'})"
    if not len(tested):
        first = f"**{at}, no paired-gain claim could be tested on a competent model**"
    elif n_hold == 0:
        first = (f"**{at}, pruning after training gives no resolved robustness gain on any competent model "
                 f"tested** ({_n(len(tested), 'gain claim')}: {n_fail} fail, {n_open} unresolved, none holds")
    else:
        which = "; ".join(tested[tested.verdict == "holds"].claim.str.replace(
            r"^.*pruning raises ", "", regex=True))
        first = (f"**{at}, pruning after training raises attacked accuracy in {n_hold} of "
                 f"{_n(len(tested), 'gain claim')} on competent models** ({which}; {n_fail} fail, "
                 f"{n_open} unresolved")
    if len(untested):
        pending = int(untested.reason.str.endswith(verdicts.PENDING).sum())
        if pending == len(untested):
            first += f"; {len(untested)} more await the cpu profile's CCT run"
        else:
            why = untested.reason.map(verdicts.reason_category).value_counts()
            first += (f"; {len(untested)} more could not be tested here: "
                      + "; ".join(f"{r}: {k}" for r, k in why.items()))
    first += ")" if len(tested) else ""
    loc = claims[claims.claim.str.contains("sweet spot lies", regex=False)]
    if len(loc):
        first += f". The sweet spot near p = 0.9 **{loc.verdict.iloc[0]}** by the same rule"
    for r in elsewhere.itertuples():
        why = [p for p in str(r.reason).split("; ") if not p.startswith("competent")]
        m = re.match(r"^(.*) pruning raises ([A-Z]+) (\S+) accuracy: (.*)$", str(r.claim))
        what = (f"At ε = {m.group(3)} ({m.group(2)}), {m.group(1).lower()} pruning of {m.group(4)}" if m
                else str(r.claim))
        first += f". {what}: **{r.verdict}**" + (f" ({why[0]})" if why else "")
    e = errata_df[errata_df.id != ""]
    sev = e.severity.value_counts()
    second = (f"Of the paper's formal statements, {_n(len(e), 'needs', 'need')} an erratum: "
              + ", ".join(f"{int(sev.get(s, 0))} {PLURAL[s] if sev.get(s, 0) != 1 else s}"
                          for s in SEVERITIES if sev.get(s, 0)) + ".")
    if len(e) == 1:
        second = second.replace("1 needs", "one needs")
    return f"{first}. {second}"


def _plain(text: str) -> str:
    """``text`` without the characters a ``{ref}`` title cannot hold (quotes, backticks, angle
    brackets)."""
    return re.sub(r"[\"`<>]", "", text).strip()


def severity_legend() -> str:
    """What each severity of :data:`SEVERITIES` means, one sentence."""
    return "Severity: " + "; ".join(f"*{s}*: {h}" for s, h in SEVERITY_HELP.items()) + "."


def _pages_cell(d: pd.DataFrame, prefix: str) -> str:
    counts = d.source.map(lambda s: s.split(" ", 1)[0]).value_counts()
    return ", ".join(f"{{doc}}`{nb} <{prefix}experiments/{nb}>` ({k})" for nb, k in counts.items())


def _why(d: pd.DataFrame) -> str:
    """Reasons of inconclusive claims, counted: every reason that ends in :data:`verdicts.PENDING` as
    one group."""
    pending = d.reason.str.endswith(verdicts.PENDING)
    parts = [f"CCT run pending: {int(pending.sum())}"] if pending.any() else []
    parts += [f"{r}: {k}" for r, k in d[~pending].reason.map(verdicts.reason_category).value_counts().items()]
    return "; ".join(parts)


def experiment_list(claims: pd.DataFrame, prefix: str = "") -> str:
    """Experiment verdicts as three short bullets: how many claims hold, fail, are inconclusive, and
    where (the pages whose tables decide them, linked) or why (reasons, counted)."""
    lines = []
    for v in verdicts.VERDICTS:
        d = claims[claims.verdict == v]
        if len(d):
            word = {"holds": "hold", "fails": "fail", "inconclusive": "inconclusive"}[v]
            mark = f"*{len(d)} {word}*" if v == "inconclusive" else f"**{len(d)} {word}**"
            lines.append(f"* {mark}: {_pages_cell(d, prefix) if v != 'inconclusive' else _why(d)}")
    return "\n".join(lines)


def _where(statement: str) -> str:
    """The paper reference at the end of a statement (``... (Sec. 6.5)`` -> ``Sec. 6.5``)."""
    m = re.search(r"\(((?:Sec|App|Fig)[^()]*)\)\s*$", _plain(statement))
    return m.group(1) if m else "claim"


def theory_list(errata_df: pd.DataFrame, prefix: str = "") -> str:
    """Theory verdicts as short bullets: the errata by severity (each linked), then the statements not
    reproduced and the checked groups that hold."""
    e = errata_df[errata_df.id != ""]
    lines = []
    for s in SEVERITIES:
        d = e[e.severity == s]
        if len(d):
            name = PLURAL[s] if len(d) != 1 else s
            lines.append(f"* **{len(d)} {name}**: " + ", ".join(f"{{ref}}`{r.id} <{r.label}>`"
                                                                 for r in d.itertuples()))
    nr = errata_df[(errata_df.id == "") & (errata_df.verdict == "inconclusive")]
    ok = errata_df[(errata_df.id == "") & (errata_df.verdict == "holds")]
    tail = []
    if len(nr):
        refs = ", ".join(f"{{ref}}`{_where(r.statement)} <{r.label}>`" for r in nr.itertuples())
        tail.append(f"*{len(nr)} not reproduced* ({refs})")
    if len(ok):
        tail.append(f"**{len(ok)} groups checked and holding** ({{doc}}`list <{prefix}theory/errata>`)")
    if tail:
        lines.append("* " + "; ".join(tail))
    return "\n".join(lines)


def first_screen(results: str | Path, errata_path: str | Path | None = None, prefix: str = "") -> str:
    """The intro's first screen: the answer sentence, then the experiment verdicts, then the
    theory verdicts (errata by severity), as short lists that fit a 1280 x 800 screen.
    ``prefix``: path from the page to the book root."""
    c = verdicts.claims(Path(results))
    e = errata(errata_path)
    return "\n\n".join([
        answer_sentence(c, e),
        f"**Experiments**: {len(c)} claims of Sec. 6 and App. H, decided from the committed tables "
        f"({{doc}}`rule and numbers <{prefix}findings>`):",
        experiment_list(c, prefix),
        f"**Theory**: {_n(int((e.id != '').sum()), 'erratum', 'errata')} by severity "
        f"({{doc}}`statements and corrections <{prefix}theory/errata>`):",
        theory_list(e, prefix),
        severity_legend(),
    ])


# ----------------------------------------------------------------------------------------------
# chapters
# ----------------------------------------------------------------------------------------------
def chapter_of_claim(notebook: str, paper: str) -> list[str]:
    """The chapters (docs) whose :attr:`Chapter.tests` select a claim of ``notebook`` made at
    ``paper`` (e.g. ``"Sec. 6.2, Fig. 1"``)."""
    out = []
    for c in CHAPTERS.values():
        for nb, ref in c.tests:
            if nb == notebook and (not ref or re.search(re.escape(ref) + r"(?!\d)", paper)):
                out.append(c.doc)
                break
    return out


def _chapter_claims(doc: str, claims: pd.DataFrame) -> pd.DataFrame:
    nb = claims.source.map(lambda s: s.split(" ", 1)[0])
    keep = [doc in chapter_of_claim(n, p) for n, p in zip(nb, claims.paper, strict=True)]
    return claims[keep]


def tested_by(doc: str, prefix: str = "../") -> str:
    """A bullet list of the experiment pages that test chapter ``doc``, each linked, with what it
    tests (:attr:`Chapter.what`); sub-pages first."""
    ch = _chapter(doc)
    what = dict(ch.what)
    lines = []
    for nb in ch.notebooks:
        tag = "sub-page" if nb in ch.pages else "linked"
        lines.append(f"* {{doc}}`{nb} <{prefix}experiments/{nb}>` ({tag}): {what.get(nb, 'see the page')}.")
    return "\n".join(lines) if lines else "No experiment page tests this chapter directly."


def _chapter(doc: str) -> Chapter:
    if doc not in CHAPTERS:
        raise ConfigError(f"chapter {doc!r} is not one of {list(CHAPTERS)}")
    return CHAPTERS[doc]


def corrected_statements(doc: str, errata_df: pd.DataFrame) -> str:
    """The errata stated on chapter ``doc`` with their severity and correction (the errata table's
    *Correction* column), as a Markdown list; a sentence when the chapter has none."""
    _chapter(doc)
    e = errata_df[(errata_df.id != "") & (errata_df.chapter == doc)]
    if e.empty:
        return "No erratum on this chapter: its statements hold as printed (see the verdict below)."
    return "\n".join(f"* {{ref}}`{r.id} <{r.label}>` ({r.severity}): {r.statement}. **Correction:** "
                     f"{r.correction}." for r in e.itertuples())


def _short_number(number: str, parts: int = 2) -> str:
    """The deciding number of a claim for a chapter's box: its first ``parts`` clauses (the full text
    is on the findings page), ``—`` when there is none."""
    if not number:
        return "—"
    bits, depth, start = [], 0, 0
    for i, ch in enumerate(number):  # split on "; " outside brackets only
        depth += 1 if ch in "([" else -1 if ch in ")]" else 0
        if depth == 0 and number.startswith("; ", i):
            bits.append(number[start:i])
            start = i + 2
    bits.append(number[start:])
    return "; ".join(bits[:parts]) + (" …" if len(bits) > parts else "")


def chapter_verdict(doc: str, results: str | Path, errata_path: str | Path | None = None,
                    prefix: str = "../") -> str:
    """The verdict box that ends chapter ``doc`` (a MyST ``admonition``): its errata by severity,
    the checked statements that hold, and the experiment claims that test it (verdict, deciding
    number, linked page), all computed from the errata page and the committed result tables."""
    ch = _chapter(doc)
    e = errata(errata_path)
    mine = e[e.chapter == doc]
    er = mine[mine.id != ""]
    parts = []
    if len(er):
        sev = er.groupby("severity", sort=False).id.apply(list)
        parts.append("**Theory:** " + "; ".join(
            f"{s}: " + ", ".join(f"{{ref}}`{i} <{lab}>`" for i, lab in
                                 zip(er[er.severity == s].id, er[er.severity == s].label, strict=True))
            for s in SEVERITIES if s in sev.index) + ".")
    ok = mine[(mine.id == "") & (mine.verdict == "holds")]
    if len(ok):
        parts.append(f"**Checked and holding:** {len(ok)} group{'s' if len(ok) != 1 else ''} of statements "
                     f"(list on {{doc}}`{prefix}theory/errata`).")
    nr = mine[(mine.id == "") & (mine.verdict == "inconclusive")]
    if len(nr):
        parts.append("**Not reproduced:** " + ", ".join(f"{{ref}}`{_plain(r.statement)} <{r.label}>`"
                                                         for r in nr.itertuples()) + ".")
    if not len(er) and not len(ok) and not len(nr):
        parts.append("**Theory:** no formal statement of this chapter is on the errata page (its claims are "
                     "measurements, decided below).")
    cl = _chapter_claims(doc, verdicts.claims(Path(results)))
    if len(cl):
        counts = cl.verdict.value_counts()
        parts.append("**On trained models:** " + ", ".join(f"{int(counts.get(v, 0))} {v}"
                                                           for v in verdicts.VERDICTS) + ".")
        d = cl.assign(claim=cl.claim + " (" + cl.paper + ")", verdict=cl.verdict.map(MARK),
                      number=[_short_number(n) for n in cl.number],
                      page=[verdicts.evidence(s, prefix).split(" (")[0] for s in cl.source])
        parts.append(verdicts.to_markdown(d, ["claim", "verdict", "number", "page"]))
    else:
        parts.append("**On trained models:** no claim of Sec. 6 or App. H tests this chapter directly.")
    body = "\n\n".join(parts)
    return f"```{{admonition}} Verdict: {ch.title}\n:class: important\n{body}\n```"


# ----------------------------------------------------------------------------------------------
# numbers and tables
# ----------------------------------------------------------------------------------------------
def fixed(value: Any, digits: int = 3) -> str:
    """A number in fixed notation with ``digits`` significant digits (at most 4 decimals for
    numbers of 1 or more), thousands separated; ``—`` for NaN / None; other values as ``str``.
    Never scientific notation: ``2.301313e+04`` -> ``23,013``, ``1.513149e-08`` -> ``0.0000000151``."""
    if value is None or isinstance(value, (bool, np.bool_)):
        return "—" if value is None else str(value)
    if not isinstance(value, (int, float, np.integer, np.floating)):
        try:
            missing = bool(pd.isna(value))
        except (TypeError, ValueError):  # a list or an array: not a missing value
            missing = False
        return "—" if missing else str(value)
    v = float(value)
    if math.isnan(v):
        return "—"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if isinstance(value, (int, np.integer)) or (v == round(v) and abs(v) >= 1000):
        return f"{int(round(v)):,}"
    if v == 0:
        return "0"
    mag = math.floor(math.log10(abs(v)))
    decimals = max(0, digits - 1 - mag)
    if mag >= 0:
        decimals = min(decimals, 4)
    text = f"{v:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _eps_text(v: Any) -> str:
    from prunerob.config import format_eps

    try:
        return format_eps(float(v))
    except (TypeError, ValueError):
        return fixed(v)


def _pp_text(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return fixed(v)
    if not math.isfinite(f):
        return "—"
    x = 100 * f
    if x == 0 or abs(x) >= 0.05:  # one decimal; ``round(..) + 0.0`` never prints -0.0
        return f"{round(x, 1) + 0.0:+.1f} pp"
    return f"{round(x, 2) + 0.0:+.2f} pp"  # below 0.05 pp: two decimals, not a bare "0.0"


#: columns (by name pattern) that hold gains / drops as fractions: shown in pp
PP_COLUMNS = re.compile(r"(^|_)(gain|drop)(_lo|_hi)?$|^(adv|clean)_(gain|drop)")


def tidy_table(df: pd.DataFrame, pp_columns: Iterable[str] | None = None) -> pd.DataFrame:
    """``df`` as text for display: gains and drops (columns matching :data:`PP_COLUMNS`, or
    ``pp_columns``) in signed pp with one decimal (two below 0.05 pp, never ``-0.0``), ``eps`` as on
    the figure axes
    (:func:`prunerob.config.format_eps`: 4/255), every other number in :func:`fixed` notation,
    NaN / None as ``—``. The result is all strings, so no renderer switches to scientific notation."""
    pp = set(pp_columns) if pp_columns is not None else {c for c in df.columns if PP_COLUMNS.search(str(c))}
    out = {}
    for c in df.columns:
        if c in pp:
            out[c] = df[c].map(_pp_text)
        elif str(c) == "eps" or str(c).endswith("_eps"):
            out[c] = df[c].map(_eps_text)
        else:
            out[c] = df[c].map(fixed)
    return pd.DataFrame(out, index=df.index)


def use_fixed_notation(digits: int = 4) -> None:
    """Make pandas print floats in fixed notation (:func:`fixed`) in this kernel: the theory pages
    call it first, so no table mixes ``2.3e+04`` with ``1.5e-08``."""
    pd.set_option("display.float_format", lambda v: fixed(v, digits))


# ----------------------------------------------------------------------------------------------
# environment
# ----------------------------------------------------------------------------------------------
#: libraries named on every page (distribution names)
LIBRARIES = ("torch", "numpy", "pandas", "scipy", "sympy", "matplotlib", "seaborn", "torchattacks")


def cpu_model() -> str:
    """The CPU model (``/proc/cpuinfo``'s ``model name``, else :func:`platform.processor`)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _gpu() -> str:
    torch = sys.modules.get("torch")  # only if the page already imported it: no torch import here
    try:
        if torch is not None and torch.cuda.is_available():
            return ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    except Exception:  # noqa: BLE001 - a driver problem must not break a page
        return "unknown"
    return "none"


def environment_text(what: str = "This page was computed", libraries: Sequence[str] = LIBRARIES) -> str:
    """One sentence naming Python, the library versions, the CPU model and the GPU (or none) of
    the running kernel, e.g. for the end of a page: ``This page was computed with Python 3.11.9,
    torch 2.4.0, ... on Intel(R) Xeon(R) ...; GPU: none.``"""
    vers = []
    for lib in libraries:
        try:
            vers.append(f"{lib} {metadata.version(lib)}")
        except metadata.PackageNotFoundError:
            continue
    try:
        vers.insert(0, f"prunerob {metadata.version('prunerob')}")
    except metadata.PackageNotFoundError:
        pass
    return (f"{what} with Python {platform.python_version()}, {', '.join(vers)}, on {cpu_model()} "
            f"({platform.system()} {platform.machine()}); GPU: {_gpu()}.")
