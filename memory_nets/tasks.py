"""Seeded task generators for memory networks.

Algorithmic tasks follow Graves et al. 2014 (NTM) section 4; graph tasks follow the spirit of
Graves et al. 2016 (DNC) and are generated on the fly. Every generator takes a
``torch.Generator`` (reproducible batches) and returns a :class:`TaskBatch`:

* ``inputs`` ``[T, B, input_size]`` float, time-major like the cores;
* ``targets`` ``[T, B, output_size]`` in ``{0, 1}``;
* ``mask`` ``[T, B]``: 1 where the output is scored (the answer phase);
* ``lengths`` ``[B]``: the per-sequence size the task was drawn with (sequence length, items...).

Sequences of one batch may have different lengths (drawn per sequence); shorter ones are padded
with zeros after their end, and the mask covers only their own answer steps. Because the cores
are causal, padding after a sequence never changes its scored outputs.

Bit error per sequence (the papers' "bits wrong") is :func:`bit_errors`.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import torch

from foundations.checks import positive_int


class TaskBatch(NamedTuple):
    """A batch of sequences (see the module docstring for shapes)."""

    inputs: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor
    lengths: torch.Tensor

    def to(self, device: torch.device | str) -> TaskBatch:
        return TaskBatch(*(t.to(device) for t in self))


def masked_bce(logits: torch.Tensor, batch: TaskBatch) -> torch.Tensor:
    """Binary cross-entropy per scored bit, averaged over scored steps and bits: a scalar."""
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, batch.targets, reduction="none")
    mask = batch.mask.unsqueeze(2)
    return (loss * mask).sum() / (mask.sum() * logits.shape[2]).clamp_min(1.0)


def bit_errors(logits: torch.Tensor, batch: TaskBatch) -> torch.Tensor:
    """Wrong bits per sequence, ``[B]``: thresholded outputs vs targets over the scored steps."""
    wrong = ((logits > 0).to(batch.targets.dtype) != batch.targets).sum(dim=2)
    return (wrong * batch.mask).sum(dim=0)


def _check_range(name: str, low: int, high: int) -> None:
    positive_int(f"{name} minimum", low)
    positive_int(f"{name} maximum", high)
    if low > high:
        raise ValueError(f"{name} range must have minimum <= maximum, got [{low}, {high}]")


def _draw(low: int, high: int, batch: int, gen: torch.Generator | None) -> torch.Tensor:
    return torch.randint(low, high + 1, (batch,), generator=gen)


def _bits(shape: tuple[int, ...], gen: torch.Generator | None) -> torch.Tensor:
    return torch.randint(0, 2, shape, generator=gen).float()


# ----------------------------------------------------------------------------------------------
# NTM tasks


@dataclasses.dataclass(frozen=True)
class Copy:
    """Copy (NTM paper 4.1): ``L`` random ``bits``-bit vectors, a delimiter, then recall them.

    Input ``bits + 1`` channels (the last is the delimiter), output ``bits``. ``T = 2 * L_max + 1``.
    """

    bits: int = 8
    min_length: int = 1
    max_length: int = 20

    def __post_init__(self) -> None:
        positive_int("bits", self.bits)
        _check_range("length", self.min_length, self.max_length)

    @property
    def input_size(self) -> int:
        return self.bits + 1

    @property
    def output_size(self) -> int:
        return self.bits

    def with_lengths(self, min_length: int, max_length: int) -> Copy:
        return dataclasses.replace(self, min_length=min_length, max_length=max_length)

    def sample(self, batch_size: int, gen: torch.Generator | None = None) -> TaskBatch:
        b, w = positive_int("batch_size", batch_size), self.bits
        lengths = _draw(self.min_length, self.max_length, b, gen)
        lmax = int(lengths.max())
        t = 2 * lmax + 1
        seq = _bits((lmax, b, w), gen) * (torch.arange(lmax).unsqueeze(1) < lengths).unsqueeze(2)
        inputs = torch.zeros(t, b, w + 1)
        targets = torch.zeros(t, b, w)
        mask = torch.zeros(t, b)
        cols = torch.arange(b)
        inputs[:lmax, :, :w] = seq
        inputs[lengths, cols, w] = 1.0
        steps = torch.arange(t).unsqueeze(1)
        answer = (steps > lengths) & (steps <= 2 * lengths)
        mask[answer] = 1.0
        # target at step L + 1 + i is input i
        src = (steps - lengths - 1).clamp(0, lmax - 1)
        targets[:] = seq.gather(0, src.unsqueeze(2).expand(t, b, w)) * answer.unsqueeze(2)
        return TaskBatch(inputs, targets, mask, lengths)


@dataclasses.dataclass(frozen=True)
class RepeatCopy:
    """Repeat copy (NTM paper 4.2): copy a sequence ``n`` times, then emit an end marker.

    Input ``bits + 2`` channels: bits, a delimiter, and the repeat count ``n / max_repeats`` on
    the delimiter step. Output ``bits + 1``: bits and the end marker after the last copy.
    ``lengths`` holds the sequence lengths.
    """

    bits: int = 8
    min_length: int = 1
    max_length: int = 10
    min_repeats: int = 1
    max_repeats: int = 10

    def __post_init__(self) -> None:
        positive_int("bits", self.bits)
        _check_range("length", self.min_length, self.max_length)
        _check_range("repeats", self.min_repeats, self.max_repeats)

    @property
    def input_size(self) -> int:
        return self.bits + 2

    @property
    def output_size(self) -> int:
        return self.bits + 1

    def with_lengths(self, min_length: int, max_length: int) -> RepeatCopy:
        return dataclasses.replace(self, min_length=min_length, max_length=max_length)

    def sample(self, batch_size: int, gen: torch.Generator | None = None) -> TaskBatch:
        b, w = positive_int("batch_size", batch_size), self.bits
        lengths = _draw(self.min_length, self.max_length, b, gen)
        repeats = _draw(self.min_repeats, self.max_repeats, b, gen)
        ends = lengths + lengths * repeats + 1  # step of the end marker
        t = int(ends.max()) + 1
        lmax = int(lengths.max())
        seq = _bits((lmax, b, w), gen) * (torch.arange(lmax).unsqueeze(1) < lengths).unsqueeze(2)
        cols = torch.arange(b)
        inputs = torch.zeros(t, b, w + 2)
        inputs[:lmax, :, :w] = seq
        inputs[lengths, cols, w] = 1.0
        inputs[lengths, cols, w + 1] = repeats.float() / self.max_repeats
        steps = torch.arange(t).unsqueeze(1)
        copying = (steps > lengths) & (steps < ends)
        src = ((steps - lengths - 1).clamp_min(0) % lengths).clamp(max=lmax - 1)
        targets = torch.zeros(t, b, w + 1)
        targets[:, :, :w] = seq.gather(0, src.unsqueeze(2).expand(t, b, w)) * copying.unsqueeze(2)
        targets[ends, cols, w] = 1.0
        mask = ((steps > lengths) & (steps <= ends)).float()
        return TaskBatch(inputs, targets, mask, lengths)


@dataclasses.dataclass(frozen=True)
class AssociativeRecall:
    """Associative recall (NTM paper 4.3): after ``k`` items, a query item asks for its successor.

    Items are ``item_length`` vectors of ``bits`` bits, each preceded by an item delimiter
    (channel ``bits``); the query is framed by query delimiters (channel ``bits + 1``); the answer
    is the item that followed the query in the list. ``lengths`` holds ``k``.
    """

    bits: int = 6
    item_length: int = 3
    min_items: int = 2
    max_items: int = 6

    def __post_init__(self) -> None:
        positive_int("bits", self.bits)
        positive_int("item_length", self.item_length)
        _check_range("items", self.min_items, self.max_items)
        if self.min_items < 2:
            raise ValueError(f"associative recall needs at least 2 items, got min_items={self.min_items}")

    @property
    def input_size(self) -> int:
        return self.bits + 2

    @property
    def output_size(self) -> int:
        return self.bits

    def with_lengths(self, min_length: int, max_length: int) -> AssociativeRecall:
        return dataclasses.replace(self, min_items=max(2, min_length), max_items=max_length)

    def sample(self, batch_size: int, gen: torch.Generator | None = None) -> TaskBatch:
        b, w, n = positive_int("batch_size", batch_size), self.bits, self.item_length
        counts = _draw(self.min_items, self.max_items, b, gen)
        kmax = int(counts.max())
        items = _bits((kmax, n, b, w), gen)
        query = (torch.rand(b, generator=gen) * (counts - 1)).long()  # 0 .. k - 2
        span = n + 1
        q0 = counts * span  # first query delimiter
        t = int((q0 + 2 + 2 * n).max())
        inputs = torch.zeros(t, b, w + 2)
        targets = torch.zeros(t, b, w)
        mask = torch.zeros(t, b)
        cols = torch.arange(b)
        for i in range(kmax):  # a handful of items: a loop over items, not over the batch
            present = i < counts
            rows = cols[present]
            inputs[i * span, rows, w] = 1.0
            inputs[i * span + 1 : i * span + 1 + n, rows, :w] = items[i][:, rows]
        inputs[q0, cols, w + 1] = 1.0
        inputs[q0 + n + 1, cols, w + 1] = 1.0
        for j in range(n):
            inputs[q0 + 1 + j, cols, :w] = items[query, j, cols]
            targets[q0 + n + 2 + j, cols] = items[query + 1, j, cols]
            mask[q0 + n + 2 + j, cols] = 1.0
        return TaskBatch(inputs, targets, mask, counts)


@dataclasses.dataclass(frozen=True)
class PrioritySort:
    """Priority sort (NTM paper 4.5): ``num_inputs`` vectors with priorities in ``[-1, 1]``.

    Input ``bits + 2`` channels: bits, the priority, and a delimiter that starts the answer; the
    target is the ``num_outputs`` highest-priority vectors in descending priority order.
    """

    bits: int = 8
    num_inputs: int = 20
    num_outputs: int = 16

    def __post_init__(self) -> None:
        positive_int("bits", self.bits)
        positive_int("num_inputs", self.num_inputs)
        positive_int("num_outputs", self.num_outputs)
        if self.num_outputs > self.num_inputs:
            raise ValueError(f"num_outputs ({self.num_outputs}) must be <= num_inputs ({self.num_inputs})")

    @property
    def input_size(self) -> int:
        return self.bits + 2

    @property
    def output_size(self) -> int:
        return self.bits

    def with_lengths(self, min_length: int, max_length: int) -> PrioritySort:
        return dataclasses.replace(self, num_inputs=max_length, num_outputs=min(self.num_outputs, max_length))

    def sample(self, batch_size: int, gen: torch.Generator | None = None) -> TaskBatch:
        b, w, n, m = positive_int("batch_size", batch_size), self.bits, self.num_inputs, self.num_outputs
        seq = _bits((n, b, w), gen)
        priority = torch.rand(n, b, generator=gen) * 2.0 - 1.0
        t = n + 1 + m
        inputs = torch.zeros(t, b, w + 2)
        inputs[:n, :, :w] = seq
        inputs[:n, :, w] = priority
        inputs[n, :, w + 1] = 1.0
        order = priority.argsort(dim=0, descending=True)[:m]  # [m, B]
        targets = torch.zeros(t, b, w)
        targets[n + 1 :] = seq.gather(0, order.unsqueeze(2).expand(m, b, w))
        mask = torch.zeros(t, b)
        mask[n + 1 :] = 1.0
        return TaskBatch(inputs, targets, mask, torch.full((b,), n))


# ----------------------------------------------------------------------------------------------
# Graph tasks (DNC paper, in spirit): a random labelled graph is presented edge by edge, then a
# query; the answer is a sequence of nodes. Node names are random ids drawn from ``num_ids``
# per graph, so nothing can be memorised across graphs.


@dataclasses.dataclass(frozen=True)
class GraphTask:
    """Shared layout of the graph tasks.

    Each step's input is ``[source id | target id | edge label | phase (edge, query, answer)]``
    (``2 * num_ids + num_labels + 3`` channels); each answer step's target is a node id one-hot
    plus an end channel (``num_ids + 1``).

    Attributes:
      num_nodes: nodes per graph.
      out_degree: outgoing edges per node (distinct labels, distinct targets).
      num_labels: edge label alphabet.
      num_ids: node-id alphabet (>= ``num_nodes``).
      min_length, max_length: hops of the query (traversal) / bounds of the path (shortest path).
    """

    num_nodes: int = 6
    out_degree: int = 2
    num_labels: int = 4
    num_ids: int = 10
    min_length: int = 1
    max_length: int = 3

    def __post_init__(self) -> None:
        for name in ("num_nodes", "out_degree", "num_labels", "num_ids"):
            positive_int(name, getattr(self, name))
        _check_range("length", self.min_length, self.max_length)
        if self.num_ids < self.num_nodes:
            raise ValueError(f"num_ids ({self.num_ids}) must be >= num_nodes ({self.num_nodes})")
        if self.out_degree > min(self.num_labels, self.num_nodes - 1):
            raise ValueError(
                f"out_degree ({self.out_degree}) must be <= min(num_labels, num_nodes - 1) = "
                f"{min(self.num_labels, self.num_nodes - 1)}"
            )

    @property
    def input_size(self) -> int:
        return 2 * self.num_ids + self.num_labels + 3

    @property
    def output_size(self) -> int:
        return self.num_ids + 1

    def with_lengths(self, min_length: int, max_length: int) -> GraphTask:
        return dataclasses.replace(self, min_length=min_length, max_length=max_length)

    def _graphs(self, b: int, gen: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Random graphs: ``succ [B, nodes, labels]`` (-1: no edge), edges ``[B, E, 3]``, ids ``[B, nodes]``."""
        n, d, nl = self.num_nodes, self.out_degree, self.num_labels
        # targets: a random permutation of the other nodes, first d; labels: first d of a permutation
        scores = torch.rand(b, n, n, generator=gen)
        scores[:, torch.arange(n), torch.arange(n)] = 2.0  # never a self loop
        targets = scores.argsort(dim=2)[:, :, :d]  # [B, n, d]
        labels = torch.rand(b, n, nl, generator=gen).argsort(dim=2)[:, :, :d]
        succ = torch.full((b, n, nl), -1, dtype=torch.long)
        succ.scatter_(2, labels, targets)
        src = torch.arange(n).view(1, n, 1).expand(b, n, d)
        edges = torch.stack([src, targets, labels], dim=3).reshape(b, n * d, 3)
        shuffle = torch.rand(b, n * d, generator=gen).argsort(dim=1)
        edges = edges.gather(1, shuffle.unsqueeze(2).expand(b, n * d, 3))
        ids = torch.rand(b, self.num_ids, generator=gen).argsort(dim=1)[:, :n]
        return succ, edges, ids

    def _encode(
        self,
        edges: torch.Tensor,
        ids: torch.Tensor,
        query: list[torch.Tensor],
        answers: torch.Tensor,
        answer_lengths: torch.Tensor,
    ) -> TaskBatch:
        """Lay out edges, query steps (``[B, 3]`` (src, dst, label) with -1 for none) and answers."""
        b, e = edges.shape[:2]
        ni, nl = self.num_ids, self.num_labels
        q = len(query)
        amax = answers.shape[1]
        t = e + q + amax + 1
        inputs = torch.zeros(t, b, self.input_size)
        cols = torch.arange(b)
        steps = torch.arange(e)
        node_id = ids.gather(1, edges[:, :, 0])  # [B, E]
        inputs[steps.unsqueeze(1), cols, node_id.t()] = 1.0
        inputs[steps.unsqueeze(1), cols, ni + ids.gather(1, edges[:, :, 1]).t()] = 1.0
        inputs[steps.unsqueeze(1), cols, 2 * ni + edges[:, :, 2].t()] = 1.0
        inputs[:e, :, 2 * ni + nl] = 1.0
        for k, (src, dst, lab) in enumerate(query):
            row = e + k
            inputs[row, :, 2 * ni + nl + 1] = 1.0
            for value, offset in ((src, 0), (dst, ni), (lab, 2 * ni)):
                has = value >= 0
                if offset < 2 * ni:
                    idx = ids.gather(1, value.clamp_min(0).unsqueeze(1)).squeeze(1)
                else:
                    idx = value.clamp_min(0)
                inputs[row, cols[has], offset + idx[has]] = 1.0
        first = e + q
        inputs[first:, :, 2 * ni + nl + 2] = 1.0
        targets = torch.zeros(t, b, ni + 1)
        mask = torch.zeros(t, b)
        for k in range(amax + 1):
            row = first + k
            node = answers[:, min(k, amax - 1)]
            inside = k < answer_lengths
            targets[row, cols[inside], ids.gather(1, node.clamp_min(0).unsqueeze(1)).squeeze(1)[inside]] = 1.0
            end = k == answer_lengths
            targets[row, cols[end], ni] = 1.0
            mask[row] = (k <= answer_lengths).float()
        return TaskBatch(inputs, targets, mask, answer_lengths)


