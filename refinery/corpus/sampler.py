"""Drawing a mixture: a group index per commit, a deterministic per-worker schedule, exact state.

Method (docs/corpus.md, "Mixtures"):

1. *Index.*  Each commit's shards are read once for the filter columns only;
   every row gets at most one group.  The index holds (shard, row group, row)
   per group: no document text.  By tokens, a document's whitespace words are
   counted from its text when it is drawn (the reader reads the text anyway).
2. *Deal.*  A commit's documents of group G, ordered by a (seed, commit) random
   priority of their row groups (the same for every group), are cut into `total`
   contiguous chunks of equal size (+-1); global worker g (rank * num_workers +
   worker id) gets one.  Every document is in exactly one worker's pool, every
   worker has about 1/total of each group, and a row group's documents of all
   groups mostly go to one worker.
3. *Epochs.*  A group's epoch e in worker g is a pass over its pool: pieces (one
   row group's documents of G) ordered by a (seed, g, e) priority of their row
   group (again shared by the groups, so they visit row groups in one order and
   the reader's cache of decoded row groups serves them all), rows inside a piece
   permuted by (seed, G, piece, e).  Commits joining during the epoch (follow
   mode) are appended to it, so a document is drawn at most once per epoch of its
   group.  `max_epochs` caps the passes; a capped-out group is *dry*.
4. *Schedule.*  Each draw takes the live group with the smallest (drawn + 1) /
   weight (D'Hondt apportionment; by tokens: drawn tokens / weight; ties to the
   first group): in every prefix of a worker's stream no group is a whole
   document behind its target, hence none more than (groups - 1) ahead, and the
   union of the workers' streams is as close (by tokens: within a document's
   tokens).  A dry
   group's share goes to the others (`on_dry: redistribute`, the others keep
   their ratios) or the stream waits for a commit that refills it (`wait`; in a
   snapshot: the stream ends).  A refilled group starts level with the others
   (no catch-up burst).
5. *State.*  The whole schedule state is a short tuple of ints (joined commit;
   per group epoch, position, epoch-start commit, documents, tokens, dry): a
   cursor that restarts the stream exactly at the next document.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from refinery.corpus.mixture import DERIVED_COLUMNS, MixtureError, MixtureSpec
from refinery.store.stats import word_counts

if TYPE_CHECKING:  # annotations only: reader.Corpus.mixture() imports this module
    from refinery.corpus.reader import Corpus, Shard

log = logging.getLogger(__name__)
GROUP_FIELDS = 6  # epoch, pos, base, docs, tokens, dry
# Decoded row groups a worker keeps: groups that visit the same row group share one read.
CACHE_BYTES = 64 << 20
_HOST = r"^[a-zA-Z][a-zA-Z0-9+.-]*://(?:[^@/?#]*@)?(?P<host>[^/:?#]*)"


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([int(k) for k in key])


def _priority(units: np.ndarray, *key: int) -> np.ndarray:
    """A random priority per row group (si << 32 | rg), the same whichever group asks: sorting pieces
    by it makes every group of a worker visit row groups in one order (a row group read for one
    group is soon wanted by the others: the reader's cache hits), and deals a row group's pieces of
    all groups to the same worker."""
    mix = np.uint64(_rng(*key).integers(1 << 62))
    x = units.astype(np.uint64) ^ mix
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)  # splitmix64 finaliser
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def domains(urls: pa.ChunkedArray | pa.Array) -> pa.Array:
    """The `domain` derived column: host of the URL, lower-cased, without a leading `www.`."""
    host = pc.struct_field(pc.extract_regex(urls, _HOST), [0])
    return pc.replace_substring_regex(pc.utf8_lower(host), r"^www\.", "")


@dataclass(frozen=True)
class Piece:
    """One row group's documents of one group, dealt to one worker."""

    commit: int
    shard: int  # index within the commit
    row_group: int
    rows: np.ndarray  # rows within the row group, ascending
    tokens: np.ndarray  # whitespace words of each row (only with MixturePlan(count_tokens=True); else 1s)


class MixturePlan:
    """The group index of a corpus for one spec and seed; shared by all workers (picklable)."""

    def __init__(self, corpus: Corpus, spec: MixtureSpec, seed: int, *, since: int = 0, commit: int | None = None,
                 follow: bool = False, count_tokens: bool = False) -> None:
        """count_tokens: also count each document's words in the index (reads the text: for figures;
        drawing counts a document's words when it is drawn instead)."""
        self.corpus, self.spec, self.seed, self.since, self.follow = corpus, spec, seed, since, follow
        self.count_tokens = count_tokens
        self.start = corpus.resolve_commit(commit)  # snapshot (or follow mode's first) commit, pinned now
        self._index: dict[int, list[tuple[np.ndarray, ...]]] = {}
        self._shards: dict[int, list[Shard]] = {}
        self._exprs = [spec.expression(i) for i in range(len(spec.groups))]
        totals = np.zeros(len(spec.groups), dtype=np.int64)
        for c in range(since + 1, self.start + 1):
            totals += [len(a[0]) for a in self.index(c)]
        empty = [g.name for g, n in zip(spec.groups, totals) if n == 0]
        if empty:
            what = f"commits {since + 1}..{self.start}" if self.start > since else "the store (no commits)"
            raise MixtureError(f"mixture group(s) {', '.join(map(repr, empty))} match no document in {what} "
                               f"of {corpus.uri}")
        self.initial_docs = totals

    # -- index -----------------------------------------------------------------------
    def shards(self, commit: int) -> list[Shard]:
        if commit not in self._shards:
            self._shards[commit] = self.corpus.shards(commit, since=commit - 1)
        return self._shards[commit]

    def index(self, commit: int) -> list[tuple[np.ndarray, ...]]:
        """Per group: (shard, row group, row, tokens) arrays of the commit's documents."""
        if commit not in self._index:
            self._index[commit] = self._build(commit)
        return self._index[commit]

    def _columns(self, schema: pa.Schema) -> list[str]:
        names = set(schema.names)
        for g in self.spec.groups:
            bad = [c for c in g.filter if c not in names and c not in DERIVED_COLUMNS]
            if bad:
                raise MixtureError(f"mixture group {g.name!r}: no column(s) {', '.join(bad)} in the corpus; "
                                   f"it has {', '.join(schema.names)} (and derived: {', '.join(DERIVED_COLUMNS)})")
        used = set(self.spec.columns())
        cols = sorted((used - set(DERIVED_COLUMNS)) | ({"url"} if "domain" in used else set()) | {"doc_id"})
        if self.count_tokens:
            cols.append("text")
        return [c for c in dict.fromkeys(cols) if c in names]

    def _build(self, commit: int) -> list[tuple[np.ndarray, ...]]:
        n_groups = len(self.spec.groups)
        parts: list[list[tuple[np.ndarray, ...]]] = [[] for _ in range(n_groups)]
        for si, shard in enumerate(self.shards(commit)):
            frag = self.corpus.fragment(shard)
            table = frag.to_table(columns=self._columns(frag.physical_schema))
            sizes = [frag.metadata.row_group(i).num_rows for i in range(frag.metadata.num_row_groups)]
            rg = np.repeat(np.arange(len(sizes), dtype=np.int32), sizes)
            row = np.concatenate([np.arange(s, dtype=np.int32) for s in sizes]) if sizes else np.zeros(0, np.int32)
            n = table.num_rows
            tokens = word_counts(table.column("text")) if self.count_tokens else np.ones(n, np.int64)
            used = self.spec.columns()
            if "commit" in used and "commit" not in table.column_names:  # a real column wins over a derived one
                table = table.append_column("commit", pa.array(np.full(n, commit, dtype=np.int64)))
            if "domain" in used and "domain" not in table.column_names:
                urls = table.column("url") if "url" in table.column_names else pa.nulls(n, pa.string())
                table = table.append_column("domain", domains(urls))
            table = table.append_column("__row", pa.array(np.arange(n, dtype=np.int64)))
            owner = np.full(n, -1, dtype=np.int32)
            for gi, expr in enumerate(self._exprs):
                try:
                    idx = np.arange(n) if expr is None else table.filter(expr).column("__row").to_numpy()
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError) as err:
                    raise MixtureError(f"mixture group {self.spec.groups[gi].name!r}: cannot apply the filter "
                                       f"to {shard.path}: {err}") from None
                taken = idx[owner[idx] >= 0]
                if len(taken) and self.spec.overlap == "refuse":
                    other = self.spec.groups[int(owner[taken[0]])].name
                    doc = table.column("doc_id")[int(taken[0])].as_py() if "doc_id" in table.column_names else taken[0]
                    raise MixtureError(f"mixture groups {other!r} and {self.spec.groups[gi].name!r} overlap "
                                       f"(document {doc} in commit {commit} matches both); make the filters "
                                       f"disjoint or set `overlap: first`")
                idx = idx[owner[idx] < 0]
                owner[idx] = gi
            for gi in range(n_groups):
                sel = np.flatnonzero(owner == gi)
                parts[gi].append((np.full(len(sel), si, np.int32), rg[sel], row[sel], tokens[sel].astype(np.int64)))
        out = []
        for gi in range(n_groups):
            if parts[gi]:
                out.append(tuple(np.concatenate([p[k] for p in parts[gi]]) for k in range(4)))
            else:
                out.append(tuple(np.zeros(0, t) for t in (np.int32, np.int32, np.int32, np.int64)))
        return out

    # -- dealing ---------------------------------------------------------------------
    def pieces(self, commit: int, gi: int, g: int, total: int) -> list[Piece]:
        """Worker g's share of group gi's documents in `commit` (see the module docstring, step 2)."""
        si, rg, row, tok = self.index(commit)[gi]
        if len(si) == 0:
            return []
        key = si.astype(np.int64) << 32 | rg.astype(np.int64)
        units, inverse = np.unique(key, return_inverse=True)
        rank = np.empty(len(units), dtype=np.int64)
        rank[np.argsort(_priority(units, self.seed, 1, commit), kind="stable")] = np.arange(len(units))
        order = np.lexsort((row, rank[inverse]))
        n = len(order)
        k = (g + commit) % total  # rotate which workers get the larger chunks
        sel = order[k * n // total:(k + 1) * n // total]
        out: list[Piece] = []
        if len(sel) == 0:
            return out
        cut = np.flatnonzero(np.diff(key[sel])) + 1
        for part in np.split(sel, cut):
            part = part[np.argsort(row[part], kind="stable")]
            out.append(Piece(commit, int(si[part[0]]), int(rg[part[0]]), row[part].astype(np.int64), tok[part]))
        return out


def _shuffled(pieces: list[Piece], *key: int) -> list[Piece]:
    """Pieces in the order of their row groups' priority (commit, shard, row group) under `key`."""
    if not pieces:
        return []
    ids = np.array([(p.commit << 48) | (p.shard << 24) | p.row_group for p in pieces], dtype=np.int64)
    return [pieces[i] for i in np.argsort(_priority(ids, *key), kind="stable")]


class _Order:
    """One group's epoch in one worker: pieces in order and their cumulative sizes."""

    def __init__(self, pieces: list[Piece]) -> None:
        self.pieces = pieces
        self.ends = np.cumsum([len(p.rows) for p in pieces], dtype=np.int64)
        self.size = int(self.ends[-1]) if len(pieces) else 0

    def locate(self, pos: int) -> tuple[int, int]:
        i = int(np.searchsorted(self.ends, pos, side="right"))
        return i, pos - (int(self.ends[i - 1]) if i else 0)


class MixtureSampler:
    """The schedule of one global worker g of `total`: which document comes next, and the exact state.

    The state is one flat list of ints, `st`: st[0] is the newest commit joined; group i
    has the six fields at st[1 + 6i:7 + 6i]: epoch, position in the epoch, the commit
    the epoch started at (its pool: commits since+1..that one; later ones are appended),
    documents drawn, tokens drawn, dry flag.
    """

    EPOCH, POS, BASE, DOCS, TOKENS, DRY = range(GROUP_FIELDS)

    def __init__(self, plan: MixturePlan, g: int, total: int, *, poll_interval: float = 5.0,
                 idle_timeout: float | None = None, stop: threading.Event | None = None,
                 state: Sequence[int] | None = None) -> None:
        self.plan, self.g, self.total = plan, g, total
        self.spec = plan.spec
        self.weights = [gr.weight for gr in self.spec.groups]
        self.caps = [gr.max_epochs for gr in self.spec.groups]
        self.by_tokens = self.spec.share == "tokens"
        self.poll_interval, self.idle_timeout, self.stop = poll_interval, idle_timeout, stop
        self.n = len(self.spec.groups)
        self.st = [plan.start] + [plan.start if f == self.BASE else 0 for _ in range(self.n) for f in range(GROUP_FIELDS)]
        self._pool: dict[tuple[int, int], list[Piece]] = {}
        self._orders: dict[int, tuple[tuple[int, int, int], _Order]] = {}
        self._perms: dict[int, tuple[tuple, np.ndarray]] = {}
        self._last_poll = time.monotonic()
        self.reported: set[int] = set()
        self._reset_caches()
        if state is not None:
            self.load(state)

    def _reset_caches(self) -> None:
        self._sizes = [-1] * self.n  # the current epoch order's size per group (-1: not built)
        self._some_dry = bool(self.dry)
        self._cur = [(-1, 0, 0)] * self.n  # (piece index, its first position, its end) per group

    # -- state ---------------------------------------------------------------------------
    def state(self) -> tuple[int, ...]:
        return tuple(self.st)

    def load(self, state: Sequence[int]) -> None:
        if len(state) != 1 + GROUP_FIELDS * self.n:
            raise ValueError(f"mixture state has {len(state)} fields; this spec ({self.n} groups) "
                             f"needs {1 + GROUP_FIELDS * self.n}")
        self.st = [int(v) for v in state]
        self._orders = {}
        self._reset_caches()

    @property
    def joined(self) -> int:
        return self.st[0]

    def field(self, gi: int, f: int) -> int:
        return self.st[1 + GROUP_FIELDS * gi + f]

    @property
    def dry(self) -> list[int]:
        return [i for i in range(self.n) if self.field(i, self.DRY)]

    # -- pools and epochs ------------------------------------------------------------------
    def _commit_pieces(self, commit: int, gi: int) -> list[Piece]:
        key = (commit, gi)
        if key not in self._pool:
            fn = lambda: self.plan.pieces(commit, gi, self.g, self.total)  # noqa: E731
            self._pool[key] = self.plan.corpus.patiently(f"indexing commit {commit}", fn) if self.plan.follow else fn()
        return self._pool[key]

    def _order(self, gi: int) -> _Order:
        b = 1 + GROUP_FIELDS * gi
        epoch, base = self.st[b + self.EPOCH], self.st[b + self.BASE]
        ident = (epoch, base, self.joined)
        cached = self._orders.get(gi)
        if cached is not None and cached[0] == ident:
            return cached[1]
        seed = self.plan.seed
        pool = [p for c in range(self.plan.since + 1, base + 1) for p in self._commit_pieces(c, gi)]
        pieces = _shuffled(pool, seed, 2, self.g, epoch)
        for c in range(base + 1, self.joined + 1):  # joined during this epoch: appended to it
            pieces += _shuffled(self._commit_pieces(c, gi), seed, 3, self.g, epoch, c)
        order = _Order(pieces)
        self._orders[gi] = (ident, order)
        self._sizes[gi] = order.size
        self._cur[gi] = (-1, 0, 0)
        return order

    def _alive(self, gi: int) -> bool:
        b = 1 + GROUP_FIELDS * gi
        if self.st[b + self.POS] < self._order(gi).size:
            return True
        cap = self.caps[gi]
        if cap is not None and self.st[b + self.EPOCH] + 1 >= cap:
            return False
        return any(self._commit_pieces(c, gi) for c in range(self.plan.since + 1, self.joined + 1))

    def rows_of(self, gi: int, piece: Piece, epoch: int) -> np.ndarray:
        """A piece's rows in the epoch's order (indices into piece.rows)."""
        key = (self.plan.seed, 4, gi, piece.commit, piece.shard, piece.row_group, epoch)
        cached = self._perms.get(gi)
        if cached is None or cached[0] != key:
            cached = self._perms[gi] = (key, _rng(*key).permutation(len(piece.rows)))
        return cached[1]

    # -- following ---------------------------------------------------------------------------
    def _join(self, latest: int) -> None:
        if latest > self.joined:
            for c in range(self.joined + 1, latest + 1):
                self.plan.corpus.patiently(f"indexing commit {c}", lambda: self.plan.index(c))
            self.st[0] = latest
            self._reset_caches()

    def _poll(self) -> None:
        now = time.monotonic()
        if now - self._last_poll >= self.poll_interval:
            self._last_poll = now
            self._join(self.plan.corpus.patiently("listing commits", self.plan.corpus.latest))

    def _wait(self) -> bool:
        """Follow mode: block until a new commit is joined (False: idle timeout, stop, or a snapshot)."""
        if not self.plan.follow:
            return False
        latest = self.plan.corpus.wait_for_commit(self.joined, self.poll_interval, self.idle_timeout, stop=self.stop)
        if latest is None:
            return False
        self._join(latest)
        self._last_poll = time.monotonic()
        return True

    # -- drawing -------------------------------------------------------------------------------
    def next(self) -> tuple[int, Piece, int, int] | None:
        """The next document: (group, piece, index into the piece's epoch order, group epoch); None at the end."""
        if self.plan.follow:
            self._poll()
        st, F = self.st, GROUP_FIELDS
        while True:
            sizes = self._sizes
            alive = [st[1 + F * i + self.POS] < sizes[i] or self._alive(i) for i in range(self.n)]
            if all(alive) and not self._some_dry:
                break
            self._mark(alive)
            if any(alive) and (self.spec.on_dry == "redistribute" or all(alive)):
                break
            if not self._wait():
                return None
        f = self.TOKENS if self.by_tokens else self.DOCS
        bump = 0 if self.by_tokens else 1
        gi, best = -1, 0.0
        for i in range(self.n):
            if alive[i]:
                v = (st[1 + F * i + f] + bump) / self.weights[i]
                if gi < 0 or v < best:
                    gi, best = i, v
        b = 1 + F * gi
        if st[b + self.POS] >= self._sizes[gi]:  # a new pass over everything joined so far
            st[b + self.EPOCH] += 1
            st[b + self.POS] = 0
            st[b + self.BASE] = self.joined
            order = self._order(gi)
        else:
            order = self._orders[gi][1]
        pos = st[b + self.POS]
        pi, start, end = self._cur[gi]
        if not start <= pos < end:
            if pi >= 0 and pos == end and pi + 1 < len(order.pieces):
                pi, start = pi + 1, end
            else:
                pi, _ = order.locate(pos)
                start = int(order.ends[pi - 1]) if pi else 0
            end = int(order.ends[pi])
            self._cur[gi] = (pi, start, end)
        piece, r, epoch = order.pieces[pi], pos - start, st[b + self.EPOCH]
        st[b + self.POS] = pos + 1
        st[b + self.DOCS] += 1
        if not self.by_tokens:
            st[b + self.TOKENS] += 1
        return gi, piece, r, epoch

    def count(self, gi: int, words: int) -> None:
        """By tokens: the drawn document's whitespace words (counted by the reader from its text)."""
        self.st[1 + GROUP_FIELDS * gi + self.TOKENS] += words

    def _mark(self, alive: list[bool]) -> None:
        """Flag groups that ran dry (reported once), and level the ones refilled by a new commit."""
        for i, ok in enumerate(alive):
            b = 1 + GROUP_FIELDS * i
            if not ok and not self.st[b + self.DRY]:
                self.st[b + self.DRY] = 1
                if i not in self.reported:
                    self.reported.add(i)
                    log.warning("mixture group %r ran dry in worker %d (epoch %d, %d documents drawn); %s",
                                self.spec.groups[i].name, self.g, self.st[b + self.EPOCH] + 1, self.st[b + self.DOCS],
                                "waiting for new commits" if self.spec.on_dry == "wait"
                                else "its share goes to the other groups")
            elif ok and self.st[b + self.DRY]:
                self._level(i, alive)
                self.st[b + self.DRY] = 0
        self._some_dry = bool(self.dry)

    def _level(self, i: int, alive: list[bool]) -> None:
        """A refilled group resumes at the others' level instead of owing them its dry spell."""
        F = GROUP_FIELDS
        f = self.TOKENS if self.by_tokens else self.DOCS
        others = [j for j, ok in enumerate(alive) if ok and j != i and not self.st[1 + F * j + self.DRY]]
        if others:
            ratio = min(self.st[1 + F * j + f] / self.weights[j] for j in others)
            self.st[1 + F * i + f] = max(self.st[1 + F * i + f], int(ratio * self.weights[i]))


class DocumentReader:
    """Turns a sampler's draws into documents; decoded row groups are kept (LRU, `cache_bytes`)
    so that the groups' pieces of one row group cost one read."""

    def __init__(self, sampler: MixtureSampler, columns: Sequence[str], cache_bytes: int | None = None,
                 with_state: bool = True) -> None:
        self.sampler, self.with_state = sampler, with_state
        self.columns = list(columns)
        self._read = self.columns + (["text"] if sampler.by_tokens and "text" not in self.columns else [])
        self._tables: OrderedDict[tuple[int, int, int], pa.Table] = OrderedDict()
        self._cache_bytes, self._held = CACHE_BYTES if cache_bytes is None else cache_bytes, 0
        self.reads = 0  # row groups decoded (the benchmark reports them)
        self._open: dict[int, tuple[Piece, int, dict[str, list]]] = {}  # group -> (piece, epoch, its rows' columns)

    def _table(self, piece: Piece) -> pa.Table:
        key = (piece.commit, piece.shard, piece.row_group)
        t = self._tables.get(key)
        if t is not None:
            self._tables.move_to_end(key)
            return t
        plan = self.sampler.plan
        shard = plan.shards(piece.commit)[piece.shard]
        read = lambda: plan.corpus.read_row_group(shard, piece.row_group, self._read)  # noqa: E731
        t = plan.corpus.patiently(f"reading {shard.path}", read) if plan.follow else read()
        self.reads += 1
        self._tables[key] = t
        self._held += t.nbytes
        while self._held > self._cache_bytes and len(self._tables) > 1:
            self._held -= self._tables.popitem(last=False)[1].nbytes
        return t

    def _piece_rows(self, gi: int, piece: Piece, epoch: int) -> dict[str, list]:
        cur = self._open.get(gi)
        if cur is not None and cur[0] is piece and cur[1] == epoch:
            return cur[2]
        rows = piece.rows[self.sampler.rows_of(gi, piece, epoch)]
        data = self._table(piece).take(pa.array(rows)).to_pydict()
        self._open[gi] = (piece, epoch, data)
        return data

    def __iter__(self) -> Iterator[tuple[tuple[int, ...], dict[str, Any]]]:
        """(state before the document or None, document) pairs; a document has the columns, group and group_epoch."""
        names = self.sampler.spec.names
        state = self.sampler.state
        while True:
            before = state() if self.with_state else None
            drawn = self.sampler.next()
            if drawn is None:
                return
            gi, piece, r, epoch = drawn
            data = self._piece_rows(gi, piece, epoch)
            if self.sampler.by_tokens:
                text = data["text"][r]
                self.sampler.count(gi, len(text.split()) if text else 0)
            doc = {c: data[c][r] for c in self.columns}
            doc["group"] = names[gi]
            doc["group_epoch"] = epoch
            yield before, doc


class MixtureStream:
    """`Corpus.mixture(...)`: an iterator of documents of one (rank, world_size) share, resumable."""

    def __init__(self, corpus: Corpus, spec: Any, *, seed: int = 0, columns: Sequence[str] | None = None,
                 commit: int | None = None, since: int = 0, follow: bool = False, rank: int = 0,
                 world_size: int = 1, poll_interval: float = 5.0, idle_timeout: float | None = None,
                 stop: threading.Event | None = None) -> None:
        if follow and commit is not None:
            raise ValueError("follow=True reads past any pinned commit: give since=, not commit=")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world_size {world_size}")
        self.spec = MixtureSpec.load(spec)
        self.plan = MixturePlan(corpus, self.spec, seed, since=since, commit=commit, follow=follow)
        self.columns = list(columns) if columns is not None else ["doc_id", "text"]
        self.rank, self.world_size, self.seed = rank, world_size, seed
        self.sampler = MixtureSampler(self.plan, rank, world_size, poll_interval=poll_interval,
                                      idle_timeout=idle_timeout, stop=stop)
        self._it: Iterator | None = None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        if self._it is None:
            self._it = iter(DocumentReader(self.sampler, self.columns, with_state=False))
        return next(self._it)[1]  # no look-ahead: the sampler's state is the state after this document

    @property
    def dry_groups(self) -> list[str]:
        """Groups that ran dry (reported in the log when it happened)."""
        return [self.spec.names[i] for i in self.sampler.dry]

    def state_dict(self) -> dict[str, Any]:
        return {"version": 1, "uri": self.plan.corpus.uri, "spec": self.spec.digest(), "seed": self.seed,
                "since": self.plan.since, "start": self.plan.start, "follow": self.plan.follow, "rank": self.rank,
                "world_size": self.world_size, "state": list(self.sampler.state())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, mine in (("spec", self.spec.digest()), ("seed", self.seed), ("since", self.plan.since),
                          ("follow", self.plan.follow), ("rank", self.rank), ("world_size", self.world_size)):
            if state.get(key) != mine:
                raise ValueError(f"mixture state was saved with {key}={state.get(key)!r}, this stream has {mine!r}")
        if state["start"] != self.plan.start:  # resume on the snapshot (or follow start) the state was saved on
            self.plan = MixturePlan(self.plan.corpus, self.spec, self.seed, since=self.plan.since,
                                    commit=int(state["start"]), follow=self.plan.follow)
            s = self.sampler
            self.sampler = MixtureSampler(self.plan, s.g, s.total, poll_interval=s.poll_interval,
                                          idle_timeout=s.idle_timeout, stop=s.stop)
        self.sampler.load(state["state"])
        self._it = None
