"""Opening text sources: compression (gzip, bzip2, xz, zstd) and text encodings are told from
the file's first bytes, not its name, so ``events.csv.gz`` and a gzip file called ``log.csv``
both read. Nothing here ever puts raw bytes into an error message.

:func:`open_binary` returns the decompressed byte stream; it remembers the last bytes read
(the truncated-last-line check reads them once the parser is done) and the position in the
compressed file (for progress bars).
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import lzma
import os
from pathlib import Path
from typing import BinaryIO

from data_builders.errors import DataError

TAIL_BYTES = 2**20  # bytes kept from the end of the stream for the last-line check
# first bytes → compression name
MAGIC = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
}
BOMS = (  # longest first: the UTF-32 LE BOM starts with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
PARQUET_MAGIC = b"PAR1"
SUFFIXES = (".gz", ".bz2", ".xz", ".zst")  # names readers also look for beside plain ones


def find(root: Path, name: str) -> Path | None:
    """``root/name`` or its compressed sibling (``name.gz``, ``.bz2``, ``.xz``, ``.zst``)."""
    for cand in (name, *(name + s for s in SUFFIXES)):
        if (root / cand).is_file():
            return root / cand
    return None


def plain_name(path: Path) -> str:
    """The file name without a compression suffix (``tiny.inter.gz`` → ``tiny.inter``)."""
    name = path.name
    return next((name[: -len(s)] for s in SUFFIXES if name.endswith(s)), name)


def compression(path: Path) -> str | None:
    """``gzip`` | ``bzip2`` | ``xz`` | ``zstd`` from the first bytes, ``None`` for plain files."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    return next((name for magic, name in MAGIC.items() if head.startswith(magic)), None)


def is_parquet(path: Path) -> bool:
    """Whether ``path`` is a Parquet file (by its name or its first bytes)."""
    if path.suffix == ".parquet":
        return True
    with open(path, "rb") as fh:
        return fh.read(4) == PARQUET_MAGIC


class _Stream(io.RawIOBase):
    """A read-only byte stream that keeps its last ``TAIL_BYTES`` and the raw file position."""

    def __init__(self, inner: BinaryIO, raw: BinaryIO) -> None:
        self._inner, self._raw = inner, raw
        self._tail = bytearray()

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        data = self._inner.read(len(b))
        n = len(data)
        b[:n] = data
        self._tail += data
        if len(self._tail) > 2 * TAIL_BYTES:
            del self._tail[:-TAIL_BYTES]
        return n

    def tail(self) -> bytes:
        """The last bytes read so far (at most ``TAIL_BYTES``)."""
        return bytes(self._tail[-TAIL_BYTES:])

    def raw_position(self) -> int:
        """Bytes of the (compressed) file consumed so far."""
        return self._raw.tell()

    def close(self) -> None:
        self._inner.close()
        self._raw.close()
        super().close()


def open_binary(path: Path) -> _Stream:
    """The decompressed bytes of ``path``; a corrupt compressed file is a DataError."""
    kind = compression(path)
    raw = open(path, "rb")
    if kind is None:
        inner: BinaryIO = raw
    elif kind == "gzip":
        inner = gzip.GzipFile(fileobj=raw)
    elif kind == "bzip2":
        inner = bz2.BZ2File(raw)
    elif kind == "xz":
        inner = lzma.LZMAFile(raw)
    else:
        try:
            import zstandard
        except ImportError as err:  # declared in pyproject; only a broken install lacks it
            raise DataError(
                "zstd-compressed file, but the zstandard package is missing",
                file=path,
                hint="pip install zstandard",
            ) from err
        inner = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    return _Stream(inner, raw)


def read_start(path: Path, n: int = 64 * 1024) -> bytes:
    """The first ``n`` decompressed bytes (a corrupt stream is a DataError naming the file)."""
    try:
        with open_binary(path) as fh:
            return fh.read(n)
    except (OSError, EOFError, lzma.LZMAError, ValueError) as err:
        raise DataError(
            f"cannot decompress: {type(err).__name__}",
            file=path,
            hint="the compressed file is corrupt or truncated",
        ) from err


def detect_encoding(path: Path, encoding: str = "utf-8") -> str:
    """``encoding``, or the one a byte-order mark names (UTF-8 with BOM, UTF-16, UTF-32)."""
    head = read_start(path, 4)
    for bom, name in BOMS:
        if head.startswith(bom):
            return name
    return encoding


def decode_start(path: Path, encoding: str, n: int = 64 * 1024) -> str:
    """The first ~``n`` bytes as text (undecodable bytes replaced), BOM removed."""
    text = read_start(path, n).decode(encoding, errors="replace")
    return text.lstrip("\ufeff")


def read_text(path: Path, encoding: str = "utf-8") -> str:
    """A whole small text file, decompressed and decoded (BOM removed)."""
    with open_binary(path) as fh:
        data = fh.read()
    return data.decode(detect_encoding(path, encoding)).lstrip("\ufeff")


def printable(text: str, limit: int = 80) -> str:
    """``text`` shortened to ``limit`` characters with control characters escaped."""
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return out if len(out) <= limit else out[: limit - 3] + "..."


def looks_binary(text: str) -> bool:
    """Whether decoded text holds NULs or many replacement / control characters."""
    if "\x00" in text:
        return True
    bad = sum(1 for c in text if c == "\ufffd" or (not c.isprintable() and c not in "\t\r\n"))
    return bad > max(2, len(text) // 20)


def size(path: Path) -> int:
    """Size of the file on disk (compressed size for compressed files)."""
    return os.path.getsize(path)
