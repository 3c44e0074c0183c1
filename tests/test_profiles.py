"""Tests of prunerob.runner.profiles against the notebook sources (notebooks/*.py, jupytext percent)."""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from prunerob.config import ConfigError, parse_eps
from prunerob.runner import profiles
from prunerob.runner.profiles import DEPENDS, NOTEBOOKS, PAPER_KEEPS, PROFILES, parameters

NB_DIR = Path(__file__).resolve().parent.parent / "notebooks"


def parameters_cell(name: str) -> dict:
    """Names and literal values assigned in the cell tagged ``parameters`` of notebooks/<name>.py.

    Parsed independently of jupytext/papermill: the cell starts at a ``# %%`` line carrying
    ``tags=["parameters"]`` and ends at the next ``# %%`` line.
    """
    lines = (NB_DIR / f"{name}.py").read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("# %%") and 'tags=["parameters"]' in line]
    assert len(starts) == 1, f"{name}: expected one parameters cell, found {len(starts)}"
    body = []
    for line in lines[starts[0] + 1:]:
        if line.startswith("# %%"):
            break
        body.append(line)
    out = {}
    for node in ast.parse("\n".join(body)).body:
        typed = isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
        typed = typed and node.value is not None
        assert typed, f"{name}: parameters cell must hold typed assignments `name: type = value  # help`"
        out[node.target.id] = ast.literal_eval(node.value)
    return out


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_every_parameter_is_typed_and_documented(name):
    """papermill --help-notebook shows `name: type (default ...) help` for each parameter (issue 11)."""
    pattern = re.compile(r"^(?P<target>\w+)\s*:\s*[\"']?(?P<annotation>\w[\w\[\],\s]*)[\"']?\s*=\s*"
                         r"(?P<value>.+?)\s+#\s*(?P<help>\S.*)$")
    lines = (NB_DIR / f"{name}.py").read_text().splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.startswith("# %%") and 'tags=["parameters"]' in line)
    body = []
    for line in lines[start + 1:]:
        if line.startswith("# %%"):
            break
        if line.strip():
            body.append(line)
    for line in body:
        m = pattern.match(line)
        assert m, f"{name}: parameter line is not `name: type = value  # help`: {line!r}"
        ast.literal_eval(m["value"])


def test_every_notebook_has_a_source_and_vice_versa():
    assert set(NOTEBOOKS) == {p.stem for p in NB_DIR.glob("*.py")}
    assert set(DEPENDS) <= set(NOTEBOOKS)
    for deps in DEPENDS.values():
        assert set(deps) <= set(NOTEBOOKS)
    assert DEPENDS["pareto"] == ["magnitude_mlp", "score_vit"]


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
@pytest.mark.parametrize("profile", PROFILES)
def test_parameter_keys_match_notebook(name, profile):
    cell = parameters_cell(name)
    params = parameters(name, profile)
    assert list(params) == list(cell) or set(params) == set(cell), (
        f"{name}/{profile}: only in profiles {sorted(set(params) - set(cell))}, "
        f"only in notebook {sorted(set(cell) - set(params))}")
    assert params["profile"] == profile
    assert params["out_dir"] == f"results/{name}"
    json.dumps(params)  # papermill injects plain literals


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_quick_profile_equals_notebook_defaults(name):
    assert parameters(name, "quick") == parameters_cell(name)


SNAPSHOT = Path(__file__).resolve().parent / "data" / "profile_parameters.json"


