r"""What the parts of CRA do on a split, measured from the model's own passes (logged with every
evaluation: ``metrics.jsonl``'s ``val["diagnostics"]`` and the study tables).

For the VQA pass of each question (means over questions; :class:`Diagnostics` accumulates batches):

==========================  ============================================================================
``backdoor_kl``             :math:`\mathrm{KL}(p(z \mid l) \,\|\, P(z))` (nats) of the back-door attention
                            over :math:`Z_l`, averaged over the candidate texts; 0 means the attention
                            *is* the prior, a constant vector added to every text embedding
``backdoor_score_std``      spread (std over the K_l entries) of the attention scores
                            :math:`(W_q l)^\top W_k z_k / \sqrt D` before the prior
``backdoor_logprior_std``   spread of :math:`\log P(z)`; scores much flatter than this leave the prior
                            in charge
``frontdoor_entropy``       entropy of the front-door in-sample attention over frames (or the batch) /
                            log n: 1 = uniform
``frontdoor_xhat_entropy``  the same for the cross-sample attention over :math:`\hat X`
``cos_vt_vbar``             :math:`\cos(v_t, \bar v)`: 1 means the grounded feature is the whole-video mean
``w_entropy``               entropy of the frame weights w / log T (1 = uniform)
``mass_evidence``           share of w on the true evidence frames (when the split has gsub spans)
``mass_uniform``            the same share for uniform weights (the reference)
==========================  ============================================================================

A part that is switched off gives no key. Mass on distractors needs a synthetic world's truth
(:func:`cra.study.scoring.faithfulness`).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F

__all__ = ["Diagnostics", "DIAGNOSTIC_KEYS", "recording"]

DIAGNOSTIC_KEYS = (
    "backdoor_kl",
    "backdoor_score_std",
    "backdoor_logprior_std",
    "frontdoor_entropy",
    "frontdoor_xhat_entropy",
    "cos_vt_vbar",
    "w_entropy",
    "mass_evidence",
    "mass_uniform",
)


def _entropy_ratio(p: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """H(p) / log n per row: p (..., N), n (...,)."""
    h = -(p * p.clamp_min(1e-12).log()).sum(-1)
    return h / n.to(p.dtype).log().clamp_min(1e-12)


class Diagnostics:
    """Sums of the measures over questions; :meth:`summary` gives the means (see the module doc)."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self._captured: dict[str, tuple] = {}

    def _add(self, name: str, values: torch.Tensor) -> None:
        values = values.detach().float().flatten()
        values = values[torch.isfinite(values)]
        self.sums[name] = self.sums.get(name, 0.0) + float(values.sum())
        self.counts[name] = self.counts.get(name, 0) + values.numel()

    def summary(self) -> dict[str, float]:
        return {k: self.sums[k] / self.counts[k] for k in DIAGNOSTIC_KEYS if self.counts.get(k)}

    @classmethod
    def merged(cls, parts: list["Diagnostics"]) -> "Diagnostics":
        """The sums and counts of ``parts`` (e.g. shares of one split) added: their summary is the split's."""
        out = cls()
        for part in parts:
            for k, v in part.sums.items():
                out.sums[k] = out.sums.get(k, 0.0) + v
            for k, n in part.counts.items():
                out.counts[k] = out.counts.get(k, 0) + n
        return out

    def gathered(self, info) -> "Diagnostics":
        """:meth:`merged` over every process (:class:`cra.distributed.DistInfo`; itself with one): the
        split's measures when each rank scored its share. Every rank must call it."""
        from cra import distributed

        if not info.enabled:
            return self
        parts = []
        for sums, counts in distributed.all_gather_objects((self.sums, self.counts), info):
            part = Diagnostics()
            part.sums, part.counts = sums, counts
            parts.append(part)
        return Diagnostics.merged(parts)

    @torch.no_grad()
    def update(self, model, out, evidence: torch.Tensor | None = None) -> None:
        """Measures of one batch: ``out`` the model's :class:`~cra.model.cra.CRAOutput` of a forward run
        inside :func:`recording` (which captured the causal modules' inputs); ``evidence`` (B, T) bool."""
        p, mask = out.vqa, out.frame_mask
        n_frames = mask.sum(1)
        self._add("cos_vt_vbar", F.cosine_similarity(p.v_grounded.float(), p.v_mean.float(), dim=-1))
        self._add("w_entropy", _entropy_ratio(p.w.float(), n_frames))
        if evidence is not None and evidence.shape == mask.shape:
            e = (evidence.to(mask.device).bool() & mask).float()
            has = e.sum(1) > 0
            self._add("mass_evidence", ((p.w.float() * e).sum(1) / p.w.float().sum(1))[has])
            self._add("mass_uniform", (e.sum(1) / n_frames.float())[has])
        if model.backdoor is not None and "backdoor" in self._captured:
            bd = model.backdoor
            (l,) = self._captured["backdoor"]
            log_prior = bd.prior_log(l).float()
            attn = bd.attention(l).float()  # (N, K_l)
            kl = (attn * (attn.clamp_min(1e-12).log() - log_prior)).sum(-1)
            self._add("backdoor_kl", kl)
            self._add("backdoor_score_std", bd.scores(l).float().std(-1))
            self._add("backdoor_logprior_std", log_prior.std().expand(1))
        if model.frontdoor is not None and "frontdoor" in self._captured:
            fd = model.frontdoor
            m, x, frame_states, frame_mask = self._captured["frontdoor"][:4]
            alpha, _ = fd.in_sample_attention(m, x, frame_states, frame_mask)
            n = frame_mask.sum(1) if fd.mode == "in_sample" else torch.full((alpha.shape[0],), alpha.shape[1])
            self._add("frontdoor_entropy", _entropy_ratio(alpha.float(), n.to(alpha.device)))
            beta, _ = fd.cross_attention(x)
            self._add(
                "frontdoor_xhat_entropy", _entropy_ratio(beta.float(), torch.full((beta.shape[0],), beta.shape[1]))
            )
        self._captured.clear()


@contextmanager
def recording(model, diagnostics: Diagnostics) -> Iterator[Diagnostics]:
    """Capture the inputs of the model's back-door (its text embeddings of the first call: the VQA
    candidates) and front-door (first call: the VQA pass) while forward runs, for :meth:`Diagnostics.update`."""
    handles = []

    def keep(name):
        def hook(module, args, kwargs):
            if name not in diagnostics._captured:
                diagnostics._captured[name] = tuple(args) + tuple(kwargs.values())

        return hook

    for name in ("backdoor", "frontdoor"):
        module = getattr(model, name, None)
        if module is not None:
            handles.append(module.register_forward_pre_hook(keep(name), with_kwargs=True))
    try:
        yield diagnostics
    finally:
        for h in handles:
            h.remove()
