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

__all__ = ["info_nce", "cma_loss", "sample_negatives"]


def sample_negatives(
    batch_size: int,
    num_negatives: int = 32,
    generator: torch.Generator | None = None,
    device=None,
    rows: slice | None = None,
) -> torch.Tensor:
    """For each i, ``num_negatives`` indices drawn uniformly with replacement from the other samples:
    (B, k) long, never i. One CPU draw of (B, k) values in [0, B-2] (the same stream as the released
    sampler's B draws of k), then index j >= i shifts to j + 1, skipping the anchor. ``rows``: keep
    only these anchors' rows (this rank's share of a global batch of ``batch_size``)."""
    draw = torch.randint(0, batch_size - 1, (batch_size, num_negatives), generator=generator, device="cpu")
    idx = draw + (draw >= torch.arange(batch_size)[:, None]).long()  # (B, k)
    idx = idx[rows] if rows is not None else idx
    return idx.to(device) if device is not None else idx


def info_nce(
    anchor: torch.Tensor,
    others: torch.Tensor,
    temperature: float = 0.07,
    negatives: str = "all",
    num_negatives: int = 32,
    generator: torch.Generator | None = None,
    negative_index: torch.Tensor | None = None,
    offset: int = 0,
) -> torch.Tensor:
    """Mean over i of L_NCE(anchor_i, others_{offset+i}, {others_j : j != offset+i}); anchor (B, D),
    others (M, D) with M >= offset + B (M = B, offset 0 in one process) -> scalar.
    ``negative_index`` (B, k): given negatives for ``negatives="sampled"`` (e.g. to replay a recorded draw)."""
    B, M = anchor.shape[0], others.shape[0]
    if others.shape[1:] != anchor.shape[1:] or offset + B > M:
        raise ValueError(
            f"info_nce: anchor {tuple(anchor.shape)} and others {tuple(others.shape)} (offset {offset}) differ"
        )
    if M < 2:
        return anchor.sum() * 0.0  # no negatives: the loss is log(1) = 0
    sim = F.normalize(anchor, dim=-1) @ F.normalize(others, dim=-1).T / temperature  # (B, M) cos / tau
    positive = torch.arange(offset, offset + B, device=sim.device)  # (B,)
    if negatives == "all":
        return F.cross_entropy(sim, positive)
    if negatives != "sampled":
        raise ValueError(f"negatives={negatives!r}: expected 'all' or 'sampled'")
    if negative_index is None:  # (B, k), never the positive
        idx = sample_negatives(M, num_negatives, generator, sim.device, rows=slice(offset, offset + B))
    else:
        idx = negative_index.to(sim.device)
        if idx.ndim != 2 or idx.shape[0] != B or bool((idx == positive[:, None]).any()):
            raise ValueError(f"negative_index: expected (B={B}, k) indices of other samples, got {tuple(idx.shape)}")
    logits = torch.cat([sim.gather(1, positive[:, None]), sim.gather(1, idx)], 1)  # (B, 1 + k), positive first
    return F.cross_entropy(logits, torch.zeros(B, dtype=torch.long, device=sim.device))


def cma_loss(
    text: torch.Tensor,
    video: torch.Tensor,
    temperature: float = 0.07,
    directions: str = "both",
    negatives: str = "all",
    num_negatives: int = 32,
    generator: torch.Generator | None = None,
    negative_index: torch.Tensor | None = None,
    gather: Callable[[torch.Tensor], tuple[torch.Tensor, int]] | None = None,
) -> dict:
    """{"text_to_video", "video_to_text" (only with directions="both"), "total"}; text, video (B, D).

    ``gather(x) -> (x of the global batch, offset of these rows)`` draws negatives from the global batch."""
    kw = dict(
        temperature=temperature,
        negatives=negatives,
        num_negatives=num_negatives,
        generator=generator,
        negative_index=negative_index,
    )
    video_all, offset = gather(video) if gather is not None else (video, 0)
    parts = {"text_to_video": info_nce(text, video_all, offset=offset, **kw)}
    if directions == "both":
        text_all, offset = gather(text) if gather is not None else (text, 0)
        parts["video_to_text"] = info_nce(video, text_all, offset=offset, **kw)
    elif directions != "text_to_video":
        raise ValueError(f"directions={directions!r}: expected 'both' or 'text_to_video'")
    parts["total"] = sum(parts.values())
    return parts
