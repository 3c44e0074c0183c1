"""Tests of the book's summaries (prunerob.analysis.summary): the chapter map against the table of contents
and the notebooks' back-links, the computed answer sentence, errata severities, fixed notation."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from prunerob.analysis import summary as S
from prunerob.analysis import verdicts as V
from prunerob.config import ConfigError

REPO = Path(__file__).resolve().parents[1]


def _toc() -> list[tuple[str, list[str]]]:
    """(chapter file, [section files]) of book/_toc.yml's first part, read without a YAML library."""
    out: list[tuple[str, list[str]]] = []
    part = 0
    for line in (REPO / "book" / "_toc.yml").read_text().splitlines():
        if line.strip().startswith("- caption:"):
            part += 1
        elif part == 1 and re.match(r"^      - file: ", line):
            out.append((line.split("file:")[1].strip(), []))
        elif part == 1 and re.match(r"^          - file: ", line):
            out[-1][1].append(line.split("file:")[1].strip())
    return out


def test_toc_chapters_are_the_chapter_map():
    toc = _toc()
    assert [doc for doc, _ in toc] == list(S.CHAPTERS)
    for doc, sections in toc:
        assert sections == [f"experiments/{nb}" for nb in S.CHAPTERS[doc].pages], doc


def test_every_notebook_is_the_sub_page_of_one_chapter_and_links_back_to_it():
    notebooks = sorted(p.stem for p in (REPO / "notebooks").glob("*.py"))
    owners = {nb: [c.doc for c in S.CHAPTERS.values() if nb in c.pages] for nb in notebooks}
    assert all(len(v) == 1 for v in owners.values()), owners
    for nb, (doc,) in owners.items():
        text = (REPO / "notebooks" / f"{nb}.py").read_text()
        assert f"<../{doc}>`" in text, f"notebooks/{nb}.py does not link to its chapter {doc}"


def test_every_chapter_links_to_the_experiments_that_test_it():
    for c in S.CHAPTERS.values():
        text = S.tested_by(c.doc)
        for nb in c.notebooks:
            assert f"experiments/{nb}>`" in text
        assert (REPO / "book" / f"{c.doc}.md").is_file()
        if c.doc.startswith("theory/"):  # the chapter page calls the computed verdict box
            assert f'chapter_verdict("{c.doc}"' in (REPO / "book" / f"{c.doc}.md").read_text()
    with pytest.raises(ConfigError, match="chapter"):
        S.tested_by("theory/nope")


def _claims(verdicts_reasons):
    rows = []
    for i, (v, r, claim) in enumerate(verdicts_reasons):
        rows.append({"claim": claim, "paper": f"Fig. {i}", "verdict": v, "reason": r, "number": "",
                     "source": "magnitude_mlp (profile cpu; cpu)"})
    return pd.DataFrame(rows)


def _errata(severities):
    return pd.DataFrame({"id": [f"E{i}" for i in range(1, len(severities) + 1)], "severity": severities})


def test_answer_sentence_is_computed_from_the_verdicts():
    c = _claims([("fails", "competent; interval ...",
                  "Magnitude pruning raises FGSM 4/255 accuracy: mlp on mnist"),
                 ("inconclusive", "underpowered: interval",
                  "Magnitude pruning raises PGD 4/255 accuracy: cnn4"),
                 ("inconclusive", "not competent (23.7% < 70.0%); " + V.PENDING,
                  "Taylor-score pruning raises FGSM 8/255 accuracy: vit"),
                 ("holds", "competent", "Lowering p lowers the adversarial risk")])
    e = _errata(["wrong statement", "wrong statement", "typo or edge case"])
    text = S.answer_sentence(c, e)
    assert "no resolved robustness gain on any competent model tested" in text
    assert "(2 gain claims: 1 fail, 1 unresolved, none holds; 1 more await the cpu profile's CCT run)" in text
    assert "ε = 4/255" in text and "8/255" not in text.split("could not")[0]  # untested budgets not claimed
    assert "3 need an erratum: 2 wrong statements, 1 typo or edge case." in text
    # one gain that holds changes the answer
    c.loc[0, "verdict"] = "holds"
    text = S.answer_sentence(c, e)
    assert "raises attacked accuracy in 1 of 2 gain claims" in text and "FGSM 4/255 accuracy: mlp" in text
    c.loc[2, "reason"] = "not run"
    assert "1 more could not be tested here: not run: 1)" in S.answer_sentence(c, e)


