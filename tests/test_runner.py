"""Tests of prunerob.runner (``prunerob reproduce``) with a tiny fake notebook and fake profiles.

The notebooks really run (papermill + a Jupyter kernel started from this interpreter); each
execution takes a few seconds, so the executing tests are grouped to keep the file short.
"""
from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

import nbformat
import pytest

from prunerob import runner
from prunerob.config import ConfigError

FAKE_NB = '''# %% [markdown]
# # Fake experiment

# %% tags=["parameters"]
profile = "quick"
out_dir = "results/fake"
x = 1
fail = False

# %%
import json, os, pathlib, sys
try:  # the stamp hashes the package modules a notebook imports (pkg.mod in these tests)
    import pkg.mod
except ImportError:
    pass
if fail:
    raise RuntimeError("deliberate failure")
pathlib.Path(out_dir).mkdir(parents=True, exist_ok=True)
payload = {"x": x, "python": sys.executable, "cwd": os.getcwd()}
(pathlib.Path(out_dir) / "x.json").write_text(json.dumps(payload))
print("x =", x)
'''

CHILD_NB = '''# %% [markdown]
# # Child reading fake's results

# %% tags=["parameters"]
profile = "quick"
out_dir = "results/child"
source = "results/fake/x.json"

# %%
import json, pathlib
x = json.loads(pathlib.Path(source).read_text())["x"]
pathlib.Path(out_dir).mkdir(parents=True, exist_ok=True)
(pathlib.Path(out_dir) / "y.json").write_text(json.dumps({"y": 10 * x}))
'''


def _profiles(extra: dict | None = None):
    def parameters(notebook: str, profile: str = "quick") -> dict:
        if notebook == "fake":
            p = {"profile": profile, "out_dir": "results/fake", "x": 1 if profile == "quick" else 3,
                 "fail": False}
        else:
            p = {"profile": profile, "out_dir": "results/child", "source": "results/fake/x.json"}
        p.update((extra or {}).get(notebook, {}))
        return p

    return types.SimpleNamespace(PROFILES=("quick", "cpu"),
                                 NOTEBOOKS={"fake": "a fake", "child": "reads fake"},
                                 DEPENDS={"fake": [], "child": ["fake"]}, parameters=parameters)


@pytest.fixture
def project(tmp_path):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    (nbs / "fake.py").write_text(FAKE_NB)
    (nbs / "child.py").write_text(CHILD_NB)
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "mod.py").write_text("A = 1\n")
    out = tmp_path / "book" / "experiments"
    return types.SimpleNamespace(nbs=nbs, pkg=pkg, out=out, root=tmp_path)


def _run(project, names=("fake",), **kw):
    kw.setdefault("profiles", _profiles())
    return runner.reproduce(list(names), notebooks_dir=project.nbs, output_dir=project.out, progress=False,
                            package_dir=project.pkg, **kw)


# ------------------------------------------------------------------------------------------- no kernel


@pytest.mark.parametrize("text, expected", [
    ("2", 2), ("-3", -3), ("0.5", 0.5), ("1e-3", 1e-3), ("True", True), ("false", False), ("None", None),
    ("4/255", "4/255"), ("mnist", "mnist"), ("[0, 1, 2]", [0, 1, 2]), ('["fgsm","pgd"]', ["fgsm", "pgd"]),
    ("{a: 1}", {"a": 1}), ('"1"', "1"), ("on", "on"), ("yes", "yes"),
])
def test_parse_value(text, expected):
    value = runner.parse_value(text)
    assert value == expected and type(value) is type(expected)


def test_parse_value_bad_literal():
    with pytest.raises(ConfigError, match="YAML/JSON"):
        runner.parse_value("[1, 2")


def test_parameter_names_from_parameters_cell(project):
    assert runner.notebook_parameter_names(project.nbs / "fake.py") == ["profile", "out_dir", "x", "fail"]
    (project.nbs / "bad.py").write_text("# %%\nx = 1\n")
    with pytest.raises(ConfigError, match="parameters"):
        runner.notebook_parameter_names(project.nbs / "bad.py")


