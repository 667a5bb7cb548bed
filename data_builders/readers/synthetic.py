"""Synthetic click → cart → buy logs with planted structure: the embedded default dataset.

* Items have a primary tag (plus random side tags) and a moderate Zipf popularity.
* Each user has a start and an end Dirichlet tag taste and drifts between them over their
  timeline; a click draws a tag from the current taste, then an item of that tag ∝ popularity.
* With probability ``seq_prob`` a click instead follows the previous click to its successor on
  a fixed chain through the items of one primary tag, so order matters.
* Clicks become carts (``cart_rate``), carts become buys (``buy_rate``); nobody buys an item
  twice and everyone buys at least ``min_buys`` items (clicks are promoted when short).

Users come in fixed blocks of ``_BLOCK_USERS`` with their own seeded streams, so ``generate``
and the chunked ``write_synthetic`` produce the same events in the same order.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from tqdm.auto import tqdm

from data_builders.errors import DataError
from data_builders.log import CanonicalLog

_log = logging.getLogger(__name__)
__all__ = ["SyntheticSpec", "generate", "read_synthetic", "spec_for_events", "write_synthetic"]

BEHAVIORS = ("click", "cart", "buy")  # behavior codes 0, 1, 2
EVENT_COLUMNS = ["user_id", "item_id", "timestamp", "behavior", "value"]  # events.csv header
_BLOCK_USERS = 4096  # users per seeded generation block (changing it changes the data)
# one record per event; event order is (ts, uid, sub), sub = 3 * click step + behavior code
_EVENT = np.dtype([("uid", "i4"), ("item", "i4"), ("ts", "i8"), ("beh", "i1"), ("sub", "i4")])


@dataclass(frozen=True)
class SyntheticSpec:
    """Sizes and rates of a synthetic log (defaults: ~60k events, built in a fraction of a second)."""

    num_users: int = 1000  # users "u0".."u999"
    num_items: int = 500  # items "i0".."i499"
    num_tags: int = 20  # tags "t00".."t19"
    events_per_user: float = 60.0  # mean events (clicks + carts + buys) per user
    min_clicks: int = 10  # every user clicks at least this often (room for min_buys)
    activity_shape: float = 2.0  # Gamma shape of per-user activity; smaller = more skewed
    min_tags: int = 1  # fewest tags per item (the primary tag)
    max_tags: int = 3  # most tags per item
    zipf_exponent: float = 0.7  # popularity ∝ rank^-s; moderate, so popularity is weak
    taste_concentration: float = 0.1  # Dirichlet α of tag tastes; small = few favourite tags
    side_tag_weight: float = 0.2  # weight of an item's non-primary tags when a tag picks items
    drift: float = 1.0  # share of the way from start to end taste reached at the last click
    seq_prob: float = 0.5  # P(a click follows the previous one to its chain successor)
    cart_rate: float = 0.3  # P(click → cart)
    buy_rate: float = 0.5  # P(cart → buy)
    min_buys: int = 3  # every user buys at least this many distinct items
    session_clicks: float = 6.0  # mean clicks per session
    click_gap_s: float = 40.0  # mean seconds between clicks within a session
    session_gap_h: float = 30.0  # mean hours between sessions (plus one hour minimum)
    cart_delay_s: float = 60.0  # mean seconds from click to cart
    buy_delay_s: float = 300.0  # mean seconds from cart to buy
    start_time: int = 1_704_067_200  # 2024-01-01 UTC, the earliest first click
    start_spread_days: float = 30.0  # users' first clicks are uniform over this many days
    seed: int = 0  # same seed, same log

    def __post_init__(self) -> None:
        s, rates = self, (self.seq_prob, self.cart_rate, self.buy_rate, self.drift)
        positive = (s.activity_shape, s.taste_concentration, s.session_clicks)
        checks = [
            (s.num_users >= 1 and 1 <= s.num_tags <= s.num_items, "1 <= num_tags <= num_items"),
            (1 <= s.min_tags <= s.max_tags <= s.num_tags, "1 <= min_tags <= max_tags <= num_tags"),
            (1 <= s.min_buys <= min(s.min_clicks, s.num_items), "1 <= min_buys <= min_clicks"),
            (s.events_per_user >= s.min_clicks * s.events_per_click, "more events_per_user"),
            (all(0.0 <= r <= 1.0 for r in rates), "rates and drift in [0, 1]"),
            (min(positive) > 0 and s.side_tag_weight >= 0, "positive shapes and weights"),
        ]
        bad = [msg for ok, msg in checks if not ok]
        if bad:
            raise DataError(f"invalid SyntheticSpec: need {'; '.join(bad)}")

    @property
    def events_per_click(self) -> float:
        """Expected events per click (the click, its cart, its buy)."""
        return 1.0 + self.cart_rate + self.cart_rate * self.buy_rate


def spec_for_events(
    num_events: int, num_items: int = 500, seed: int = 0, **overrides: object
) -> SyntheticSpec:
    """A spec whose expected event count is ``num_events`` (users = events / events_per_user)."""
    per_user = float(overrides.get("events_per_user", SyntheticSpec.events_per_user))
    num_users = max(1, round(num_events / per_user))
    return SyntheticSpec(num_users=num_users, num_items=num_items, seed=seed, **overrides)


class _World:
    """Item side: tags, the tag → item sampler (popularity-weighted) and the item chains."""

    def __init__(self, spec: SyntheticSpec) -> None:
        rng = np.random.default_rng([spec.seed, 0])
        n_i, n_t = spec.num_items, spec.num_tags
        perm = rng.permutation(n_i)
        self.primary = np.empty(n_i, dtype=np.int64)  # (I,) primary tag = chain cluster
        self.primary[perm] = np.arange(n_i) % n_t  # every tag is some item's primary tag
        n_tags = rng.integers(spec.min_tags, spec.max_tags + 1, n_i)
        keys = rng.random((n_i, n_t))
        keys[np.arange(n_i), self.primary] = -1.0  # primary tag first, then random side tags
        cols = np.argsort(keys, axis=1)[:, : spec.max_tags]
        keep = np.arange(spec.max_tags) < n_tags[:, None]
        self.member = np.zeros((n_i, n_t), dtype=bool)  # (I, T) item has tag
        self.member[np.nonzero(keep)[0], cols[keep]] = True
        pop = (rng.permutation(n_i) + 1.0) ** -spec.zipf_exponent  # (I,) moderate Zipf
        pair_tag, self.pair_item = np.nonzero(self.member.T)  # (P,) (tag, item) pairs by tag
        side = np.where(self.primary[self.pair_item] == pair_tag, 1.0, spec.side_tag_weight)
        w = pop[self.pair_item] * side
        total = np.bincount(pair_tag, w, minlength=n_t)
        frac = (np.cumsum(w) - (np.cumsum(total) - total)[pair_tag]) / total[pair_tag]
        frac[np.r_[np.flatnonzero(np.diff(pair_tag)), len(pair_tag) - 1]] = 1.0
        self.pair_cdf = pair_tag + frac  # (P,) tag + cumulative share, for searchsorted
        self.chain = np.lexsort((np.argsort(perm), self.primary))  # (I,) items by cluster
        self.size = np.bincount(self.primary, minlength=n_t)  # (T,) items per cluster
        self.start = np.cumsum(self.size) - self.size  # (T,) first chain slot of each cluster
        self.pos = np.empty(n_i, dtype=np.int64)  # (I,) item's place in its cluster's chain
        self.pos[self.chain] = np.arange(n_i) - self.start[self.primary[self.chain]]

    def successor(self, items: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """The item ``steps`` links further along the (cyclic) chain of each item's cluster."""
        c = self.primary[items]
        return self.chain[self.start[c] + (self.pos[items] + steps) % self.size[c]]


