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

    from graphseq.models.registry import SPECS
    from graphseq.models.resolve import ignored_keys, keys_read

    listed = set().union(*(keys_read(m) for m in SPECS))
    assert [f.name for f in fields(TrainConfig) if f.name not in listed] == []
    names = {f.name for f in fields(TrainConfig)}
    assert all(keys_read(m) <= names for m in SPECS)  # every part lists keys that exist
    graph_keys = {"views", "fusion", "edge_dropout", "fanouts", "num_layers"}
    assert ignored_keys("graphseq", graph_keys) == []
    assert ignored_keys("sasrec", graph_keys) == ["edge_dropout", "fanouts", "fusion", "views"]


def test_a_renamed_key_is_read_under_its_new_name_with_a_warning(caplog):
    with caplog.at_level("WARNING", logger="graphseq"):
        cfg = config_from_dict({"coarse": False}, source="old.yaml")
    assert cfg.snapshot_scale is False
    assert any("'coarse' is now 'snapshot_scale'" in r.message for r in caplog.records)


def test_a_removed_key_loads_at_its_no_op_value_and_is_refused_otherwise():
    """An old run's config.yaml holds the removed switches at their no-op values: it loads;
    a config that turns one on is refused (it would silently do nothing now)."""
    old = {"view_align": 0.0, "view_side": "both", "gbce_t": 0.75, "epochs": 3}
    assert config_from_dict(old) == TrainConfig(epochs=3)
    with pytest.raises(DataError, match="'view_align' was removed: it measured no gain"):
        config_from_dict({"view_align": 0.1})
    with pytest.raises(DataError, match="must be one of ce, sampled, bpr, got 'gbce'"):
        config_from_dict({"loss": "gbce"})


def test_every_key_is_declared_once_with_a_doc_and_its_range_is_enforced():
    from graphseq.config import DOCS, INFO, KEYS, RANGES

    assert len(KEYS) == len(set(KEYS)) == len(DOCS) <= 66
    assert all(doc.strip() for doc in DOCS.values())
    for name, span in RANGES.items():  # one value just outside every closed finite bound
        if span.low > float("-inf"):
            bad = span.low if span.low_open else span.low - 1
            value = (bad,) if isinstance(getattr(TrainConfig(), name), tuple) else bad
            with pytest.raises(DataError, match=f"'{name}' must lie in"):
                config_from_dict({name: value})
    assert INFO["seed"].fixed and not INFO["lr"].fixed and INFO["lr"].space is not None
