"""Memory-augmented networks: addressing functions, NTM and DNC cores, algorithmic tasks.

``from memory_nets import NTM, DNC`` gives batched recurrent cores used like ``nn.LSTM``
(see :mod:`memory_nets.core`); :mod:`memory_nets.addressing` holds the pure addressing
functions and :mod:`memory_nets.tasks` the seeded task generators.
"""

from memory_nets.dnc import DNC, DNCConfig, DNCState
from memory_nets.ntm import NTM, NTMConfig, NTMState

__all__ = ["DNC", "NTM", "DNCConfig", "DNCState", "NTMConfig", "NTMState"]