def _block(spec: SyntheticSpec, world: _World, b: int) -> np.ndarray:
    """Events of users ``[b * _BLOCK_USERS, ...)`` as ``_EVENT`` records in event order."""
    rng = np.random.default_rng([spec.seed, 1, b])
    u0, n_t = b * _BLOCK_USERS, spec.num_tags
    n_u = min(_BLOCK_USERS, spec.num_users - u0)
    mean_extra = spec.events_per_user / spec.events_per_click - spec.min_clicks
    activity = rng.gamma(spec.activity_shape, 1.0 / spec.activity_shape, n_u)
    n_clicks = spec.min_clicks + rng.poisson(mean_extra * activity)  # (U,)
    n = int(n_clicks.sum())
    user = np.repeat(np.arange(n_u), n_clicks)  # (N,) one row per click, user-major
    starts = np.cumsum(n_clicks) - n_clicks
    step = np.arange(n) - starts[user]
    # tag from the drifting taste: start taste (row 2u) or end taste (row 2u + 1)
    cdf = np.cumsum(rng.gamma(spec.taste_concentration, size=(2 * n_u, n_t)) + 1e-12, axis=1)
    cdf = cdf / cdf[:, -1:]
    cdf[:, -1] = 1.0
    cdf += np.arange(2 * n_u)[:, None]
    row = 2 * user + (rng.random(n) < spec.drift * step / np.maximum(n_clicks - 1, 1)[user])
    tag = np.searchsorted(cdf.ravel(), row + rng.random(n), side="right") - row * n_t
    base = world.pair_item[np.searchsorted(world.pair_cdf, tag + rng.random(n), side="right")]
    # sequential chain: a run of followers walks the chain from the run's first item
    follow = rng.random(n) < spec.seq_prob
    follow[starts] = False
    idx = np.arange(n)
    run_start = np.maximum.accumulate(np.where(follow, 0, idx))
    item = world.successor(base[run_start], idx - run_start)
    # times: clicks seconds to minutes apart within sessions, sessions hours to days apart
    new_session = rng.random(n) < 1.0 / spec.session_clicks
    session_gap = 3600 + rng.exponential(spec.session_gap_h * 3600, n)
    gap = np.where(new_session, session_gap, 1 + rng.exponential(spec.click_gap_s, n))
    csum = np.cumsum(gap.astype(np.int64))
    first = spec.start_time + (rng.random(n_u) * spec.start_spread_days * 86400).astype(np.int64)
    ts = first[user] + csum - csum[starts][user]
    cart_ts = ts + 1 + rng.exponential(spec.cart_delay_s, n).astype(np.int64)
    buy_ts = cart_ts + 1 + rng.exponential(spec.buy_delay_s, n).astype(np.int64)
    cart = rng.random(n) < spec.cart_rate
    stage = cart.astype(np.int8) + (cart & (rng.random(n) < spec.buy_rate))  # 1 cart, 2 buy
    _fix_buys(spec, user, item, stage, rng.random(n))
    ci, bi = np.flatnonzero(stage >= 1), np.flatnonzero(stage == 2)
    ev = np.empty(n + len(ci) + len(bi), dtype=_EVENT)
    ev["uid"] = u0 + np.concatenate([user, user[ci], user[bi]])
    ev["item"] = np.concatenate([item, item[ci], item[bi]])
    ev["ts"] = np.concatenate([ts, cart_ts[ci], buy_ts[bi]])
    ev["beh"] = np.repeat(np.arange(3), [n, len(ci), len(bi)])
    ev["sub"] = np.concatenate([3 * step, 3 * step[ci] + 1, 3 * step[bi] + 2])
    by_user = (ev["uid"] - u0).astype(np.int64) * (int(ev["sub"].max()) + 1) + ev["sub"]
    ev = ev[np.argsort(by_user, kind="stable")]
    return _concat([ev])


