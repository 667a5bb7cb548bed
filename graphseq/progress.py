"""Progress that suits where stderr goes.

* a terminal or a notebook: tqdm bars (inner bars vanish when done);
* a log file or pipe: no ``\\r`` or cursor-up codes; an outer loop writes one plain line
  every ``interval`` seconds and one when it ends, an inner loop writes nothing.

``GRAPHSEQ_PROGRESS=bar|lines|off`` overrides the choice. Example::

    from graphseq.progress import progress

    bar = progress(range(epochs), desc="graphseq", unit="epoch")
    for epoch in bar:
        for batch in progress(batches, desc=f"epoch {epoch}", inner=True):
            ...
        bar.set_postfix(loss=f"{loss:.4f}")
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any

MODES = ("bar", "lines", "off")


def _in_notebook() -> bool:
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def progress_mode(stream: IO[str] | None = None) -> str:
    """``bar`` (terminal or notebook), ``lines`` (anything else) or ``off``; see module doc."""
    env = os.environ.get("GRAPHSEQ_PROGRESS", "").strip().lower()
    if env in MODES:
        return env
    stream = sys.stderr if stream is None else stream
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        tty = False
    return "bar" if tty or _in_notebook() else "lines"


class LineProgress:
    """tqdm's loop interface (iterate, ``update``, ``set_postfix``, ``close``) as plain lines:
    ``desc: 3/20 epoch, 12s, ~1m08s left, loss=0.51`` every ``interval`` seconds and at the end.
    """

    def __init__(
        self,
        iterable: Iterable | None = None,
        desc: str = "",
        total: int | None = None,
        unit: str = "it",
        interval: float = 30.0,
        file: IO[str] | None = None,
    ) -> None:
        self.iterable, self.desc, self.unit, self.interval = iterable, desc, unit, interval
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total, self.n, self.postfix = total, 0, ""
        self.file = file
        self.disable = False
        self._start = self._last = time.monotonic()
        self._closed = False

    def __iter__(self) -> Iterator:
        try:
            for x in self.iterable:
                yield x
                self.update(1)
        finally:
            self.close()

    def __len__(self) -> int:
        return self.total or 0

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._write(done=False)

    def set_postfix(self, ordered_dict: dict | None = None, refresh: bool = True, **kw: Any):
        items = {**(ordered_dict or {}), **kw}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s

    def set_description(self, desc: str = "", refresh: bool = True) -> None:
        self.desc = desc

    def refresh(self) -> None:
        """Nothing to redraw (tqdm compatibility)."""

    def write(self, s: str) -> None:
        print(s, file=self.file or sys.stderr, flush=True)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._write(done=True)

    def _write(self, done: bool) -> None:
        elapsed = time.monotonic() - self._start
        count = f"{self.n}/{self.total}" if self.total is not None else str(self.n)
        parts = [f"{count} {self.unit}", _clock(elapsed)]
        if not done and self.total and 0 < self.n < self.total:
            parts.append(f"~{_clock(elapsed / self.n * (self.total - self.n))} left")
        if self.postfix:
            parts.append(self.postfix)
        self.write(f"{self.desc + ': ' if self.desc else ''}{', '.join(parts)}")


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def progress(
    iterable: Iterable | None = None,
    desc: str = "",
    total: int | None = None,
    *,
    unit: str = "it",
    inner: bool = False,
    disable: bool = False,
    interval: float = 30.0,
    file: IO[str] | None = None,
    **tqdm_kwargs: Any,
):
    """A progress wrapper for ``iterable`` (or a manual one with ``total`` and ``update``).

    Args:
        iterable: what to loop over; ``None`` for a manual bar (``update(n)``).
        desc: label; ``total``: length when ``iterable`` has none; ``unit``: what is counted.
        inner: a loop nested in another (batches in an epoch): a bar that vanishes when done
            in a terminal, nothing at all in logs.
        disable: no output in any mode (e.g. ranks other than 0).
        interval: seconds between lines in logs (``lines`` mode).
        file: the stream (default ``sys.stderr``).
        tqdm_kwargs: passed to tqdm in ``bar`` mode only.

    Returns a tqdm bar or a :class:`LineProgress`; both iterate and take ``update``,
    ``set_postfix``, ``set_description`` and ``close``, and work as context managers.
    """
    mode = "off" if disable else progress_mode(file)
    if mode == "lines" and not inner:
        return LineProgress(iterable, desc, total, unit, interval, file)
    if mode == "bar":
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm
    return tqdm(
        iterable,
        desc=desc,
        total=total,
        unit=unit,
        leave=not inner,
        disable=mode != "bar",
        file=file,
        **tqdm_kwargs,
    )


__all__ = ["LineProgress", "progress", "progress_mode"]