class Traversal(GraphTask):
    """Traversal: from a start node, follow a sequence of edge labels; answer the nodes visited.

    Query steps: the first gives the start node (source slot) and the first label; each further
    step one label. Answer: one node id per hop, then the end channel. Labels are drawn only
    among edges that exist, so every query has an answer.
    """

    def sample(self, batch_size: int, gen: torch.Generator | None = None) -> TaskBatch:
        b = positive_int("batch_size", batch_size)
        succ, edges, ids = self._graphs(b, gen)
        hops = _draw(self.min_length, self.max_length, b, gen)
        hmax = int(hops.max())
        node = torch.randint(0, self.num_nodes, (b,), generator=gen)
        start = node.clone()
        cols = torch.arange(b)
        labels, visited = [], []
        for _ in range(hmax):
            options = succ[cols, node]  # [B, labels]
            valid = (options >= 0).float()
            choice = torch.multinomial(valid, 1, generator=gen).squeeze(1)
            labels.append(choice)
            node = options[cols, choice]
            visited.append(node)
        none = torch.full((b,), -1)
        query = []
        for k in range(hmax):
            active = k < hops
            lab = torch.where(active, labels[k], none)
            query.append((start if k == 0 else none, none, lab))
        answers = torch.stack(visited, dim=1)
        return self._encode(edges, ids, query, answers, hops)