def test_unknown_override_key_lists_parameters(project):
    with pytest.raises(ConfigError) as err:
        runner.plan(["fake"], "quick", {"epochs": 2}, project.nbs, _profiles(), project.pkg)
    msg = str(err.value)
    assert "epochs" in msg and "fake: profile, out_dir, x, fail" in msg


def test_profile_setting_undeclared_key_is_an_error(project):
    with pytest.raises(ConfigError, match="does not declare"):
        runner.plan(["fake"], "quick", None, project.nbs, _profiles({"fake": {"lr": 0.1}}), project.pkg)


def test_unknown_notebook_and_profile(project):
    with pytest.raises(ConfigError, match="notebook='nope'"):
        runner.plan(["nope"], "quick", None, project.nbs, _profiles(), project.pkg)
    with pytest.raises(ConfigError, match="profile='paper'"):
        runner.plan(["fake"], "paper", None, project.nbs, _profiles(), project.pkg)


def test_plan_adds_dependencies_first_and_overrides_only_requested(project):
    plans = runner.plan(["child"], "quick", {"source": "elsewhere.json"}, project.nbs, _profiles(),
                        project.pkg)
    assert [(p.name, p.auto, p.depends) for p in plans] == [("fake", True, []),
                                                            ("child", False, ["fake"])]
    assert plans[1].params["source"] == "elsewhere.json"
    assert plans[1].overrides == {"source": "elsewhere.json"}
    assert plans[0].overrides == {}
    other = runner.plan(["child"], "cpu", {"source": "elsewhere.json"}, project.nbs, _profiles(), project.pkg)
    assert other[0].base_key != plans[0].base_key and other[1].base_key != plans[1].base_key
    same = runner.plan(["child"], "quick", {"source": "elsewhere.json"}, project.nbs, _profiles(),
                       project.pkg)
    assert [p.base_key for p in same] == [p.base_key for p in plans]


def test_interrupt_leaves_no_partial_and_keeps_output(project, monkeypatch):
    """An interrupt while the child runs: no staging left, previous output untouched, no stamp."""
    project.out.mkdir(parents=True)
    good = project.out / "fake.ipynb"
    good.write_text("previous good output")
    killed = []

    class Child:
        pid = 999999

        def __init__(self, cmd, **kw):
            assert kw.get("start_new_session") is True  # its own process group, killed as one
            job = json.loads(Path(cmd[-1]).read_text())
            Path(job["output"]).write_text("half written")

        def wait(self, timeout=None):
            if not killed:
                raise KeyboardInterrupt
            return -9

    monkeypatch.setattr(runner.execute.subprocess, "Popen", Child)
    monkeypatch.setattr(runner.execute, "_kill_group", lambda pgid: killed.append(pgid))
    with pytest.raises(KeyboardInterrupt):
        _run(project)
    assert killed and killed[0] is None or 999999 in killed
    assert good.read_text() == "previous good output"
    assert not (project.out / runner.STAGING_DIR).exists()
    assert not (project.out / ".failed" / "fake.ipynb").exists()
    assert runner.read_stamp(project.out, "fake") is None


def test_register_cli_arguments():
    parser = argparse.ArgumentParser()
    runner.register(parser.add_subparsers(dest="cmd"))
    args = parser.parse_args(["reproduce", "magnitude_mlp", "--profile", "cpu", "-p", "epochs", "2",
                              "-p", "seeds", "[0,1]", "--force"])
    assert args.func is runner._cmd_reproduce
    assert args.names == ["magnitude_mlp"] and args.profile == "cpu" and args.force
    assert args.parameter == [["epochs", "2"], ["seeds", "[0,1]"]]


def test_book_offline_asset_scanner():
    """book/_ext/offline_assets.py flags pages that would fetch scripts/styles from the network."""
    sys.path.insert(0, str(runner.REPO_ROOT / "book" / "_ext"))
    try:
        import offline_assets
    finally:
        sys.path.pop(0)
    page = ('<script src="_static/a.js"></script><script src="https://cdn.example/x.js"></script>'
            '<link rel="stylesheet" href="//fonts.example/f.css"><link rel="canonical" href="https://x.org/">'
            '<a href="https://x.org">link</a><img src="http://x.org/i.png">')
    assert offline_assets.remote_assets(page) == [
        "<script> https://cdn.example/x.js", "<link> //fonts.example/f.css", "<img> http://x.org/i.png"]


