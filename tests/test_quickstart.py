"""``graphseq quickstart`` twice in one directory, and after a change of size."""

from __future__ import annotations

import json
from dataclasses import asdict

from graphseq.cli import main
from graphseq.quickstart import quickstart, quickstart_spec


def _spec(workdir) -> dict:
    return json.loads((workdir / "data" / "spec.json").read_text())["spec"]


def test_second_quickstart_gets_fresh_runs_and_reuses_matching_data(tmp_path):
    first = quickstart(tmp_path, fast=True, models=("pop",), progress=False)
    events = tmp_path / "data" / "events.csv"
    stamp = events.stat().st_mtime_ns
    second = quickstart(tmp_path, fast=True, models=("pop",), progress=False)
    assert (first.runs, second.runs) == (tmp_path / "runs" / "1", tmp_path / "runs" / "2")
    assert events.stat().st_mtime_ns == stamp  # same spec: the log is reused
    for res in (first, second):
        assert (res.runs / "pop" / "metrics.json").exists() and (res.runs / "graph").is_dir()
    assert first.metrics["pop"]["test"] == second.metrics["pop"]["test"]
    assert _spec(tmp_path) == asdict(quickstart_spec(fast=True))


def test_data_of_another_size_is_not_reused(tmp_path):
    fast = quickstart(tmp_path, fast=True, models=("pop",), progress=False)
    full = quickstart(tmp_path, fast=False, models=("pop",), progress=False)
    assert _spec(tmp_path) == asdict(quickstart_spec(fast=False))
    assert fast.metrics["pop"]["protocol"]["test_users"] == 300
    assert full.metrics["pop"]["protocol"]["test_users"] == 1000
    # the first invocation's run still loads: its graph is its own
    assert json.loads((fast.runs / "graph" / "report.json").read_text())["nodes"]["user"] == 300


def test_cli_quickstart_json_and_table(tmp_path, capsys):
    assert main(["quickstart", "--dir", str(tmp_path), "--fast", "--models", "pop", "--json"]) == 0
    out, err = capsys.readouterr()
    res = json.loads(out)
    assert res["runs"] == str(tmp_path / "runs" / "1") and set(res["metrics"]) == {"pop"}
    assert err.splitlines()[-1] == f"runs written to {tmp_path / 'runs' / '1'}"
    assert "test NDCG@10" in err
    assert main(["quickstart", "--dir", str(tmp_path), "--models", "bogus"]) == 2
    assert "unknown quickstart models: 'bogus'" in capsys.readouterr().err
