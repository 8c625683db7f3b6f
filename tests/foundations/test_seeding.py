import random

import numpy as np
import pytest
import torch

from foundations.runlog import load_checkpoint, save_checkpoint
from foundations.seeding import get_rng_state, seed_everything, set_rng_state


def _draw():
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_seed_everything_is_repeatable():
    seed_everything(123)
    a = _draw()
    seed_everything(123)
    assert _draw() == a
    seed_everything(124)
    assert _draw() != a


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    seed_everything(7)
    random.gauss(0, 1)  # leave a cached gaussian in Python's generator
    np.random.standard_normal()
    state = get_rng_state()
    expected = (_draw(), random.gauss(0, 1), float(np.random.standard_normal()))
    save_checkpoint(tmp_path / "rng.pt", {"rng": state})
    _draw()
    set_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"])
    assert (_draw(), random.gauss(0, 1), float(np.random.standard_normal())) == expected


def test_bad_seed():
    with pytest.raises(ValueError, match="seed"):
        seed_everything(-1)
