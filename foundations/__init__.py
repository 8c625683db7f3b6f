"""Foundations: nets, encoders, optimizers, data, training loops and run logging.

Submodules: ``optim`` (optimizers from their equations), ``data`` (dataset readers), ``batches``
(device-resident batches, augmentations), ``synthetic`` (generated datasets), ``train`` (``fit``,
``evaluate``), ``sequence`` (recurrent sequence models), ``runlog``, ``seeding``, ``checks``.

The lowest layer of the project: nothing here imports from ``envs``, ``agents``,
``memory_nets`` or ``experiments``.
"""

from foundations.encoders import CifarCNN, ImpalaCNN, MnistCNN, NatureCNN
from foundations.nets import layer_init, mlp
from foundations.runlog import RunLogger, load_checkpoint, save_checkpoint
from foundations.seeding import get_rng_state, seed_everything, set_rng_state

__all__ = [
    "CifarCNN",
    "ImpalaCNN",
    "MnistCNN",
    "NatureCNN",
    "RunLogger",
    "get_rng_state",
    "layer_init",
    "load_checkpoint",
    "mlp",
    "save_checkpoint",
    "seed_everything",
    "set_rng_state",
]
