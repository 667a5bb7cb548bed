"""README is the product page: its two commands are the ones CI runs, it stays short, and
its Python example runs (on a 200-user synthetic log, with one epoch instead of four)."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import graphseq

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
RUN = "pip install torch==2.13.0 && pip install -e . && graphseq quickstart"
TEST = 'pip install torch==2.13.0 && pip install -e ".[test]" && python -m pytest'


def _python_block() -> str:
    start = README.index("\n## In Python\n")
    section = README[start : README.index("\n## ", start + 1)]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return block


def test_readme_is_short_and_keeps_the_two_commands():
    assert len(README.splitlines()) <= 160
    lines = README.splitlines()
    assert RUN in lines and TEST in lines
    assert TEST in (ROOT / ".ci" / "run").read_text()  # CI runs the command README gives


def test_readme_example_uses_the_public_api():
    tree = ast.parse(_python_block())
    used = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and getattr(node.value, "id", None) == "graphseq"
    }
    assert {"Schema", "read_frame", "build_graph", "train"} <= used
    assert used <= set(graphseq.__all__), used - set(graphseq.__all__)


CHECKS = """
rec = run.recommend(["u0", "u1"], k=5)
assert list(rec.columns) == ["user", "item", "score", "rank", "source"], rec.columns
assert rec["user"].tolist() == ["u0"] * 5 + ["u1"] * 5 and rec["rank"].tolist() == [1, 2, 3, 4, 5] * 2
assert rec["item"].isin(items["item"]).all() and (rec["source"] == "model").all()
emb = run.item_embeddings()
assert len(emb) == len(graph.ids["item"]) and emb["item"].isin(items["item"]).all()
assert {"vector", "title", "tags"} <= set(emb.columns)
assert 0.0 < run.metrics["test"]["NDCG@10"] <= 1.0
print("checked")
"""


def test_readme_example_runs(tmp_path):
    block = _python_block()
    assert "epochs=4" in block
    block = block.replace("epochs=4", "epochs=1")  # the same steps, ~3 s less training
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRAPHSEQ_PROGRESS": "off"}
    res = subprocess.run(
        [sys.executable, "-c", block + CHECKS],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().splitlines()[-1] == "checked"
    assert (tmp_path / "runs" / "gs" / "metrics.json").exists()
    assert (tmp_path / "runs" / "gs" / "graph" / "graph.pt").exists()  # the run holds its graph
