r"""CMA, Cross-Modal Alignment: InfoNCE between grounded video features and QA text features.

.. math::

    \mathcal L_{NCE}(x, x^+, \{x^-_k\}) = -\log
        \frac{e^{\cos(x, x^+)/\tau}}{e^{\cos(x, x^+)/\tau} + \sum_k e^{\cos(x, x^-_k)/\tau}}

    \mathcal L_{CMA} = \underbrace{\mathcal L_{NCE}(l^+, v^+, \{v^-\})}_{\text{text to video}}
                     + \underbrace{\mathcal L_{NCE}(v^+, l^+, \{l^-\})}_{\text{video to text}}

For sample i of the batch, the positive is the other modality of the same sample; negatives are the
other modality of the other samples: all B-1 of them (default), or ``num_negatives`` drawn uniformly
with replacement (the released code's sampler). The released code computes only the text-to-video
direction. Each term is averaged over the batch. CMA has no parameters.

Across processes (:mod:`cra.distributed`), ``gather`` turns this rank's rows into the global batch's
(with the offset of this rank's rows): each rank computes the terms of its own anchors against all
global negatives, so the loss is the same function of the global batch whatever the number of ranks.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

__all__ = ["info_nce", "cma_loss"]


def info_nce(anchor: torch.Tensor, others: torch.Tensor, temperature: float = 0.07, negatives: str = "all",
             num_negatives: int = 32, generator: torch.Generator | None = None, offset: int = 0) -> torch.Tensor:
    """Mean over i of L_NCE(anchor_i, others_{offset+i}, {others_j : j != offset+i}); anchor (B, D),
    others (M, D) with M >= offset + B (M = B, offset 0 in one process) -> scalar."""
    B, M = anchor.shape[0], others.shape[0]
    if others.shape[1:] != anchor.shape[1:] or offset + B > M:
        raise ValueError(f"info_nce: anchor {tuple(anchor.shape)} and others {tuple(others.shape)} (offset {offset}) differ")
    if M < 2:
        return anchor.sum() * 0.0  # no negatives: the loss is log(1) = 0
    sim = F.normalize(anchor, dim=-1) @ F.normalize(others, dim=-1).T / temperature  # (B, M) cos / tau
    positive = torch.arange(offset, offset + B, device=sim.device)  # (B,)
    if negatives == "all":
        return F.cross_entropy(sim, positive)
    if negatives != "sampled":
        raise ValueError(f"negatives={negatives!r}: expected 'all' or 'sampled'")
    # uniform over the M-1 other samples, with replacement: draw from 0..M-2 and skip the anchor's index
    draw = torch.randint(0, M - 1, (M, num_negatives), generator=generator, device="cpu")[offset: offset + B]
    draw = draw.to(sim.device)
    idx = draw + (draw >= positive[:, None]).long()  # (B, k), never the positive
    logits = torch.cat([sim.gather(1, positive[:, None]), sim.gather(1, idx)], 1)  # (B, 1 + k), positive first
    return F.cross_entropy(logits, torch.zeros(B, dtype=torch.long, device=sim.device))


def cma_loss(text: torch.Tensor, video: torch.Tensor, temperature: float = 0.07, directions: str = "both",
             negatives: str = "all", num_negatives: int = 32, generator: torch.Generator | None = None,
             gather: Callable[[torch.Tensor], tuple[torch.Tensor, int]] | None = None) -> dict:
    """{"text_to_video", "video_to_text" (only with directions="both"), "total"}; text, video (B, D).

    ``gather(x) -> (x of the global batch, offset of these rows)`` draws negatives from the global batch."""
    kw = dict(temperature=temperature, negatives=negatives, num_negatives=num_negatives, generator=generator)
    video_all, offset = gather(video) if gather is not None else (video, 0)
    parts = {"text_to_video": info_nce(text, video_all, offset=offset, **kw)}
    if directions == "both":
        text_all, offset = gather(text) if gather is not None else (text, 0)
        parts["video_to_text"] = info_nce(video, text_all, offset=offset, **kw)
    elif directions != "text_to_video":
        raise ValueError(f"directions={directions!r}: expected 'both' or 'text_to_video'")
    parts["total"] = sum(parts.values())
    return parts