def test_errata_have_a_known_severity_and_a_chapter(tmp_path):
    e = S.errata()
    er = e[e.id != ""]
    assert len(er) and set(er.severity) <= set(S.SEVERITIES)
    assert (er.chapter.str.startswith("theory/")).all()
    errata = (REPO / "book" / "theory" / "errata.md").read_text()
    bad = errata.replace("| typo or edge case |", "| minor |", 1)
    (tmp_path / "errata.md").write_text(bad)
    with pytest.raises(ConfigError, match="severity"):
        S.errata(tmp_path / "errata.md")


def test_theory_verdicts_count_errata_by_severity():
    e = S.errata()
    items = S.theory_list(e)
    for s in S.SEVERITIES:
        n = int((e.severity == s).sum())
        if n:
            assert f"* **{n} {S.PLURAL[s] if n != 1 else s}**: " in items
    assert "{ref}`Sec. 6.5 <e-fig5-layers>`" in items  # the statement not reproduced, by its paper reference


def test_first_screen_is_sentence_then_experiments_then_theory():
    text = S.first_screen(REPO / "book" / "experiments" / "results")
    answer, exp, theory = (text.index(k) for k in ("pruning after training", "**Experiments**", "**Theory**"))
    assert answer < exp < theory
    assert len(text.split("**Theory**")[0].splitlines()) < 12  # short: the whole of it fits one screen


@pytest.mark.parametrize("value, text", [(23013.13, "23,013"), (1.513149e-08, "0.0000000151"), (0.5, "0.5"),
                                         (12, "12"), (float("nan"), "—"), (None, "—"), (3.14159, "3.14"),
                                         (-0.000123456, "-0.000123"), ("x", "x")])
def test_fixed_notation(value, text):
    assert S.fixed(value) == text


def test_tidy_table_writes_gains_in_pp_eps_as_on_the_axes_and_no_nan():
    df = pd.DataFrame({"eps": [4 / 255, 0.05], "adv_gain": [0.0123, float("nan")], "gain_lo": [-0.001, 0.002],
                       "worst_case": [2.301313e04, 1.513149e-08], "note": [None, "ok"]})
    t = S.tidy_table(df)
    assert list(t.eps) == ["4/255", "0.05"]
    assert list(t.adv_gain) == ["+1.2 pp", "—"] and list(t.gain_lo) == ["-0.1 pp", "+0.2 pp"]
    text = t.to_string()
    assert "e+" not in text and "e-0" not in text and "NaN" not in text and "None" not in text


def test_environment_text_names_versions_and_cpu():
    text = S.environment_text()
    assert "Python " in text and "pandas " in text and S.cpu_model() in text and "GPU:" in text


def test_importing_prunerob_silences_tqdms_ipywidgets_warning():
    # in a fresh interpreter (pytest resets warning filters around each test)
    import subprocess
    import sys

    code = ("import warnings, prunerob; warnings.warn('IProgress not found. Please update jupyter and "
            "ipywidgets.'); print('done')")
    out = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True)
    assert out.stdout.strip() == "done" and "IProgress" not in out.stderr


def test_chapter_box_numbers_keep_whole_clauses():
    n = "mlp keep 0.9: +0.0 pp (CI a; b); mlp3 keep 0.7: +0.1 pp (x; y); mlp4 keep 0.6: -0.1 pp"
    assert S._short_number(n) == "mlp keep 0.9: +0.0 pp (CI a; b); mlp3 keep 0.7: +0.1 pp (x; y) …"
    assert S._short_number("") == "—" and S._short_number("one") == "one"


def test_a_claim_at_another_budget_gets_its_own_clause_not_the_paper_budget_count():
    c = _claims([("fails", "competent; interval ...",
                  "Magnitude pruning raises FGSM 4/255 accuracy: mlp on mnist"),
                 ("inconclusive", "competent (97.8% >= 97.0%); a gain is resolved at keep 0.6 (+0.60 pp)",
                  "Magnitude pruning raises PGD 0.1 accuracy: mlp on mnist")])
    text = S.answer_sentence(c, _errata(["wrong statement"]))
    assert "(1 gain claim: 1 fail, 0 unresolved, none holds)" in text
    assert "At ε = 0.1 (PGD), magnitude pruning of mlp on mnist: **inconclusive** (a gain is resolved" in text
