"""Synthetic click → cart → buy logs with planted structure: the embedded default dataset.

* Items have a primary tag (plus random side tags) and a moderate Zipf popularity.
* Each user has a start and an end Dirichlet tag taste and drifts between them over their
  timeline; a click draws a tag from the current taste, then an item of that tag ∝ popularity.
* With probability ``seq_prob`` a click instead follows the previous click to its successor on
  a fixed chain through the items of one primary tag, so order matters.
* Clicks become carts (``cart_rate``), carts become buys (``buy_rate``); nobody buys an item
  twice and everyone buys at least ``min_buys`` items (clicks are promoted when short).

Users come in fixed blocks of ``_BLOCK_USERS`` with their own seeded streams, so ``generate``
and the chunked ``write_synthetic`` (``data_builders.synthetic_io``) produce the same events in
the same order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_builders.errors import DataError
from data_builders.log import CanonicalLog

__all__ = ["SyntheticSpec", "generate", "spec_for_events"]

BEHAVIORS = ("click", "cart", "buy")  # behavior codes 0, 1, 2
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

    Events are in event order with ``line`` = row + 2, as ``write_synthetic`` writes them
    (``events.csv``: the header is line 1; ``events.parquet``: the same ``line`` values).
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
