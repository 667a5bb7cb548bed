"""Tests for graphseq.metrics: hand-computed cases, ties, NaN, batching, PyG and OGB."""

import math

import pytest
import torch

from graphseq.metrics import (
    KS,
    Evaluator,
    evaluate_sampled,
    metrics_from_ranks,
    rank_of_targets,
)

# Two users, five items.
#   user 0: scores 0.1 0.9 0.3 0.5 0.7, target item 3 (0.5)
#           beaten by items 1 (0.9) and 4 (0.7)            -> rank 3
#   user 1: scores 0.2 0.2 0.8 0.2 0.4, target item 1 (0.2)
#           items 0, 3 tie at 0.2 (pessimistic: they count),
#           items 2 (0.8) and 4 (0.4) beat it               -> rank 5
# Excluding (user 0, item 1) and (user 1, item 2) removes one winner each:
#           ranks 2 and 4, with 4 candidates each.
SCORES = torch.tensor([[0.1, 0.9, 0.3, 0.5, 0.7], [0.2, 0.2, 0.8, 0.2, 0.4]])
TARGETS = torch.tensor([3, 1])
EXCLUDE = torch.tensor([[0, 1], [1, 2]])  # rows (0, 1), items (1, 2)


def test_rank_hand_case():
    assert rank_of_targets(SCORES, TARGETS).tolist() == [3, 5]
    assert rank_of_targets(SCORES, TARGETS, EXCLUDE).tolist() == [2, 4]
    # Duplicate exclusions are counted once.
    dup = torch.cat([EXCLUDE, EXCLUDE], dim=1)
    assert rank_of_targets(SCORES, TARGETS, dup).tolist() == [2, 4]
    # The caller's scores are not modified.
    assert SCORES[0, 1].item() == pytest.approx(0.9)


def test_metrics_from_ranks_hand_case():
    ranks = torch.tensor([3, 5])
    m = metrics_from_ranks(ranks, num_items=5, ks=(3, 5))
    # K=3: user 0 hits at rank 3, user 1 (rank 5) misses.
    assert m["Recall@3"].tolist() == [1.0, 0.0]
    assert m["Hit@3"].tolist() == [1.0, 0.0]
    assert m["NDCG@3"].tolist() == pytest.approx([1 / math.log2(4), 0.0])  # 0.5
    assert m["MRR@3"].tolist() == pytest.approx([1 / 3, 0.0])
    assert m["Precision@3"].tolist() == pytest.approx([1 / 3, 0.0])
    # K=5: both hit.
    assert m["NDCG@5"].tolist() == pytest.approx([0.5, 1 / math.log2(6)])  # 0.3869
    assert m["MRR@5"].tolist() == pytest.approx([1 / 3, 1 / 5])
    assert m["Precision@5"].tolist() == pytest.approx([0.2, 0.2])
    # AUC = (n - rank) / (n - 1) with n = 5: (5-3)/4 = 0.5, (5-5)/4 = 0.
    assert m["AUC"].tolist() == pytest.approx([0.5, 0.0])
    # With 4 candidates each and ranks 2, 4: (4-2)/3, (4-4)/3.
    m = metrics_from_ranks(torch.tensor([2, 4]), 5, ks=(3,), num_candidates=torch.tensor([4, 4]))
    assert m["AUC"].tolist() == pytest.approx([2 / 3, 0.0])
    assert set(metrics_from_ranks(ranks, 5)) >= {f"NDCG@{k}" for k in KS}


def test_evaluator_hand_case_and_coverage():
    ev = Evaluator(num_items=5, ks=(1, 2))
    ev.add(SCORES, TARGETS, users=torch.tensor([10, 11]))
    r = ev.result()
    # ranks 3, 5: nothing in the top 2.
    assert r["Recall@2"] == 0.0 and r["NDCG@1"] == 0.0
    assert r["AUC"] == pytest.approx((0.5 + 0.0) / 2)
    # top-1: user 0 -> item 1, user 1 -> item 2           => {1, 2}    = 2/5
    # top-2: user 0 -> items 1, 4; user 1 -> items 2, 4   => {1, 2, 4} = 3/5
    assert r["Coverage@1"] == pytest.approx(0.4)
    assert r["Coverage@2"] == pytest.approx(0.6)
    pu = ev.per_user()
    assert pu["user"].tolist() == [10, 11]
    assert pu["target"].tolist() == [3, 1]
    assert pu["rank"].tolist() == [3, 5]

    ev = Evaluator(num_items=5, ks=(1, 2))
    ev.add(SCORES, TARGETS, EXCLUDE)
    r = ev.result()
    # ranks 2, 4: user 0 hits at K=2 -> Recall@2 = 0.5, NDCG@2 = (1/log2(3)) / 2.
    assert r["Recall@2"] == pytest.approx(0.5)
    assert r["NDCG@2"] == pytest.approx(1 / math.log2(3) / 2)
    assert r["MRR@2"] == pytest.approx(0.25)
    assert r["Precision@2"] == pytest.approx(0.25)
    assert r["AUC"] == pytest.approx((2 / 3 + 0.0) / 2)
    # After exclusion the top-1 of both users is item 4   => {4} = 1/5
    assert r["Coverage@1"] == pytest.approx(0.2)
    assert ev.per_user()["user"].tolist() == [0, 1]


