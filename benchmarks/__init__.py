"""graphseq's benchmarks, as suites of named variants behind one entry point.

    python -m benchmarks SUITE [--variants NAME ...] [--list] [suite flags]

Suites: ``quality`` (ML-100K, ML-1M, Tmall; the losses and cold-start studies), ``speed``
(propagation, sampler, LightGCN vs RecBole, CLI latency, serving load), ``scale`` (cost
growth, build speed and scale, a large log) and ``gpu`` (the GPU machine's check). Child
processes are timed by one runner (:mod:`benchmarks.runner`: wall time and peak RSS), and
every result is one envelope (:mod:`benchmarks.envelope`) under ``results/<suite>/``.
Screens of rejected ideas and hand-assembled files of earlier releases are kept, as they
were, in ``results/archive/`` (its README says what each screened).
"""
