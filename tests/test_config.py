"""Config parsing: choices and ranges checked before any data is read, numbers as typed."""

from __future__ import annotations

import pytest

from data_builders.errors import DataError
from graphseq.cli import main
from graphseq.config import TrainConfig, config_from_dict, parse_set


@pytest.mark.parametrize(
    "pair, valid",
    [
        ("loss=foo", "ce, sampled, bpr"),
        ("split=random", "leave_last_out, global_time"),
        ("negatives=zipf", "uniform, popularity"),
        ("device=tpu", "auto, cpu, cuda"),
        ("fusion=x", "attention, mean, concat"),
        ("views=cooc,foo", "views are cooc, tag, kg, behavior"),
        ("batch_size=0", "[1, inf]"),
        ("epochs=-1", "[1, inf]"),
        ("dropout=1.5", "[0, 1)"),
        ("lr=0", "(0, inf]"),
    ],
)
def test_bad_choice_or_range_exits_2_before_reading_data(tmp_path, capsys, pair, valid):
    out = tmp_path / "run"
    code = main(["train", "--graph", str(tmp_path / "no-such-graph"), "--model", "sasrec",
                 "--out", str(out), "--set", pair])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and valid in err
    assert pair.split("=")[0] in err and "no-such-graph" not in err  # before the graph is read
    assert not out.exists()


def test_numbers_parse_as_a_user_types_them():
    cfg = config_from_dict(parse_set(["lr=1e-3", "weight_decay=5e4", "epochs=1e3", "dim=64.0"]))
    assert cfg.lr == 0.001 and cfg.weight_decay == 50_000.0
    assert cfg.epochs == 1000 and isinstance(cfg.epochs, int) and cfg.dim == 64
    with pytest.raises(DataError, match="must be int"):
        config_from_dict({"epochs": 2.5})
    with pytest.raises(DataError, match="must be int"):
        config_from_dict({"epochs": True})
    assert config_from_dict({"item_graph": "null"}).item_graph is None
    assert config_from_dict({"item_graph": True}).item_graph is True
    assert config_from_dict({"fanouts": "6,3"}).fanouts == (6, 3)


def test_heads_must_divide_dim():
    with pytest.raises(DataError, match="must divide dim"):
        config_from_dict({"num_heads": 3}, TrainConfig(dim=64))


def test_unknown_model_exits_2_listing_models(tmp_path, capsys):
    code = main(
        ["train", "--graph", str(tmp_path), "--model", "nope", "--out", str(tmp_path / "r")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "graphseq" in err and "sasrec" in err and not (tmp_path / "r").exists()


def test_a_key_the_model_ignores_gives_one_warning(small_graph_dir, tmp_path, caplog):
    argv = ["train", "--graph", str(small_graph_dir), "--model", "mf", "--out", str(tmp_path / "r"),
            "--set", "epochs=1", "views=cooc", "num_heads=2"]  # fmt: skip
    with caplog.at_level("WARNING", logger="graphseq"):
        assert main(argv) == 0
    warned = [r.getMessage() for r in caplog.records if "config key" in r.getMessage()]
    assert len(warned) == 2 and "'views'" in warned[1] and "'num_heads'" in warned[0]
    assert not any("'epochs'" in w for w in warned)


def test_every_config_key_is_read_by_some_model():
    """A key no model lists would warn 'not used' on the model that reads it (and leave the
    tuning space), and a graph key must be refused for sasrec, which has no graph."""
    from dataclasses import fields

    from graphseq.models.registry import ALWAYS, KEYS_READ, ignored_keys

    listed = set().union(ALWAYS, *KEYS_READ.values())
    assert [f.name for f in fields(TrainConfig) if f.name not in listed] == []
    graph_keys = {"views", "fusion", "edge_dropout", "fanouts", "num_layers"}
    assert ignored_keys("graphseq", graph_keys) == []
    assert ignored_keys("sasrec", graph_keys) == ["edge_dropout", "fanouts", "fusion", "views"]
