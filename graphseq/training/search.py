"""``graphseq tune``: hyper-parameter search on validation only (Optuna).

TPE sampler, median pruner at the trainer's validation cadence (``Trainer.on_validate``),
objective = the trial's valid NDCG@10 (after the post-hoc validation grid). The test split is
never scored during the search: once it ends, the best trial alone is scored on test, once,
and that figure is labelled so in ``best.json``. ``DIR`` holds::

    study.db           the Optuna study (SQLite): ``tune`` on the same DIR resumes it
    trials/NNN/        one run directory per finished trial (metrics.json with "test": null);
                       pruned and failed trials' directories are removed
    best_config.yaml   the best trial's config: ``graphseq train --config`` takes it
    best.json          best trial, its valid score, its test score (once), trial counts
    tune.lock          the running tune's pid (one tune per DIR)
    seeds/             with --seeds: the best config re-run per seed + summary.json
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from data_builders.atomic import write_json, write_text
from data_builders.errors import DataError
from graphseq.config import TrainConfig, config_from_dict
from graphseq.training.space import Param, sample, space_json

log = logging.getLogger("graphseq")

STUDY_NAME = "graphseq-tune"
MAIN = "NDCG@10"
PRUNE_STARTUP_TRIALS = 5  # trials that run to the end before any is pruned
PRUNE_WARMUP_EPOCHS = 10  # no trial is pruned before this epoch (early scores are noisy)
TEST_NOTE = "scored once, for the best trial only, after the search; chose nothing"


class InvalidTrial(Exception):
    """A sampled combination the config refuses (e.g. heads that do not divide dim)."""


def _optuna():
    try:
        import optuna
    except ImportError as e:
        raise DataError(
            f"graphseq tune needs the [tune] extra (module {e.name!r} is missing)",
            hint='pip install "graphseq[tune]" (pip install -e ".[tune]" in a checkout)',
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def open_study(out: Path, model: str, space: dict[str, Param], seed: int):
    """The study in ``out/study.db``: created, or resumed when its model and space match."""
    optuna = _optuna()
    out.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{(out / 'study.db').resolve()}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ExperimentalWarning
        study = optuna.create_study(
            study_name=STUDY_NAME, storage=storage, direction="maximize", load_if_exists=True,
            sampler=optuna.samplers.TPESampler(seed=seed),
            pruner=optuna.pruners.MedianPruner(PRUNE_STARTUP_TRIALS, PRUNE_WARMUP_EPOCHS),
        )  # fmt: skip
    attrs, text = study.user_attrs, space_json(space)
    if not attrs:
        study.set_user_attr("model", model)
        study.set_user_attr("space", text)
    elif attrs.get("model") != model or attrs.get("space") != text:
        raise DataError(
            f"{out} holds a study of model '{attrs.get('model')}' with another search space",
            file=out / "study.db",
            hint="resume it with the same --model and --space, or use another --out",
        )
    # trials left RUNNING by an interrupted tune: failed (their directories go too)
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
        shutil.rmtree(trial_dir(out, t.number), ignore_errors=True)
        log.info("trial %d was interrupted: marked failed", t.number)
    # a resumed study must not replay the seeded sampler's first draws
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials))
    return study


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


@contextmanager
def study_lock(out: Path) -> Iterator[None]:
    """One ``tune`` per study directory: ``DIR/tune.lock`` holds the owner's pid while it
    runs (a second one would fail the first one's running trial); a stale lock, whose
    process is gone, is taken over."""
    out.mkdir(parents=True, exist_ok=True)
    lock = out / "tune.lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            text = lock.read_text().strip() if lock.exists() else ""
            pid = int(text) if text.isdigit() else None
            if pid is not None and _alive(pid):
                raise DataError(
                    f"another graphseq tune (pid {pid}) is running on this study",
                    file=out, hint="wait for it to finish, or use another --out",
                ) from None  # fmt: skip
            lock.unlink(missing_ok=True)  # its process is gone
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        break
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def trial_dir(out: Path, number: int) -> Path:
    return out / "trials" / f"{number:03d}"


def _objective(base: TrainConfig, space: dict[str, Param], out: Path, data: Any):
    optuna = _optuna()
    from graphseq.training.trainer import Trainer, TrainingError

    def objective(trial) -> float:
        values = sample(trial, space)
        trial.set_user_attr("values", values)  # fixed entries too (params has drawn ones)
        try:
            cfg = config_from_dict(values, base, source=f"trial {trial.number}")
        except DataError as e:
            raise InvalidTrial(str(e)) from None
        run = trial_dir(out, trial.number)
        shutil.rmtree(run, ignore_errors=True)  # a number reused after a crash

        def report(epoch: int, score: float) -> None:
            trial.report(score, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"valid {MAIN} {score:.4f} at epoch {epoch}")

        try:
            metrics = Trainer(cfg, run, False, data, on_validate=report, score_test=False).fit()
        except (optuna.TrialPruned, TrainingError) as e:
            shutil.rmtree(run, ignore_errors=True)  # no directory that looks like a run
            trial.set_user_attr("stopped", str(e))
            log.info("trial %d %s: %s", trial.number,
                     "pruned" if isinstance(e, optuna.TrialPruned) else "failed", e)  # fmt: skip
            raise
        score = float(metrics["valid"][MAIN])
        trial.set_user_attr("run", str(run.relative_to(out)))
        trial.set_user_attr("epochs", metrics["epochs"])
        trial.set_user_attr("best_epoch", metrics["best_epoch"])
        if "item_graph" in metrics:
            ig = metrics["item_graph"]
            trial.set_user_attr("item_graph", {"weight": ig["weight"], "decay": ig["decay"]})
        log.info("trial %d: valid %s %.4f  %s", trial.number, MAIN, score, _show(values))
        return score

    return objective


def _show(values: dict[str, Any]) -> str:
    return " ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()
    )


def config_yaml(base_overrides: dict[str, Any], cfg: TrainConfig, keys: list[str]) -> str:
    """The YAML ``train --config`` takes: the model, the base overrides and the searched keys
    (no ``graph``: ``--graph`` names it)."""
    full = cfg.to_dict()
    d = {"model": cfg.model, **{k: full[k] for k in base_overrides if k != "graph"}}
    d.update({k: full[k] for k in keys})
    return yaml.safe_dump(d, sort_keys=False)


def counts(study) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in study.trials:
        out[t.state.name.lower()] = out.get(t.state.name.lower(), 0) + 1
    return out


def tune(
    base: TrainConfig,
    out: str | Path,
    space: dict[str, Param],
    trials: int,
    overrides: dict[str, Any] | None = None,
    timeout: float | None = None,
    seeds: list[int] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Search ``space`` around ``base`` until the study holds ``trials`` finished or pruned
    trials (or ``timeout`` seconds pass); write the best config, score it on test once,
    and with ``seeds`` re-run it per seed. Returns ``best.json``'s content."""
    from graphseq.training.data import open_run_graph

    optuna = _optuna()
    out = Path(out)
    base = base.replace(graph=str(Path(base.graph).resolve()))
    data = open_run_graph(base)  # opened and checked once, shared by every trial
    with study_lock(out):
        study = open_study(out, base.model, space, base.seed)
        done = sum(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
                   for t in study.trials)  # fmt: skip
        if trials > done:
            log.info("tune %s: %d trials to run (%d done) in %s", base.model, trials - done,
                     done, out)  # fmt: skip
            study.optimize(
                _objective(base, space, out, data), n_trials=trials - done, timeout=timeout,
                catch=(InvalidTrial,), gc_after_trial=True,
            )  # fmt: skip
        return finish(study, base, out, space, overrides or {}, seeds, progress)


def finish(study, base, out, space, overrides, seeds, progress) -> dict[str, Any]:
    """best_config.yaml, the best trial's test score (once) and the seed re-runs."""
    from graphseq.training.run import load_model

    try:
        best = study.best_trial
    except ValueError:
        raise DataError(
            "no trial finished", file=out / "study.db", hint="run more --trials"
        ) from None
    values = best.user_attrs.get("values", dict(best.params))
    cfg = config_from_dict(values, base, source="best trial")
    write_text(out / "best_config.yaml", config_yaml(overrides, cfg, sorted(space)))
    result: dict[str, Any] = {
        "model": base.model,
        "best_trial": best.number,
        f"valid_{MAIN}": best.value,
        "params": values,
        "run": best.user_attrs.get("run"),
        "config": "best_config.yaml",
        "trials": counts(study),
    }
    old = out / "best.json"
    prev = json.loads(old.read_text()) if old.exists() else {}
    if prev.get("best_trial") == best.number and "test" in prev:
        result["test"] = prev["test"]  # already scored: never twice
    else:
        res = load_model(out / best.user_attrs["run"]).evaluate("test")
        result["test"] = {"metrics": res.metrics, "note": TEST_NOTE}
    if seeds:
        from graphseq.training.seeds import train_seeds

        same = prev.get("seeds", {})
        if same.get("best_trial") == best.number and same.get("seeds") == list(seeds):
            result["seeds"] = same  # this best config's seed runs are done
        else:
            shutil.rmtree(out / "seeds", ignore_errors=True)  # an earlier best's, or partial
            summary = train_seeds(cfg, out / "seeds", list(seeds), progress=progress)
            result["seeds"] = {"best_trial": best.number, **summary}
    write_json(old, result)
    return result


__all__ = ["InvalidTrial", "open_study", "trial_dir", "tune"]