def _typed(value):
    """``value`` with the type of every scalar, list and mapping spelled out (``1 == 1.0 == True``
    in Python but not in a page's stamp key), mapping keys in order."""
    if isinstance(value, dict):
        return ("dict", [(k, _typed(v)) for k, v in value.items()])
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [_typed(v) for v in value])
    return (type(value).__name__, value)


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
@pytest.mark.parametrize("profile", PROFILES)
def test_parameters_equal_the_snapshot(name, profile):
    """The parameters of every notebook and profile, key order and types included, are those pinned in
    tests/data/profile_parameters.json (one row per parameter: its quick, cpu and paper values). The
    file was generated from profiles.py as it stood before the notebooks' parameters cells became the
    source of the defaults (commit 97641db); change a row by hand only with a deliberate change of a
    profile or a notebook default (it changes the stamp key of the pages run with it)."""
    snapshot = json.loads(SNAPSHOT.read_text())
    assert set(snapshot) == set(NOTEBOOKS)
    expected = {key: row[profile] for key, row in snapshot[name].items()}
    assert _typed(parameters(name, profile)) == _typed(expected)


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_profiles_hold_only_values_that_differ_from_the_notebook(name):
    """The parameters cell is the single source of the defaults: profiles.py holds no quick value and
    no cpu/paper value that repeats the notebook's default."""
    assert set(profiles.PROFILE_VALUES) <= set(NOTEBOOKS)
    assert set(profiles.PROFILE_VALUES.get(name, {})) <= {"cpu", "paper"}
    assert set(profiles.COMMON_VALUES) <= {"cpu", "paper"}
    cell = parameters_cell(name)
    for profile in ("cpu", "paper"):
        values = {**profiles.COMMON_VALUES.get(profile, {}),
                  **profiles.PROFILE_VALUES.get(name, {}).get(profile, {})}
        repeats = [k for k, v in values.items() if k in cell and _typed(v) == _typed(cell[k])]
        assert not repeats, f"{name}/{profile} repeats the notebook's defaults of {repeats}"


_CELL = """# %% tags=["parameters"]
profile: str = "quick"  # settings label
n_eval: int = {n_eval}  # test images
keeps: list = [1.0, 0.5]  # keep ratios
"""


def _notebooks(tmp_path, monkeypatch, cell=_CELL, **values):
    """A notebooks folder holding depth.py with the parameters cell ``cell``; depth's cpu profile
    sets only ``values`` (and no value is common to all notebooks)."""
    (tmp_path / "depth.py").write_text(cell + "\n# %%\nprint(n_eval)\n")
    monkeypatch.setattr(profiles, "NOTEBOOKS_DIR", tmp_path)
    monkeypatch.setitem(profiles.PROFILE_VALUES, "depth", {"cpu": values})
    monkeypatch.setattr(profiles, "COMMON_VALUES", {})
    return tmp_path / "depth.py"


def test_the_parameters_cell_is_the_source_of_every_default(tmp_path, monkeypatch):
    src = _notebooks(tmp_path, monkeypatch, cell=_CELL.format(n_eval=7), keeps=[1.0])
    assert parameters("depth", "quick") == {"profile": "quick", "n_eval": 7, "keeps": [1.0, 0.5]}
    assert parameters("depth", "cpu") == {"profile": "cpu", "n_eval": 7, "keeps": [1.0]}
    src.write_text(src.read_text().replace("n_eval: int = 7", "n_eval: int = 300"))  # an edit is seen
    assert parameters("depth", "quick")["n_eval"] == parameters("depth", "cpu")["n_eval"] == 300
    assert parameters("depth", "paper") == {"profile": "paper", "n_eval": 300, "keeps": [1.0, 0.5]}


def test_a_profile_value_must_be_declared_by_the_notebook(tmp_path, monkeypatch):
    _notebooks(tmp_path, monkeypatch, cell=_CELL.format(n_eval=7), precision="bf16")
    assert parameters("depth", "quick")["n_eval"] == 7
    with pytest.raises(ConfigError, match="'cpu' sets precision for depth.*declared: profile, n_eval"):
        parameters("depth", "cpu")


def test_a_default_that_is_not_a_literal_or_a_missing_source_is_one_line(tmp_path, monkeypatch):
    _notebooks(tmp_path, monkeypatch, cell=_CELL.format(n_eval="10 * 100"))
    with pytest.raises(ConfigError, match="parameter 'n_eval' is 10 \\* 100, not a Python literal"):
        parameters("depth", "quick")
    with pytest.raises(ConfigError, match="notebook source .*magnitude_mlp.py does not exist"):
        parameters("magnitude_mlp", "cpu")


def test_unknown_names_raise():
    with pytest.raises(ConfigError, match="notebook='nope'.*risk_vs_keep"):
        parameters("nope", "quick")
    with pytest.raises(ConfigError, match="profile='gpu'.*quick, cpu, paper"):
        parameters("depth", "gpu")


def test_parameters_returns_a_fresh_copy():
    a = parameters("depth", "cpu")
    a["keeps"].append(0.01)
    a["models"].clear()
    b = parameters("depth", "cpu")
    assert 0.01 not in b["keeps"] and b["models"] == ["mlp", "mlp3", "mlp4"]


