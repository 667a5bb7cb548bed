"""``python -m benchmarks SUITE ...``: run one suite (``--help`` after the suite: its flags)."""

from __future__ import annotations

import importlib
import sys

SUITES = {
    "quality": ("benchmarks.quality", "ML-100K, ML-1M, Tmall; --study losses | cold"),
    "speed": ("benchmarks.speed", "propagation, sampler, lightgcn vs RecBole, cli, serve"),
    "scale": ("benchmarks.scale", "scaling, build_speed, build_scale, large_log"),
    "gpu": ("benchmarks.gpu_check", "the GPU machine's check (CUDA tests, AMP, memory)"),
}
USAGE = "usage: python -m benchmarks SUITE [--variants NAME ...] [--list] [suite flags]"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        out = sys.stdout if argv else sys.stderr  # no suite named: a usage error
        print(USAGE + "\n\nsuites:", file=out)
        for name, (_, about) in SUITES.items():
            print(f"  {name:<8} {about}", file=out)
        print("\n'python -m benchmarks SUITE --help' describes a suite's flags.", file=out)
        return 0 if argv else 2
    if argv[0] not in SUITES:
        print(f"{USAGE}\nbenchmarks: error: unknown suite {argv[0]!r}; valid: "
              f"{', '.join(SUITES)}", file=sys.stderr)  # fmt: skip
        return 2
    suite = importlib.import_module(SUITES[argv[0]][0])
    try:
        out = suite.main(argv[1:])
    except RuntimeError as e:  # a child failed: its command and stderr tail, no traceback
        print(f"benchmarks: error: {e}", file=sys.stderr)
        return 1
    return out if isinstance(out, int) else 0


if __name__ == "__main__":
    sys.exit(main())
