"""Run comparison: two-level bootstrap by hand, and the compare command's refusals."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from data_builders.errors import DataError
from graphseq.cli import main
from graphseq.segments import NO_USERS
from graphseq.stats import compare, load_group, two_level_bootstrap


def test_bootstrap_centres_on_the_difference_and_widens_with_seed_variance():
    rng = np.random.default_rng(0)
    base = rng.random(400)
    b = np.stack([base, base])  # two identical seeds
    a_same = np.stack([base + 0.05, base + 0.05])
    a_noisy = np.stack([base + 0.05 + s for s in (-0.04, 0.04)])  # same mean, seed variance
    same, noisy = two_level_bootstrap(a_same, b, 2000), two_level_bootstrap(a_noisy, b, 2000)
    assert same["diff"] == pytest.approx(0.05) and noisy["diff"] == pytest.approx(0.05)
    assert same["ci95"][1] - same["ci95"][0] < 1e-9  # paired, no seed noise: exact
    assert noisy["ci95"][0] < 0.02 and noisy["ci95"][1] > 0.08  # seeds' spread is in the CI
    one = two_level_bootstrap(rng.random((1, 300)), rng.random((1, 300)), 2000)
    assert one["users"] == 300 and one["ci95"][0] < one["diff"] < one["ci95"][1]


def _fake_run(path, users, scores, fingerprint="abc", split="leave_last_out", segment=None,
              **protocol):  # fmt: skip
    path.mkdir(parents=True)
    df = pd.DataFrame({"user": users, "target": "i", "rank": 1, "NDCG@10": scores})
    if segment is not None:
        df["segment"] = segment
    df.to_parquet(path / "per_user.parquet")
    (path / "provenance.json").write_text(json.dumps({"graph_fingerprint": fingerprint}))
    m = {
        "test": {"NDCG@10": float(np.mean(scores))},
        "protocol": {"split": split, "ranking": "full", **protocol},
    }
    (path / "metrics.json").write_text(json.dumps(m))


def test_compare_groups_seeds_and_refuses_other_graphs(tmp_path, capsys):
    users = [f"u{i}" for i in range(50)]
    rng = np.random.default_rng(1)
    for s in range(3):
        _fake_run(tmp_path / "a" / f"seed{s}", users, rng.random(50))
        # validation on a sample of users is a tuning choice: the test protocol is the same
        _fake_run(tmp_path / "b" / f"seed{s}", users, rng.random(50) * 0.1, valid_users=20 + s)
    rows = compare([load_group(tmp_path / "a"), load_group(tmp_path / "b")], n=500)
    assert [r["seeds"] for r in rows] == [3, 3]
    assert rows[1]["vs_first"]["diff"] < 0 and rows[1]["vs_first"]["ci95"][1] < 0
    assert (
        main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json", "--resamples", "200"])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out[0]["run"] == "a" and "vs_first" in out[1]
    # a directory of one seed is named after itself, not after its seed0/
    _fake_run(tmp_path / "c" / "seed0", users, rng.random(50))
    assert load_group(tmp_path / "c").name == "c"
    assert load_group(tmp_path / "c" / "seed0").name == "seed0"
    _fake_run(tmp_path / "other", users, rng.random(50), fingerprint="zzz")
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "other")]) == 2
    assert "another graph" in capsys.readouterr().err
    _fake_run(tmp_path / "gt", users, rng.random(50), split="global_time")
    with pytest.raises(DataError, match="another protocol"):
        compare([load_group(tmp_path / "a"), load_group(tmp_path / "gt")])
    shutil.rmtree(tmp_path / "gt")
    with pytest.raises(DataError, match="no finished run"):
        load_group(tmp_path / "gt")


def test_compare_by_segment_averages_each_segments_users(tmp_path):
    """By hand: users a and d repeat, b explores with own items, c without; nobody of a
    segment: said, not averaged."""
    users = ["a", "b", "c", "d"]
    seg = ["repeat", "explore_with_own", "explore_without_own", "repeat"]
    _fake_run(tmp_path / "ref" / "seed0", users, [1.0, 0.0, 0.2, 0.6], segment=seg)
    _fake_run(tmp_path / "ref" / "seed1", users, [0.8, 0.2, 0.2, 0.6], segment=seg)
    _fake_run(tmp_path / "other", users, [0.0, 0.5, 0.5, 0.0], segment=seg)
    ref, other = compare([load_group(tmp_path / "ref"), load_group(tmp_path / "other")], n=200)
    r, o = ref["segments"], other["segments"]
    assert r["repeat"]["users"] == 2 and r["repeat"]["share"] == 0.5
    assert r["repeat"]["mean"] == pytest.approx((0.9 + 0.6) / 2)
    assert r["repeat"]["seed_sd"] == pytest.approx(np.std([0.8, 0.7], ddof=1))
    assert r["explore"]["mean"] == pytest.approx((0.1 + 0.2) / 2) and o["explore"]["mean"] == 0.5
    assert o["repeat"]["vs_first"]["diff"] == pytest.approx(0.0 - 0.75)
    assert o["explore_without_own"]["vs_first"]["diff"] == pytest.approx(0.5 - 0.2)
    _fake_run(tmp_path / "rep" / "seed0", users[::3], [1.0, 0.0], segment=["repeat"] * 2)
    (empty,) = compare([load_group(tmp_path / "rep")])
    assert empty["segments"]["explore"] == {"users": 0, "share": 0.0, "note": NO_USERS}
