"""RecBole 1.2.1's own LightGCN epoch on MovieLens-100K: the same-run reference of the speed
suite's ``lightgcn`` variant, which runs this file with ``--recbole-python PY``, a Python that
has RecBole installed, e.g.

    python -m venv --system-site-packages /tmp/rb && /tmp/rb/bin/pip install recbole==1.2.1
    python -m benchmarks speed --variants lightgcn --ml100k DIR/ml-100k --recbole-python /tmp/rb/bin/python

It is a plain script (run by path, by that Python), not a module of the benchmarks.

RecBole 1.2.1 predates NumPy 2 and SciPy 1.15: the two shims below restore the removed
aliases it calls (``np.float_`` …, ``dok_matrix._update``) without editing RecBole.
Settings matched to graphseq's benchmark: time-ordered leave-last-out training set, batch
2048, one uniform BPR negative, 2 layers, dim 64, CPU. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
import warnings

import numpy as np
import scipy.sparse as sp

for _old, _new in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)):
    if not hasattr(np, _old):
        setattr(np, _old, _new)
if not hasattr(sp.dok_matrix, "_update"):
    sp.dok_matrix._update = lambda self, d: self._dict.update(d)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="directory holding ml-100k/ (get_ml100k.sh)")
    p.add_argument("--epochs", type=int, default=3)
    a = p.parse_args()
    warnings.filterwarnings("ignore")
    data = os.path.abspath(a.data)
    os.chdir(tempfile.mkdtemp())  # RecBole writes log/, log_tensorboard/ and saved/ here
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.general_recommender import LightGCN
    from recbole.trainer import Trainer

    cfg = Config(model="LightGCN", dataset="ml-100k", config_dict={
        "data_path": data, "train_batch_size": 2048, "embedding_size": 64, "n_layers": 2,
        "epochs": a.epochs, "seed": 2020, "show_progress": False, "use_gpu": False,
        "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1},
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user",
                      "mode": "full"},
    })  # fmt: skip
    logging.disable(logging.CRITICAL)
    train, _, _ = data_preparation(cfg, create_dataset(cfg))
    trainer = Trainer(cfg, LightGCN(cfg, train.dataset).to(cfg["device"]))
    times = []
    for e in range(a.epochs):
        t0 = time.perf_counter()
        trainer._train_epoch(train, e, show_progress=False)
        times.append(time.perf_counter() - t0)
    print(json.dumps({"seconds_per_epoch": times, "steps_per_epoch": len(train),
                      "interactions": len(train.dataset), "threads": torch.get_num_threads()}))  # fmt: skip


if __name__ == "__main__":
    main()
