"""PyTorch feed: a resumable, deterministic `IterableDataset` over committed shards.

Work is split in *units* (one Parquet row group of one committed shard).  Each
(rank, DataLoader worker) pair, a "global worker" g of `world_size * num_workers`,
owns a fixed, deterministic list of units (its *stream*):

* snapshot mode: all units of commits `since`+1..`commit`, permuted by
  (seed, epoch), dealt round-robin: g gets units[g::total]; with `epochs`
  > 1 (or None: forever) the next epoch's units follow in the same stream;
* follow mode: the units of each commit, permuted by (seed, epoch, commit),
  dealt the same way, appended commit by commit as commits appear (a
  worker's stream only ever grows at the end, so positions in it stay valid).

Rows inside a unit are permuted by (seed, epoch, unit).  A worker's position is
a cursor (unit index in its stream, row, token offset inside that row's tokens):
every sample carries the cursor *after* it, `StatefulLoader` records the cursor
of each batch it hands out, and `state_dict()` is those cursors.  A resumed job
restarts each worker exactly there: no document (no token) repeated or skipped.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from refinery.corpus.filters import Filter
from refinery.corpus.reader import Corpus, Shard

STATE_VERSION = 1
EOS_CANDIDATES = ("<|endoftext|>", "</s>", "<eos>", "[EOS]", "<|eos|>", "[SEP]")
Cursor = tuple[int, int, int]  # (unit index in the worker's stream, row, token offset)
Unit = tuple[int, int, int]  # (commit, shard index within the commit, row group)
EpochUnit = tuple[int, int, int, int]  # (epoch, commit, shard index, row group)


def _rank_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    if rank is not None and world_size is not None:
        return rank, world_size
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([int(k) for k in key])


class CorpusDataset(IterableDataset):
    """Packed token sequences (with a tokenizer) or documents (without one) from a corpus store.

    tokenizer: a `tokenizers.Tokenizer`, a path to a tokenizer.json, or a callable
    `list[str] -> list[list[int]]`.  Documents are joined with `eos_id` ("auto":
    the tokenizer's end-of-text token; None: no separator) and cut into samples of
    exactly `seq_len` tokens; a worker's final partial sample is dropped.

    mixture: a mixture spec (YAML path, dict or MixtureSpec): documents are drawn as its
    weighted groups say, resumable the same way (refinery/corpus/mixed_feed.py, docs/corpus.md).
    """

    def __init__(
        self,
        corpus: Corpus | str,
        tokenizer: Any = None,
        seq_len: int | None = None,
        *,
        commit: int | None = None,
        since: int = 0,
        follow: bool = False,
        seed: int = 0,
        shuffle: bool = True,
        epochs: int | None = 1,
        filter: Filter = None,
        text_column: str = "text",
        columns: Sequence[str] | None = None,
        eos_id: int | str | None = "auto",
        rank: int | None = None,
        world_size: int | None = None,
        poll_interval: float = 5.0,
        idle_timeout: float | None = None,
        tokenize_batch: int = 64,
        storage_options: dict[str, Any] | None = None,
        mixture: Any = None,
    ) -> None:
        super().__init__()
        self.corpus = corpus if isinstance(corpus, Corpus) else Corpus(corpus, **(storage_options or {}))
        if tokenizer is not None and (seq_len is None or seq_len < 1):
            raise ValueError("seq_len (>= 1) is required with a tokenizer")
        if follow and commit is not None:
            raise ValueError("follow=True reads every new commit: pin a start with since=, not commit=")
        self.tokenizer = tokenizer
        self.seq_len = seq_len
        self.since = since
        self.follow = follow
        self.commit = None if follow else self.corpus.resolve_commit(commit)  # pinned now, saved in state
        self.seed, self.shuffle, self.epoch = seed, shuffle, 0
        if epochs is not None and epochs < 1:
            raise ValueError("epochs must be >= 1 (None: repeat forever)")
        self.epochs = 1 if follow else epochs
        self.filter = filter
        self.text_column = text_column
        self.columns = list(columns) if columns is not None else ["doc_id", text_column]
        self.eos_id = eos_id
        self.rank, self.world_size = _rank_world(rank, world_size)
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} outside world_size {self.world_size}")
        self.poll_interval, self.idle_timeout = poll_interval, idle_timeout
        self.tokenize_batch = tokenize_batch
        self.num_workers: int | None = None  # set by StatefulLoader or the first iteration
        self.cursors: dict[int, Cursor] = {}
        # DataLoader hands out batches round-robin from worker 0; a resumed loader must
        # start that round at the worker that was next, so worker i serves slot i + offset.
        self._next_slot = 0
        self._slot_offset = 0
        self._row_groups: dict[int, list[tuple[Shard, int]]] = {}
        self.mixture_plan = None  # a mixture (docs/corpus.md, "Mixtures"): groups, weights, caps; see mixed_feed.py
        self._cursor_width = 4
        if mixture is not None:
            self._init_mixture(mixture)
        elif self.commit is not None:
            for c in range(since + 1, self.commit + 1):
                self._commit_units(c)  # footers read once here, inherited by workers

    def _init_mixture(self, mixture: Any, start: int | None = None) -> None:
        from refinery.corpus.mixed_feed import cursor_width
        from refinery.corpus.mixture import MixtureSpec
        from refinery.corpus.sampler import MixturePlan

        if self.filter is not None:
            raise ValueError("with a mixture, put filters in its groups (filter= applies to plain streams)")
        spec = MixtureSpec.load(mixture)
        self.mixture_plan = MixturePlan(self.corpus, spec, self.seed, since=self.since,
                                 commit=start if start is not None else self.commit, follow=self.follow)
        if not self.follow:
            self.commit = self.mixture_plan.start
        self._cursor_width = cursor_width(self)

    # -- planning ----------------------------------------------------------------
    def _commit_units(self, commit: int) -> list[tuple[Shard, int]]:
        if commit not in self._row_groups:
            shards = self.corpus.shards(commit, since=commit - 1)
            self._row_groups[commit] = [(s, self.corpus.num_row_groups(s)) for s in shards]
        return self._row_groups[commit]

    def _units_of(self, commit: int) -> list[Unit]:
        return [(commit, si, rg) for si, (_, n) in enumerate(self._commit_units(commit)) for rg in range(n)]

    def _deal(self, units: list[Unit], g: int, total: int, epoch: int, key: tuple[int, ...], offset: int) -> list[EpochUnit]:
        if self.shuffle and units:
            units = [units[i] for i in _rng(self.seed, epoch, *key).permutation(len(units))]
        return [(epoch, *u) for u in units[(g - offset) % total :: total]]

    def _snapshot_stream(self, g: int, total: int, epoch: int) -> list[EpochUnit]:
        assert self.commit is not None
        units = [u for c in range(self.since + 1, self.commit + 1) for u in self._units_of(c)]
        return self._deal(units, g, total, epoch, (), 0)

    def _commit_stream(self, commit: int, g: int, total: int) -> list[EpochUnit]:
        return self._deal(self._units_of(commit), g, total, self.epoch, (commit,), commit)

    # -- reading -----------------------------------------------------------------
    def _read_unit(self, unit: EpochUnit, columns: list[str]) -> dict[str, list]:
        epoch, commit, si, rg = unit
        shard = self._commit_units(commit)[si][0]
        read = lambda: self.corpus.read_row_group(shard, rg, columns, self.filter)  # noqa: E731
        table = self.corpus.patiently(f"reading {shard.path}", read) if self.follow else read()
        if self.shuffle and table.num_rows:
            table = table.take(_rng(self.seed, epoch, commit, si, rg).permutation(table.num_rows))
        return table.to_pydict()

    def encoder(self) -> Callable[[list[str]], list[list[int]]]:
        tok = self.tokenizer
        if isinstance(tok, (str, os.PathLike)):
            from tokenizers import Tokenizer

            tok = self.tokenizer = Tokenizer.from_file(os.fspath(tok))
        if hasattr(tok, "encode_batch"):
            fast = getattr(tok, "encode_batch_fast", tok.encode_batch)
            return lambda texts: [e.ids for e in fast(texts, add_special_tokens=False)]
        if callable(tok):
            return tok
        raise TypeError(f"tokenizer must be a tokenizers.Tokenizer, a tokenizer.json path or a callable, not {type(tok).__name__}")

    def resolve_eos(self) -> int | None:
        if self.eos_id != "auto":
            return None if self.eos_id is None else int(self.eos_id)
        to_id = getattr(self.tokenizer, "token_to_id", None)
        for name in EOS_CANDIDATES if to_id else ():
            i = to_id(name)
            if i is not None:
                return i
        raise ValueError(f"no end-of-text token ({', '.join(EOS_CANDIDATES)}) in the tokenizer: pass eos_id= (None: no separator)")

    def _stream(self, g: int, total: int, start: int = 0) -> Iterator[tuple[int, EpochUnit]]:
        """(index, unit) of this worker's stream from about `start`; follow mode waits for new commits.

        Snapshot mode chains `epochs` passes (epoch, epoch+1, ...), so packing and
        positions run on across epoch boundaries without restarting workers.
        """
        if not self.follow:
            per_epoch = len(self._snapshot_stream(g, total, self.epoch))
            if per_epoch == 0:
                return
            skip = start // per_epoch  # whole passes already done: no need to enumerate them
            e, pos = self.epoch + skip, skip * per_epoch
            while self.epochs is None or e < self.epoch + self.epochs:
                for unit in self._snapshot_stream(g, total, e):
                    yield pos, unit
                    pos += 1
                e += 1
            return
        pos, seen = 0, self.since
        while True:
            latest = self.corpus.patiently("listing commits", self.corpus.latest)
            if latest <= seen:
                latest = self.corpus.wait_for_commit(seen, self.poll_interval, self.idle_timeout) or 0
                if latest <= seen:
                    return
            for c in range(seen + 1, latest + 1):
                for unit in self.corpus.patiently(f"reading commit {c}", lambda: self._commit_stream(c, g, total)):
                    yield pos, unit
                    pos += 1
            seen = latest

    def _documents(self, start: Cursor, g: int, total: int, columns: list[str]) -> Iterator[tuple[int, int, dict[str, list], int]]:
        """(unit index, row, the unit's columns, row count) for rows at or after `start`."""
        epoch, rows_in_epoch, whole = None, 0, False
        for pos, unit in self._stream(g, total, start[0]):
            if unit[0] != epoch:  # a whole pass with no row (a filter drops all): endless epochs would spin
                if whole and rows_in_epoch == 0 and not self.follow:
                    return
                epoch, rows_in_epoch, whole = unit[0], 0, pos >= start[0]
            if pos < start[0]:
                continue
            data = self._read_unit(unit, columns)
            n = len(next(iter(data.values()))) if data else 0
            rows_in_epoch += n
            first = start[1] if pos == start[0] else 0
            for row in range(first, n):
                yield pos, row, data, n

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        num_workers, wid = (1, 0) if info is None else (info.num_workers, info.id)
        if self.num_workers is not None and self.num_workers != num_workers and self.cursors:
            raise ValueError(f"state was saved with {self.num_workers} workers per rank; this loader has {num_workers}")
        self.num_workers = num_workers
        total = self.world_size * num_workers
        g = self.rank * num_workers + (wid + self._slot_offset) % num_workers
        if self.mixture_plan is not None:
            from refinery.corpus.mixed_feed import iter_mixture

            yield from iter_mixture(self, g, total, self.cursors.get(g))
            return
        start = self.cursors.get(g, (0, 0, 0))
        if self.tokenizer is None:
            yield from self._iter_documents(g, total, start)
        else:
            yield from self._iter_packed(g, total, start)

    def _iter_documents(self, g: int, total: int, start: Cursor) -> Iterator[dict[str, Any]]:
        for pos, row, data, _ in self._documents(start, g, total, self.columns):
            cursor = (pos, row + 1, 0)
            self.cursors[g] = cursor
            sample = {c: data[c][row] for c in self.columns}
            sample["_cursor"] = torch.tensor((g, *cursor), dtype=torch.long)
            yield sample

    def _iter_packed(self, g: int, total: int, start: Cursor) -> Iterator[dict[str, Any]]:
        encode, eos = self.encoder(), self.resolve_eos()
        seq_len = self.seq_len
        assert seq_len is not None
        # pending segments: [unit index, row, offset of tokens[0] in the document, tokens]
        pending: list[list] = []
        have = 0
        cache: tuple[int, int, list[list[int]]] | None = None  # (unit index, first row, encoded rows)
        for pos, row, data, n in self._documents(start, g, total, [self.text_column]):
            if cache is None or cache[0] != pos or not cache[1] <= row < cache[1] + len(cache[2]):
                texts = [t or "" for t in data[self.text_column][row : row + self.tokenize_batch]]
                cache = (pos, row, encode(texts))
            ids = list(cache[2][row - cache[1]])
            if eos is not None:
                ids.append(eos)
            skip = start[2] if (pos, row) == start[:2] else 0
            if skip >= len(ids):
                continue
            pending.append([pos, row, skip, ids[skip:]])
            have += len(ids) - skip
            while have >= seq_len:
                out: list[int] = []
                while len(out) < seq_len:
                    seg = pending[0]
                    take = min(seq_len - len(out), len(seg[3]))
                    out.extend(seg[3][:take])
                    if take == len(seg[3]):
                        pending.pop(0)
                        last = (seg[0], seg[1], seg[2] + take)
                    else:
                        seg[2] += take
                        seg[3] = seg[3][take:]
                have -= seq_len
                cursor = tuple(pending[0][:3]) if pending else last
                self.cursors[g] = cursor  # type: ignore[assignment]
                yield {"input_ids": torch.tensor(out, dtype=torch.long),
                       "_cursor": torch.tensor((g, *cursor), dtype=torch.long)}

    # -- epochs and state ------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Start at epoch `epoch` from its beginning (each epoch has its own deterministic order)."""
        if self.mixture_plan is not None:
            raise ValueError("a mixture stream has no dataset epochs: each group has its own (max_epochs)")
        self.epoch = epoch
        self.cursors = {}
        self._next_slot = 0

    def observe(self, cursors: torch.Tensor) -> None:
        """Record the cursor of a batch handed to the training loop (done by StatefulLoader)."""
        row = cursors.reshape(-1, self._cursor_width)[-1].tolist()
        self.cursors[int(row[0])] = tuple(int(v) for v in row[1:])  # type: ignore[assignment]
        workers = self.num_workers or 1
        self._next_slot = (int(row[0]) % workers + 1) % workers

    def state_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION, "uri": self.corpus.uri, "seed": self.seed, "epoch": self.epoch,
            "shuffle": self.shuffle, "epochs": self.epochs, "follow": self.follow, "since": self.since, "commit": self.commit,
            "seq_len": self.seq_len, "rank": self.rank, "world_size": self.world_size,
            "num_workers": self.num_workers, "next_worker": self._next_slot, "cursors": {str(k): list(v) for k, v in sorted(self.cursors.items())},
            **({"mixture": self.mixture_plan.spec.digest(), "mixture_start": self.mixture_plan.start} if self.mixture_plan is not None else {}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unknown state version {state.get('version')!r}")
        for key in ("seed", "shuffle", "epochs", "follow", "since", "seq_len", "rank", "world_size"):
            if state[key] != getattr(self, key):
                raise ValueError(f"state was saved with {key}={state[key]!r}, this dataset has {getattr(self, key)!r}")
        if self.mixture_plan is not None or state.get("mixture") is not None:
            mine = self.mixture_plan.spec.digest() if self.mixture_plan is not None else None
            if state.get("mixture") != mine:
                raise ValueError(f"state was saved with mixture {state.get('mixture')!r}, this dataset has {mine!r}")
            assert self.mixture_plan is not None
            if state["mixture_start"] != self.mixture_plan.start:  # resume on the commits the state was saved on
                self._init_mixture(self.mixture_plan.spec, int(state["mixture_start"]))
        elif state["commit"] != self.commit:  # resume reads the snapshot it started on
            self.commit = self.corpus.resolve_commit(state["commit"])
            for c in range(self.since + 1, self.commit + 1):
                self._commit_units(c)
        self.epoch = state["epoch"]
        self.num_workers = state["num_workers"]
        self._next_slot = int(state.get("next_worker", 0))
        self.cursors = {int(k): tuple(int(x) for x in v) for k, v in state["cursors"].items()}  # type: ignore[misc]


class StatefulLoader:
    """A `torch.utils.data.DataLoader` over a CorpusDataset that keeps its resume state.

    Each batch comes from one worker; the loader records that worker's cursor as
    the batch is handed out (prefetched batches not yet handed out are not
    counted), so `state_dict()` after step k resumes with batch k+1.
    """

    def __init__(self, dataset: CorpusDataset, batch_size: int, num_workers: int = 0, **kwargs: Any) -> None:
        self.dataset = dataset
        if num_workers > 0 and dataset.follow:
            kwargs.setdefault("in_order", False)  # one worker waiting for a commit must not stall the others
        if num_workers > 0:
            kwargs.setdefault("persistent_workers", False)
        self._kwargs = dict(batch_size=batch_size, num_workers=num_workers, **kwargs)
        self.num_workers = num_workers

    def __iter__(self) -> Iterator[dict[str, Any]]:
        workers = max(1, self.num_workers)
        if self.dataset.num_workers not in (None, workers) and self.dataset.cursors:
            raise ValueError(f"state was saved with {self.dataset.num_workers} workers per rank; this loader has {workers}")
        self.dataset.num_workers = workers
        self.dataset._slot_offset = self.dataset._next_slot  # continue the round-robin where it stopped
        for batch in DataLoader(self.dataset, **self._kwargs):
            self.dataset.observe(batch.pop("_cursor"))
            yield batch

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)

    def state_dict(self) -> dict[str, Any]:
        return self.dataset.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.dataset.load_state_dict(state)