def _fix_buys(
    spec: SyntheticSpec, user: np.ndarray, item: np.ndarray, stage: np.ndarray, noise: np.ndarray
) -> None:
    """Drop repeat buys, then promote clicks of new items until every user has ``min_buys``.

    In place on ``stage`` (0 click, 1 cart, 2 buy) and, for tiny catalogues only, ``item``.
    """
    n_u = int(user[-1]) + 1
    key = user * spec.num_items + item  # (N,) user-item pair
    bi = np.flatnonzero(stage == 2)
    stage[bi] = 1
    stage[bi[np.unique(key[bi], return_index=True)[1]]] = 2  # first buy of each pair
    need = np.maximum(spec.min_buys - np.bincount(user[stage == 2], minlength=n_u), 0)
    if not need.any():
        return
    first_seen = np.zeros(len(item), dtype=bool)
    first_seen[np.unique(key, return_index=True)[1]] = True
    cand = np.flatnonzero(first_seen & ~np.isin(key, key[stage == 2]) & (need[user] > 0))
    cand = cand[np.lexsort((noise[cand], user[cand]))]  # random order within each user
    rank = np.arange(len(cand)) - np.searchsorted(user[cand], user[cand])
    promote = cand[rank < need[user[cand]]]
    stage[promote] = 2
    for u in np.flatnonzero(need > np.bincount(user[promote], minlength=n_u)):
        # fewer distinct items clicked than min_buys: rewrite the user's first clicks
        span = np.flatnonzero(user == u)
        stage[span] = np.minimum(stage[span], 1)
        rows = span[: spec.min_buys]
        item[rows] = (item[rows[0]] + np.arange(spec.min_buys)) % spec.num_items
        stage[rows] = 2


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    """Merge parts ordered by (uid, sub) within equal ts and holding increasing uid ranges."""
    ev = np.concatenate(parts)
    return ev[np.argsort(ev["ts"], kind="stable")]  # stable: ties keep (uid, sub) order


