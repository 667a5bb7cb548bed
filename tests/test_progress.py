"""graphseq.progress: bars in a terminal, plain lines in logs, nothing for inner loops in logs."""

from __future__ import annotations

import io

import pytest

from graphseq.progress import LineProgress, progress, progress_mode


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _no_override(monkeypatch):
    monkeypatch.delenv("GRAPHSEQ_PROGRESS", raising=False)


def test_mode_follows_the_stream(monkeypatch):
    assert progress_mode(io.StringIO()) == "lines"
    assert progress_mode(_Terminal()) == "bar"
    monkeypatch.setenv("GRAPHSEQ_PROGRESS", "lines")
    assert progress_mode(_Terminal()) == "lines"
    monkeypatch.setenv("GRAPHSEQ_PROGRESS", "off")
    assert progress_mode(io.StringIO()) == "off"


def test_log_gets_one_plain_line_per_outer_loop():
    log = io.StringIO()
    bar = progress(range(3), desc="graphseq", unit="epoch", file=log)
    assert isinstance(bar, LineProgress)
    for _ in bar:
        for _ in progress(range(50), desc="epoch", inner=True, file=log):
            pass
        bar.set_postfix(loss="0.5000")
    assert log.getvalue() == "graphseq: 3/3 epoch, 0s, loss=0.5000\n"


def test_lines_every_interval_with_time_left():
    log = io.StringIO()
    with progress(total=4, desc="write", interval=0.0, file=log) as bar:
        bar.update(1)
        bar.update(3)
    lines = log.getvalue().splitlines()
    assert lines[0].startswith("write: 1/4 it, 0s, ~0s left")
    assert lines[-1] == "write: 4/4 it, 0s" and len(lines) == 3
    assert "\r" not in log.getvalue() and "\x1b" not in log.getvalue()


def test_early_stop_reports_where_it_stopped():
    log = io.StringIO()
    for i in progress(range(10), desc="mf", file=log):
        if i == 1:
            break
    assert log.getvalue() == "mf: 1/10 it, 0s\n"  # the second item was not finished


def test_terminal_gets_a_tqdm_bar_and_off_gets_nothing(monkeypatch):
    tty = _Terminal()
    assert list(progress(range(3), desc="bar", file=tty)) == [0, 1, 2]
    assert "\r" in tty.getvalue() and "3/3" in tty.getvalue()
    monkeypatch.setenv("GRAPHSEQ_PROGRESS", "off")
    quiet = _Terminal()
    assert list(progress(range(3), file=quiet)) == [0, 1, 2]
    assert list(progress(range(2), disable=True, file=tty)) == [0, 1]
    assert quiet.getvalue() == ""
