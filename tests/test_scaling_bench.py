"""The scale suite's training child runs on a tiny graph, in each mode, so the cost benchmark
keeps up with the trainer's batch interface (it times the same step); and the shared runner
reports each child's own peak RSS, not the largest of every child so far."""

from __future__ import annotations

import shutil
import sys

import pytest

ALLOC = "import sys; b = bytearray(int(sys.argv[1]) * 2**20); b[::4096] = b'x' * len(b[::4096])"


@pytest.mark.parametrize(
    "mode, chosen",
    [("auto", "full-graph"), ("minibatch", "mini-batch"), ("default-dense", "full-graph")],
)
def test_scaling_child_times_training_steps(small_graph_dir, tmp_path, mode, chosen, bench):
    children = bench("scale.children")
    graph = shutil.copytree(small_graph_dir, tmp_path / "g")
    res = children.train(str(graph), mode, 2, 16)
    assert res["chosen"]["mode"] == chosen  # auto: a tiny graph is far below the threshold
    assert res["steps_timed"] == 2 and res["step_s"] > 0
    assert res["epoch_s_extrapolated"] == pytest.approx(res["step_s"] * res["steps_per_epoch"])
    assert res["eval_users_timed"] == min(16, res["test_users"]) and res["score_s_per_user"] > 0
    assert res["train_peak_rss_mb"] > 0


def test_runner_measures_each_child_on_its_own(bench):
    runner = bench("runner")
    big = runner.run([sys.executable, "-c", ALLOC, "300"])
    small = runner.run([sys.executable, "-c", ALLOC, "10"])
    # RUSAGE_CHILDREN would report the 300 MiB child's peak for the second one too
    assert big.peak_rss_mb > 300 > small.peak_rss_mb + 200
    assert big.returncode == 0 and big.wall_s > 0
    failed = runner.run([sys.executable, "-c", "import sys; sys.exit('boom')"], check=False)
    assert failed.returncode == 1 and "boom" in failed.stderr_tail
    with pytest.raises(RuntimeError, match="boom"):
        runner.run([sys.executable, "-c", "import sys; sys.exit('boom')"])
    with pytest.raises(RuntimeError, match="killed after 0.5 s"):
        runner.run([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)


def test_scaling_runs_a_tiny_log_in_fresh_processes(tmp_path, bench):
    """Build and one training mode at 2,000 events: the runner's figures are in the row and
    the slope needs two sizes (one here: none fitted)."""
    scaling = bench("scale.scaling")
    res = scaling.measure(tmp_path, [2000], steps=1, eval_users=4, modes=("minibatch",), items=50)
    row = res["rows"][0]
    assert row["events"] > 1000 and row["items"] <= 50 and row["build_peak_mb"] > 50
    assert row["minibatch"]["peak_rss_mb"] > row["minibatch"]["train_peak_rss_mb"] * 0.5
    assert row["minibatch"]["steps_timed"] == 1 and res["slopes"] == {}
