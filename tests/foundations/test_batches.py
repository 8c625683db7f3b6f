"""Labelled data, the batch iterator and the batched augmentations."""

from __future__ import annotations

import pytest
import torch

from foundations.batches import Augment, Labelled, random_crop, random_flip


def _data(n: int = 10) -> Labelled:
    return Labelled(torch.arange(n * 2).reshape(n, 2), torch.arange(n))


def test_one_pass_visits_every_example_once_in_a_seeded_order() -> None:
    data = _data(10)
    batches = list(data.batches(4, generator=torch.Generator().manual_seed(0)))
    assert [len(y) for _, y in batches] == [4, 4, 2]
    seen = torch.cat([y for _, y in batches])
    assert sorted(seen.tolist()) == list(range(10)) and seen.tolist() != list(range(10))
    for x, y in batches:  # x rows travel with their labels
        assert torch.equal(x[:, 0], 2 * y)
    again = torch.cat([y for _, y in data.batches(4, generator=torch.Generator().manual_seed(0))])
    assert torch.equal(seen, again)


def test_each_pass_reshuffles_and_drop_last_and_len() -> None:
    it = _data(10).batches(3, drop_last=True, generator=torch.Generator().manual_seed(1))
    assert len(it) == 3
    first = torch.cat([y for _, y in it])
    second = torch.cat([y for _, y in it])
    assert len(first) == 9 and not torch.equal(first, second)
    assert len(_data(10).batches(3)) == 4
    ordered = torch.cat([y for _, y in _data(10).batches(3, shuffle=False)])
    assert ordered.tolist() == list(range(10))


def test_split_is_a_partition() -> None:
    a, b = _data(10).split(0.3, torch.Generator().manual_seed(0))
    assert (len(a), len(b)) == (7, 3)
    assert sorted(torch.cat([a.y, b.y]).tolist()) == list(range(10))
    a, b = _data(10).split(4)
    assert (len(a), len(b)) == (6, 4)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: Labelled(torch.zeros(3, 2), torch.zeros(4)), "same first dimension"),
        (lambda: _data().split(1.5), r"fractional split must be in \(0, 1\), got 1.5"),
        (lambda: _data().split(10), "leave both parts non-empty"),
        (lambda: _data().batches(0), "batch_size must be an integer >= 1, got 0"),
        (lambda: _data(3).batches(4, drop_last=True), "no batch at all"),
        (lambda: random_crop(torch.zeros(2, 3, 3), 1), r"\[batch, C, H, W\]"),
        (lambda: random_crop(torch.zeros(1, 1, 3, 3), -1), "padding must be >= 0"),
        (lambda: random_flip(torch.zeros(1, 1, 3, 3), 1.5), r"p must be in \[0, 1\]"),
        (lambda: Augment(crop_padding=-2), "crop_padding must be >= 0"),
    ],
)
def test_bad_arguments_are_refused(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_random_crop_is_a_shifted_window_of_the_padded_image() -> None:
    x = torch.arange(1, 1 + 64 * 3 * 5 * 5, dtype=torch.float32).reshape(64, 3, 5, 5)
    out = random_crop(x, 2, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    shifts = set()
    for i in range(64):
        matches = [
            (dy, dx)
            for dy in range(5)
            for dx in range(5)
            if torch.equal(out[i], padded[i, :, dy : dy + 5, dx : dx + 5])
        ]
        assert len(matches) == 1  # every channel shifted by the same offset
        shifts.add(matches[0])
    assert len(shifts) > 10  # offsets vary across the batch
    assert random_crop(x.to(torch.uint8), 1).dtype == torch.uint8


def test_random_shift_is_a_window_of_the_edge_padded_image() -> None:
    """DrQ's shift: replicate-pad 4 and crop 84x84 back, one offset per image for all its channels."""
    x = torch.randint(0, 256, (128, 4, 84, 84), dtype=torch.uint8)
    out = random_crop(x, 4, torch.Generator().manual_seed(0), mode="replicate")
    assert out.shape == x.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(x.float(), (4, 4, 4, 4), mode="replicate")
    shifts = []
    for i in range(128):
        matches = [(dy, dx) for dy in range(9) for dx in range(9)
                   if torch.equal(out[i].float(), padded[i, :, dy : dy + 84, dx : dx + 84])]
        assert len(matches) == 1  # every frame of the stack shifted alike, by one of 81 offsets
        shifts.append(matches[0])
    assert len(set(shifts)) > 50  # independent across the samples (128 draws of 81 offsets)
    assert {dy for dy, _ in shifts} == set(range(9)) and {dx for _, dx in shifts} == set(range(9))


def test_random_shift_is_deterministic_per_generator_and_independent_between_calls() -> None:
    x = torch.randint(0, 256, (16, 4, 84, 84), dtype=torch.uint8)
    a = random_crop(x, 4, torch.Generator().manual_seed(5), mode="replicate")
    b = random_crop(x, 4, torch.Generator().manual_seed(5), mode="replicate")
    assert torch.equal(a, b)
    g = torch.Generator().manual_seed(5)
    first, second = random_crop(x, 4, g, mode="replicate"), random_crop(x, 4, g, mode="replicate")
    assert torch.equal(first, a) and not torch.equal(first, second)
    with pytest.raises(ValueError, match="'zeros' or 'replicate', got 'edge'"):
        random_crop(x, 4, mode="edge")


def test_random_flip_mirrors_about_half_the_batch() -> None:
    x = torch.rand(1000, 1, 2, 3)
    out = random_flip(x, 0.5, torch.Generator().manual_seed(0))
    flipped = torch.tensor([torch.equal(o, xi.flip(-1)) for o, xi in zip(out, x, strict=True)])
    kept = torch.tensor([torch.equal(o, xi) for o, xi in zip(out, x, strict=True)])
    assert bool((flipped ^ kept).all())
    assert 430 < int(flipped.sum()) < 570
    assert torch.equal(random_flip(x, 0.0), x)


def test_augment_identity_and_seeded() -> None:
    x = torch.rand(8, 3, 6, 6)
    assert torch.equal(Augment()(x), x) and not Augment().active
    aug = Augment(crop_padding=1, flip=True)
    a = aug(x, torch.Generator().manual_seed(3))
    b = aug(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(a, x)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_batches_and_augment_on_cuda_match_cpu() -> None:
    data = Labelled(torch.rand(50, 1, 6, 6), torch.arange(50))
    cpu = [y for _, y in data.batches(8, generator=torch.Generator().manual_seed(0))]
    gpu = [y for _, y in data.to("cuda").batches(8, generator=torch.Generator().manual_seed(0))]
    assert all(torch.equal(a, b.cpu()) for a, b in zip(cpu, gpu, strict=True))
    aug = Augment(crop_padding=2, flip=True)
    a = aug(data.x, torch.Generator().manual_seed(1))
    b = aug(data.x.cuda(), torch.Generator().manual_seed(1))
    assert torch.equal(a, b.cpu())
    frames = torch.randint(0, 256, (32, 4, 84, 84), dtype=torch.uint8)
    shifted_cpu = random_crop(frames, 4, torch.Generator().manual_seed(2), mode="replicate")
    shifted_gpu = random_crop(frames.cuda(), 4, torch.Generator().manual_seed(2), mode="replicate")
    assert shifted_gpu.device.type == "cuda" and torch.equal(shifted_cpu, shifted_gpu.cpu())
