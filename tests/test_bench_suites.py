"""``python -m benchmarks``: one entry point over the suites, one envelope per result, and a
results folder where every file is either an envelope of its suite or listed in the archive."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
KEYS = {"suite", "variant", "command", "commit", "env", "data"}


def _bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmarks", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_entry_point_lists_suites_and_variants():
    assert _bench("--help").returncode == 0
    bad = _bench("nope")
    assert bad.returncode == 2 and "unknown suite 'nope'" in bad.stderr
    listed = _bench("speed", "--list")
    assert listed.returncode == 0
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert names == ["propagation", "sampler", "lightgcn", "cli", "serve", "epoch"]
    pick = _bench("scale", "--variants", "scaling", "nope")
    assert pick.returncode == 2 and "unknown variants ['nope']" in pick.stderr


def test_speed_suite_writes_one_envelope_per_variant(tmp_path, bench):
    speed = bench("speed")
    argv = ["--variants", "sampler", "--sampler-seeds", "300", "--threads", "1",
            "--tag", "t", "--results", str(tmp_path)]  # fmt: skip
    assert speed.main(argv) == 0
    env = json.loads((tmp_path / "speed" / "sampler-t.json").read_text())
    assert set(env) == KEYS and (env["suite"], env["variant"]) == ("speed", "sampler-t")
    assert env["command"] == "python -m benchmarks speed " + " ".join(argv)
    assert env["env"]["threads"] == 1 and env["env"]["cpus"] == os.cpu_count()
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", env["commit"])
    d = env["data"]
    assert d["seeds"] == 300 and d["sampled_edges"] > 300 and d["speedup"] > 1
    assert d["loop_us_per_seed"] == pytest.approx(d["vectorised_us_per_seed"] * d["speedup"])


def test_envelope_is_written_atomically_and_names_are_checked(tmp_path, bench):
    envelope = bench("envelope")
    path = envelope.write_result("scale", "x-1", {"a": 1}, "python -m benchmarks scale", tmp_path)
    assert path == tmp_path / "scale" / "x-1.json" and [p.name for p in path.parent.iterdir()] == [
        "x-1.json"
    ]  # no temporary file left beside it
    assert envelope.read_result(path)["data"] == {"a": 1}
    for bad in ("", "a/b", ".hidden"):
        with pytest.raises(ValueError):
            envelope.write_result("scale", bad, {}, "c", tmp_path)


def test_every_result_is_an_envelope_of_its_suite_or_archived():
    assert not [p.name for p in RESULTS.iterdir() if p.is_file()]  # nothing loose at the top
    suites = {p.name for p in RESULTS.iterdir() if p.is_dir()} - {"archive"}
    assert suites <= {"quality", "speed", "scale", "gpu"} and suites
    for suite in suites:
        for path in (RESULTS / suite).glob("*.json"):
            env = json.loads(path.read_text())
            assert KEYS <= set(env), path
            assert (env["suite"], env["variant"]) == (suite, path.stem), path
            assert env["command"].startswith(("python", "OMP_NUM_THREADS")), path
            if env.get("migrated"):
                assert re.fullmatch(r"[0-9a-f]{40}", env["commit"]), path
    archive = RESULTS / "archive"
    readme = (archive / "README.md").read_text()
    listed = set(re.findall(r"^\| `([^`]+\.json)` \|", readme, flags=re.M))
    assert listed == {p.name for p in archive.glob("*.json")}
