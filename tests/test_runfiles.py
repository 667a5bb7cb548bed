"""Damaged runs: every file of a run and its graph is checked at load, and each problem is one
line naming the file (all of them together, exit 2, no traceback)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from graphseq.cli import main
from graphseq.config import TrainConfig
from graphseq.recommend import load_run
from graphseq.training.run import load_checkpoint
from graphseq.training.runfiles import RunFilesError, check_run_files, run_file_paths
from graphseq.training.trainer import Trainer


@pytest.fixture(scope="module")
def trained(small_graph_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runfiles") / "mf"
    Trainer(
        TrainConfig(graph=str(small_graph_dir), model="mf", epochs=1), out, progress=False
    ).fit()
    return out


@pytest.fixture
def copies(trained, small_graph_dir, tmp_path) -> tuple[Path, Path]:
    """A copy of the run and of its graph, free to damage (the run is loaded with --graph)."""
    run, graph = tmp_path / "run", tmp_path / "graph"
    shutil.copytree(trained, run)
    shutil.copytree(small_graph_dir, graph)
    return run, graph


def _errors(capsys, run: Path, graph: Path) -> list[str]:
    """The lines ``graphseq recommend`` prints for the run; checks the exit and the shape."""
    code = main(["recommend", "--run", str(run), "--graph", str(graph), "--users", "u1"])
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and out == "", err
    assert lines and all(ln.startswith("graphseq: error: ") for ln in lines), err
    assert "Traceback" not in err
    return [ln.removeprefix("graphseq: error: ") for ln in lines]


def _empty(f: Path) -> None:
    f.write_bytes(b"")


def _random(f: Path) -> None:
    f.write_bytes(os.urandom(4096))


def _truncate(f: Path) -> None:
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _not_json(f: Path) -> None:
    f.write_text('{"graphseq_version": "0.2.0", ')


# (file relative to the run or the graph, damage, what the one line says)
CASES = [
    ("run/checkpoint.pt", _empty, "empty file (0 bytes)"),
    ("run/checkpoint.pt", _random, "not a torch.save file, truncated or corrupt"),
    ("run/checkpoint.pt", _truncate, "not a torch.save file, truncated or corrupt"),
    ("run/provenance.json", _not_json, "not valid JSON"),
    ("run/metrics.json", _not_json, "not valid JSON"),
    ("run/config.yaml", lambda f: f.write_text("epochs: [1\n"), "config.yaml"),
    ("run/per_user.parquet", _truncate, "not a readable Parquet file"),
    ("graph/graph.pt", _empty, "empty file (0 bytes)"),
    ("graph/ids/item.parquet", Path.unlink, "missing"),
    ("graph/items.parquet", _truncate, "not a readable Parquet file"),
    ("graph/meta.json", _not_json, "not valid JSON"),
    ("graph/report.json", Path.unlink, "missing"),
]


@pytest.mark.parametrize(
    "name, damage, says", CASES, ids=[f"{c[0]}-{c[1].__name__}" for c in CASES]
)
def test_each_damage_is_one_line_naming_the_file(capsys, copies, name, damage, says):
    run, graph = copies
    f = (run if name.startswith("run/") else graph) / name.split("/", 1)[1]
    damage(f)
    (line,) = _errors(capsys, run, graph)
    assert line.startswith(f"{f}: ") and says in line, line


def test_every_problem_is_reported_together(capsys, copies):
    run, graph = copies
    _empty(run / "checkpoint.pt")
    _not_json(run / "metrics.json")
    (graph / "ids" / "item.parquet").unlink()
    _truncate(graph / "items.parquet")
    lines = _errors(capsys, run, graph)
    named = [ln.split(": ", 1)[0] for ln in lines]
    assert named == [str(run / "metrics.json"), str(run / "checkpoint.pt"),
                     str(graph / "ids" / "item.parquet"), str(graph / "items.parquet")]  # fmt: skip


def test_the_python_api_gets_the_same_problems(copies):
    run, graph = copies
    _empty(graph / "graph.pt")  # so the node types come from the ids directory
    (graph / "ids" / "item.parquet").unlink()
    _not_json(run / "provenance.json")
    with pytest.raises(RunFilesError) as e:
        load_run(run, graph=graph)
    files = [run / "provenance.json", graph / "graph.pt", graph / "ids" / "item.parquet"]
    assert [p.file for p in e.value.problems] == files
    assert len(str(e.value).splitlines()) == 3


def test_an_intact_run_passes_and_lists_its_files(trained, small_graph_dir):
    check_run_files(trained)  # nothing raised
    names = {f.name for f in run_file_paths(trained, small_graph_dir)}
    assert {"checkpoint.pt", "config.yaml", "metrics.json", "graph.pt", "item.parquet"} <= names


def test_other_graph_and_unfinished_run(copies, tmp_path, event_graph):
    run, graph = copies
    (run / "metrics.json").unlink()
    check_run_files(run, allow_incomplete=True)
    with pytest.raises(RunFilesError, match="not finished") as e:
        check_run_files(run)
    assert len(e.value.problems) == 1
    other = event_graph([("a", "x", 1, "buy"), ("a", "y", 2, "buy"), ("b", "x", 3, "buy")],
                        tmp_path / "other")  # fmt: skip
    with pytest.raises(RunFilesError, match="other id maps"):
        check_run_files(run, allow_incomplete=True, graph=other)


def test_an_empty_checkpoint_has_a_reason(tmp_path):
    f = tmp_path / "checkpoint.pt"
    f.write_bytes(b"")
    with pytest.raises(Exception, match=r"refusing to load checkpoint: \w+"):
        load_checkpoint(f)