def test_parameter_defaults(project):
    (project.nbs / "d.py").write_text('# %% tags=["parameters"]\na = 1\nb: list = [1, 2]\nc = {"x": None}\n'
                                      'd = 2 * a\n')
    got = runner.notebook_parameter_defaults(project.nbs / "d.py")
    assert got == {"a": 1, "b": [1, 2], "c": {"x": None}, "d": "2 * a"}
    assert isinstance(got["d"], runner.Expression) and not isinstance(got["a"], runner.Expression)


def _kind(v):
    return "number" if isinstance(v, (int, float)) and not isinstance(v, bool) else type(v).__name__


def test_real_profiles_match_notebook_sources():
    """Every key prunerob.runner.profiles sets is declared in the notebook's parameters cell, with a value
    of the same kind as the notebook's default (list vs dict vs str vs number vs bool; None fits any),
    or a dict keyed by data set whose values are of that kind (notebooks that loop over data sets
    accept either, e.g. magnitude_mlp's ``keeps``)."""
    profiles = pytest.importorskip("prunerob.runner.profiles")
    present = [n for n in profiles.NOTEBOOKS if (runner.DEFAULT_NOTEBOOKS_DIR / f"{n}.py").is_file()]
    if not present:
        pytest.skip("no notebook sources yet")
    problems = []
    for name in present:
        defaults = runner.notebook_parameter_defaults(runner.DEFAULT_NOTEBOOKS_DIR / f"{name}.py")
        for profile in profiles.PROFILES:
            deps = profiles.DEPENDS.get(name, [])
            if all((runner.DEFAULT_NOTEBOOKS_DIR / f"{d}.py").is_file() for d in deps):
                runner.plan([name], profile)
            for key, value in profiles.parameters(name, profile).items():
                default = defaults.get(key)
                if value is None or default is None or isinstance(default, runner.Expression):
                    continue
                per_dataset = (isinstance(value, dict) and not isinstance(default, dict)
                               and all(_kind(v) == _kind(default) for v in value.values()))
                if _kind(value) != _kind(default) and not per_dataset:
                    problems.append(f"{name}.{key} ({profile}): profile gives {value!r}, "
                                    f"notebook default {default!r}")
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------------------------------- executing


def _result_x(project) -> dict:
    return json.loads((project.out / "results" / "fake" / "x.json").read_text())


