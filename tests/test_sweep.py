"""Tests of prunerob.engine.sweep: the batched MLP path against the torchattacks loop, validation, resume.

The model is a small MLP (64-32-10) trained for 300 Adam steps on a synthetic 10-class data set
of 8x8 images (class template + Gaussian noise, sd 0.8), so clean and attacked accuracies are far from
0 and 1. Everything runs in float64: the batched path (``torch.baddbmm``) and the loop path
(``F.linear`` inside torchattacks) round differently in the last bits, and float64 makes a
tie (an argmax or a gradient sign decided by rounding) practically impossible, so the two paths
must agree exactly. No MNIST file is read (the labels are free-form).
"""
from __future__ import annotations

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

import prunerob.engine.resume as resume
import prunerob.engine.stacked as stacked
import prunerob.engine.sweep as sweep
from prunerob.config import ConfigError
from prunerob.core.attacks import make_attack
from prunerob.core.data import ArrayDataset
from prunerob.core.models import build_model
from prunerob.core.pruning import apply_masks, make_masks
from prunerob.core.subsets import select_examples

KEEPS = [1.0, 0.8, 0.6, 0.4, 0.25, 0.1]
EPS = [0.03, 0.08]


def _synthetic(n: int, seed: int, split: str) -> ArrayDataset:
    g = torch.Generator().manual_seed(1234)  # the same class templates for every split
    templates = torch.rand(10, 1, 8, 8, generator=g)
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    x = (templates[y] + 0.8 * torch.randn(n, 1, 8, 8, generator=g)).clamp(0, 1)
    x = (x * 255).round().to(torch.uint8)
    return ArrayDataset("mnist", split, x, y, 10, (0.5,), (0.3,), "synthetic test data")


