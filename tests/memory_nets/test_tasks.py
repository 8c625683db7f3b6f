"""Task generators: the papers' layouts, determinism, masks; the bAbI reader."""

from pathlib import Path

import pytest
import torch

from memory_nets import babi
from memory_nets.tasks import (
    TASKS,
    AssociativeRecall,
    Copy,
    PrioritySort,
    RepeatCopy,
    ShortestPath,
    Traversal,
    bit_errors,
    masked_bce,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_shapes_determinism_and_perfect_answers(name):
    task = TASKS[name]()
    a, b = task.sample(5, _gen()), task.sample(5, _gen())
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    t = a.inputs.shape[0]
    assert a.inputs.shape == (t, 5, task.input_size) and a.targets.shape == (t, 5, task.output_size)
    assert a.mask.shape == (t, 5) and (a.mask.sum(0) > 0).all()
    perfect = (a.targets * 2 - 1) * 10
    assert (bit_errors(perfect, a) == 0).all()
    assert (bit_errors(-perfect, a) == a.mask.sum(0) * task.output_size).all()
    assert masked_bce(perfect, a) < 1e-3


def test_copy_targets_are_the_inputs_after_the_delimiter():
    task = Copy(bits=4, min_length=1, max_length=6)
    batch = task.sample(16, _gen(1))
    for i, length in enumerate(batch.lengths.tolist()):
        x, y, m = batch.inputs[:, i], batch.targets[:, i], batch.mask[:, i]
        assert x[length, 4] == 1 and x[:, 4].sum() == 1  # one delimiter, right after the sequence
        assert torch.equal(y[length + 1 : 2 * length + 1], x[:length, :4])
        assert m.sum() == length and m[length + 1 : 2 * length + 1].all()
        assert x[length + 1 :, :4].abs().sum() == 0  # nothing to see while answering


def test_repeat_copy_layout():
    task = RepeatCopy(bits=3, max_length=4, max_repeats=5)
    batch = task.sample(8, _gen(2))
    for i, length in enumerate(batch.lengths.tolist()):
        x, y = batch.inputs[:, i], batch.targets[:, i]
        repeats = round(x[length, 4].item() * 5)
        assert 1 <= repeats <= 5 and x[length, 3] == 1
        copies = y[length + 1 : length + 1 + repeats * length, :3]
        assert torch.equal(copies, x[:length, :3].repeat(repeats, 1))
        end = length + 1 + repeats * length
        assert y[end, 3] == 1 and y[:, 3].sum() == 1 and batch.mask[:, i].sum() == repeats * length + 1


def test_associative_recall_answer_is_the_item_after_the_query():
    task = AssociativeRecall(bits=4, item_length=2, min_items=2, max_items=5)
    batch = task.sample(16, _gen(3))
    for i, k in enumerate(batch.lengths.tolist()):
        x = batch.inputs[:, i]
        items = [x[j * 3 + 1 : j * 3 + 3, :4] for j in range(k)]
        q0 = k * 3
        assert x[q0, 5] == 1 and x[q0 + 3, 5] == 1
        query = x[q0 + 1 : q0 + 3, :4]
        index = next(j for j in range(k - 1) if torch.equal(items[j], query))
        rows = batch.mask[:, i].nonzero().squeeze(1)
        assert torch.equal(batch.targets[rows, i], items[index + 1])


def test_priority_sort_outputs_the_top_vectors_in_descending_priority():
    task = PrioritySort(bits=4, num_inputs=6, num_outputs=4)
    batch = task.sample(4, _gen(4))
    for i in range(4):
        x = batch.inputs[:, i]
        order = x[:6, 4].argsort(descending=True)[:4]
        assert torch.equal(batch.targets[7:, i], x[order, :4])
        assert x[6, 5] == 1


def _decode_graph(task, x):
    """Edges {(src_id, label): dst_id} from the edge steps of one sequence."""
    ni, nl = task.num_ids, task.num_labels
    edges = {}
    for row in x:
        if row[2 * ni + nl] != 1:
            break
        src, dst, lab = row[:ni].argmax().item(), row[ni : 2 * ni].argmax().item(), row[2 * ni : 2 * ni + nl].argmax().item()
        assert (src, lab) not in edges  # labels of a node's edges are distinct
        edges[(src, lab)] = dst
    return edges


def test_traversal_answers_follow_the_edges():
    task = Traversal(num_nodes=5, out_degree=2, num_labels=3, num_ids=8, min_length=1, max_length=4)
    batch = task.sample(8, _gen(5))
    ni, nl = task.num_ids, task.num_labels
    for i, hops in enumerate(batch.lengths.tolist()):
        x = batch.inputs[:, i]
        edges = _decode_graph(task, x)
        assert len(edges) == 5 * 2
        first = len(edges)
        node = x[first, :ni].argmax().item()
        answers = batch.mask[:, i].nonzero().squeeze(1)
        assert len(answers) == hops + 1
        for k in range(hops):
            label = x[first + k, 2 * ni : 2 * ni + nl].argmax().item()
            node = edges[(node, label)]
            assert batch.targets[answers[k], i, :ni].argmax().item() == node
        assert batch.targets[answers[-1], i, ni] == 1  # end marker


def test_shortest_path_answers_are_unique_shortest_paths():
    task = ShortestPath(num_nodes=6, out_degree=2, num_labels=3, num_ids=8, min_length=2, max_length=3)
    batch = task.sample(6, _gen(6))
    ni = task.num_ids
    for i, length in enumerate(batch.lengths.tolist()):
        assert 2 <= length <= 3
        x = batch.inputs[:, i]
        edges = _decode_graph(task, x)
        adjacency = {}
        for (u, _), v in edges.items():
            adjacency.setdefault(u, set()).add(v)
        q = x[len(edges)]
        src, dst = q[:ni].argmax().item(), q[ni : 2 * ni].argmax().item()
        rows = batch.mask[:, i].nonzero().squeeze(1)
        path = [batch.targets[r, i, :ni].argmax().item() for r in rows[:-1]]
        assert path[-1] == dst and len(path) == length
        prev = src
        for node in path:
            assert node in adjacency[prev]
            prev = node
        # BFS: no shorter path exists
        frontier, seen, dist = {src}, {src}, 0
        while dst not in frontier:
            frontier = {v for u in frontier for v in adjacency.get(u, ())} - seen
            seen |= frontier
            dist += 1
        assert dist == length


def test_task_arguments_are_checked():
    with pytest.raises(ValueError, match="minimum <= maximum"):
        Copy(min_length=5, max_length=2)
    with pytest.raises(ValueError, match="bits must be an integer >= 1"):
        Copy(bits=0)
    with pytest.raises(ValueError, match="num_outputs"):
        PrioritySort(num_inputs=4, num_outputs=5)
    with pytest.raises(ValueError, match="out_degree"):
        Traversal(num_nodes=3, out_degree=3)
    with pytest.raises(ValueError, match="batch_size"):
        Copy().sample(0)


STORIES = """1 Mary moved to the bathroom.
2 John went to the hallway.
3 Where is Mary? \tbathroom\t1
4 Daniel went back to the hallway.
5 Where is Daniel?\thallway\t4
1 Sandra travelled to the office.
2 What is Sandra carrying?\tapple,football\t1
"""


def test_babi_parser_and_vocabulary(tmp_path):
    (tmp_path / "qa1_single-supporting-fact_train.txt").write_text(STORIES)
    stories = babi.load(tmp_path, 1, "train")
    assert len(stories) == 2
    first, second = stories
    assert first.tokens[:6] == ("mary", "moved", "to", "the", "bathroom", ".")
    assert first.tokens.count("-") == 2 and first.answers == ("bathroom", "hallway")
    assert second.answers == ("apple", "football") and second.tokens[-2:] == ("-", "-")
    assert first.words_per_question == (1, 1) and second.words_per_question == (2,)  # one question, two words
    vocab = babi.Vocabulary(stories)
    tokens, targets = vocab.encode(stories)
    assert tokens.shape == targets.shape == (len(first.tokens), 2)
    slots = (tokens[:, 0] == vocab.index["-"]).nonzero().squeeze(1)
    assert [vocab.words[int(targets[s, 0])] for s in slots] == ["bathroom", "hallway"]
    assert (targets[tokens[:, 0] != vocab.index["-"], 0] == -100).all()
    assert (tokens[len(second.tokens) :, 1] == 0).all()  # padding


def test_babi_missing_files_and_bad_lines(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"qa3_\*_train\.txt.*en-10k"):
        babi.load(tmp_path, 3)
    with pytest.raises(ValueError, match=r"1\.\.20"):
        babi.task_file(tmp_path, 21, "train")
    with pytest.raises(ValueError, match=":2: expected a line number"):
        babi.parse(["1 Mary went home.", "oops"])
    with pytest.raises(ValueError, match="question needs"):
        babi.parse(["1 Where is Mary?\t\t1"])


def test_babi_files_are_checked_against_the_published_set(tmp_path):
    from foundations.data import DataError

    name = "qa1_single-supporting-fact_train.txt"
    (tmp_path / name).write_text(STORIES)  # a file of that name that is not the published one
    (tmp_path / "qa1_single-supporting-fact_test.txt").write_text(STORIES)
    with pytest.raises(DataError, match=rf"{name} is not the bAbI en-10k v1.2 file .*3 questions, expected 10,000"):
        babi.check_files(tmp_path, [1])
    with pytest.raises(DataError, match=r"no bAbI file qa2_\*_train\.txt"):
        babi.check_files(tmp_path, [2])
    assert babi.find_directory(tmp_path) == tmp_path
    nested = tmp_path / "x" / "tasks_1-20_v1-2" / "en-10k"
    nested.mkdir(parents=True)
    (nested / name).write_text(STORIES)
    assert babi.find_directory(tmp_path / "x") == nested
    assert babi.TASK_NAMES[19] == "path-finding" and len(babi.MD5) == 39  # task 3's training file: by its count


def _real_babi() -> Path | None:
    import os
    root = os.environ.get("BABI_DIR") or str(Path(os.environ.get("SANDBOX_DATA", "data")) / "babi")
    directory = babi.find_directory(root)
    return directory if any(directory.glob("qa1_*_test.txt")) else None


@pytest.mark.skipif(_real_babi() is None, reason="bAbI en-10k files not found ($BABI_DIR or $SANDBOX_DATA/babi)")
def test_the_real_en10k_files_have_the_published_counts_and_vocabulary():
    directory = _real_babi()
    stories = []
    for task in babi.TASKS:
        for split in ("train", "test"):
            if not any(directory.glob(f"qa{task}_*_{split}.txt")):
                continue  # a copy may lack a file (the public mirror lacks task 3's training file)
            babi.check_files(directory, [task], [split])
            loaded = babi.load(directory, task, split)
            assert sum(len(s.words_per_question) for s in loaded) == babi.QUESTIONS[split], (task, split)
            stories += loaded
    vocab = babi.Vocabulary(stories)
    # the DNC paper's 159 input words (with '-', '.' and '?'); ours adds padding
    assert len(vocab) == 1 + 159, len(vocab)
