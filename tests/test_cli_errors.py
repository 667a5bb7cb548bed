"""User mistakes on the CLI: each is one line on stderr, ``graphseq: error: ...``, exit code 2,
nothing half-written; and the cases that used to go wrong silently now do the right thing."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from data_builders.errors import DataError
from graphseq.cli import main
from graphseq.commands import training_summary
from graphseq.config import TrainConfig
from graphseq.recommend import load_run
from graphseq.rules import MAX_K
from graphseq.training.trainer import Trainer


@pytest.fixture(scope="module")
def run_dir(small_graph_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "gs"
    cfg = TrainConfig(graph=str(small_graph_dir), model="graphseq", epochs=1, max_seq_len=30)
    Trainer(cfg, out, progress=False).fit()
    return out


@pytest.fixture(scope="module")
def pop_dir(small_graph_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "pop"
    Trainer(TrainConfig(graph=str(small_graph_dir), model="pop"), out, progress=False).fit()
    return out


@pytest.fixture(scope="module")
def unfinished_dir(run_dir, tmp_path_factory):
    """A copy of the run as it is while training: every file but ``metrics.json``."""
    out = tmp_path_factory.mktemp("runs") / "unfinished"
    shutil.copytree(run_dir, out)
    (out / "metrics.json").unlink()
    return out


def _cli(capsys, *args) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in args])
    except SystemExit as e:  # argparse errors exit from inside parse_args
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def _one_error(code: int, out: str, err: str, *needles: str) -> None:
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("graphseq: error: "), err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def test_export_onto_a_file_is_refused(capsys, run_dir, tmp_path):
    f = tmp_path / "emb"
    f.write_text("keep me\n")
    _one_error(*_cli(capsys, "export", "--run", run_dir, "--out", f), "is a file", str(f))
    assert f.read_text() == "keep me\n"
    with pytest.raises(DataError, match="is a file"):  # the library says the same
        load_run(run_dir).export(f)


@pytest.mark.parametrize("k", ["-1", "0", str(MAX_K + 1), "ten"])
def test_k_outside_1_to_max_is_an_argument_error(capsys, run_dir, k):
    code, out, err = _cli(capsys, "recommend", "--run", run_dir, "--users", "u1", "-k", k)
    _one_error(code, out, err, "argument -k")
    assert "1 to 1000" in err or "not an integer" in err


def test_k_rule_is_the_same_in_the_library(run_dir):
    run = load_run(run_dir)
    for bad in (0, -1, MAX_K + 1):
        with pytest.raises(DataError, match="k must be an integer from 1 to 1000"):
            run.recommend_dict(["u1"], k=bad)
        with pytest.raises(DataError, match="from 1 to 1000"):
            run.similar_items_dict(["i1"], k=bad)
        with pytest.raises(DataError, match="from 1 to 1000"):
            run.recommend_history_list(["i1"], k=bad)
    assert len(run.recommend_dict(["u1"], k=1)["u1"]) == 1


def test_one_query_kind_at_a_time(capsys, run_dir):
    res = _cli(capsys, "recommend", "--run", run_dir, "--users", "u1", "--items", "i1")
    _one_error(*res, "--items", "not allowed with argument --users")
    res = _cli(capsys, "recommend", "--run", run_dir, "-k", "3")
    _one_error(*res, "one of the arguments --users --items --history --all is required")
    res = _cli(capsys, "recommend", "--run", run_dir, "--users", "u1", "--out", "x.parquet")
    _one_error(*res, "--out is only for --all")
    res = _cli(capsys, "recommend", "--run", run_dir, "--items", "i1", "--fallback-popular")
    _one_error(*res, "--fallback-popular is only for --users")


def test_all_writes_csv_or_parquet_by_suffix(capsys, run_dir, tmp_path):
    for name in ("recs.csv", "recs.parquet"):
        code, out, err = _cli(
            capsys, "recommend", "--run", run_dir, "--all", "--out", tmp_path / name, "-k", "3"
        )
        assert code == 0 and out == "" and f"wrote top-3 for 120 users to {tmp_path / name}" in err
    csv = pd.read_csv(tmp_path / "recs.csv", dtype={"user": str, "item": str})
    pq = pd.read_parquet(tmp_path / "recs.parquet")
    assert (tmp_path / "recs.parquet").read_bytes()[:4] == b"PAR1"
    assert list(csv.columns) == ["user", "rank", "item", "score"] and len(csv) == 360
    pd.testing.assert_frame_equal(csv, pq, check_dtype=False, atol=1e-6)
    for bad in ("recs.txt", "recs"):
        res = _cli(capsys, "recommend", "--run", run_dir, "--all", "--out", tmp_path / bad)
        _one_error(*res, ".parquet or .csv")
        assert not (tmp_path / bad).exists()
    _one_error(*_cli(capsys, "recommend", "--run", run_dir, "--all"), "--all needs --out")


@pytest.mark.parametrize(
    "args",
    [
        ["evaluate", "--json"],
        ["recommend", "--users", "u1"],
        ["export", "--out", "EMB"],
    ],
)
def test_unfinished_run_is_refused_unless_allowed(capsys, unfinished_dir, tmp_path, args):
    args = [str(tmp_path / "emb") if a == "EMB" else a for a in args]
    cmd, rest = args[0], args[1:]
    res = _cli(capsys, cmd, "--run", unfinished_dir, *rest)
    _one_error(*res, "not finished (no metrics.json)", "--allow-incomplete")
    code, out, err = _cli(capsys, cmd, "--run", unfinished_dir, "--allow-incomplete", *rest)
    assert code == 0, err


def test_history_skips_unknown_items(capsys, run_dir):
    code, out, err = _cli(
        capsys, "recommend", "--run", run_dir, "--history", "i1", "zz", "i2", "yy", "zz", "--json"
    )
    assert code == 0
    assert err.strip() == "graphseq: warning: skipped unknown item ids: 'zz', 'yy'"
    assert json.loads(out) == {"history": load_run(run_dir).recommend_history_list(["i1", "i2"])}
    res = _cli(capsys, "recommend", "--run", run_dir, "--history", "zz", "yy", "--json")
    _one_error(*res, "unknown item ids: 'zz', 'yy'")


def test_pop_has_no_similar_items(capsys, pop_dir):
    res = _cli(capsys, "recommend", "--run", pop_dir, "--items", "i1", "--json")
    _one_error(*res, "has no item vectors", "Pop(120u")
    assert not load_run(pop_dir).has_item_vectors


def test_training_summary_names_what_validation_chose(run_dir):
    m = json.loads((run_dir / "metrics.json").read_text())
    lines = training_summary(run_dir, m)
    assert lines[0] == f"run written to {run_dir.resolve()}"
    assert lines[1] == f"best epoch 1 of 1 (valid NDCG@10 {m['valid']['NDCG@10']:.4f})"
    ig = m["item_graph"]  # graphseq fuses the item-item graph when validation prefers it
    if ig["weight"]:
        assert lines[2].startswith(
            f"validation chose item-item graph fusion: weight {ig['weight']:g}"
        )
    else:
        assert lines[2] == "validation chose no item-item graph fusion (weight 0)"
    assert len(training_summary(run_dir, {**m, "item_graph": {}})) == 2


def test_bad_port_is_an_argument_error(capsys, run_dir):
    for port in ("99999", "0", "http"):
        _one_error(*_cli(capsys, "serve", "--run", run_dir, "--port", port), "argument --port")