def test_coverage_never_counts_excluded_items():
    # 3 items, K=5 > candidates: the user excludes items 0 and 2, leaving only 1.
    ev = Evaluator(num_items=3, ks=(5,))
    ev.add(torch.tensor([[3.0, 1.0, 2.0]]), torch.tensor([1]), torch.tensor([[0, 0], [0, 2]]))
    r = ev.result()
    assert r["Coverage@5"] == pytest.approx(1 / 3)
    assert r["Recall@5"] == 1.0 and r["AUC"] == 0.5  # one candidate: uninformative


def test_ties_are_pessimistic():
    scores = torch.zeros(4, 6)
    targets = torch.tensor([0, 5, 2, 3])
    exclude = torch.tensor([[1, 1, 3], [0, 4, 0]])  # user 1 excludes 2 items, user 3 one
    ranks = rank_of_targets(scores, targets, exclude)
    assert ranks.tolist() == [6, 4, 6, 5]  # = num_candidates
    ev = Evaluator(num_items=6, ks=(1, 5))
    ev.add(scores, targets, exclude)
    r = ev.result()
    assert r["AUC"] == 0.0
    assert r["Recall@1"] == 0.0
    assert r["Recall@5"] == pytest.approx(0.5)  # users 1 (rank 4) and 3 (rank 5)


def test_nan_scores():
    nan = float("nan")
    # NaN item beats the target: items 0 (NaN) and 3 (0.9) -> rank 3.
    s = torch.tensor([[nan, 0.5, 0.1, 0.9]])
    assert rank_of_targets(s, torch.tensor([1])).tolist() == [3]
    # An excluded NaN item does not count.
    assert rank_of_targets(s, torch.tensor([1]), torch.tensor([[0], [0]])).tolist() == [2]
    # A NaN target ranks last.
    s = torch.tensor([[0.1, nan, 0.3, -1.0]])
    assert rank_of_targets(s, torch.tensor([1])).tolist() == [4]


def test_target_in_exclude_is_an_error():
    with pytest.raises(ValueError, match="target"):
        rank_of_targets(SCORES, TARGETS, torch.tensor([[0], [3]]))