@pytest.fixture(scope="module")
def setup():
    train = _synthetic(2000, 0, "train")
    test = _synthetic(400, 1, "test")
    torch.manual_seed(0)
    model = build_model("mlp", train.info, hidden=(32,)).double()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    steps = 0
    while steps < 300:
        for xb, yb in train.batches(64, shuffle=True, generator=g):
            loss = F.cross_entropy(model(xb.double()), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
            if steps == 300:
                break
    model.eval()
    return model, train, test


def _kw(**over):
    kw = dict(model_name="mlp", dataset_name="mnist", methods="magnitude,random", keeps=KEEPS,
              attacks="fgsm,pgd", eps=EPS, n=300, batch_size=128, device="cpu", progress=False)
    kw.update(over)
    return kw


@pytest.fixture(scope="module")
def loop_table(setup):
    model, _, test = setup
    return sweep.run_sweep(model, test, batched="no", **_kw())


def test_batched_equals_torchattacks_loop(setup, loop_table):
    model, _, test = setup
    fast = sweep.run_sweep(model, test, batched="yes", **_kw())
    assert (fast["path"] == "batched").all() and (loop_table["path"] == "loop").all()
    key = ["method", "keep_ratio", "attack", "eps"]
    m = fast.merge(loop_table, on=key, suffixes=("_b", "_l"))
    assert len(m) == len(fast) == len(loop_table) == 2 * len(KEEPS) * 2 * len(EPS)
    assert (m["clean_acc_b"] - m["clean_acc_l"]).abs().max() <= 1e-6
    assert (m["adv_acc_b"] - m["adv_acc_l"]).abs().max() <= 1e-6
    assert (m["achieved_keep_b"] == m["achieved_keep_l"]).all()
    # the comparison is not vacuous: accuracies are non-trivial and vary with keep and eps
    full = loop_table[loop_table.keep_ratio == 1.0]
    assert (full.clean_acc > 0.6).all() and (full.clean_acc < 1.0).all()
    assert 0.05 < full.adv_acc.min() < full.clean_acc.min()
    assert loop_table.clean_acc.nunique() >= 5 and loop_table.adv_acc.nunique() >= 10
    pgd, fgsm = loop_table[loop_table.attack == "pgd"], loop_table[loop_table.attack == "fgsm"]
    assert not (pgd.adv_acc.values == fgsm.adv_acc.values).all()


def test_batched_memory_split_changes_nothing(setup, loop_table, monkeypatch):
    """Few stacked copies per call and several evaluation batches per call give the same table."""
    model, _, test = setup
    k, per_call = stacked.memory_plan(model.linear_layers(), 128, 300, torch.device("cpu"), torch.float64, 6,
                                      4_400_000)
    assert 1 < k < 6 and per_call > 1  # copies split into groups and batches packed together
    monkeypatch.setattr(stacked, "MEMORY_BUDGET", 4_400_000)
    fast = sweep.run_sweep(model, test, batched="yes", **_kw(methods="magnitude"))
    ref = loop_table[loop_table.method == "magnitude"].reset_index(drop=True)
    assert fast["adv_correct"].tolist() == ref["adv_correct"].tolist()
    assert fast["clean_correct"].tolist() == ref["clean_correct"].tolist()


def test_stacked_pgd_equals_torchattacks_per_example(setup):
    """Known answer on adversarial inputs themselves: stacked PGD/FGSM == torchattacks per pruned copy."""
    model, _, test = setup
    x = test.x[:50].double() / 255
    y = test.y[:50]
    plan = stacked.mlp_plan(model)
    keeps = [1.0, 0.5, 0.2]
    pruned = [apply_masks(model, make_masks("magnitude", model, k)).eval() for k in keeps]
    stack = stacked.stack_of(plan, [[lin.weight.detach() for lin in p.linear_layers()] for p in pruned],
                             [[lin.bias.detach() for lin in p.linear_layers()] for p in pruned])
    eps = 0.1
    with stacked.seeded(7, 0, torch.device("cpu")):
        got = stacked.stacked_pgd(stack, x, y, eps, alpha=eps / 2, steps=4)
    got_f = stacked.stacked_fgsm(stack, x, y, eps)
    for i, p in enumerate(pruned):
        atk = make_attack("pgd", p, eps, alpha=eps / 2, steps=4)
        with stacked.seeded(7, 0, torch.device("cpu")):
            ref = atk(x, y)
        assert torch.equal(got[i], ref)
        assert torch.equal(got_f[i], make_attack("fgsm", p, eps)(x, y))
        assert (got[i] - x).abs().max() <= eps + 1e-12 and not torch.equal(got[i], got_f[i])


def test_table_columns_and_values(loop_table):
    cols = set(loop_table.columns)
    need = {"model", "dataset", "method", "keep_ratio", "attack", "eps", "seed", "n", "clean_acc", "adv_acc",
            "achieved_keep", "attack_steps", "attack_alpha", "attack_restarts", "attack_seed", "device",
            "torch_version", "torchattacks_version", "prunerob_version", "config_hash", "eval_subset"}
    assert need <= cols
    assert (loop_table["n"] == 300).all() and loop_table["config_hash"].nunique() == 1
    assert (loop_table.adv_acc == loop_table.adv_correct / 300).all()
    # realised keep: round(keep * numel) per layer (layers 64x32 and 32x10)
    for k in KEEPS:
        ach = loop_table[loop_table.keep_ratio == k].achieved_keep.iloc[0]
        assert ach == (round(k * 2048) + round(k * 320)) / 2368
    pgd = loop_table[loop_table.attack == "pgd"].iloc[0]
    assert pgd.attack_steps == 5 and abs(pgd.attack_alpha - 2.5 * pgd.eps / 5) < 1e-15


def test_mixed_paths_and_non_mlp(setup):
    """auto: FGSM batched, CW through the loop; a CNN always takes the loop; yes on a CNN fails."""
    model, _, test = setup
    kw = _kw(methods="magnitude", keeps=[1.0, 0.5], attacks="fgsm,cw", eps=[0.1], n=64)
    df = sweep.run_sweep(model, test, **kw)
    assert df.set_index("attack")["path"].to_dict() == {"fgsm": "batched", "cw": "loop"}
    assert df.groupby("keep_ratio").clean_acc.nunique().max() == 1
    torch.manual_seed(0)
    cnn = build_model("cnn4", test.info).eval()
    df = sweep.run_sweep(cnn, test, **_kw(model_name="cnn4", methods="magnitude", keeps=[1.0, 0.5],
                                          attacks="fgsm", eps=[0.1], n=32))
    assert (df.path == "loop").all() and len(df) == 2
    with pytest.raises(ConfigError, match="batched"):
        sweep.run_sweep(cnn, test, batched="yes", **_kw(model_name="cnn4", attacks="fgsm"))


@pytest.mark.filterwarnings("ignore:taylor_scores")
def test_taylor_needs_train_data_and_matches(setup):
    model, train, test = setup
    with pytest.raises(ConfigError, match="train_data"):
        sweep.run_sweep(model, test, **_kw(methods="taylor"))
    kw = _kw(methods="taylor", keeps=[1.0, 0.3], attacks="fgsm", eps=[0.1], n=100, train_data=train)
    a = sweep.run_sweep(model, test, batched="yes", **kw)
    b = sweep.run_sweep(model, test, batched="no", **kw)
    assert a.adv_correct.tolist() == b.adv_correct.tolist() and a.clean_acc.tolist() == b.clean_acc.tolist()


@pytest.mark.parametrize("bad, match", [
    (dict(keeps=[1.0, 1.5]), "keep"),
    (dict(eps="-1"), "eps"),
    (dict(eps=[-0.1]), "eps"),
    (dict(model_name=""), "model_name"),
    (dict(attacks="fgsm,deepfool"), "attack"),
    (dict(methods="magnitude,snip"), "method"),
    (dict(n=0), "n="),
    (dict(batched="maybe"), "batched"),
    (dict(attack_overrides={"pgd": {"steps": 0}}), "steps"),
    (dict(attack_overrides={"pgd": {"foo": 1}}), "foo"),
])
def test_validation_leaves_no_file(setup, tmp_path, monkeypatch, bad, match):
    model, _, test = setup
    calls = []
    monkeypatch.setattr(sweep, "_run_loop", lambda *a, **k: calls.append(1))
    monkeypatch.setattr(stacked, "run_stacked", lambda *a, **k: calls.append(1))
    out = tmp_path / "res.csv"
    with pytest.raises(ConfigError, match=match):
        sweep.run_sweep(model, test, out=out, **_kw(**bad))
    assert not calls and list(tmp_path.iterdir()) == []


def test_resume_skips_finished_chunks_and_is_byte_identical(setup, tmp_path, sweep_loop):
    """An interrupted sweep resumed from its resume file writes exactly the bytes of an uninterrupted one."""
    model, _, test = setup
    out = tmp_path / "res.csv"
    # 4/255 = 0.01568627450980392 needs all 17 significant digits to survive the round trip
    kw = _kw(methods="magnitude,random", keeps=[1.0, 0.5, 0.2], attacks="fgsm,pgd", eps=["4/255", 0.03], n=64,
             batched="no")
    sweep_loop.interrupt_at(5)
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(model, test, out=out, **kw)
    partial = resume.default_path(out)
    assert not out.exists() and partial.exists()
    assert len(partial.read_text().splitlines()) == 1 + 4  # header + magnitude x 3 keeps + random at keep 1

    sweep_loop.count()
    resumed = sweep.run_sweep(model, test, out=out, **kw)
    assert len(sweep_loop.calls) == 2  # only the unfinished chunks (random at 0.5 and 0.2) ran
    assert out.exists() and not partial.exists()
    fresh_out = tmp_path / "fresh.csv"
    fresh = sweep.run_sweep(model, test, out=fresh_out, **kw)
    assert out.read_bytes() == fresh_out.read_bytes()
    pd.testing.assert_frame_equal(resumed, fresh)
    assert pd.read_csv(out, float_precision="round_trip").eps.nunique() == 2

    # a resume file of another configuration is not reused; an unreadable one is named and ignored
    sweep_loop.count()
    sweep.run_sweep(model, test, out=out, **{**kw, "keeps": [1.0, 0.5]})
    assert len(sweep_loop.calls) == 4
    partial.write_text("{not json")
    sweep_loop.count()
    with pytest.warns(UserWarning, match="partial.json"):
        sweep.run_sweep(model, test, out=out, **{**kw, "keeps": [1.0]})
    assert len(sweep_loop.calls) == 2


def test_bits_equal_counts_and_paths_agree(setup, loop_table):
    """clean_bits / adv_bits decode to per-example vectors whose sums are the counts, on both paths."""
    model, _, test = setup
    fast = sweep.run_sweep(model, test, batched="yes", **_kw(methods="magnitude", keeps=[1.0, 0.4]))
    ref = loop_table[(loop_table.method == "magnitude") & loop_table.keep_ratio.isin([1.0, 0.4])]
    for table in (fast, loop_table):
        for r in table.itertuples():
            clean, adv = sweep.unpack_bits(r.clean_bits, r.n), sweep.unpack_bits(r.adv_bits, r.n)
            assert clean.dtype == bool and clean.shape == (300,)
            assert int(clean.sum()) == r.clean_correct and int(adv.sum()) == r.adv_correct
    assert fast.clean_bits.tolist() == ref.clean_bits.tolist()
    assert fast.adv_bits.tolist() == ref.adv_bits.tolist()
    # the bits are per example: the first examples' correctness matches a direct evaluation
    x, y, _ = select_examples(test, 300, 0)
    with torch.no_grad():
        direct = (model(x.double() / 255).argmax(-1) == y).numpy()
    assert (sweep.unpack_bits(ref.clean_bits.iloc[0], 300) == direct).all()
    assert loop_table.adv_bits.nunique() > 5
    with pytest.raises(ConfigError):
        sweep.unpack_bits(ref.clean_bits.iloc[0], 400)


def test_same_examples_and_rng_untouched(setup):
    _, _, test = setup
    x1, y1, d1 = select_examples(test, 100, 0)
    x2, y2, _ = select_examples(test, 50, 0)
    assert torch.equal(x1[:50], x2) and torch.equal(y1[:50], y2) and "seed=0" in d1
    xa, _, da = select_examples(test, None)
    assert torch.equal(xa, test.x) and "all 400" in da
    state = torch.get_rng_state()
    with stacked.seeded(3, 2, torch.device("cpu")):
        torch.rand(3)
    assert torch.equal(state, torch.get_rng_state())


def test_model_left_untouched(setup):
    import copy

    model = copy.deepcopy(setup[0]).train()
    before = sweep.state_hash(model)
    df = sweep.run_sweep(model, setup[2], **_kw(keeps=[1.0, 0.3], attacks="fgsm", eps=[0.05], n=32))
    assert model.training and sweep.state_hash(model) == before and len(df) == 4
