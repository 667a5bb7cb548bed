"""logger=tensorboard|mlflow: the values logged are train_log.jsonl's and metrics.json's."""

from __future__ import annotations

import json
import sys

import pytest

from graphseq.cli import main
from graphseq.config import TrainConfig
from graphseq.training.trainer import Trainer

TINY = dict(model="sasrec", epochs=3, max_seq_len=20, batch_size=32, eval_every=2, dim=16)


def _run(graph, out, **kw):
    metrics = Trainer(TrainConfig(graph=str(graph), **{**TINY, **kw}), out, progress=False).fit()
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    return metrics, log


def test_tensorboard_scalars_equal_the_train_log(small_graph_dir, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    metrics, log = _run(small_graph_dir, tmp_path / "run", logger="tensorboard")
    ea = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    ea.Reload()
    for key in ("loss", "seconds", "lr"):
        got = [(e.step, e.value) for e in ea.Scalars(key)]
        assert got == [(r["epoch"], pytest.approx(r[key], rel=1e-6)) for r in log], key
    valid = [(r["epoch"], r["valid_NDCG@10"]) for r in log if "valid_NDCG@10" in r]
    assert [e.step for e in ea.Scalars("valid_NDCG@10")] == [2, 3] == [s for s, _ in valid]
    assert [e.value for e in ea.Scalars("valid_NDCG@10")] == pytest.approx([v for _, v in valid])
    final = ea.Scalars("final/test_NDCG@10")[0].value
    assert final == pytest.approx(metrics["test"]["NDCG@10"], rel=1e-6)
    assert "_hparams_/session_start_info" in ea.summary_metadata  # the config as hparams


def test_mlflow_run_holds_params_metrics_and_the_run_directory(small_graph_dir, tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    metrics, log = _run(small_graph_dir, tmp_path / "run", logger="mlflow", mlflow_uri=uri)
    ids = json.loads((tmp_path / "run" / "mlflow.json").read_text())
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(ids["run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert run.data.params["lr"] == str(TINY_LR) and run.data.params["model"] == "sasrec"
    for key in ("loss", "seconds", "lr"):
        hist = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))
        assert hist == [(r["epoch"], pytest.approx(r[key])) for r in log], key
    hist = client.get_metric_history(run.info.run_id, "valid_NDCG_at_10")
    assert sorted((m.step, m.value) for m in hist) == [
        (r["epoch"], pytest.approx(r["valid_NDCG@10"])) for r in log if "valid_NDCG@10" in r
    ]
    assert run.data.metrics["final/test_NDCG_at_10"] == pytest.approx(metrics["test"]["NDCG@10"])
    files = {f.path for f in client.list_artifacts(run.info.run_id)}
    assert {"metrics.json", "config.yaml", "train_log.jsonl", "checkpoint.pt"} <= files
    assert list((tmp_path / "mlartifacts").rglob("metrics.json"))  # beside the database


def test_mlflow_default_store_lies_beside_the_run(small_graph_dir, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    _run(small_graph_dir, tmp_path / "run", logger="mlflow", epochs=1)
    assert (tmp_path / "mlflow.db").exists()
    assert (tmp_path / "mlartifacts").is_dir() and list(
        (tmp_path / "mlartifacts").rglob("metrics.json")
    )


TINY_LR = TrainConfig().lr


@pytest.mark.parametrize("logger, modules", [
    ("tensorboard", ["tensorboard", "torch.utils.tensorboard"]), ("mlflow", ["mlflow"]),
])  # fmt: skip
def test_missing_extra_is_one_line_naming_it(small_graph_dir, tmp_path, capsys, monkeypatch,
                                             logger, modules):  # fmt: skip
    for m in [k for k in sys.modules if k.split(".")[0] in modules] + modules:
        monkeypatch.setitem(sys.modules, m, None)  # import fails as if not installed
    code = main(["train", "--graph", str(small_graph_dir), "--model", "sasrec", "--out",
                 str(tmp_path / "run"), "--set", "epochs=1", f"logger={logger}"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert f"logger={logger} needs the [{logger}] extra" in err and "pip install" in err
    assert not (tmp_path / "run").exists()  # refused before the run directory is written