def _names(prefix: str, n: int, width: int = 0) -> np.ndarray:
    return np.array([f"{prefix}{i:0{width}d}" for i in range(n)], dtype=object)


def _items_frame(spec: SyntheticSpec, world: _World) -> pd.DataFrame:
    tags = _names("t", spec.num_tags, max(2, len(str(spec.num_tags - 1))))
    rows, cols = np.nonzero(world.member)
    per_item = np.split(tags[cols], np.cumsum(np.bincount(rows, minlength=spec.num_items))[:-1])
    tag_lists = [list(t) for t in per_item]
    items = pd.DataFrame({"item": pd.Series(_names("i", spec.num_items), dtype="str")})
    items["tags"] = pd.Series(tag_lists, dtype=object)
    titles = [f"item {i} ({' '.join(t)})" for i, t in enumerate(tag_lists)]
    items["title"] = pd.Series(titles, dtype="str")
    return items


def generate(spec: SyntheticSpec | None = None) -> CanonicalLog:
    """Generate the whole log in memory; deterministic given ``spec.seed``.

    Events are in event order with ``line`` = row + 2, as ``write_synthetic`` writes them.
    """
    spec = spec or SyntheticSpec()
    world = _World(spec)
    ev = _concat([_block(spec, world, b) for b in range(-(-spec.num_users // _BLOCK_USERS))])

    def decode(codes: np.ndarray, names: np.ndarray) -> pd.Series:
        return pd.Series(pd.Categorical.from_codes(codes, names)).astype("str")

    events = pd.DataFrame({"user": decode(ev["uid"], _names("u", spec.num_users))})
    events["item"] = decode(ev["item"], _names("i", spec.num_items))
    events["timestamp"] = ev["ts"]
    events["behavior"] = decode(ev["beh"], np.array(BEHAVIORS, dtype=object))
    events["value"] = np.ones(len(ev))
    events["line"] = np.arange(2, len(ev) + 2, dtype=np.int64)
    source = f"synthetic(users={spec.num_users}, items={spec.num_items}, seed={spec.seed})"
    return CanonicalLog(events, _items_frame(spec, world), targets=["buy"], source=source)


def write_synthetic(
    out_dir: str | Path,
    spec: SyntheticSpec | None = None,
    chunk_events: int = 1_000_000,
    progress: bool = True,
) -> Path:
    """Write ``events.csv``, ``items.csv`` and ``spec.json`` into ``out_dir``; returns it.

    Users are generated ~``chunk_events`` events at a time and spilled to sorted temporary
    arrays, then merged in time windows of ~``chunk_events`` rows, so memory stays bounded
    however many events are written. The result reads back equal to ``generate(spec)``.
    """
    spec = spec or SyntheticSpec()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    world = _World(spec)
    n_blocks = -(-spec.num_users // _BLOCK_USERS)
    per_chunk = max(1, round(chunk_events / (_BLOCK_USERS * spec.events_per_user)))
    total = round(spec.num_users * spec.events_per_user)
    with tempfile.TemporaryDirectory(dir=out, prefix=".spill-") as tmp:
        chunks, samples, stride = [], [], max(1, chunk_events // 64)
        with tqdm(total=total, unit="ev", desc="generate", disable=not progress) as bar:
            for b0 in range(0, n_blocks, per_chunk):
                blocks = range(b0, min(b0 + per_chunk, n_blocks))
                ev = _concat([_block(spec, world, b) for b in blocks])
                chunks.append(Path(tmp, f"chunk{len(chunks)}"))
                ev.tofile(chunks[-1].with_suffix(".rec"))
                np.ascontiguousarray(ev["ts"]).tofile(chunks[-1].with_suffix(".ts"))
                samples.append(ev["ts"][::stride])
                bar.update(len(ev))
        cuts = np.unique(np.sort(np.concatenate(samples))[::64])[1:]  # ~chunk_events per window
        edges = np.r_[np.iinfo(np.int64).min, cuts, np.iinfo(np.int64).max]
        n_rows = _merge_to_csv(spec, chunks, edges, out / "events.csv", progress)
    items = _items_frame(spec, world)
    items["tags"] = items["tags"].map("|".join)
    items.set_axis(["item_id", "tags", "title"], axis=1).to_csv(out / "items.csv", index=False)
    meta = {"format": "graphseq-synthetic", "version": 1, "events": n_rows, "spec": asdict(spec)}
    (out / "spec.json").write_text(json.dumps(meta, indent=2) + "\n")
    _log.info("wrote %d synthetic events for %d users to %s", n_rows, spec.num_users, out)
    return out


def _merge_to_csv(
    spec: SyntheticSpec, chunks: list[Path], edges: np.ndarray, path: Path, progress: bool
) -> int:
    """Write the spilled chunks to ``path`` in event order, one time window at a time."""
    users = pa.array(_names("u", spec.num_users), pa.string())
    items = pa.array(_names("i", spec.num_items), pa.string())
    behaviors = pa.array(BEHAVIORS, pa.string())
    opts = pacsv.WriteOptions(include_header=False, quoting_style="none")
    times = [np.memmap(c.with_suffix(".ts"), dtype=np.int64, mode="r") for c in chunks]
    n_rows, part = 0, path.with_suffix(".csv.part")
    with (
        open(part, "wb") as fh,
        tqdm(total=len(edges) - 1, desc="write", disable=not progress) as b,
    ):
        fh.write((",".join(EVENT_COLUMNS) + "\n").encode())
        for lo, hi in zip(edges[:-1], edges[1:]):
            parts = []
            for c, ts in zip(chunks, times):  # read, not map: only the window is resident
                i, j = np.searchsorted(ts, [lo, hi])
                rec = c.with_suffix(".rec")
                parts.append(np.fromfile(rec, _EVENT, count=j - i, offset=i * _EVENT.itemsize))
            ev = _concat(parts)
            cols = [users.take(ev["uid"]), items.take(ev["item"]), pa.array(ev["ts"])]
            cols += [behaviors.take(ev["beh"]), pa.array(np.ones(len(ev)))]
            pacsv.write_csv(pa.Table.from_arrays(cols, names=EVENT_COLUMNS), fh, opts)
            n_rows += len(ev)
            b.update(1)
    part.replace(path)
    return n_rows


def read_synthetic(path: str | Path, chunksize: int = 1_000_000) -> CanonicalLog:
    """Read a directory written by ``write_synthetic`` (or a file inside it)."""
    root = Path(path)
    if not root.exists():
        raise DataError("synthetic data not found", file=root, hint="write it with write_synthetic")
    root = root.parent if root.is_file() else root
    events_path = root / "events.csv"
    if not events_path.is_file():
        raise DataError("no events.csv in synthetic data directory", file=root)
    with events_path.open() as fh:
        missing = sorted(set(EVENT_COLUMNS) - set(fh.readline().strip().split(",")))
    if missing:
        raise DataError(f"missing columns {missing}", file=events_path, line=1)
    dtypes = dict(zip(EVENT_COLUMNS, ["str", "str", "int64", "str", "float64"]))
    reader = pd.read_csv(events_path, dtype=dtypes, usecols=EVENT_COLUMNS, chunksize=chunksize)
    events = pd.concat(list(reader), ignore_index=True)[EVENT_COLUMNS]
    events = events.rename(columns={"user_id": "user", "item_id": "item"})
    events["line"] = np.arange(2, len(events) + 2, dtype=np.int64)
    items = None
    if (root / "items.csv").is_file():
        raw = pd.read_csv(root / "items.csv", dtype=str, keep_default_na=False)
        items = pd.DataFrame({"item": raw["item_id"], "title": raw["title"]})
        items.insert(1, "tags", raw["tags"].map(lambda s: s.split("|") if s else []))
    return CanonicalLog(events=events, items=items, targets=["buy"], source=f"synthetic: {root}")
