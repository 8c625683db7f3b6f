"""Memory addressing for the NTM (Graves et al. 2014) and the DNC (Graves et al. 2016).

Pure functions over batched tensors; no Python loop over the batch or over memory slots.
Shapes use ``B`` batch, ``H`` heads, ``R`` read heads, ``N`` memory slots, ``W`` word size,
``S`` shift kernel width (``2 * shift_range + 1``).

Numerical safety: every division and power has an epsilon guard, so weightings of exactly zero
(common: sharpened or allocated weightings) never produce NaN values or NaN gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-6


def cosine_similarity(memory: torch.Tensor, keys: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Cosine similarity of each key with each memory row.

    Args:
      memory: ``[B, N, W]``.
      keys: ``[B, H, W]``.

    Returns:
      ``[B, H, N]`` in ``[-1, 1]``.
    """
    dots = torch.bmm(keys, memory.transpose(1, 2))
    norms = keys.norm(dim=2, keepdim=True) * memory.norm(dim=2).unsqueeze(1)
    return dots / (norms + eps)


def content_weighting(memory: torch.Tensor, keys: torch.Tensor, strengths: torch.Tensor) -> torch.Tensor:
    """Content-based addressing: ``softmax(strength * cosine(key, memory row))`` over rows.

    Args:
      memory: ``[B, N, W]``.
      keys: ``[B, H, W]``.
      strengths: ``[B, H]``, key strengths (beta >= 0; larger is sharper).

    Returns:
      ``[B, H, N]``, each row sums to 1.
    """
    return torch.softmax(cosine_similarity(memory, keys) * strengths.unsqueeze(2), dim=2)


