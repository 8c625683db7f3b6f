"""A C implementation of the checksum TensorBoard puts on every event record.

Each record of an event file is framed by two *masked* CRC32C checksums (of its length and of
its bytes). ``tensorboard.summary.writer.record_writer`` computes them with TensorBoard's
pure-Python CRC, a loop over the bytes: about 25 us for a two-scalar event, paid in the
writer's background thread while it holds the GIL. An RL run logs one event per finished
episode, so on CartPole (short episodes, eight envs) this checksum alone took about a quarter
of PPO's training throughput. :func:`use_fast_crc` points the record writer at
``google_crc32c``'s C implementation (0.25 us): the files are byte for byte the same.
"""

from __future__ import annotations

import os

_MASK_DELTA = 0xA282EAD8
_installed = False


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC32C of ``data`` (``rotate_right(crc, 15) + 0xa282ead8``, 32-bit).

    Raises:
      ImportError: ``google_crc32c`` is not installed.
    """
    import google_crc32c

    crc = google_crc32c.value(bytes(data))
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def use_fast_crc() -> bool:
    """Make TensorBoard's record writer use :func:`masked_crc32c`; returns whether it does.

    Does nothing (returns False) when ``google_crc32c`` is missing or only has its pure-Python
    fallback, when TensorBoard's writer is not laid out as expected, or when the two checksums
    disagree on a probe (so a written file can never differ from what TensorBoard would write).
    """
    global _installed
    if _installed:
        return True
    try:
        import google_crc32c
        from tensorboard.summary.writer import record_writer
    except ImportError:
        return False
    reference = getattr(record_writer, "masked_crc32c", None)
    if reference is None or google_crc32c.implementation != "c":
        return False
    probe = os.urandom(97)
    if any(masked_crc32c(d) != reference(d) for d in (b"", b"\x00" * 8, probe)):
        return False
    record_writer.masked_crc32c = masked_crc32c
    _installed = True
    return True
