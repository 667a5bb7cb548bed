"""The notebooks in notebooks/ run top to bottom on small data, and are stored executed: their
outputs (tables and figures) show before anyone runs them, with no error and no stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ["01_quickstart.ipynb", "02_explore_embeddings.ipynb", "03_your_own_csv.ipynb"]


def _text(cell) -> str:
    """Everything a code cell showed: streams, plain-text results and errors."""
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        parts.append(out.get("data", {}).get("text/plain", ""))
        parts.append(out.get("evalue", ""))
    return "\n".join(parts)


def _run(name: str, cwd: Path):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute()
    return nb


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_stored_executed_and_small(name):
    path = NOTEBOOKS / name
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(c["execution_count"] is not None for c in code)
    outputs = [o for c in code for o in c["outputs"]]
    assert outputs and not [o for o in outputs if o["output_type"] == "error"]
    assert not [o for o in outputs if o.get("name") == "stderr"]  # no warnings, no bars
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert nb["cells"][0]["cell_type"] == "markdown"
    assert path.stat().st_size < 300_000  # small figures


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(name, tmp_path, monkeypatch):
    monkeypatch.delenv("GRAPHSEQ_DATA", raising=False)  # 02 uses its small synthetic default
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline (Agg) backend
    # one torch thread: on a small machine busy with other jobs, two threads spin-wait and
    # an epoch takes ~15x longer
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MKL_NUM_THREADS", "1")
    nb = _run(name, tmp_path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert (tmp_path / "graphseq-notebooks").is_dir()  # files went to the working directory
    shown = "\n".join(_text(c) for c in code)
    images = sum("image/png" in o.get("data", {}) for c in code for o in c.outputs)
    if name.startswith("01"):
        table = _text(next(c for c in code if "table[columns]" in c.source))
        assert "pop" in table and "graphseq" in table and "NDCG@10" in table
    elif name.startswith("02"):
        assert images == 5  # item maps, users among items, view weights, ego graph, curves
        assert "agreement" in shown and "shuffled" in shown and "mean weight per view" in shown
    else:
        assert "unknown schema key 'behaviour'" in shown and "typo.yaml:5" in shown
        assert "c0 bought:" in shown and "sku" in shown