def _values(v, key):
    """A per-data-set dict or a plain value -> list of values."""
    return list(v.values()) if isinstance(v, dict) else [v]


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
@pytest.mark.parametrize("profile", PROFILES)
def test_values_are_valid_choices(name, profile):
    from prunerob.core.attacks import ATTACKS
    from prunerob.core.data import DATASETS
    from prunerob.core.models import ARCHS
    from prunerob.core.pruning import METHODS

    p = parameters(name, profile)
    for key in ("keeps", "grid_keeps", "subset_keeps"):
        for ks in _values(p.get(key, []), key):
            assert all(0.0 <= k <= 1.0 for k in ks), (key, ks)
    for key in ("datasets", "subset_datasets"):
        assert set(p.get(key, [])) <= set(DATASETS)
    if "dataset" in p:
        assert p["dataset"] in DATASETS
    for key in ("model", "models"):
        for m in _values(p.get(key, []), key):
            for arch in (m if isinstance(m, list) else [m]):
                assert arch in ARCHS
    assert set(p.get("methods", [])) <= set(METHODS)
    for a in _values(p.get("attacks", []), "attacks"):
        assert set(a if isinstance(a, list) else [a]) <= set(ATTACKS)
    assert set(p.get("subset_attacks", [])) <= set(ATTACKS)
    if "eps" in p:
        assert parse_eps(p["eps"]) == pytest.approx(4 / 255)
    for key in ("epochs", "train_subset", "image_size", "n_eval", "models", "attacks", "seeds"):
        if isinstance(p.get(key), dict) and "datasets" in p:
            missing = set(p["datasets"]) - set(p[key])
            assert not missing, f"{name}/{profile}: {key} lacks {missing}"
    if "seeds" in p:  # a list, or a dict of them per data set (FEWER_CPU_SEEDS keys "notebook/data set")
        per = p["seeds"] if isinstance(p["seeds"], dict) else {None: p["seeds"]}
        for ds, seeds in per.items():
            key = name if ds is None else f"{name}/{ds}"
            if profile == "paper" or (profile == "cpu" and name not in profiles.FEWER_CPU_SEEDS
                                      and key not in profiles.FEWER_CPU_SEEDS):
                assert len(seeds) >= 3, f"{key}/{profile}: {seeds}"
            if profile == "cpu" and ds == "mnist":
                assert len(seeds) >= 5  # the paper's settings on MNIST with at least 5 seeds (issue 12)
    if profile == "cpu" and p.get("dataset", "mnist") == "mnist" and "datasets" not in p and "seeds" in p \
            and name in ("depth", "algorithm1", "risk_vs_keep"):
        assert len(p["seeds"]) >= 5  # the paper's settings on MNIST with at least 5 seeds (issue 12)


def test_paper_profile_follows_the_paper():
    assert PAPER_KEEPS[0] == 1.0 and PAPER_KEEPS[-1] == 0.05 and len(PAPER_KEEPS) == 20
    mlp = parameters("magnitude_mlp", "paper")
    assert mlp["epochs"] == {"mnist": 30, "cifar10": 100}
    assert mlp["n_eval"] == {"mnist": 10000, "cifar10": 10000}
    assert mlp["subset_n"] == 1000 and mlp["subset_attacks"] == ["autoattack"]
    assert mlp["keeps"] == PAPER_KEEPS and mlp["seeds"] == {"mnist": [0, 1, 2], "cifar10": [0, 1, 2]}
    assert parameters("magnitude_cnn", "paper")["epochs"]["cifar10"] == 100
    vit = parameters("score_vit", "paper")
    assert set(vit["epochs"].values()) == {10} and vit["fgsm_extra_eps"] == ["8/255"]
    assert parameters("depth", "paper")["epochs"] == 30


def test_shared_checkpoints_across_notebooks():
    # the MNIST MLP is trained with the same settings wherever it appears, so the cache is shared
    for profile in PROFILES:
        ref = parameters("depth", profile)
        for name in ("risk_vs_keep", "algorithm1", "pareto"):
            p = parameters(name, profile)
            keys = ("epochs", "train_subset", "seeds")
            assert tuple(p[k] for k in keys) == tuple(ref[k] for k in keys)
        m = parameters("magnitude_mlp", profile)
        assert m["epochs"]["mnist"] == ref["epochs"] and m["train_subset"]["mnist"] == ref["train_subset"]
        c, r = parameters("magnitude_cnn", profile), parameters("risk_vs_keep", profile)
        assert r["cnn_epochs"] == c["epochs"]["cifar10"]
        assert r["cnn_train_subset"] == c["train_subset"]["cifar10"]
