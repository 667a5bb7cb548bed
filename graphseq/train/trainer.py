"""One trainer for every model: AdamW, early stopping on valid NDCG@10, resumable runs.

Run directory (DESIGN.md): ``config.yaml``, ``provenance.json``, ``train_log.jsonl``,
``last.pt`` (resume state), ``checkpoint.pt`` (best model), ``per_user.parquet`` and
``metrics.json`` (written last).
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from data_builders.atomic import write_json
from data_builders.errors import DataError
from data_builders.store import load_graph, load_id_maps
from graphseq.config import TrainConfig, load_config, save_config
from graphseq.evaluate import EvalResult, evaluate_with
from graphseq.graph.context import GraphContext, ItemSide
from graphseq.graph.events import EventTable
from graphseq.graph.splits import make_split
from graphseq.models.registry import build_model
from graphseq.text import item_text_features
from graphseq.train import run as rundir
from graphseq.train.distributed import setup as dist_setup
from graphseq.train.distributed import shard, teardown
from graphseq.train.schedule import epoch_batches, eval_interval
from graphseq.train.tune import tune_item_graph

log = logging.getLogger("graphseq")
MAIN_METRIC = "NDCG@10"


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. a non-finite loss); the last good checkpoint is kept."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DataError(
            "device=cuda but no CUDA device is available", hint="use device=auto or cpu"
        )
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """Train ``cfg.model`` on the graph directory ``cfg.graph`` into run directory ``out``.

    Example::

        cfg = TrainConfig(model="graphseq", graph="g", epochs=50)
        metrics = Trainer(cfg, "runs/gs").fit()
    """

    def __init__(self, cfg: TrainConfig, out: str | Path, progress: bool = True) -> None:
        self.cfg = cfg.replace(graph=str(Path(cfg.graph).resolve()))
        self.out = Path(out)
        self.graph = load_graph(self.cfg.graph)
        self.id_maps = load_id_maps(self.cfg.graph)
        self.ev = EventTable.from_graph(self.graph)
        self.split = make_split(self.ev, self.cfg.split)
        self.side = ItemSide.from_graph(self.graph)
        if self.cfg.item_text:
            self.side.item_features = item_text_features(
                self.cfg.graph, self.cfg.item_text, self.cfg.item_text_model
            )
        self.rank, self.world = 0, 1
        if self.cfg.distributed:
            self.rank, self.world, self.device = dist_setup(self.cfg.device)
        else:
            self.device = resolve_device(self.cfg.device)
        self.is_main = self.rank == 0
        self.progress = progress and self.is_main
        seed_everything(self.cfg.seed)
        self.model = build_model(
            self.cfg, self.ev.num_users, self.ev.num_items, len(self.ev.behaviors), self.side
        )
        self.train_ctx = GraphContext(self.ev, self.split.graph_mask("train"), self.side)
        if hasattr(self.model, "set_trained_items"):  # items whose ID embedding is trained
            seen = torch.bincount(self.ev.item[self.train_ctx.mask], minlength=self.ev.num_items)
            self.model.set_trained_items(seen > 0)
        self.model.to(self.device)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.ddp = (
            DistributedDataParallel(self.model, find_unused_parameters=True)
            if self.world > 1 and params
            else None
        )
        self.opt = (
            torch.optim.AdamW(params, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
            if params
            else None
        )
        self.state: dict[str, Any] = {
            "epoch": 0,
            "best": -1.0,
            "best_epoch": 0,
            "bad": 0,
            "train_seconds": 0.0,
        }

    # ---- batches -----------------------------------------------------------------------------
    def _batches(self, epoch: int) -> list[torch.Tensor]:
        """This rank's share of the epoch's batches (:func:`~graphseq.train.schedule.epoch_batches`)."""
        return shard(self._global_batches(epoch), self.rank, self.world)

    def _global_batches(self, epoch: int) -> list[torch.Tensor]:
        c = self.cfg
        return epoch_batches(
            self.ev, self.train_ctx.mask, self.model.train_mode, c.batch_size, c.max_seq_len,
            c.seed, epoch,
        )  # fmt: skip

    def eval_interval(self) -> int:
        """Epochs between validation runs (:func:`graphseq.train.schedule.eval_interval`)."""
        return eval_interval(self.cfg.eval_every, len(self._global_batches(1)))

    def _evaluate(self, name: str, cache: dict | None = None) -> EvalResult:
        return evaluate_with(self.cfg, self.model, self.ev, self.split, name, self.side, cache)

    # ---- state -------------------------------------------------------------------------------
    def _payload(self) -> dict[str, Any]:
        return {
            "state_dict": self.model.state_dict(),
            "config": self.cfg.to_dict(),
            "fingerprint": self.graph.fingerprint,
        }

    def _save_last(self) -> None:
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        rundir.save_checkpoint(
            self.out / "last.pt",
            {
                **self._payload(),
                "optimizer": self.opt.state_dict() if self.opt else {},
                "rng": rng,
                **{k: v for k, v in self.state.items()},
            },
        )

    def _restore(self, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt["state_dict"])
        if self.opt and ckpt.get("optimizer"):
            self.opt.load_state_dict(ckpt["optimizer"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        if "cuda" in ckpt["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
        self.state = {k: ckpt[k] for k in self.state}

    @classmethod
    def resume(cls, run: str | Path, progress: bool = True) -> Trainer:
        """Continue the run in ``run`` from its ``last.pt``."""
        run = Path(run)
        cfg = load_config(run / "config.yaml")
        trainer = cls(cfg, run, progress)
        last = run / "last.pt"
        if last.exists():
            trainer._restore(rundir.load_checkpoint(last, trainer.graph.fingerprint))
        rundir.truncate_log(run, trainer.state["epoch"])  # drop epochs that last.pt lacks
        return trainer

    # ---- loop --------------------------------------------------------------------------------
    def _train_epoch(self, epoch: int) -> float:
        self.model.train()
        total, n = 0.0, 0
        batches = self._batches(epoch)
        amp = self.cfg.amp and self.device.type == "cuda"
        bar = tqdm(batches, desc=f"epoch {epoch}", leave=False, disable=not self.progress)
        for b_idx, batch in enumerate(bar):
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                loss = (
                    self.ddp(self.train_ctx, batch)
                    if self.ddp
                    else self.model.loss(self.train_ctx, batch)
                )
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"loss is {loss.item()} at epoch {epoch}, batch {b_idx + 1}; "
                    "the last good checkpoint is kept (try a lower lr)"
                )
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            total += loss.item() * len(batch)
            n += len(batch)
        return total / max(n, 1)

    def fit(self) -> dict[str, Any]:
        """Train (or continue), early-stop on valid NDCG@10, evaluate the best model on test."""
        if self.is_main and self.state["epoch"] == 0 and (self.out / "train_log.jsonl").exists():
            raise DataError(
                "run directory already holds a run",
                file=self.out,
                hint="use --resume RUN or another --out",
            )
        self.out.mkdir(parents=True, exist_ok=True)
        if self.is_main and not (self.out / "config.yaml").exists():
            rundir.write_config(self.out, save_config(self.cfg))
            rundir.write_provenance(self.out, self.graph.fingerprint)
        can_train = self.opt is not None and self.model.train_mode != "none"
        epochs = self.cfg.epochs if can_train else 0
        bar = tqdm(
            range(self.state["epoch"], epochs), desc=self.cfg.model, disable=not self.progress
        )
        every = self.eval_interval()
        for epoch in bar:
            t0 = time.perf_counter()
            loss = self._train_epoch(epoch + 1)
            self.state["train_seconds"] += time.perf_counter() - t0
            self.state["epoch"] = epoch + 1
            record: dict[str, Any] = {
                "epoch": epoch + 1,
                "loss": loss,
                "seconds": time.perf_counter() - t0,
            }
            if (epoch + 1) % every == 0 or epoch + 1 == epochs:
                score = self._evaluate("valid").metrics[MAIN_METRIC]
                record["valid_" + MAIN_METRIC] = score
                if score > self.state["best"]:
                    self.state.update(best=score, best_epoch=epoch + 1, bad=0)
                    if self.is_main:
                        rundir.save_checkpoint(
                            self.out / "checkpoint.pt", {**self._payload(), "epoch": epoch + 1}
                        )
                else:
                    self.state["bad"] += 1
                bar.set_postfix(
                    loss=f"{loss:.4f}", valid=f"{score:.4f}", best=f"{self.state['best']:.4f}"
                )
            if self.is_main:
                self._save_last()
                rundir.append_log(self.out, record)
            if self.state["bad"] >= self.cfg.patience:
                log.info("early stop at epoch %d (best %d)", epoch + 1, self.state["best_epoch"])
                break
        return self._finish()

    def _finish(self) -> dict[str, Any]:
        if self.world > 1:  # rank 0 alone evaluates the best checkpoint and writes the results
            teardown()
            if not self.is_main:
                return {}
        ckpt_path = self.out / "checkpoint.pt"
        best_epoch = self.state["epoch"]
        if ckpt_path.exists():
            ckpt = rundir.load_checkpoint(ckpt_path, self.graph.fingerprint)
            self.model.load_state_dict(ckpt["state_dict"])
            best_epoch = ckpt.get("epoch", best_epoch)
        c = self.cfg
        valid_cache: dict = {}  # weights are fixed from here on: one scoring context for valid
        tuned = tune_item_graph(
            self.model,
            lambda: self._evaluate("valid", valid_cache).metrics[MAIN_METRIC],
            c.item_graph_weights,
            c.item_graph_decays,
        )
        if tuned or not ckpt_path.exists():  # the best model, with what validation chose
            rundir.save_checkpoint(ckpt_path, {**self._payload(), "epoch": best_epoch})
        valid, test = self._evaluate("valid", valid_cache), self._evaluate("test")
        rundir.write_per_user(self.out, test.per_user, self.id_maps)
        epochs = self.state["epoch"]
        metrics = {
            "valid": valid.metrics,
            "test": test.metrics,
            "valid_cold": valid.cold,  # targets whose item has no event in the scoring graph
            "test_cold": test.cold,
            "epochs": epochs,
            "best_epoch": self.state["best_epoch"],
            "train_seconds": round(self.state["train_seconds"], 3),
            "seconds_per_epoch": round(self.state["train_seconds"] / epochs, 4) if epochs else 0.0,
            "protocol": {
                "split": self.cfg.split,
                "ranking": "full",
                "exclude_seen": self.cfg.exclude_seen,
                "ties": "pessimistic",
                "test_users": test.num_users,
                "repeat_targets_dropped": test.repeat_targets_dropped,
            },
            "model": repr(self.model),
        }
        if tuned:
            metrics["item_graph"] = tuned
        write_json(self.out / "metrics.json", metrics)
        return metrics


__all__ = ["Trainer", "TrainingError"]
