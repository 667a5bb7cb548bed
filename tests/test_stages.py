"""Predefined splits (a stage column or separate train / valid / test files) and logs without
timestamps (event order = input order)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from data_builders.build import build_graph
from data_builders.errors import DataError
from data_builders.readers import read_log
from data_builders.schema import Schema
from data_builders.store import load_graph, save_graph
from graphseq.graph.events import EventTable
from graphseq.graph.splits import (
    TEST,
    TRAIN,
    VALID,
    LeakageError,
    check_leakage,
    make_split,
    scoring_input,
)

STAGED = """user,item,ts,event,split
a,i1,10,buy,train
a,i2,20,click,train
b,i1,15,buy,train
a,i3,30,buy,valid
b,i2,35,buy,valid
a,i4,40,buy,test
b,i3,45,buy,test
c,i4,50,buy,test
"""


def _staged(tmp_path: Path, text: str = STAGED):
    f = tmp_path / "log.csv"
    f.write_text(text)
    schema = Schema(user="user", item="item", timestamp="ts", behavior="event", stage="split")
    return read_log("csv", f, schema)


def test_stage_column_reaches_graph_store_and_event_table(tmp_path: Path) -> None:
    log = _staged(tmp_path)
    assert log.events["stage"].tolist() == [0, 0, 0, 1, 1, 2, 2, 2]
    data, ids, report = build_graph(log)
    assert report["stages"] == {"train": 3, "valid": 2, "test": 3}
    buy = data["user", "buy", "item"]
    assert buy.stage.dtype == torch.int8 and buy.stage.tolist() == [0, 0, 1, 1, 2, 2, 2]
    out = save_graph(tmp_path / "g", data, ids, report)
    assert json.loads((out / "meta.json").read_text())["stages"] is True
    back = load_graph(out)
    assert torch.equal(back["user", "buy", "item"].stage, buy.stage)
    ev = EventTable.from_graph(back)
    assert ev.stage.tolist() == [0, 0, 0, 1, 1, 2, 2, 2]  # event order (time)


def test_predefined_split_targets_and_leakage_check(tmp_path: Path) -> None:
    data, ids, _ = build_graph(_staged(tmp_path))
    ev = EventTable.from_graph(data)
    split = make_split(ev, "predefined")
    assert split.method == "predefined" and split.stage.tolist() == ev.stage.tolist()
    users = list(ids["user"])
    valid_users = [users[u] for u in ev.user[split.targets["valid"]].tolist()]
    test_users = [users[u] for u in ev.user[split.targets["test"]].tolist()]
    assert valid_users == ["a", "b"] and test_users == ["a", "b"]  # c has no history
    for name in ("valid", "test"):
        inp = scoring_input(ev, split, name)
        check_leakage(ev, split, inp)
        assert int(split.stage[inp.graph_mask].max()) == (TRAIN if name == "valid" else VALID)
    assert (split.stage[split.targets["test"]] == TEST).all()


def test_leaking_predefined_split_is_caught(tmp_path: Path) -> None:
    # a's training click at t=99 comes after a's validation and test buys
    data, _, _ = build_graph(_staged(tmp_path, STAGED + "a,i9,99,click,train\n"))
    ev = EventTable.from_graph(data)
    split = make_split(ev, "predefined")
    with pytest.raises(LeakageError, match="at or after its target"):
        check_leakage(ev, split, scoring_input(ev, split, "valid"))


def test_predefined_without_stages_is_a_data_error(small_log) -> None:
    data, _, _ = build_graph(small_log)
    ev = EventTable.from_graph(data)
    assert ev.stage is None
    with pytest.raises(DataError, match="split=predefined needs a graph built from a log"):
        make_split(ev, "predefined")


def test_bad_stage_value_names_line(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        _staged(tmp_path, STAGED + "c,i1,60,buy,holdout\n")
    assert (err.value.line, err.value.column) == (10, "split")
    assert "unknown stage 'holdout'" in str(err.value)


def _ghcf(root: Path) -> Schema:
    """GHCF / MuLe style: headerless "user item" files per behavior, plus valid and test."""
    root.mkdir()
    (root / "pv.txt").write_text("0 10\n0 11\n1 10\n2 12\n")
    (root / "buy.txt").write_text("0 10\n1 12\n2 12\n")
    (root / "valid.txt").write_text("0 13\n1 11\n")
    (root / "test.txt").write_text("0 14\n1 13\n")
    return Schema.from_dict(
        {
            "user": "user",
            "item": "item",
            "header": False,
            "columns": ["user", "item"],
            "delimiter": " ",
            "targets": ["buy"],
            "sources": [
                {"file": "pv.txt", "behavior": "pv"},
                {"file": "buy.txt", "behavior": "buy"},
                {"file": "valid.txt", "behavior": "buy", "stage": "valid"},
                {"file": "test.txt", "behavior": "buy", "stage": "test"},
            ],
        }
    )


def test_separate_sources_without_timestamps(tmp_path: Path) -> None:
    schema = _ghcf(tmp_path / "ghcf")
    log = read_log("csv", tmp_path / "ghcf", schema)
    ev = log.events
    assert ev["timestamp"].tolist() == list(range(11))  # input order, files in listed order
    assert ev["behavior"].tolist() == ["pv"] * 4 + ["buy"] * 7
    assert ev["stage"].tolist() == [0] * 7 + [1, 1, 2, 2]
    assert ev["line"].tolist() == list(range(1, 12))  # numbered on across the files
    data, ids, report = build_graph(log)
    assert report["time"] == "input_order" and report["stages"]["test"] == 2
    out = save_graph(tmp_path / "g", data, ids, report)
    assert json.loads((out / "meta.json").read_text())["time"] == "input_order"
    back = load_graph(out)
    assert back.time_kind == "input_order"
    tab = EventTable.from_graph(back)
    assert tab.time_kind == "input_order"
    split = make_split(tab, "predefined")
    for name in ("valid", "test"):
        check_leakage(tab, split, scoring_input(tab, split, name))
    test_items = [ids["item"][i] for i in tab.item[split.targets["test"]].tolist()]
    assert test_items == ["14", "13"]


def test_schema_without_timestamp_is_input_order(tmp_path: Path) -> None:
    f = tmp_path / "e.csv"
    f.write_text("user,item\nu1,a\nu2,b\nu1,c\n")
    log = read_log("csv", f, Schema(user="user", item="item"))
    assert log.events["timestamp"].tolist() == [0, 1, 2]
    assert log.info["time"] == "input_order"
    _, _, report = build_graph(log)
    assert report["time"] == "input_order" and report["time_range"] == [0, 2]
    _, _, timed = build_graph(read_log("csv", f, Schema(user="user", item="item", timestamp=None)))
    assert timed["time"] == "input_order"


def test_cli_train_predefined(tmp_path: Path) -> None:
    schema = _ghcf(tmp_path / "ghcf")
    (tmp_path / "s.yaml").write_text(json.dumps(schema.to_dict()))
    cli = [sys.executable, "-m", "graphseq"]
    res = subprocess.run(
        [*cli, "build", "--format", "csv", "--input", str(tmp_path / "ghcf")]
        + ["--schema", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "g")],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    res = subprocess.run(
        [*cli, "train", "--graph", str(tmp_path / "g"), "--model", "pop"]
        + ["--out", str(tmp_path / "run"), "--set", "split=predefined", "epochs=1", "--json"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    metrics = json.loads(res.stdout)
    assert metrics["protocol"]["split"] == "predefined"
