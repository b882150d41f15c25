"""Small tensor helpers shared by the model files."""

from __future__ import annotations

import torch


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None, dim: int = -1) -> torch.Tensor:
    """softmax over ``dim`` of the positions where ``mask`` is True; masked positions get exactly 0."""
    if mask is None:
        return scores.softmax(dim)
    scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(dim).masked_fill(~mask, 0.0)


def check_frame_mask(mask: torch.Tensor | None, shape: tuple[int, int], device, full: bool = True) -> torch.Tensor:
    """A (B, T) bool mask whose valid frames form a non-empty prefix of each row (padding at the end).

    ``None`` means every frame is valid. ``full=False`` checks only shape and dtype (no device
    synchronisation): modules inside the model use it, the model's entry point checks in full.
    """
    if mask is None:
        return torch.ones(shape, dtype=torch.bool, device=device)
    if mask.shape != torch.Size(shape) or mask.dtype != torch.bool:
        raise ValueError(
            f"frame_mask: expected a bool tensor of shape {tuple(shape)}, got {mask.dtype} {tuple(mask.shape)}"
        )
    if not full:
        return mask
    counts = mask.sum(1)
    if bool((counts == 0).any()):
        raise ValueError(f"frame_mask: rows {torch.nonzero(counts == 0).flatten().tolist()} have no valid frame")
    prefix = torch.arange(shape[1], device=mask.device)[None, :] < counts[:, None]
    if not bool((prefix == mask).all()):
        raise ValueError("frame_mask: valid frames must come first in each row (padding at the end)")
    return mask
