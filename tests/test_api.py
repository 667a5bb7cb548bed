"""The Python face (graphseq.read_frame / build_graph / train / load_run and Run's frames):
every case of the "Python face" issue on inputs the tests build, with int ids in and out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import graphseq
from data_builders.errors import DataError
from data_builders.schema import ItemsSpec

FAST = {"epochs": 1, "dim": 16, "max_seq_len": 20, "seed": 0}


def _log(num_users: int = 60, num_items: int = 40, per_user: int = 12) -> pd.DataFrame:
    """Int user and item ids, click and buy events, increasing timestamps."""
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(num_users) + 1000, per_user)
    items = (rng.integers(0, num_items, size=len(users)) + 5) * 3  # ints, not 0..I-1
    behavior = np.where(rng.random(len(users)) < 0.5, "buy", "click")
    return pd.DataFrame({"uid": users, "iid": items, "ts": np.arange(len(users)), "b": behavior})


SCHEMA = {"user": "uid", "item": "iid", "timestamp": "ts", "behavior": "b", "targets": "buy"}


def _items(events: pd.DataFrame) -> pd.DataFrame:
    ids = np.unique(events["iid"])
    return pd.DataFrame({
        "iid": ids,
        "genres": [["even" if i % 2 == 0 else "odd", f"g{i % 5}"] for i in ids],  # lists too
        "name": [f"item {i}" for i in ids],
    })  # fmt: skip


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return _log()


@pytest.fixture(scope="module")
def graph(events):
    items = _items(events)
    schema = graphseq.Schema.from_dict(
        {**SCHEMA, "items": {"item": "iid", "tags": "genres", "title": "name"}}
    )
    return graphseq.build_graph(graphseq.read_frame(events, schema, items=items))


@pytest.fixture(scope="module")
def run(graph, tmp_path_factory):
    out = tmp_path_factory.mktemp("api") / "run"
    return graphseq.train(graph, model="graphseq", out=out, progress=False, **FAST)


# ---- schema and reading ---------------------------------------------------------------------
def test_a_str_target_is_one_target():
    assert graphseq.Schema(user="u", item="i", targets="buy").targets == ("buy",)
    assert graphseq.Schema(user="u", item="i", targets=["buy", "cart"]).targets == ("buy", "cart")


def test_schema_sections_take_dicts_and_refuse_wrong_types():
    s = graphseq.Schema(user="u", item="i", items={"item": "iid", "tags": "genres"})
    assert s.items == ItemsSpec(item="iid", tags="genres")
    with pytest.raises(DataError, match="Schema.*items"):
        graphseq.Schema(user="u", item="i", items=3)
    with pytest.raises(DataError, match="Schema.*targets"):
        graphseq.Schema(user="u", item="i", targets=7)


def test_side_tables_from_memory(events, graph):
    assert graph.items is not None and len(graph.items) == events["iid"].nunique()
    row = graph.items.set_index("item").loc["30"]  # the graph keeps ids as text inside
    assert row["title"] == "item 30" and sorted(row["tags"]) == ["even", "g0"]
    assert "tag" in graph.data.node_types  # the item table's tags became tag nodes


def test_an_item_table_with_default_columns_needs_no_section(events):
    items = _items(events).rename(columns={"iid": "item", "name": "title"})[["item", "title"]]
    log = graphseq.read_frame(events, SCHEMA, items=items)
    assert list(log.items["title"][:2]) == ["item 15", "item 18"]


def test_a_side_table_error_names_the_frame_and_row(events):
    items = _items(events)
    items.loc[3, "iid"] = None
    with pytest.raises(DataError, match="DataFrame items:4: column 'iid'"):  # 1-based row
        graphseq.read_frame(events, {**SCHEMA, "items": {"item": "iid"}}, items=items)


def test_a_schema_naming_a_file_without_a_table_is_refused(events):
    with pytest.raises(DataError, match="no table was given"):
        graphseq.read_frame(events, {**SCHEMA, "items": {"file": "items.csv"}})


def test_build_graph_refuses_a_dataframe(events):
    with pytest.raises(DataError, match=r"pass read_frame\(df, schema\) first"):
        graphseq.build_graph(events)
    with pytest.raises(DataError, match="BuildOptions"):
        graphseq.build_graph(graphseq.read_frame(events, SCHEMA), kcores=3)


def test_graph_unpacks_and_saves(graph, tmp_path):
    data, ids, report = graph
    assert data is graph.data and "item" in ids and report["targets"] == ["buy"]
    assert "users" in repr(graph)
    out = graph.save(tmp_path / "g")
    assert (out / "graph.pt").exists() and (out / "items.parquet").exists()


# ---- checks before anything is written -------------------------------------------------------
@pytest.mark.parametrize(
    "bad, words",
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": "three"}, "epochs"),
        ({"lr": "fast"}, "lr"),
        ({"dim": -4}, "dim"),
        ({"loss": "hinge"}, "loss"),
        ({"epoch": 3}, "epoch"),  # a typo
    ],
)
def test_train_checks_config_before_writing(graph, tmp_path, bad, words):
    out = tmp_path / "run"
    with pytest.raises(DataError, match=words):
        graphseq.train(graph, model="graphseq", out=out, progress=False, **bad)
    assert not out.exists()


def test_trainconfig_checks_its_keys():
    with pytest.raises(DataError, match="epochs"):
        graphseq.TrainConfig(graph="g", epochs=0)
    with pytest.raises(DataError, match="lr"):
        graphseq.TrainConfig(graph="g", lr="fast")
    assert graphseq.TrainConfig(graph="g", epochs="3").epochs == 3  # YAML-like text is read


def test_train_refuses_bad_outputs_and_models(graph, run, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        graphseq.train(graph, out=tmp_path / "file", progress=False, **FAST)
    with pytest.raises(ValueError, match="already holds a run") as err:
        graphseq.train(graph, out=run.path, progress=False, **FAST)
    assert "load_run" in str(err.value) and "--" not in str(err.value)  # worded for Python
    with pytest.raises(ValueError, match="unknown model"):
        graphseq.train(graph, model="sasrek", out=tmp_path / "m", progress=False)
    with pytest.raises(ValueError, match="out=DIR"):
        graphseq.train(graph, progress=False)
    with pytest.raises(ValueError, match="graph must be"):
        graphseq.train(pd.DataFrame(), out=tmp_path / "d", progress=False)


def test_load_run_checks_the_device_and_the_split(run):
    with pytest.raises(ValueError, match="gpu"):
        graphseq.load_run(run.path, device="gpu")
    with pytest.raises(ValueError, match="unknown split 'train'"):
        run.evaluate("train")


# ---- the run's frames ------------------------------------------------------------------------
def test_the_run_holds_its_graph_and_metrics(run):
    assert (run.path / "graph" / "graph.pt").exists()
    assert 0.0 <= run.metrics["test"]["NDCG@10"] <= 1.0
    again = run.evaluate("validation")
    assert again.metrics["NDCG@10"] == pytest.approx(run.metrics["valid"]["NDCG@10"], abs=1e-6)


def test_recommend_gives_int_ids_back(run, events):
    users = [1000, 1001, 1002]
    rec = run.recommend(users, k=5)
    assert list(rec.columns) == ["user", "item", "score", "rank", "source"]
    assert rec["user"].dtype == events["uid"].dtype and rec["item"].dtype == events["iid"].dtype
    assert rec["user"].tolist() == [u for u in users for _ in range(5)]
    assert rec["rank"].tolist() == [1, 2, 3, 4, 5] * 3
    assert rec["item"].isin(events["iid"]).all() and (rec["source"] == "model").all()
    for _, g in rec.groupby("user"):
        assert g["score"].is_monotonic_decreasing
    dicts = run.recommend_dict(users, k=5)  # the server's form: the same lists, as text
    assert [d["item"] for d in dicts["1000"]] == [str(i) for i in rec["item"][:5]]


def test_recommend_excludes_what_the_user_bought(run, events):
    rec = run.recommend([1003], k=len(np.unique(events["iid"])))
    bought = set(events[(events["uid"] == 1003) & (events["b"] == "buy")]["iid"])
    assert bought and not bought & set(rec["item"])


@pytest.mark.parametrize("kind", ["list", "array", "series", "scalar"])
def test_ids_as_list_array_series_or_scalar(run, kind):
    ids = {"list": [1000, 1001], "array": np.array([1000, 1001]),
           "series": pd.Series([1000, 1001]), "scalar": 1000}[kind]  # fmt: skip
    rec = run.recommend(ids, k=3)
    assert rec["user"].unique().tolist() == ([1000] if kind == "scalar" else [1000, 1001])


def test_empty_input_gives_an_empty_frame(run):
    for frame, key in [(run.recommend([], k=3), "user"), (run.recommend_history([]), "user"),
                       (run.similar_items([]), "query")]:  # fmt: skip
        assert len(frame) == 0 and {key, "item", "score", "rank"} <= set(frame.columns)
    assert list(run.recommend([], k=3).columns) == ["user", "item", "score", "rank", "source"]


def test_unknown_ids_one_rule_everywhere(run, caplog):
    rec = run.recommend([1000, 99, "x"], k=2)
    assert rec["user"].unique().tolist() == [1000] and rec.attrs["unknown"] == [99, "x"]
    assert "skipped 2 unknown user ids" in caplog.text
    hist = run.recommend_history([15, 12345], k=2)
    assert len(hist) == 2 and hist.attrs["unknown"] == [12345] and hist["user"].isna().all()
    sim = run.similar_items([15, 12345], k=2)
    assert sim["query"].tolist() == [15, 15] and sim.attrs["unknown"] == [12345]
    refused = [
        lambda: run.recommend([99], unknown="raise"),
        lambda: run.recommend_history([12345], unknown="raise"),
        lambda: run.similar_items([12345], unknown="raise"),
    ]
    for call in refused:
        with pytest.raises(DataError, match="unknown") as err:
            call()
        assert "unknown='skip'" in str(err.value)
    with pytest.raises(DataError, match="not a rule"):
        run.recommend([1000], unknown="ignore")


def test_fallback_rows_are_marked_and_scored_as_shares(run):
    rec = run.recommend([1000, 99], k=4, fallback="popular")
    model, pop = rec[rec["source"] == "model"], rec[rec["source"] == "popular"]
    assert model["user"].unique().tolist() == [1000] and pop["user"].unique().tolist() == [99]
    assert len(pop) == 4 and pop["score"].between(0.0, 1.0).all()
    assert pop["score"].is_monotonic_decreasing and rec.attrs["unknown"] == []
    with pytest.raises(DataError, match="fallback"):
        run.recommend([1000], fallback="random")


def test_k_is_checked(run):
    for k in (0, -1, "10", True):
        with pytest.raises(DataError, match="k"):
            run.recommend([1000], k=k)


def test_embeddings_keyed_by_raw_id(run, events):
    items = run.item_embeddings()
    assert items["item"].dtype == events["iid"].dtype
    assert sorted(items["item"]) == sorted(np.unique(events["iid"]))
    assert items["vector"].iloc[0].shape == (FAST["dim"],)
    assert items.set_index("item").loc[30, "title"] == "item 30"
    wide = run.item_embeddings(columns=True)
    assert [f"e{j}" for j in range(FAST["dim"])] == [c for c in wide.columns if c[0] == "e"]
    np.testing.assert_allclose(wide.iloc[0][[f"e{j}" for j in range(FAST["dim"])]].to_numpy(
        dtype=np.float32), items["vector"].iloc[0])  # fmt: skip
    users = run.user_embeddings(columns=True)
    assert users["user"].dtype == events["uid"].dtype
    assert set(users["user"]) == set(events["uid"]) and users.shape[1] == FAST["dim"] + 1


def test_user_embeddings_score_what_recommend_ranks(graph, tmp_path):
    """The user vectors are the states recommend scores with: for a model without score
    add-ons, their dot products with the item vectors order the unseen items as recommend does."""
    mf = graphseq.train(graph, model="mf", out=tmp_path / "mf", progress=False,
                        item_graph=False, **FAST)  # fmt: skip
    users = mf.user_embeddings().set_index("user")
    items = mf.item_embeddings()
    unseen = set(mf.recommend([1000], k=len(items))["item"])
    scores = np.stack(items["vector"]) @ users.loc[1000, "vector"]
    order = [i for i in items["item"].to_numpy()[np.argsort(-scores)] if i in unseen]
    assert order[:5] == mf.recommend([1000], k=5)["item"].tolist()


def test_export(run, tmp_path):
    files = {p.name for p in run.export(tmp_path / "exp")}
    assert {"items.parquet", "users.parquet"} <= files
    items = pd.read_parquet(tmp_path / "exp" / "items.parquet")
    assert len(items) == len(run.item_embeddings())


def test_train_takes_a_graph_directory(graph, tmp_path):
    path = graph.save(tmp_path / "g")
    run = graphseq.train(path, model="pop", out=tmp_path / "pop", progress=False)
    assert run.recommend([1000], k=3)["item"].dtype == np.int64
