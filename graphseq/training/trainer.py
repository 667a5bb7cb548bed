"""One trainer for every model: AdamW, early stopping on valid NDCG@10, resumable runs.

Run directory: ``config.yaml``, ``provenance.json``, ``train_log.jsonl``,
``last.pt`` (resume state), ``checkpoint.pt`` (best model), ``per_user.parquet`` and
``metrics.json`` (written last).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from data_builders.atomic import write_json
from data_builders.errors import DataError
from graphseq.config import TrainConfig, load_config, save_config
from graphseq.device import resolve_device
from graphseq.evaluate import EvalCache, EvalResult, evaluate_with
from graphseq.graph.context import GraphContext
from graphseq.graph.data import GraphData
from graphseq.models.resolve import build_model, check_model_name, resolve
from graphseq.progress import progress
from graphseq.training import run as rundir
from graphseq.training.batches import BatchBuilder
from graphseq.training.data import open_run_graph
from graphseq.training.distributed import setup as dist_setup
from graphseq.training.distributed import shard, teardown
from graphseq.training.loggers import open_logger
from graphseq.training.optim import clip_grad_norm, make_optimizer, use_sparse_tables
from graphseq.training.posthoc import choose_plan, plan_of
from graphseq.training.schedule import eval_interval

log = logging.getLogger("graphseq")
MAIN_METRIC = "NDCG@10"


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. a non-finite loss); the last good checkpoint is kept."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """Train ``cfg.model`` on the graph directory ``cfg.graph`` into run directory ``out``.

    Example::

        cfg = TrainConfig(model="graphseq", graph="g", epochs=50)
        metrics = Trainer(cfg, "runs/gs").fit()

    ``data`` (a :class:`~graphseq.graph.data.GraphData` opened with the config's split) is
    opened from ``cfg.graph`` when not given; everything is checked, and the config resolved
    (:func:`graphseq.models.resolve.resolve`), before the run directory is created.

    Hooks: ``on_validate(epoch, valid_ndcg10)`` is called after each validation (after the
    epoch's log line; it may raise, e.g. ``optuna.TrialPruned``, to stop the run), and
    ``score_test=False`` leaves the test split unscored (tuning trials: ``metrics.json`` then
    has ``"test": null``).
    """

    def __init__(
        self,
        cfg: TrainConfig,
        out: str | Path,
        progress: bool = True,
        data: GraphData | None = None,
        on_validate: Callable[[int, float], None] | None = None,
        score_test: bool = True,
    ) -> None:
        check_model_name(cfg.model)
        self.out = Path(out)
        self.data = data if data is not None else open_run_graph(cfg)
        self.ev, self.split, self.side = self.data.events, self.data.split, self.data.side
        self.rank, self.world = 0, 1
        if cfg.distributed:
            self.rank, self.world, self.device = dist_setup(cfg.device)
        else:
            self.device = resolve_device(cfg.device)
        self.is_main = self.rank == 0
        self.progress = progress and self.is_main
        self.on_validate, self.score_test = on_validate, score_test
        seed_everything(cfg.seed)
        train_mask = self.split.graph_mask("train")
        shape = self.data.train_shape
        self.resolved = resolve(cfg.replace(graph=str(self.data.path)), shape)
        self.cfg, self.mode = self.resolved.cfg, self.resolved.mode  # saved resolved
        if self.cfg.model == "graphseq" and self.is_main:
            log.info("training mode: %s (%s)", self.mode.mode, self.mode.reason)
            if self.mode.objective:
                log.info("mini-batch objective: %s", self.mode.objective)
        self.model = build_model(self.resolved, shape)
        self.train_ctx = GraphContext(self.ev, train_mask, self.side)
        seen = torch.bincount(self.ev.item[self.train_ctx.mask], minlength=self.ev.num_items)
        self.model.set_trained_items(seen > 0)  # items whose ID embedding is trained
        self.model.to(self.device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.can_train = bool(self.params) and self.model.train_mode != "none"
        self.builder = (
            BatchBuilder(
                self.train_ctx,
                self.model.train_mode,
                batch_size=self.cfg.batch_size,
                max_seq_len=self.cfg.max_seq_len,
                seed=self.cfg.seed,
                loss=self.cfg.loss,
                num_negatives=self.cfg.num_negatives,
                negatives=self.cfg.negatives,
                share_negatives=self.cfg.share_negatives,
                rank=self.rank,
            )  # fmt: skip
            if self.can_train
            else None
        )
        if self.cfg.minibatch is True and self.world == 1:  # DDP all-reduces dense gradients
            sparse = use_sparse_tables(self.model, self.cfg.sparse_min_rows)
            if sparse and self.is_main:
                log.info("sparse gradients and row-wise AdamW for %s", ", ".join(sparse))
        self.ddp = (
            DistributedDataParallel(self.model, find_unused_parameters=True)
            if self.world > 1 and self.can_train
            else None
        )
        self.opt = (
            make_optimizer(self.model, self.params, self.cfg.lr, self.cfg.weight_decay)
            if self.can_train
            else None
        )
        self.state: dict[str, Any] = {
            "epoch": 0,
            "best": -1.0,
            "best_epoch": 0,
            "bad": 0,
            "train_seconds": 0.0,
            "training_mode": self.mode.as_dict(),  # kept across --resume (the first choice)
            "resolved": self.resolved.as_list(),  # what resolve() changed (kept the same way)
        }

    @property
    def id_maps(self) -> dict:
        return self.data.ids

    # ---- batches -----------------------------------------------------------------------------
    def _batches(self, epoch: int) -> list[torch.Tensor]:
        """This rank's share of the epoch's index batches."""
        return shard(self._global_batches(epoch), self.rank, self.world)

    def _global_batches(self, epoch: int) -> list[torch.Tensor]:
        return self.builder.epoch(epoch) if self.builder is not None else []

    def eval_interval(self) -> int:
        """Epochs between validation runs (:func:`graphseq.training.schedule.eval_interval`)."""
        return eval_interval(self.cfg.eval_every, len(self._global_batches(1)))

    def _evaluate(self, name: str, cache: EvalCache | None = None) -> EvalResult:
        self.release_training_graph()
        return evaluate_with(self.cfg, self.model, self.ev, self.split, name, self.side, cache)

    def release_training_graph(self) -> None:
        """Mini-batch mode: drop the training context's CSRs before a scoring context builds
        its own, so memory holds one graph's at a time (the next step rebuilds them, once per
        validation; the user guide, "Mini-batch at 10M and 30M events", has the figures)."""
        if self.mode.minibatch:
            self.train_ctx.release()

    # ---- state -------------------------------------------------------------------------------
    def _payload(self) -> dict[str, Any]:
        return {
            "state_dict": self.model.state_dict(),
            "config": self.cfg.to_dict(),
            "fingerprint": self.data.fingerprint,
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
        self.state = {k: ckpt.get(k, v) for k, v in self.state.items()}

    @classmethod
    def resume(cls, run: str | Path, progress: bool = True) -> Trainer:
        """Continue the run in ``run`` from its ``last.pt``."""
        run = Path(run)
        cfg = load_config(run / "config.yaml")
        cfg = cfg.replace(graph=str(rundir.resolve_graph(run, cfg.graph)))  # moved runs too
        trainer = cls(cfg, run, progress)
        last = run / "last.pt"
        if last.exists():
            trainer._restore(rundir.load_checkpoint(last, trainer.data.fingerprint))
        rundir.truncate_log(run, trainer.state["epoch"])  # drop epochs that last.pt lacks
        return trainer

    # ---- loop --------------------------------------------------------------------------------
    def _train_epoch(self, epoch: int) -> float:
        """One pass over the epoch's batches: batch → loss → backward → clip → step."""
        self.model.train()
        total, n = 0.0, 0
        amp = self.cfg.amp and self.device.type == "cuda"
        step_fn = self.ddp if self.ddp is not None else self.model
        batches = self._batches(epoch)
        bar = progress(batches, desc=f"epoch {epoch}", unit="batch", inner=True,
                       disable=not self.progress)  # fmt: skip
        for step, idx in enumerate(bar):
            batch = self.builder.make(idx, epoch, step)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                loss = step_fn(self.train_ctx, batch)
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"loss is {loss.item()} at epoch {epoch}, batch {step + 1}; "
                    "the last good checkpoint is kept (try a lower lr)"
                )
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            if self.cfg.max_grad_norm > 0:
                clip_grad_norm(self.params, self.cfg.max_grad_norm)
            self.opt.step()
            total += loss.item() * len(batch)
            n += len(batch)
        return total / max(n, 1)

    def fit(self) -> dict[str, Any]:
        """Train (or continue), early-stop on valid NDCG@10, evaluate the best model on test."""
        self.logger = open_logger(self.cfg, self.out, enabled=self.is_main)  # logger=... key
        try:
            return self._fit()
        finally:
            self.logger.close()

    def _fit(self) -> dict[str, Any]:
        if self.is_main and self.state["epoch"] == 0 and (self.out / "train_log.jsonl").exists():
            raise DataError(
                "run directory already holds a run",
                file=self.out,
                hint="continue it (graphseq train --resume RUN) or write to another directory",
            )
        self.out.mkdir(parents=True, exist_ok=True)
        if self.is_main and not (self.out / "config.yaml").exists():
            rundir.write_config(self.out, save_config(self.cfg))
            rundir.write_provenance(self.out, self.data.fingerprint, self.cfg.graph)
        self.logger.start(self.cfg)
        epochs = self.cfg.epochs if self.can_train else 0
        bar = progress(range(self.state["epoch"], epochs), desc=self.cfg.model, unit="epoch",
                       disable=not self.progress)  # fmt: skip
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
                "lr": self.opt.param_groups[0]["lr"],
            }
            score = None
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
                self.logger.log_epoch(record)
            if score is not None and self.on_validate is not None:
                self.on_validate(epoch + 1, score)
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
            ckpt = rundir.load_checkpoint(ckpt_path, self.data.fingerprint)
            self.model.load_state_dict(ckpt["state_dict"])
            best_epoch = ckpt.get("epoch", best_epoch)
        valid_cache = EvalCache()  # weights are fixed from here on: one scoring context
        tuned = choose_plan(  # metrics.json key -> what validation chose
            plan_of(self.model),
            lambda: self._evaluate("valid", valid_cache).metrics[MAIN_METRIC],
        )
        if tuned or not ckpt_path.exists():  # the best model, with what validation chose
            rundir.save_checkpoint(ckpt_path, {**self._payload(), "epoch": best_epoch})
        valid = self._evaluate("valid", valid_cache)
        test = self._evaluate("test") if self.score_test else None
        if test is not None:
            rundir.write_per_user(self.out, test.per_user, self.id_maps)
        epochs = self.state["epoch"]
        metrics = {
            "valid": valid.metrics,
            "test": test.metrics if test else None,  # None: not scored (a tuning trial)
            "valid_cold": valid.cold,  # targets whose item has no event in the scoring graph
            "test_cold": test.cold if test else None,
            "segments": {"valid": valid.segments, "test": test.segments if test else None},
            "epochs": epochs,
            "best_epoch": self.state["best_epoch"],
            "train_seconds": round(self.state["train_seconds"], 3),
            "seconds_per_epoch": round(self.state["train_seconds"] / epochs, 4) if epochs else 0.0,
            "protocol": {
                "split": self.cfg.split,
                "ranking": "full",
                "exclude_seen": self.cfg.exclude_seen,
                "ties": "pessimistic",
                "test_users": test.num_users if test else None,
                "valid_users": valid.num_users,  # a sample when valid_users is set
                "repeat_targets_dropped": test.repeat_targets_dropped if test else None,
                "graph_events_after_target": round(test.later_share, 4) if test else None,
            },
            "model": repr(self.model),
            # mean fusion weight of each view (the test graph; valid's when test is unscored)
            "view_weights": (test or valid).view_weights,
        }
        if self.cfg.model == "graphseq":  # full-graph or mini-batch, and why
            metrics["training_mode"] = self.state["training_mode"]
        metrics["resolved"] = self.state["resolved"]  # what resolve() decided, and why
        metrics.update(tuned)
        hist = self.model.scorer.history
        if hist is not None:  # the learned weight and decay of each behavior's own edges
            metrics["own_history"] = hist.by_behavior(self.ev.behaviors)
        write_json(self.out / "metrics.json", metrics)
        self.logger.finish(metrics)
        return metrics


__all__ = ["Trainer", "TrainingError"]