def interpolate(content: torch.Tensor, previous: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """NTM interpolation gate: ``g * content + (1 - g) * previous``.

    Args:
      content: ``[B, H, N]``.
      previous: ``[B, H, N]``, the heads' weightings at the previous step.
      gate: ``[B, H]`` in ``[0, 1]``.

    Returns:
      ``[B, H, N]``.
    """
    g = gate.unsqueeze(2)
    return previous + g * (content - previous)


def shift_indices(num_slots: int, shift_range: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Index table for :func:`circular_shift`: ``[N, S]`` with entry ``(i - (j - shift_range)) mod N``."""
    i = torch.arange(num_slots, device=device).unsqueeze(1)
    offsets = torch.arange(-shift_range, shift_range + 1, device=device).unsqueeze(0)
    return (i - offsets) % num_slots


def circular_shift(weights: torch.Tensor, shift: torch.Tensor, indices: torch.Tensor | None = None) -> torch.Tensor:
    """NTM rotation: circular convolution ``w~(i) = sum_j w(i - j) s(j)`` (Graves et al. 2014, eq. 8).

    The shift kernel covers offsets ``-k .. k`` (``S = 2k + 1``), so ``shift[..., k + 1] == 1``
    moves a one-hot weighting from slot ``i`` to slot ``i + 1`` (mod ``N``).

    Args:
      weights: ``[B, H, N]``.
      shift: ``[B, H, S]``, a distribution over offsets ``-k .. k``.
      indices: optional precomputed :func:`shift_indices` ``[N, S]`` (saves rebuilding it each step).

    Returns:
      ``[B, H, N]``.
    """
    num_slots, width = weights.shape[-1], shift.shape[-1]
    if width % 2 != 1:
        raise ValueError(f"shift kernel width must be odd (2 * shift_range + 1), got {width}")
    if indices is None:
        indices = shift_indices(num_slots, width // 2, weights.device)
    gathered = weights[..., indices]  # [B, H, N, S]
    return torch.matmul(gathered, shift.unsqueeze(-1)).squeeze(-1)


def sharpen(weights: torch.Tensor, gamma: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """NTM sharpening: ``(w + eps)^gamma / sum((w + eps)^gamma)`` with ``gamma >= 1``.

    Computed in log space, as ``softmax(gamma * log(w + eps))``: the same function, but the
    largest term is 1 before normalising, so a flat weighting with a large ``gamma`` (every
    ``w^gamma`` below float32's range from ``gamma ~ 22`` at ``N = 128``) gives a flat
    weighting instead of ``0 / 0``.

    Args:
      weights: ``[B, H, N]``, non-negative.
      gamma: ``[B, H]``.

    Returns:
      ``[B, H, N]``, each row sums to 1 (``gamma == 1`` returns the input, up to ``eps``).
    """
    return torch.softmax(gamma.unsqueeze(2) * torch.log(weights + eps), dim=2)


def read(memory: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Read vectors ``r = w M``.

    Args:
      memory: ``[B, N, W]``.
      weights: ``[B, R, N]``.

    Returns:
      ``[B, R, W]``.
    """
    return torch.bmm(weights, memory)


def erase_and_add(memory: torch.Tensor, weights: torch.Tensor, erase: torch.Tensor, add: torch.Tensor) -> torch.Tensor:
    """Write with erase and add vectors; several heads combine as in Graves et al. 2014 (sec. 3.2).

    ``M <- M * prod_h (1 - w_h e_h^T) + sum_h w_h a_h^T``.

    Args:
      memory: ``[B, N, W]``.
      weights: ``[B, H, N]`` write weightings.
      erase: ``[B, H, W]`` in ``[0, 1]``.
      add: ``[B, H, W]``.

    Returns:
      ``[B, N, W]``, the new memory.
    """
    if weights.shape[1] == 1:
        keep = 1.0 - weights.transpose(1, 2) * erase  # [B, N, 1] * [B, 1, W]
    else:
        keep = product_over_heads(1.0 - weights.unsqueeze(3) * erase.unsqueeze(2))
    return torch.baddbmm(memory * keep, weights.transpose(1, 2), add)


def product_over_heads(x: torch.Tensor) -> torch.Tensor:
    """``prod`` over dim 1 (the heads, a handful) as a chain of products.

    ``torch.prod``'s backward guards against zeros with a dozen extra operations; a chain of
    ``H - 1`` multiplications has the plain product-rule backward.

    Args:
      x: ``[B, H, ...]``.

    Returns:
      ``[B, ...]``.
    """
    out = x[:, 0]
    for h in range(1, x.shape[1]):
        out = out * x[:, h]
    return out


# ----------------------------------------------------------------------------------------------
# DNC dynamic memory allocation and temporal links (Graves et al. 2016, Methods).


def retention(free_gates: torch.Tensor, read_weights: torch.Tensor) -> torch.Tensor:
    """Memory retention ``psi = prod_r (1 - f_r w^r_{t-1})``.

    Args:
      free_gates: ``[B, R]`` in ``[0, 1]``.
      read_weights: ``[B, R, N]``, the previous step's read weightings.

    Returns:
      ``[B, N]`` in ``[0, 1]``.
    """
    return product_over_heads(1.0 - free_gates.unsqueeze(2) * read_weights)


def update_usage(usage: torch.Tensor, write_weights: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
    """Usage ``u_t = (u_{t-1} + w - u_{t-1} * w) * psi``, ``w`` the union of the write heads.

    Args:
      usage: ``[B, N]`` in ``[0, 1]``.
      write_weights: ``[B, Hw, N]``, the previous step's write weightings.
      psi: ``[B, N]``, :func:`retention`.

    Returns:
      ``[B, N]`` in ``[0, 1]``.
    """
    if write_weights.shape[1] == 1:
        written = write_weights[:, 0]
    else:
        written = 1.0 - product_over_heads(1.0 - write_weights)
    return (usage + written - usage * written) * psi


def allocation_weighting(usage: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Allocation ``a[phi_j] = (1 - u[phi_j]) prod_{i<j} u[phi_i]``, ``phi`` sorting usage ascending.

    Args:
      usage: ``[B, N]`` in ``[0, 1]``.

    Returns:
      ``[B, N]``, non-negative, summing to at most 1, largest at the least-used slot.
    """
    usage = eps + (1.0 - eps) * usage  # > 0, so the logarithm below is finite
    sorted_usage, order = torch.sort(usage, dim=1)
    # Exclusive cumulative product as exp(cumsum(log u) - log u): cumprod's backward guards
    # against zeros with many extra operations, cumsum's is a reversed cumsum.
    log_usage = torch.log(sorted_usage)
    exclusive = torch.exp(torch.cumsum(log_usage, dim=1) - log_usage)
    sorted_allocation = (1.0 - sorted_usage) * exclusive
    return torch.zeros_like(usage).scatter(1, order, sorted_allocation)


def write_allocations(usage: torch.Tensor, write_gates: torch.Tensor) -> torch.Tensor:
    """Allocation weightings for several write heads, each seeing the slots the previous ones took.

    Args:
      usage: ``[B, N]``.
      write_gates: ``[B, Hw]`` in ``[0, 1]``.

    Returns:
      ``[B, Hw, N]``.
    """
    allocations = []
    for h in range(write_gates.shape[1]):
        a = allocation_weighting(usage)
        allocations.append(a)
        usage = usage + (1.0 - usage) * write_gates[:, h : h + 1] * a
    return torch.stack(allocations, dim=1)


def write_weighting(
    content: torch.Tensor, allocation: torch.Tensor, allocation_gate: torch.Tensor, write_gate: torch.Tensor
) -> torch.Tensor:
    """DNC write weighting ``g^w (g^a a + (1 - g^a) c)``.

    Args:
      content: ``[B, Hw, N]`` content weightings of the write keys.
      allocation: ``[B, Hw, N]``.
      allocation_gate: ``[B, Hw]`` in ``[0, 1]``.
      write_gate: ``[B, Hw]`` in ``[0, 1]``.

    Returns:
      ``[B, Hw, N]``, each row summing to at most 1.
    """
    ga = allocation_gate.unsqueeze(2)
    return write_gate.unsqueeze(2) * (content + ga * (allocation - content))


def update_precedence(precedence: torch.Tensor, write_weights: torch.Tensor) -> torch.Tensor:
    """Precedence ``p_t = (1 - sum_i w_t[i]) p_{t-1} + w_t``.

    Args:
      precedence: ``[B, Hw, N]``.
      write_weights: ``[B, Hw, N]``, this step's write weightings.

    Returns:
      ``[B, Hw, N]``, each row summing to at most 1.
    """
    return (1.0 - write_weights.sum(dim=2, keepdim=True)) * precedence + write_weights


def update_link(
    link: torch.Tensor,
    precedence: torch.Tensor,
    write_weights: torch.Tensor,
    off_diagonal: torch.Tensor | None = None,
) -> torch.Tensor:
    """Temporal link ``L[i, j] = (1 - w[i] - w[j]) L[i, j] + w[i] p_{t-1}[j]``, zero diagonal.

    ``L[i, j]`` is the degree to which slot ``i`` was written right after slot ``j``.

    Args:
      link: ``[B, Hw, N, N]``.
      precedence: ``[B, Hw, N]``, the *previous* step's precedence.
      write_weights: ``[B, Hw, N]``, this step's write weightings.
      off_diagonal: optional ``[N, N]`` mask ``1 - I`` (precomputed by callers that step often).

    Returns:
      ``[B, Hw, N, N]`` with rows and columns summing to at most 1.
    """
    scale = (1.0 - write_weights).unsqueeze(3) - write_weights.unsqueeze(2)  # 1 - w[i] - w[j]
    new = torch.addcmul(write_weights.unsqueeze(3) * precedence.unsqueeze(2), scale, link)
    if off_diagonal is None:
        off_diagonal = 1.0 - torch.eye(link.shape[-1], dtype=link.dtype, device=link.device)
    return new * off_diagonal


def directional_weightings(link: torch.Tensor, read_weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward ``f = L w`` and backward ``b = L^T w`` weightings of each read head.

    Args:
      link: ``[B, Hw, N, N]``.
      read_weights: ``[B, R, N]``, the previous step's read weightings.

    Returns:
      ``(forward, backward)``, each ``[B, R, Hw, N]``.
    """
    if link.shape[1] == 1:
        single = link[:, 0]  # [B, N, N]: two batched products, no permutes
        return (
            torch.bmm(read_weights, single.transpose(1, 2)).unsqueeze(2),
            torch.bmm(read_weights, single).unsqueeze(2),
        )
    forward = torch.einsum("bhmn,brn->brhm", link, read_weights)
    backward = torch.einsum("bhmn,brm->brhn", link, read_weights)
    return forward, backward


def read_weighting(
    content: torch.Tensor, forward: torch.Tensor, backward: torch.Tensor, modes: torch.Tensor
) -> torch.Tensor:
    """DNC read weighting: mix of backward, content and forward weightings by the read modes.

    Args:
      content: ``[B, R, N]``.
      forward: ``[B, R, Hw, N]``.
      backward: ``[B, R, Hw, N]``.
      modes: ``[B, R, 2 * Hw + 1]``, a distribution ordered ``backward (Hw), forward (Hw), content``.

    Returns:
      ``[B, R, N]``.
    """
    hw = forward.shape[2]
    directional = torch.cat([backward, forward], dim=2)  # [B, R, 2Hw, N]
    mixed = torch.matmul(modes[:, :, : 2 * hw].unsqueeze(2), directional).squeeze(2)
    return mixed + modes[:, :, 2 * hw :] * content


def oneplus(x: torch.Tensor) -> torch.Tensor:
    """``1 + softplus(x)``: maps to ``[1, inf)`` (key strengths, sharpening exponents)."""
    return 1.0 + F.softplus(x)
