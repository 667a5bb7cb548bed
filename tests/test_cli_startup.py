"""The CLI as a process: light start (no torch for --help, --version, argument errors), clean
help text, and a quiet exit when stdout closes early (``graphseq ... | head``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import graphseq
from graphseq.config import TrainConfig
from graphseq.training.trainer import Trainer

HEAVY = ("torch", "torch_geometric", "pandas", "numpy", "fastapi", "uvicorn", "scipy", "networkx",
         "optuna", "mlflow", "tensorboard", "ogb")  # fmt: skip
OPTIONAL = ("networkx", "optuna", "mlflow", "tensorboard", "ogb")  # imported where used

PROBE = """
import json, sys
from graphseq.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as e:
    code = e.code
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print(json.dumps({{"code": code, "heavy": heavy}}), file=sys.stderr)
"""


def _probe(*args: str) -> dict:
    res = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return json.loads(res.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "args, code",
    [
        (["--help"], 0),
        (["--version"], 0),
        (["recommend", "--help"], 0),
        (["serve", "--run", "r", "--port", "99999"], 2),
        (["recommend", "--run", "r", "--users", "u", "-k", "0"], 2),
        (["recommend", "--run", "r", "--users", "u", "--items", "i"], 2),
        (["bogus"], 2),
    ],
)
def test_help_version_and_argument_errors_import_no_torch(args, code):
    got = _probe(*args)
    assert got == {"code": code, "heavy": []}


def _imported(code: str, names: tuple[str, ...]) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(m for m in {names!r} if m in sys.modules)))"
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_import_graphseq_is_light():
    assert _imported("import graphseq, graphseq.cli", HEAVY) == []


def test_optional_libraries_load_only_when_used():
    """networkx (explore), optuna (tune), mlflow / tensorboard (loggers) and ogb (a test
    oracle) stay out of the modules that use them until their functions run."""
    code = ("import graphseq.recommend, graphseq.serve, graphseq.deploy, graphseq.explore, "
            "graphseq.training.search, graphseq.training.space, graphseq.training.loggers, "
            "graphseq.training.trainer")  # fmt: skip
    assert _imported(code, OPTIONAL) == []


def _graphseq(*args: str, **kw) -> subprocess.CompletedProcess:
    kw = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **kw}
    return subprocess.run([sys.executable, "-m", "graphseq", *args], text=True, timeout=300, **kw)


def test_help_text_is_clean():
    res = _graphseq("--help")
    assert res.returncode == 0 and res.stderr == ""
    text = res.stdout
    assert "``" not in text and ":class:" not in text
    assert "Graph-neural-network recommendation from behavior logs" in text
    for command in (
        "build",
        "train",
        "tune",
        "evaluate",
        "recommend",
        "export",
        "serve",
        "quickstart",
    ):
        assert f"\n    {command} " in text
    assert "stdout" in text and "stderr" in text


def test_version():
    res = _graphseq("--version")
    assert res.returncode == 0 and res.stdout.strip() == f"graphseq {graphseq.__version__}"


@pytest.fixture(scope="module")
def run_dir(small_graph_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "mf"
    Trainer(
        TrainConfig(graph=str(small_graph_dir), model="mf", epochs=1), out, progress=False
    ).fit()
    return out


def _closed_stdout(*args: str, buffered: bool) -> subprocess.CompletedProcess:
    """Run the CLI with stdout a pipe whose reader is gone before the process starts."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    r, w = os.pipe()
    os.close(r)
    try:
        return _graphseq(*args, stdout=w, env=env)
    finally:
        os.close(w)


@pytest.mark.parametrize("buffered", [True, False])
@pytest.mark.parametrize(
    "args, codes",
    [
        (["--help"], {0, 1}),  # unbuffered, argparse itself ignores the failed write: 0
        (["recommend", "--run", "RUN", "--users", "u1", "u2", "--json"], {1}),
    ],
)
def test_closed_stdout_exits_quietly(run_dir, args, codes, buffered):
    res = _closed_stdout(*[str(run_dir) if a == "RUN" else a for a in args], buffered=buffered)
    assert res.returncode in codes
    assert res.stderr == ""  # no BrokenPipeError traceback, no "Exception ignored" notice


def test_recommend_one_user_does_not_import_pyg(run_dir):
    """PyG's import (~1.5 s) is most of a one-user ``recommend``: the run loads without it."""
    code = (f"import graphseq.recommend as r\nrun = r.load_run({str(run_dir)!r})\n"
            "assert run.recommend_dict([run.id_maps['user'][0]], k=3)")  # fmt: skip
    assert _imported(code, ("torch_geometric",)) == []