def test_execute_stamp_skip_and_rerun(project):
    (r,) = _run(project)
    out = project.out / "fake.ipynb"
    assert r.status == "ran" and r.output == out and out.is_file()
    got = _result_x(project)
    assert got["x"] == 1
    assert Path(got["python"]).resolve() == Path(sys.executable).resolve()  # kernel = this interpreter
    # cwd = a staging folder inside the output folder that mirrors it
    assert project.out.resolve() / runner.STAGING_DIR in Path(got["cwd"]).resolve().parents
    assert not (project.out / runner.STAGING_DIR).exists()

    nb = nbformat.read(out, as_version=4)
    tagged = {t: c for c in nb.cells for t in c.metadata.get("tags", [])}
    assert "remove-cell" in tagged["parameters"].metadata.tags  # every name injected: defaults hidden
    assert "hide-input" in tagged["injected-parameters"].metadata.tags
    assert "x = 1" in tagged["injected-parameters"].source
    assert "profile **quick**" in tagged[runner.INFO_TAG].source
    assert nb.cells.index(tagged[runner.INFO_TAG]) < nb.cells.index(tagged["parameters"])
    assert nb.cells[0].source.startswith("# Fake experiment")  # title stays first
    stamp = runner.read_stamp(project.out, "fake")
    assert stamp["profile"] == "quick" and stamp["parameters"]["x"] == 1

    (r,) = _run(project)
    assert r.status == "skipped"
    table = {r["name"]: r["status"] for r in runner.status_table(
        "quick", None, project.out, project.nbs, _profiles(), package_dir=project.pkg)}
    assert table == {"fake": "up to date", "child": "not run"}
    table = runner.status_table("cpu", ["fake"], project.out, project.nbs, _profiles(),
                                package_dir=project.pkg)
    assert table[0]["status"] == "stale" and table[0]["last_profile"] == "quick"

    (r,) = _run(project, overrides={"x": 2})
    assert r.status == "ran" and _result_x(project)["x"] == 2
    nb = nbformat.read(out, as_version=4)
    assert any("-p x 2" in c.source for c in nb.cells if runner.INFO_TAG in c.metadata.get("tags", []))

    (project.pkg / "other.py").write_text("B = 1\n")  # a module the notebook does not import
    (r,) = _run(project, overrides={"x": 2})
    assert r.status == "skipped"
    (project.pkg / "mod.py").write_text("A = 2\n")  # an imported module changed -> rerun
    (r,) = _run(project, overrides={"x": 2})
    assert r.status == "ran"
    (r,) = _run(project, overrides={"x": 2})
    assert r.status == "skipped"

    summary = runner.executed_summary(project.out, project.nbs, _profiles(), project.pkg)
    rows = {r["notebook"]: r for r in summary}
    assert rows["fake"]["profile"] == "quick" and rows["fake"]["overrides"] == "x=2"
    assert rows["fake"]["current"] == "yes" and rows["child"]["current"] == "placeholder"

    out.write_text(out.read_text().replace("x = 2", "x = 7"))  # output edited by hand -> rerun
    summary = runner.executed_summary(project.out, project.nbs, _profiles(), project.pkg)
    rows = {r["notebook"]: r for r in summary}
    assert rows["fake"]["current"] == "no"
    (r,) = _run(project, overrides={"x": 2})
    assert r.status == "ran"


def test_failure_keeps_previous_output_and_blocks_dependents(project):
    (r_fake, r_child) = _run(project, names=("child",))
    assert (r_fake.status, r_child.status) == ("ran", "ran")
    assert json.loads((project.out / "results" / "child" / "y.json").read_text()) == {"y": 10}
    out = project.out / "fake.ipynb"
    before, stamp_before = out.read_bytes(), runner.read_stamp(project.out, "fake")

    bad = _profiles({"fake": {"fail": True}})
    with pytest.raises(runner.NotebookFailed) as err:
        _run(project, names=("fake", "child"), profiles=bad, force=True)
    statuses = {r.name: r.status for r in err.value.results}
    assert statuses == {"fake": "failed", "child": "blocked"}
    assert "deliberate failure" in str(err.value)
    assert out.read_bytes() == before  # previous good output untouched
    assert runner.read_stamp(project.out, "fake") == stamp_before
    failed = project.out / ".failed" / "fake.ipynb"
    assert failed.is_file() and "deliberate failure" in failed.read_text()
    assert not (project.out / ".partial" / "fake.ipynb").exists()

    results = _run(project, names=("child", "fake"), profiles=bad, raise_on_error=False)
    assert [r.status for r in results] == ["failed", "blocked"]


def test_dependencies_reused_and_dependents_follow_them(project):
    (r,) = _run(project, names=("fake",), overrides={"x": 5})
    assert r.status == "ran"
    r_fake, r_child = _run(project, names=("child",))
    # the customised dependency is reused, not silently rerun with the profile defaults
    assert (r_fake.status, r_child.status) == ("skipped", "ran") and "reused" in r_fake.error
    assert _result_x(project)["x"] == 5
    assert json.loads((project.out / "results" / "child" / "y.json").read_text()) == {"y": 50}
    assert [r.status for r in _run(project, names=("child",))] == ["skipped", "skipped"]
    (r,) = _run(project, names=("fake",))  # dependency rerun with x = 1 -> the dependent is stale
    assert r.status == "ran"
    assert [r.status for r in _run(project, names=("child",))] == ["skipped", "ran"]
    assert json.loads((project.out / "results" / "child" / "y.json").read_text()) == {"y": 10}