def _random_case(num_users=7, num_items=20, ties=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(num_users, num_items, generator=g)
    if ties:
        scores = (scores * 2).round() / 2  # a handful of distinct values
    targets = torch.randint(num_items, (num_users,), generator=g)
    pairs = []
    for u in range(num_users):
        items = torch.randperm(num_items, generator=g)[:4]
        items = items[items != targets[u]]
        pairs.append(torch.stack([torch.full_like(items, u), items]))
    return scores, targets, torch.cat(pairs, dim=1)


def _batched(num_items, ks, scores, targets, exclude, batch_size):
    ev = Evaluator(num_items, ks)
    for start in range(0, scores.size(0), batch_size):
        end = start + batch_size
        keep = (exclude[0] >= start) & (exclude[0] < end)
        ex = exclude[:, keep].clone()
        ex[0] -= start
        ev.add(scores[start:end], targets[start:end], ex)
    return ev


@pytest.mark.parametrize("ties", [True, False])
def test_batch_size_does_not_change_result(ties):
    scores, targets, exclude = _random_case(ties=ties)
    ks = (1, 3, 5)
    evs = [_batched(20, ks, scores, targets, exclude, b) for b in (1, 3, scores.size(0))]
    ref, ref_pu = evs[-1].result(), evs[-1].per_user()
    for ev in evs[:-1]:
        r = ev.result()
        # Coverage depends on topk's order among tied items at the cut-off.
        keys = [k for k in ref if ties is False or not k.startswith("Coverage")]
        assert {k: r[k] for k in keys} == {k: ref[k] for k in keys}
        for key, col in ev.per_user().items():
            assert torch.equal(col, ref_pu[key]), key


def test_agrees_with_pyg_link_pred_metrics():
    from torch_geometric.metrics import (
        LinkPredCoverage,
        LinkPredHitRatio,
        LinkPredMRR,
        LinkPredNDCG,
        LinkPredPrecision,
        LinkPredRecall,
    )

    num_users, num_items, ks = 64, 40, (1, 5, 10, 20)
    scores, targets, exclude = _random_case(num_users, num_items, ties=False, seed=1)
    ev = Evaluator(num_items, ks)
    ev.add(scores, targets, exclude)
    ours = ev.result()

    masked = scores.clone()
    masked[exclude[0], exclude[1]] = float("-inf")
    label_index = torch.stack([torch.arange(num_users), targets])
    for k in ks:
        top = masked.topk(k, dim=1).indices  # every user has >= 36 candidates
        classes = {
            "NDCG": LinkPredNDCG,
            "MRR": LinkPredMRR,
            "Hit": LinkPredHitRatio,
            "Recall": LinkPredRecall,
            "Precision": LinkPredPrecision,
        }
        for name, cls in classes.items():
            metric = cls(k)
            metric.update(top, label_index)
            assert ours[f"{name}@{k}"] == pytest.approx(float(metric.compute()), abs=1e-6)
        cov = LinkPredCoverage(k, num_items)
        cov.update(top, label_index)
        assert ours[f"Coverage@{k}"] == pytest.approx(float(cov.compute()), abs=1e-6)


def test_agrees_with_ogb_evaluator():
    from ogb.linkproppred import Evaluator as OGBEvaluator

    g = torch.Generator().manual_seed(2)
    num_users = 50
    pos = torch.randn(num_users, generator=g)
    neg = torch.randn(num_users, 100, generator=g)  # continuous: no ties
    out = OGBEvaluator(name="ogbl-citation2").eval({"y_pred_pos": pos, "y_pred_neg": neg})

    # The positive as item 0 of a 101-item catalogue.
    scores = torch.cat([pos.view(-1, 1), neg], dim=1)
    targets = torch.zeros(num_users, dtype=torch.long)
    ranks = rank_of_targets(scores, targets)
    # OGB's MRR is not truncated at K: compare with 1/rank.
    assert torch.allclose(1.0 / ranks.float(), out["mrr_list"].float())
    ev = Evaluator(101, ks=(1, 3, 10))
    ev.add(scores, targets)
    sampled = evaluate_sampled(pos, neg, ks=(1, 3, 10))
    for k in (1, 3, 10):
        ogb_hits = float(out[f"hits@{k}_list"].float().mean())
        assert ev.result()[f"Hit@{k}"] == pytest.approx(ogb_hits)
        assert sampled[f"sampled100/Hit@{k}"] == pytest.approx(ogb_hits)

    # With ties OGB averages optimistic and pessimistic ranks; ours is never better.
    tied = evaluate_sampled(torch.zeros(3), torch.zeros(3, 100))
    out = OGBEvaluator(name="ogbl-citation2").eval(
        {"y_pred_pos": torch.zeros(3), "y_pred_neg": torch.zeros(3, 100)}
    )
    assert float(out["mrr_list"].mean()) == pytest.approx(1 / 51)  # OGB: rank 51
    assert tied["sampled100/MRR@20"] == 0.0  # ours: rank 101
    assert tied["sampled100/AUC"] == 0.0


def test_sampled_mode_labels_and_values():
    # Positive 0.5; negatives: one at 0.9, one tied at 0.5, rest -1 -> rank 3 of 101.
    neg = torch.full((1, 100), -1.0)
    neg[0, 0], neg[0, 1] = 0.9, 0.5
    r = evaluate_sampled(torch.tensor([0.5]), neg)
    assert all(key.startswith("sampled100/") for key in r)
    assert "sampled100/NDCG@10" in r and "NDCG@10" not in r
    assert r["sampled100/NDCG@10"] == pytest.approx(0.5)  # 1/log2(3+1)
    assert r["sampled100/MRR@10"] == pytest.approx(1 / 3)
    assert r["sampled100/AUC"] == pytest.approx(98 / 100)
    with pytest.raises(ValueError):
        evaluate_sampled(torch.tensor([0.5]), torch.zeros(1, 50))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    scores, targets, exclude = _random_case(num_users=33, num_items=50, ties=True, seed=3)
    cpu = _batched(50, KS, scores, targets, exclude, 8)
    gpu = _batched(50, KS, scores.cuda(), targets.cuda(), exclude.cuda(), 8)
    ref, r = cpu.result(), gpu.result()
    assert {k: v for k, v in r.items() if not k.startswith("Coverage")} == {
        k: v for k, v in ref.items() if not k.startswith("Coverage")
    }
    assert torch.equal(gpu.per_user()["rank"], cpu.per_user()["rank"])
