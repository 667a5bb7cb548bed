"""benchmarks/scaling.py's training child runs on a tiny graph, in each mode, so the cost
benchmark keeps up with the trainer's batch interface (it times the same step)."""

from __future__ import annotations

import shutil

import pytest


@pytest.mark.parametrize(
    "mode, chosen",
    [("auto", "full-graph"), ("minibatch", "mini-batch"), ("default-dense", "full-graph")],
)
def test_scaling_child_times_training_steps(small_graph_dir, tmp_path, mode, chosen, bench):
    mod = bench("scaling")
    graph = shutil.copytree(small_graph_dir, tmp_path / "g")
    res = mod._child_train(str(graph), mode, 2, 16)
    assert res["chosen"]["mode"] == chosen  # auto: a tiny graph is far below the threshold
    assert res["steps_timed"] == 2 and res["step_s"] > 0
    assert res["epoch_s_extrapolated"] == pytest.approx(res["step_s"] * res["steps_per_epoch"])
    assert res["eval_users_timed"] == min(16, res["test_users"]) and res["score_s_per_user"] > 0
