"""What trips users in their first hour: coarse or mis-scaled times, float-looking ids,
behaviors spelled several ways, epoch micro/nanoseconds."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from data_builders.build import build_graph
from data_builders.errors import DataError
from data_builders.log import CanonicalLog
from data_builders.readers import read_log
from data_builders.schema import Schema

SCHEMA = {"user": "user", "item": "item", "timestamp": "ts"}


def _read(tmp_path: Path, text: str, **extra):
    f = tmp_path / "e.csv"
    f.write_text(text)
    return read_log("csv", f, Schema.from_dict({**SCHEMA, **extra}))


def test_date_only_timestamps_warn_and_report_ties(tmp_path: Path, caplog, capsys) -> None:
    text = "user,item,ts\nu1,a,2024-01-05\nu1,b,2024-01-05\nu1,a,2024-01-05\nu2,a,2024-01-06\n"
    with caplog.at_level("WARNING"):
        log = _read(tmp_path, text)
        _, _, report = build_graph(log)
    assert report["time_resolution"] == "day"
    assert report["same_timestamp_events"] == 1  # u1's b shares 2024-01-05 with u1's a
    assert report["dropped"]["duplicate_rows"] == 1  # the repeated (u1, a) row
    assert "whole days" in caplog.text and "duplicate_rows" in caplog.text
    assert capsys.readouterr().out == ""  # logged, not printed
    _, _, kept = build_graph(log, _no_dedup())
    assert kept["events"] == 4


def _no_dedup():
    from data_builders.build import BuildOptions

    return BuildOptions(dedup=False)


def test_whole_day_epochs_are_day_resolution(tmp_path: Path) -> None:
    log = _read(tmp_path, "user,item,ts\nu1,a,1704067200\nu2,b,1704153600\n")
    assert build_graph(log)[2]["time_resolution"] == "day"
    log = _read(tmp_path, "user,item,ts\nu1,a,1704067201\nu2,b,1704153600\n")
    assert "time_resolution" not in build_graph(log)[2]


def test_ms_unit_on_seconds_warns_with_the_fitting_unit(tmp_path: Path, caplog) -> None:
    with caplog.at_level("WARNING"):
        log = _read(tmp_path, "user,item,ts\nu1,a,1700000000\nu2,b,1700003600\n", time_unit="ms")
    assert log.events["timestamp"].tolist() == [1700000, 1700003]  # January 1970
    assert "1970-01-20" in caplog.text and "time_unit s would put them in 2023-11-14" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        _read(tmp_path, "user,item,ts\nu1,a,1700000000000\n", time_unit="ms")
    assert caplog.text == ""


@pytest.mark.parametrize(
    ("raw", "unit"),
    [
        ("1700000000", "auto"),
        ("1700000000123", "auto"),
        ("1700000000123456", "auto"),
        ("1700000000123456789", "auto"),
        ("1700000000123456", "us"),
        ("1700000000999999999", "ns"),
    ],
)
def test_epoch_units(tmp_path: Path, raw: str, unit: str) -> None:
    log = _read(tmp_path, f"user,item,ts\nu1,a,{raw}\n", time_unit=unit)
    assert log.events["timestamp"].tolist() == [1700000000]  # floor, exact for ns


def test_mixed_epoch_units_are_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="mixes seconds and microseconds") as err:
        _read(tmp_path, "user,item,ts\nu1,a,1700000000\nu1,b,1700000000123456\n")
    assert (err.value.line, err.value.column) == (3, "ts")


@pytest.mark.parametrize(("ok", "ts"), [("10", "-5"), ("1970-01-02", "1969-12-31T23:59:59Z")])
def test_negative_times_rejected_once(tmp_path: Path, ok: str, ts: str) -> None:
    with pytest.raises(DataError, match="negative timestamp") as err:
        _read(tmp_path, f"user,item,ts\nu1,a,{ok}\nu1,b,{ts}\n")
    assert err.value.line == 3


def test_integral_float_ids_are_one_user(tmp_path: Path, caplog) -> None:
    text = "user,item,ts\n12,7.0,1\n12.0,7,2\n12.5,8,3\n"
    with caplog.at_level("WARNING"):
        log = _read(tmp_path, text)
    assert log.events["user"].tolist() == ["12", "12", "12.5"]
    assert log.events["item"].tolist() == ["7", "7", "8"]
    _, ids, report = build_graph(log)
    assert list(ids["user"]) == ["12", "12.5"] and list(ids["item"]) == ["7", "8"]
    assert report["float_ids"] == {"user": 1, "item": 1}
    assert "integral floats" in caplog.text


def test_behavior_spellings_warn_or_merge(tmp_path: Path, caplog) -> None:
    text = "user,item,ts,b\nu1,a,1,Buy\nu1,b,2,BUY \nu2,a,3,buy\nu2,c,4,click\n"
    with caplog.at_level("WARNING"):
        log = _read(tmp_path, text, behavior="b")
    assert sorted(set(log.events["behavior"])) == ["BUY", "Buy", "buy", "click"]
    assert "BUY / Buy / buy" in caplog.text and "normalize_behaviors" in caplog.text
    log = _read(tmp_path, text, behavior="b", normalize_behaviors=True, targets=["Buy"])
    assert log.events["behavior"].tolist() == ["buy", "buy", "buy", "click"]
    data, _, _ = build_graph(log)
    assert data.behaviors == ["buy", "click"] and data.targets == ["buy"]


def test_targets_are_checked_in_one_place(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"\['buy'\] never occur.*present: interact"):
        _read(tmp_path, "user,item,ts\nu,i,1\n", targets=["buy"])
    df = pd.DataFrame(
        {"user": ["u"], "item": ["i"], "timestamp": [1], "behavior": ["click"], "value": 1.0}
    )
    df["line"] = 2
    with pytest.raises(DataError, match=r"\['buy'\] never occur.*present: click"):
        build_graph(CanonicalLog(events=df, targets=["buy"]))
