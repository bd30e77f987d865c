"""CorpusDataset's stream when it is given a mixture: documents or packed sequences, exact cursors.

A worker's cursor is the mixture schedule's state (refinery/corpus/sampler.py)
before the first document still (partly) pending, plus the token offset into it:
`(*state, offset)`.  Resuming rebuilds the sampler at that state, draws that very
document again and skips the `offset` tokens already handed out.
"""

from __future__ import annotations

from itertools import islice
from typing import TYPE_CHECKING, Any, Iterator

import torch

from refinery.corpus.sampler import DocumentReader, MixtureSampler

if TYPE_CHECKING:
    from refinery.corpus.dataset import CorpusDataset


def cursor_width(ds: "CorpusDataset") -> int:
    """Ints in a sample's `_cursor` tensor: global worker, the state, the token offset."""
    assert ds.mixture_plan is not None
    return 1 + len(MixtureSampler(ds.mixture_plan, 0, 1).state()) + 1


def iter_mixture(ds: "CorpusDataset", g: int, total: int, start: tuple[int, ...] | None) -> Iterator[dict[str, Any]]:
    assert ds.mixture_plan is not None
    sampler = MixtureSampler(ds.mixture_plan, g, total, poll_interval=ds.poll_interval, idle_timeout=ds.idle_timeout,
                             state=start[:-1] if start else None)
    skip0 = start[-1] if start else 0
    if ds.tokenizer is None:
        yield from _documents(ds, g, sampler)
    else:
        yield from _packed(ds, g, sampler, skip0)


def _documents(ds: "CorpusDataset", g: int, sampler: MixtureSampler) -> Iterator[dict[str, Any]]:
    for _, doc in DocumentReader(sampler, ds.columns, with_state=False):
        cursor = (*sampler.state(), 0)
        ds.cursors[g] = cursor
        sample = {c: doc[c] for c in ds.columns}
        sample["group"], sample["group_epoch"] = doc["group"], doc["group_epoch"]
        sample["_cursor"] = torch.tensor((g, *cursor), dtype=torch.long)
        yield sample


def _packed(ds: "CorpusDataset", g: int, sampler: MixtureSampler, skip0: int) -> Iterator[dict[str, Any]]:
    encode, eos = ds.encoder(), ds.resolve_eos()
    seq_len = ds.seq_len
    assert seq_len is not None
    docs = iter(DocumentReader(sampler, [ds.text_column]))
    pending: list[list] = []  # [state before the document, offset of tokens[0] in it, tokens]
    have, first = 0, True
    last: tuple[int, ...] = ()
    while True:
        chunk = list(islice(docs, ds.tokenize_batch))
        if not chunk:
            return
        for (before, _), ids in zip(chunk, encode([d[ds.text_column] or "" for _, d in chunk])):
            ids = list(ids)
            if eos is not None:
                ids.append(eos)
            skip = skip0 if first else 0
            first = False
            if skip >= len(ids):
                continue
            pending.append([before, skip, ids[skip:]])
            have += len(ids) - skip
            while have >= seq_len:
                out: list[int] = []
                while len(out) < seq_len:
                    seg = pending[0]
                    take = min(seq_len - len(out), len(seg[2]))
                    out.extend(seg[2][:take])
                    if take == len(seg[2]):
                        pending.pop(0)
                        last = (*seg[0], seg[1] + take)
                    else:
                        seg[1] += take
                        seg[2] = seg[2][take:]
                have -= seq_len
                cursor = (*pending[0][0], pending[0][1]) if pending else last
                ds.cursors[g] = cursor
                yield {"input_ids": torch.tensor(out, dtype=torch.long),
                       "_cursor": torch.tensor((g, *cursor), dtype=torch.long)}
