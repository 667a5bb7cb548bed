"""graphseq tune: validation-only search, pruning, resume, the best config and its test score."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from data_builders.errors import DataError
from graphseq.cli import main
from graphseq.config import TrainConfig, load_config
from graphseq.training import search
from graphseq.training.space import Param, default_space, load_space
from graphseq.training.trainer import Trainer

optuna = pytest.importorskip("optuna")

TINY = ["epochs=2", "max_seq_len=20", "batch_size=32", "eval_every=1", "dim=16"]
LR = {"lr": Param(1e-3, 1e-2, log=True)}


def _base(graph, **kw) -> TrainConfig:
    fixed = dict(epochs=2, max_seq_len=20, batch_size=32, eval_every=1, dim=16)
    return TrainConfig(model="sasrec", graph=str(graph), **{**fixed, **kw})


def test_cli_tune_writes_a_config_that_train_takes_and_resumes(small_graph_dir, tmp_path, capsys):
    out = tmp_path / "study"
    space = tmp_path / "space.yaml"
    space.write_text("use_default_space: false\nlr: {low: 1.0e-3, high: 1.0e-2, log: true}\n"
                     "dropout: [0.1, 0.3]\nnum_layers: 1\n")  # fmt: skip
    args = ["tune", "--graph", str(small_graph_dir), "--model", "sasrec", "--out", str(out),
            "--space", str(space), "--set", *TINY, "--json"]  # fmt: skip
    assert main([*args, "--trials", "3"]) == 0
    best = json.loads(capsys.readouterr().out)
    study = optuna.load_study(study_name=search.STUDY_NAME, storage=f"sqlite:///{out}/study.db")
    values = [t.value for t in study.trials]
    assert len(values) == 3 and best["valid_NDCG@10"] == max(values)
    assert best["params"]["num_layers"] == 1 and set(best["params"]) == {
        "lr",
        "dropout",
        "num_layers",
    }
    # no trial scored test; the best one was scored once, after the search
    for n in range(3):
        assert json.loads((search.trial_dir(out, n) / "metrics.json").read_text())["test"] is None
    assert best["test"]["note"] == search.TEST_NOTE and 0 < best["test"]["metrics"]["NDCG@10"] <= 1
    # the YAML is a train config: it reproduces the best trial's validation score
    text = (out / "best_config.yaml").read_text()
    assert "graph" not in yaml.safe_load(text)
    cfg = load_config(out / "best_config.yaml", base=TrainConfig(graph=str(small_graph_dir)))
    assert cfg.model == "sasrec" and cfg.epochs == 2 and cfg.lr == best["params"]["lr"]
    m = Trainer(cfg, tmp_path / "again", progress=False).fit()
    assert m["valid"]["NDCG@10"] == pytest.approx(best["valid_NDCG@10"], abs=1e-6)
    assert m["test"]["NDCG@10"] == pytest.approx(best["test"]["metrics"]["NDCG@10"], abs=1e-6)
    # resume: one more trial, not four
    assert main([*args, "--trials", "4"]) == 0
    capsys.readouterr()
    study = optuna.load_study(study_name=search.STUDY_NAME, storage=f"sqlite:///{out}/study.db")
    assert len(study.trials) == 4
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 4  # no replayed draws


def test_pruned_trial_leaves_no_run_directory(small_graph_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(search, "PRUNE_STARTUP_TRIALS", 1)
    monkeypatch.setattr(search, "PRUNE_WARMUP_EPOCHS", 0)
    out, base = tmp_path / "study", _base(small_graph_dir, epochs=3)
    study = search.open_study(out, "sasrec", LR, 0)
    study.enqueue_trial({"lr": 1e-2})
    study.enqueue_trial({"lr": 1e-3})  # far behind the first at epoch 1: pruned there
    seen = []
    real = Trainer.__init__

    def spy(self, *a, **kw):
        hook = kw["on_validate"]
        kw["on_validate"] = lambda e, s: (seen.append((e, s)), hook(e, s))
        real(self, *a, **kw)

    monkeypatch.setattr(Trainer, "__init__", spy)
    res = search.tune(base, out, LR, trials=2)
    study = optuna.load_study(study_name=search.STUDY_NAME, storage=f"sqlite:///{out}/study.db")
    first, second = study.trials
    assert first.state.name == "COMPLETE" and second.state.name == "PRUNED"
    assert second.last_step == 1 and "epoch 1" in second.user_attrs["stopped"]
    assert not search.trial_dir(out, 1).exists() and search.trial_dir(out, 0).exists()
    assert res["best_trial"] == 0 and res["trials"] == {"complete": 1, "pruned": 1}
    # the hook saw exactly the scores the trainer logged
    logged = [json.loads(x) for x in (search.trial_dir(out, 0) / "train_log.jsonl").open()]
    assert seen[:3] == [(r["epoch"], r["valid_NDCG@10"]) for r in logged]
    assert first.intermediate_values == {r["epoch"]: r["valid_NDCG@10"] for r in logged}


def test_interrupted_trial_is_failed_and_other_space_refused(tmp_path):
    out = tmp_path / "study"
    study = search.open_study(out, "sasrec", LR, 0)
    t = study.ask()
    search.trial_dir(out, t.number).mkdir(parents=True)
    study = search.open_study(out, "sasrec", LR, 0)  # the next tune on the same DIR
    assert study.trials[0].state.name == "FAIL" and not search.trial_dir(out, 0).exists()
    with pytest.raises(DataError, match="another search space"):
        search.open_study(out, "sasrec", {"lr": Param(1e-4, 1e-2, log=True)}, 0)
    with pytest.raises(DataError, match="another search space"):
        search.open_study(out, "graphseq", LR, 0)


def test_one_tune_per_study_directory(small_graph_dir, tmp_path):
    out = tmp_path / "study"
    out.mkdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / "tune.lock").write_text(str(other.pid))
        with pytest.raises(DataError, match=f"another graphseq tune \\(pid {other.pid}\\)"):
            search.tune(_base(small_graph_dir, epochs=1), out, LR, trials=1)
    finally:
        other.kill()
        other.wait()
    res = search.tune(_base(small_graph_dir, epochs=1), out, LR, trials=1)  # stale: taken over
    assert res["trials"] == {"complete": 1} and not (out / "tune.lock").exists()


def test_default_spaces_hold_only_keys_the_model_reads():
    sas, gs, mf = default_space("sasrec"), default_space("graphseq"), default_space("mf")
    assert {"lr", "dim", "dropout", "num_layers", "weight_decay", "max_seq_len",
            "item_graph", "item_graph_reg"} <= set(sas)  # fmt: skip
    assert not {"views", "gnn_layers", "reg"} & set(sas)
    assert set(gs) == set(sas) | {"views", "gnn_layers", "edge_dropout", "snapshot_scale", "fusion"}
    assert all(gs[k] == sas[k] for k in sas)  # shared keys: the same ranges
    assert "reg" in mf and "dropout" not in mf and "gnn_layers" not in mf


@pytest.mark.parametrize(
    "text, match",
    [
        ("gnn_layers: {low: 1, high: 2}", "does not read"),
        ("split: [leave_last_out]", "cannot be searched"),
        ("nope: [1, 2]", "unknown config key"),
        ("dropout: {low: 0.1, high: 1.5}", r"must lie in \[0, 1\)"),
        ("loss: [ce, wrong]", "must be one of"),
        ("lr: {low: 0.1}", "a range is"),
        ("views: {low: 1, high: 2}", "not numeric"),
    ],
)
def test_space_yaml_errors(tmp_path, text, match):
    f = tmp_path / "space.yaml"
    f.write_text(text + "\n")
    with pytest.raises(DataError, match=match):
        load_space("sasrec", f)


def test_space_yaml_entries_replace_defaults(tmp_path):
    f = tmp_path / "space.yaml"
    f.write_text("lr: {low: 1.0e-4, high: 1.0e-3}\nnum_layers: {low: 1, high: 4}\n"
                 "dim: 32\nitem_graph_reg: null\nviews: [[cooc, tag], [tag]]\n")  # fmt: skip
    with pytest.raises(DataError, match="does not read"):
        load_space("sasrec", f)
    space = load_space("graphseq", f)
    assert space["lr"] == Param(1e-4, 1e-3) and space["num_layers"] == Param(1, 4, integer=True)
    assert space["dim"].choices == (32,) and "item_graph_reg" not in space
    assert space["views"].choices == ("cooc,tag", "tag")
    assert space["dropout"] == default_space("graphseq")["dropout"]


def test_without_optuna_tune_is_one_line_naming_the_extra(small_graph_dir, tmp_path, capsys,
                                                         monkeypatch):  # fmt: skip
    for m in [k for k in sys.modules if k.split(".")[0] == "optuna"] + ["optuna"]:
        monkeypatch.setitem(sys.modules, m, None)  # import fails as if not installed
    code = main(["tune", "--graph", str(small_graph_dir), "--model", "sasrec", "--trials", "1",
                 "--out", str(tmp_path / "study")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "graphseq tune needs the [tune] extra" in err and "pip install" in err
    assert not (tmp_path / "study").exists()
