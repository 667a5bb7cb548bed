"""Experiment tracking beside ``train_log.jsonl``: ``--set logger=tensorboard|mlflow``.

One interface (:class:`RunLogger`); the trainer calls it where it writes the run directory:
``start(cfg)`` once the config is saved, ``log_epoch(record)`` with each line it appends to
``train_log.jsonl`` (``loss``, ``seconds``, ``lr`` and, on validation epochs,
``valid_NDCG@10``; step = epoch), ``finish(metrics)`` with ``metrics.json``, ``close()``
always (a run that stopped before ``finish`` is marked so).

- ``tensorboard`` (the ``[tensorboard]`` extra): event files in ``RUN/tensorboard``; one
  scalar per record key (tag = key), the final metrics as ``final/valid_NDCG@10``, ... and
  the config as hyper-parameters (``add_hparams``, tuples as strings).
- ``mlflow`` (the ``[mlflow]`` extra): one MLflow run per run directory (its id kept in
  ``RUN/mlflow.json``, so ``--resume`` continues it) in experiment ``graphseq``
  (``$MLFLOW_EXPERIMENT_NAME`` overrides): the config as params, each record key as a metric
  (``@`` becomes ``_at_``: MLflow keys cannot hold ``@``), the final metrics as
  ``final/valid_NDCG_at_10``, ..., and the run directory as artefacts. The store is the
  ``mlflow_uri`` key, else ``$MLFLOW_TRACKING_URI``, else a local one beside the run
  directory: ``mlflow.db`` (SQLite; MLflow 3 refuses bare ``mlruns/`` file stores unless
  ``MLFLOW_ALLOW_FILE_STORE=true``). A SQLite store's artefacts go to ``mlartifacts/``
  beside its database file. ``mlflow ui
  --backend-store-uri sqlite:///PATH/mlflow.db`` shows them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from data_builders.atomic import write_json
from data_builders.errors import DataError
from graphseq.config import TrainConfig

EXTRA_MODULES = {"tensorboard": "tensorboard", "mlflow": "mlflow"}  # logger -> module


def _missing(logger: str, e: ImportError) -> DataError:
    return DataError(
        f"logger={logger} needs the [{logger}] extra (module {e.name or EXTRA_MODULES[logger]!r}"
        " is missing)",
        hint=f'pip install "graphseq[{logger}]" (pip install -e ".[{logger}]" in a checkout)',
    )


def hparams(cfg: TrainConfig) -> dict[str, Any]:
    """The config as flat scalar hyper-parameters (tuples joined by commas, None as "")."""
    out: dict[str, Any] = {}
    for k, v in cfg.to_dict().items():
        if isinstance(v, list):
            v = ",".join(map(str, v))
        out[k] = "" if v is None else v
    return out


def final_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """``{"final/valid_NDCG@10": ..., "final/test_NDCG@10": ...}`` from ``metrics.json``."""
    out = {}
    for split in ("valid", "test"):
        for k, v in (metrics.get(split) or {}).items():
            out[f"final/{split}_{k}"] = float(v)
    return out


class RunLogger:
    """The interface, and ``logger=none``: every call does nothing."""

    def start(self, cfg: TrainConfig) -> None:
        """The run directory and its config exist."""

    def log_epoch(self, record: dict[str, Any]) -> None:
        """One ``train_log.jsonl`` line (``record["epoch"]`` is the step)."""

    def finish(self, metrics: dict[str, Any]) -> None:
        """``metrics.json`` was written: the run is complete."""

    def close(self) -> None:
        """Flush and release (called after ``finish``, or when the run stopped early)."""


class TensorBoardLogger(RunLogger):
    """Scalars and hyper-parameters in ``RUN/tensorboard`` (``torch.utils.tensorboard``)."""

    def __init__(self, out: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:
            raise _missing("tensorboard", e) from None
        self.make, self.dir = SummaryWriter, out / "tensorboard"
        self.writer: Any = None
        self.cfg: TrainConfig | None = None

    def start(self, cfg: TrainConfig) -> None:
        self.cfg, self.writer = cfg, self.make(log_dir=str(self.dir))

    def log_epoch(self, record: dict[str, Any]) -> None:
        for k, v in record.items():
            if k != "epoch":
                self.writer.add_scalar(k, float(v), record["epoch"])
        self.writer.flush()

    def finish(self, metrics: dict[str, Any]) -> None:
        self.writer.add_hparams(hparams(self.cfg), final_metrics(metrics), run_name=".")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def mlflow_key(key: str) -> str:
    """A record key as an MLflow metric key (``valid_NDCG@10`` → ``valid_NDCG_at_10``)."""
    return key.replace("@", "_at_")


def tracking_uri(cfg: TrainConfig, out: Path) -> tuple[str, str | None]:
    """``(uri, artefact root or None)``: ``mlflow_uri``, else ``$MLFLOW_TRACKING_URI``, else
    ``sqlite:///`` ``mlflow.db`` beside ``out``. A SQLite store keeps its artefacts in
    ``mlartifacts/`` beside the database (MLflow's own default is the working directory);
    other stores (a tracking server) choose their own (None)."""
    uri = cfg.mlflow_uri or os.environ.get("MLFLOW_TRACKING_URI", "")
    if not uri:
        uri = f"sqlite:///{out.resolve().parent / 'mlflow.db'}"
    if uri.startswith("sqlite:///"):
        return uri, (Path(uri[len("sqlite:///") :]).parent / "mlartifacts").as_uri()
    return uri, None


class MLflowLogger(RunLogger):
    """One MLflow run per run directory, through ``MlflowClient`` (no global active run)."""

    def __init__(self, cfg: TrainConfig, out: Path) -> None:
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as e:
            raise _missing("mlflow", e) from None
        self.out = out
        self.uri, self.artifacts = tracking_uri(cfg, out)
        self.client = MlflowClient(tracking_uri=self.uri)
        self.run_id: str | None = None
        self.finished = False

    def start(self, cfg: TrainConfig) -> None:
        from mlflow.entities import Param

        ids = self.out / "mlflow.json"
        if ids.exists():  # --resume: continue the same MLflow run
            self.run_id = json.loads(ids.read_text())["run_id"]
            self.client.update_run(self.run_id, status="RUNNING")
            return
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "graphseq")
        exp = self.client.get_experiment_by_name(name)
        exp_id = (
            exp.experiment_id
            if exp is not None
            else self.client.create_experiment(name, artifact_location=self.artifacts)
        )
        run = self.client.create_run(exp_id, run_name=self.out.name)
        self.run_id = run.info.run_id
        write_json(ids, {"run_id": self.run_id, "tracking_uri": self.uri, "experiment": name})
        params = [Param(k, str(v)) for k, v in hparams(cfg).items()]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 params a batch
            self.client.log_batch(self.run_id, params=params[i : i + 100])

    def log_epoch(self, record: dict[str, Any]) -> None:
        from mlflow.entities import Metric

        if self.run_id is None:
            return
        step = int(record["epoch"])
        self.client.log_batch(
            self.run_id,
            metrics=[Metric(mlflow_key(k), float(v), 0, step) for k, v in record.items() if k != "epoch"],
        )  # fmt: skip

    def finish(self, metrics: dict[str, Any]) -> None:
        from mlflow.entities import Metric

        if self.run_id is None:
            return
        final = [Metric(mlflow_key(k), v, 0, 0) for k, v in final_metrics(metrics).items()]
        if final:
            self.client.log_batch(self.run_id, metrics=final)
        self.client.log_artifacts(self.run_id, str(self.out))
        self.client.set_terminated(self.run_id, status="FINISHED")
        self.finished = True

    def close(self) -> None:
        if self.run_id is not None and not self.finished:
            self.client.set_terminated(self.run_id, status="KILLED")


def open_logger(cfg: TrainConfig, out: str | Path, enabled: bool = True) -> RunLogger:
    """The logger ``cfg.logger`` names (a no-op one for ``none`` or when not ``enabled``)."""
    if not enabled or cfg.logger == "none":
        return RunLogger()
    if cfg.logger == "tensorboard":
        return TensorBoardLogger(Path(out))
    if cfg.logger == "mlflow":
        return MLflowLogger(cfg, Path(out))
    raise DataError(f"unknown logger {cfg.logger!r}", hint="none, tensorboard or mlflow")


__all__ = ["MLflowLogger", "RunLogger", "TensorBoardLogger", "open_logger", "tracking_uri"]