class ShortestPath(GraphTask):
    """Shortest path: given a source and a destination, answer the nodes of the shortest path.

    Queries are drawn among pairs whose shortest path is unique and has ``min_length`` to
    ``max_length`` hops (graphs without such a pair are redrawn). Answer: the nodes after the
    source, ending with the destination, then the end channel.
    """

    def sample(self, batch_size: int, gen: torch.Generator | None = None) -> TaskBatch:
        b = positive_int("batch_size", batch_size)
        n = self.num_nodes
        out_edges: list[torch.Tensor] = []
        out_ids: list[torch.Tensor] = []
        queries: list[tuple[int, int]] = []
        paths: list[list[int]] = []
        while len(paths) < b:  # per graph: BFS path counting on a handful of nodes
            succ, edges, ids = self._graphs(1, gen)
            adjacency = [[int(v) for v in succ[0, u] if v >= 0] for u in range(n)]
            pairs = []
            for s in range(n):
                dist, count, parent = {s: 0}, {s: 1}, {s: -1}
                frontier = [s]
                while frontier:
                    nxt = []
                    for u in frontier:
                        for v in adjacency[u]:
                            if v not in dist:
                                dist[v], count[v], parent[v] = dist[u] + 1, count[u], u
                                nxt.append(v)
                            elif dist[v] == dist[u] + 1:
                                count[v] += count[u]
                    frontier = nxt
                for v, dv in dist.items():
                    if self.min_length <= dv <= self.max_length and count[v] == 1:
                        path = [v]
                        while parent[path[-1]] != s:
                            path.append(parent[path[-1]])
                        pairs.append((s, v, path[::-1]))
            if not pairs:
                continue
            s, v, path = pairs[int(torch.randint(len(pairs), (1,), generator=gen))]
            out_edges.append(edges[0])
            out_ids.append(ids[0])
            queries.append((s, v))
            paths.append(path)
        lengths = torch.tensor([len(p) for p in paths])
        amax = int(lengths.max())
        answers = torch.tensor([p + [p[-1]] * (amax - len(p)) for p in paths])
        src = torch.tensor([q[0] for q in queries])
        dst = torch.tensor([q[1] for q in queries])
        query = [(src, dst, torch.full((b,), -1))]
        return self._encode(torch.stack(out_edges), torch.stack(out_ids), query, answers, lengths)


TASKS: dict[str, type] = {
    "copy": Copy,
    "repeat_copy": RepeatCopy,
    "associative_recall": AssociativeRecall,
    "priority_sort": PrioritySort,
    "traversal": Traversal,
    "shortest_path": ShortestPath,
}
