"""Graph building, saving and loading, and the CLI build command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from data_builders.build import BuildOptions, build_graph
from data_builders.errors import DataError
from data_builders.readers.synthetic import SyntheticSpec, write_synthetic
from data_builders.store import load_graph, load_id_maps, read_graph, save_graph


def test_views_partition_events_and_reverse_edges(small_log):
    data, ids, report = build_graph(small_log)
    beh = [("user", b, "item") for b in data.behaviors]
    assert sorted(data.behaviors) == ["buy", "cart", "click"] and data.targets == ["buy"]
    assert (
        sum(data[et].edge_index.size(1) for et in beh) == report["events"] == len(small_log.events)
    )
    for et in beh:
        store = data[et]
        assert store.time.dtype == torch.int64 and store.order.dtype == torch.int64
        rev = data["item", f"rev_{et[1]}", "user"].edge_index
        assert torch.equal(rev, store.edge_index.flip(0))
    # the orders of all views together are a permutation of 0..E-1
    order = torch.cat([data[et].order for et in beh]).sort().values
    assert torch.equal(order, torch.arange(report["events"]))
    assert report["nodes"]["tag"] == 8 and "item,has_tag,tag" in report["edges"]
    # id maps decode every edge back to the raw log
    et = ("user", "buy", "item")
    u = ids["user"][data[et].edge_index[0].numpy()]
    i = ids["item"][data[et].edge_index[1].numpy()]
    raw = set(
        zip(
            small_log.events.query("behavior == 'buy'")["user"],
            small_log.events.query("behavior == 'buy'")["item"],
        )
    )
    assert set(zip(u, i)) == raw


def test_save_load_roundtrip_weights_only(tmp_path, small_log):
    data, ids, report = build_graph(small_log)
    out = save_graph(tmp_path / "g", data, ids, report, items=small_log.items)
    assert json.loads((out / "report.json").read_text())["events"] == report["events"]
    payload = torch.load(out / "graph.pt", weights_only=True)
    assert payload["format_version"] == 1
    back = load_graph(out)
    for et in data.edge_types:
        assert torch.equal(back[et].edge_index, data[et].edge_index)
    assert back.targets == data.targets and back.fingerprint
    assert all((load_id_maps(out)[k] == ids[k]).all() for k in ids)


def test_read_graph_without_pyg_gives_the_same_events_and_side_graphs(tmp_path, small_log):
    """``read_graph`` (no PyG, what ``recommend`` loads) and ``load_graph`` (HeteroData) hold
    the same tensors, and the event table and side graphs built from each are equal."""
    from graphseq.graph.context import ItemSide
    from graphseq.graph.events import EventTable

    data, ids, report = build_graph(small_log)
    out = save_graph(tmp_path / "g", data, ids, report)
    light, pyg = read_graph(out), load_graph(out)
    assert set(light.edge_types) == set(pyg.edge_types) and set(light.node_types) == set(
        pyg.node_types
    )
    assert (light.behaviors, light.targets, light.fingerprint, light.time_kind, light.path) == (
        pyg.behaviors,
        pyg.targets,
        pyg.fingerprint,
        pyg.time_kind,
        pyg.path,
    )
    a, b = EventTable.from_graph(light), EventTable.from_graph(pyg)
    for f in ("user", "item", "time", "behavior", "is_target"):
        assert torch.equal(getattr(a, f), getattr(b, f))
    sa, sb = ItemSide.from_graph(light), ItemSide.from_graph(pyg)
    assert torch.equal(sa.item_tag, sb.item_tag) and sa.num_tags == sb.num_tags
    assert "stage" not in light["user", data.behaviors[0], "item"]
    with pytest.raises(KeyError):
        light["nowhere"]


def test_save_refuses_existing_dir_and_leaves_nothing_on_error(tmp_path, small_log):
    data, ids, report = build_graph(small_log)
    save_graph(tmp_path / "g", data, ids, report)
    with pytest.raises(DataError, match="already exists"):
        save_graph(tmp_path / "g", data, ids, report)
    with pytest.raises(Exception):  # noqa: B017 — items without an "item" column
        save_graph(tmp_path / "h", data, ids, report, items=small_log.items.drop(columns="item"))
    assert not (tmp_path / "h").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["g"]


@pytest.mark.parametrize("victim", ["graph.pt", "meta.json"])
def test_missing_or_corrupt_graph_files(tmp_path, small_log, victim):
    data, ids, report = build_graph(small_log)
    out = save_graph(tmp_path / "g", data, ids, report)
    (out / victim).write_bytes(b"\x00garbage")
    for load in (load_graph, read_graph):
        with pytest.raises(DataError, match="g"):
            load(out)
    (out / victim).unlink()
    for load in (load_graph, read_graph):
        with pytest.raises(DataError, match="missing file"):
            load(out)


def test_kcore_and_time_window(small_log):
    _, _, rep = build_graph(small_log, BuildOptions(kcore=25))
    assert rep["dropped"]["kcore"] > 0
    t = small_log.events["timestamp"]
    _, _, rep = build_graph(small_log, BuildOptions(time_window=(int(t.min()), int(t.median()))))
    assert rep["time_range"][1] < t.median()


def _cli(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "graphseq", *args], capture_output=True, text=True, **kw
    )


def test_cli_build_synthetic(tmp_path):
    write_synthetic(tmp_path / "data", SyntheticSpec(num_users=50, num_items=40), progress=False)
    res = _cli(
        "build",
        "--format",
        "synthetic",
        "--input",
        str(tmp_path / "data"),
        "--out",
        str(tmp_path / "g"),
        "--json",
    )
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["nodes"]["user"] == 50 and report["targets"] == ["buy"]
    assert (tmp_path / "g" / "graph.pt").exists()


def test_cli_build_bad_input_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "events.csv"
    bad.write_text("user_id,item_id,timestamp\nu1,i1,100\nu2,i2,yesterday\n")
    schema = tmp_path / "schema.yaml"
    schema.write_text("user: user_id\nitem: item_id\ntimestamp: timestamp\n")
    res = _cli(
        "build",
        "--format",
        "csv",
        "--input",
        str(bad),
        "--schema",
        str(schema),
        "--out",
        str(tmp_path / "g"),
    )
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "events.csv:3" in lines[0] and "timestamp" in lines[0]
    assert "Traceback" not in res.stderr and not (tmp_path / "g").exists()


def test_cli_build_movielens_100k_recbole(tmp_path, ml100k_dir):
    res = _cli(
        "build",
        "--format",
        "recbole",
        "--input",
        str(ml100k_dir),
        "--out",
        str(tmp_path / "g"),
        "--json",
    )
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    assert (
        rep["nodes"]["user"] == 943 and rep["nodes"]["item"] == 1682 and rep["nodes"]["tag"] == 19
    )
    assert rep["events"] == 100_000
    assert rep["edges"]["user,rate_high,item"] + rep["edges"]["user,rate_low,item"] == 100_000
    assert rep["edges"]["user,rate_high,item"] == 55375
    assert rep["nodes"]["entity"] > 0 and any(k.startswith("item,film.") for k in rep["edges"])


def test_to_homogeneous_keeps_every_node_and_edge(small_log):
    import graphseq

    data, _, report = build_graph(small_log)
    homo = graphseq.to_homogeneous(data)
    assert homo.num_nodes == sum(report["nodes"].values())
    assert homo.edge_index.size(1) == sum(report["edges"].values())
    assert int(homo.edge_type.max()) == len(data.edge_types) - 1
