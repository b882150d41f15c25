r"""The full CRA model: Temp[CLIP] backbone, GSG, ECI (back-door, front-door), answer scoring,
the VQA and VQ passes, and the training loss.

Batch contract (a dict; the data loader yields it, :meth:`CRA.forward` reads it):

=======================  ==========================  ===========================================
key                      type / shape                meaning
=======================  ==========================  ===========================================
``frames``               float (B, T, D_in)          frozen CLIP frame features, T <= max_frames
``frame_mask``           bool (B, T), optional       True for real frames; padding only at the end
``qa_texts``             B lists of K str            candidate texts (question + answer_k, data.qa_template)
``answer``               long (B,), training only    index of the correct candidate
``question_candidates``  B lists of K_q str, opt.    the true question and K_q - 1 negative questions
``question_answer``      long (B,), with the above   index of the true question among them
``frame_times``          float (B, T), optional      frame timestamps in seconds (for :mod:`cra.readouts`)
``evidence_mask``        bool (B, T), optional       true evidence frames (``mediator="true_evidence"``, supervision)
``evidence_supervised``  bool (B,), optional         which questions' spans supervise w (``gsg_supervision``)
``text_tokens``          dict, optional              candidate texts tokenised ahead (:class:`CandidateTokenizer`)
=======================  ==========================  ===========================================

Other keys are ignored. The VQ pass runs when ``question_candidates`` is present; losses need
``answer`` (and ``question_answer`` for the VQ pass).

One pass (VQA: candidates = ``qa_texts``; VQ: candidates = ``question_candidates``):

.. math::

    l_k = \mathrm{BackDoor}(\mathrm{TextHead}(c_k)),\quad
    l = \max_k l_k \;(\text{VQA})\ \text{or}\ l_{true} \;(\text{VQ}),\quad
    (w^0, w) = \mathrm{GSG}(\bar x, l),\quad
    v_t = W_p \textstyle\sum_i w_i \bar x_i,\quad \bar v = W_p\, \mathrm{mean}_i\, \bar x_i

.. math::

    m' = \mathrm{FrontDoor}(v_t, \bar v),\quad v_{final} = W_a m'\ (\text{released: } v_{final} = m'),\quad
    \mathrm{logit}_k = \langle l_k, v_{final} \rangle

Loss: $\mathcal L = w_{vqa} CE^{VQA} + w_{vq} CE^{VQ} + w_{cma}(CMA^{VQ} + CMA^{VQA})$, where each CMA
aligns the true candidate's $l$ with $v_{final}$ across the batch (:mod:`cra.model.cma`).

Study options (:class:`~cra.model.config.CRAConfig`, beyond the paper's one setting): ``mediator``
replaces the learned $w$ by the true evidence frames ($w = e / |e|$, from ``evidence_mask``) or by
uniform weights ($v_t = \bar v$); ``gaussian_mask`` grounds with NG+ (:mod:`cra.model.gaussian_mask`);
``gsg_supervision`` (beyond the paper) adds $w_{sup} \cdot \mathrm{mean}_{b \in S} \big(-\sum_i
\tfrac{e_{bi}}{|e_b|} \log w_{bi}\big)$ over the supervised questions $S$ of the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from cra.model.backbone import TemporalEncoder, TextHead
from cra.model.causal import SEMANTIC_GRAPH_NODES, BackDoor, FrontDoor
from cra.model.cma import cma_loss
from cra.model.config import CRAConfig
from cra.model.gaussian_mask import GaussianMask
from cra.model.gsg import GSG, AttentionPooling, GroundingWeights
from cra.model.ops import check_frame_mask
from cra.model.released_encoder import ReleasedTemporalEncoder
from cra.text import TextEncoder, build_text_encoder
from cra.text.base import tokenizer_only

__all__ = ["CRA", "PassOutput", "CRAOutput", "CandidateTokenizer", "candidate_calls", "TOKENS_KEY", "CANDIDATE_KEYS"]

#: the candidate groups of a batch, in the order the model encodes them
CANDIDATE_KEYS = ("qa_texts", "question_candidates")
#: the batch key of candidate texts tokenised ahead: {"qa_texts/question_candidates": TokenIds, ...}
TOKENS_KEY = "text_tokens"


def candidate_calls(config: CRAConfig, keys: list[str]) -> list[tuple[tuple[str, ...], dict]]:
    """The text-encoder calls of a batch's candidate groups: ``[(keys, tokenization)]``. Groups
    tokenised alike share one call (one padding); the released options tokenise each group its own
    way (fixed padding, questions cut at ``question_max_length``), one call each."""
    padding = dict(pad_to_max_length=config.text_padding == "max_length")
    tokenization = {
        k: dict(max_length=config.question_max_length if k == "question_candidates" else None, **padding) for k in keys
    }
    if len({tuple(sorted(t.items())) for t in tokenization.values()}) > 1:
        return [((k,), tokenization[k]) for k in keys]
    return [(tuple(keys), tokenization[keys[0]])] if keys else []


def _group_shape(name: str, value) -> tuple[int, int]:
    """(B, K) of ``batch[name]``, B lists of K strings each."""
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"batch[{name!r}]: expected a list of B lists of strings")
    for i, group in enumerate(value):
        if isinstance(group, str) or not all(isinstance(t, str) for t in group):
            raise TypeError(f"batch[{name!r}][{i}]: expected a list of strings")
    sizes = {len(g) for g in value}
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError(f"batch[{name!r}]: every sample needs the same non-zero number of texts, got {sorted(sizes)}")
    return len(value), sizes.pop()


class CandidateTokenizer:
    """Tokenises a batch's candidate texts exactly as :meth:`CRA.encode_candidates` would, so that a
    ``DataLoader`` worker does it (:meth:`collate`) instead of the training step: adds
    ``batch[TOKENS_KEY] = {"qa_texts/question_candidates": TokenIds}`` (CPU tensors). It holds the
    text encoder without its weights (:func:`cra.text.base.tokenizer_only`)."""

    def __init__(self, config: CRAConfig, encoder: TextEncoder, keys: tuple[str, ...] = CANDIDATE_KEYS):
        self.config, self.encoder, self.keys = config, tokenizer_only(encoder), keys

    def __call__(self, batch: dict) -> dict:
        present = [k for k in self.keys if batch.get(k) is not None]
        batch[TOKENS_KEY] = {
            "/".join(keys): self.encoder.tokenize_call([t for k in keys for g in batch[k] for t in g], **tokenization)
            for keys, tokenization in candidate_calls(self.config, present)
        }
        return batch

    def collate(self, items) -> dict:
        """:func:`cra.data.dataset.collate`, then tokenise (a ``DataLoader``'s ``collate_fn``)."""
        from cra.data.dataset import collate

        return self(collate(items))


@dataclass
class PassOutput:
    logits: torch.Tensor  # (B, K) candidate scores
    text_emb: torch.Tensor  # (B, K, D) l_k after the back-door
    l_global: torch.Tensor  # (B, D)
    w0: torch.Tensor  # (B, T)
    w: torch.Tensor  # (B, T)
    v_grounded: torch.Tensor  # (B, D) v_t, the mediator M
    v_mean: torch.Tensor  # (B, D) v-bar, the treatment X
    v_final: torch.Tensor  # (B, D) after the front-door and W_a (the front-door output when W_a is off)


@dataclass
class CRAOutput:
    vqa: PassOutput
    vq: PassOutput | None
    frame_states: torch.Tensor  # (B, T, D)
    frame_mask: torch.Tensor  # (B, T)


class CRA(nn.Module):
    """CRA for video question grounding. ``Z_l`` (K_l, 8, D_z), ``X_hat`` (K_v, D_x) and the optional
    ``Z_prior`` (K_l,) are tensors (for example loaded from the confounder file); when a causal part is
    on and its dictionary is not given, a random one of the configured size is used (tests, demos)."""

    def __init__(
        self,
        config: CRAConfig | None = None,
        text_encoder: TextEncoder | None = None,
        Z_l: torch.Tensor | None = None,
        X_hat: torch.Tensor | None = None,
        Z_prior: torch.Tensor | None = None,
    ):
        super().__init__()
        self.config = cfg = config or CRAConfig()
        d = cfg.d_model
        if text_encoder is None:
            text_encoder = build_text_encoder(cfg.text_encoder, **cfg.text_encoder_kwargs)
        encoder = ReleasedTemporalEncoder if cfg.temporal_encoder == "released" else TemporalEncoder
        self.backbone = encoder(
            cfg.feature_dim, d, cfg.num_layers, cfg.num_heads, cfg.d_ff, cfg.max_frames, cfg.dropout, cfg.pos_dropout
        )
        self.text = TextHead(text_encoder, d, mask_padding=cfg.mask_word_attention)
        if cfg.gaussian_mask:
            self.grounding = GaussianMask(d, cfg.num_heads, cfg.dropout, cfg.gaussian_mask_sigma)
        elif cfg.use_gsg:
            self.grounding = GSG(
                d,
                cfg.use_smoothing,
                cfg.kernel_size,
                cfg.sigma_init,
                cfg.sigma_param,
                cfg.renorm,
                cfg.gate_norm,
                cfg.scaled_gate,
            )
        else:
            self.grounding = AttentionPooling()
        self.pool_proj = nn.Sequential(nn.Dropout(cfg.proj_dropout), nn.Linear(d, d))  # W_p
        self.backdoor = None
        if cfg.use_backdoor:
            if Z_l is None:
                Z_l = torch.randn(cfg.num_z_entries, len(SEMANTIC_GRAPH_NODES), cfg.z_node_dim)
            self.backdoor = BackDoor(
                d, Z_l, cfg.gcn_out, Z_prior, cfg.learn_dictionaries, cfg.backdoor_mode, cfg.backdoor_graph
            )
        self.frontdoor = None
        if cfg.use_frontdoor:
            if X_hat is None:
                X_hat = torch.randn(cfg.num_x_entries, cfg.x_hat_size)
            self.frontdoor = FrontDoor(d, X_hat, cfg.frontdoor_mode, cfg.learn_dictionaries, cfg.frontdoor_tied_query)
        self.answer_proj = (
            nn.Linear(d, d) if cfg.answer_projection else None
        )  # W_a, the "Linear" before the dot product
        self.fewer_products = False

    @property
    def fewer_products(self) -> bool:
        """The same math with fewer matrix products (``train.fewer_products``; float rounding differs, ~1e-7
        relative): the text head projects after its word attention (:class:`TextHead`), and the products of
        the frames that do not depend on the text (GSG's :meth:`~cra.model.gsg.GSG.frame_terms`, the
        front-door's frame keys) are computed once per video for both passes."""
        return self.text.pool_first

    @fewer_products.setter
    def fewer_products(self, on: bool) -> None:
        self.text.pool_first = bool(on)

    # ---- pieces ------------------------------------------------------------------------------

    def encode_candidates(self, *groups_by_key: tuple[str, list], tokens: dict | None = None) -> list[torch.Tensor]:
        """Text embeddings (B, K, D) for each (key, B lists of K strings): one encoder call, or one per
        group when the groups are tokenized differently (:func:`candidate_calls`). ``tokens``: the
        calls tokenised ahead (``batch["text_tokens"]``, :class:`CandidateTokenizer`); a call not
        there is tokenised here."""
        groups = dict(groups_by_key)
        shapes = {name: _group_shape(name, value) for name, value in groups_by_key}  # name -> (B, K)
        out = []
        for keys, tokenization in candidate_calls(self.config, list(groups)):
            call = "/".join(keys)
            texts = [t for k in keys for group in groups[k] for t in group]
            ahead = (tokens or {}).get(call)
            if ahead is None:
                emb = self.text(texts, **tokenization)  # (sum B*K, D)
            elif len(ahead.ids) != len(texts):
                raise ValueError(f"batch[{TOKENS_KEY!r}][{call!r}]: {len(ahead.ids)} rows for {len(texts)} texts")
            else:
                emb = self.text.encode_tokens(ahead)
            if self.backdoor is not None:
                emb = self.backdoor(emb)  # l' = LN(l + Attn(l, Z_l))
            offset = 0
            for k in keys:
                B, K = shapes[k]
                out.append(emb[offset : offset + B * K].view(B, K, -1))
                offset += B * K
        return out

    def candidate_tokenizer(self, keys: tuple[str, ...] = CANDIDATE_KEYS) -> "CandidateTokenizer | None":
        """A :class:`CandidateTokenizer` for this model's text encoder (``None`` when the encoder cannot
        tokenise apart from its weights, e.g. the frozen/cached mode)."""
        encoder = self.text.encoder
        return CandidateTokenizer(self.config, encoder, keys) if encoder.separate_tokenization else None

    def mediator_weights(
        self,
        frame_states: torch.Tensor,
        frame_mask: torch.Tensor,
        l_global: torch.Tensor,
        evidence: torch.Tensor | None = None,
        terms: dict | None = None,
    ) -> GroundingWeights:
        """w0, w (B, T): learned grounding, or (``config.mediator``) the true evidence or uniform weights."""
        mode = self.config.mediator
        if mode == "learned":
            if terms and "grounding" in terms:
                return self.grounding(frame_states, l_global, frame_mask, terms=terms["grounding"])
            return self.grounding(frame_states, l_global, frame_mask)
        if mode == "true_evidence":
            if evidence is None:
                raise ValueError(
                    "model.mediator=true_evidence needs batch['evidence_mask'] (B, T) of the true evidence frames"
                )
            e = (evidence & frame_mask).to(frame_states.dtype)  # (B, T)
            if bool((e.sum(1) == 0).any()):
                raise ValueError("batch['evidence_mask']: a question has no evidence frame")
            w = e / e.sum(1, keepdim=True)
        else:  # whole_video
            valid = frame_mask.to(frame_states.dtype)
            w = valid / valid.sum(1, keepdim=True)
        return GroundingWeights(w, w, None)

    def video_pass(
        self,
        frame_states: torch.Tensor,
        frame_mask: torch.Tensor,
        text_emb: torch.Tensor,
        l_global: torch.Tensor,
        evidence: torch.Tensor | None = None,
        terms: dict | None = None,
    ) -> PassOutput:
        """``terms``: :meth:`frame_terms` of ``frame_states`` (with :attr:`fewer_products`)."""
        weights = self.mediator_weights(frame_states, frame_mask, l_global, evidence, terms)  # w0, w: (B, T)
        valid = frame_mask.to(frame_states.dtype)
        pooled = torch.einsum("bt,btd->bd", weights.w, frame_states)  # (B, D)  sum_i w_i x_i
        mean = torch.einsum("bt,btd->bd", valid, frame_states) / valid.sum(1, keepdim=True)  # (B, D)
        v_grounded, v_mean = self.pool_proj(pooled), self.pool_proj(mean)
        m = v_grounded
        if self.frontdoor is not None:
            items = (terms or {}).get("frontdoor")  # (B, T, D) or None
            m = self.frontdoor(v_grounded, v_mean, frame_states, frame_mask, items=items)  # m' = LN(m + W_o[h1; h2])
        v_final = m if self.answer_proj is None else self.answer_proj(m)  # (B, D)
        logits = torch.einsum("bkd,bd->bk", text_emb, v_final)  # (B, K)  <l_k, v_final>
        return PassOutput(logits, text_emb, l_global, weights.w0, weights.w, v_grounded, v_mean, v_final)

    def frame_terms(self, frame_states: torch.Tensor) -> dict | None:
        """The products of the frames that no pass's text changes, computed once per video when
        :attr:`fewer_products` is on (else ``None``): GSG's ``frame_terms``, the front-door's keys."""
        if not self.fewer_products:
            return None
        terms = {}
        if isinstance(self.grounding, GSG) and self.config.mediator == "learned":
            terms["grounding"] = self.grounding.frame_terms(frame_states)
        if self.frontdoor is not None and self.frontdoor.mode == "in_sample":
            terms["frontdoor"] = self.frontdoor.key_x(frame_states)  # (B, T, D)
        return terms

    # ---- forward and loss --------------------------------------------------------------------

    def check_inputs(self, batch: dict) -> None:
        """The value checks of :meth:`forward` and :meth:`losses` (mask prefix, index ranges), done on the
        batch where it is (the CPU batch of the loader: no device synchronisation); then pass
        ``checked=True`` to both."""
        frames = batch["frames"]
        check_frame_mask(batch.get("frame_mask"), tuple(frames.shape[:2]), frames.device)
        for key, texts in (("answer", "qa_texts"), ("question_answer", "question_candidates")):
            if batch.get(texts) is not None and key in batch:
                self._index(batch, key, len(batch[texts][0]), batch[key].device)

    def forward(self, batch: dict, checked: bool = False) -> CRAOutput:
        """``checked``: :meth:`check_inputs` already ran on this batch (only shapes and types are checked here)."""
        frames = batch.get("frames")
        if not torch.is_tensor(frames) or frames.ndim != 3 or not frames.is_floating_point():
            raise ValueError("batch['frames']: expected a float tensor (B, T, D_in)")
        if frames.shape[-1] != self.config.feature_dim:
            raise ValueError(
                f"batch['frames']: feature size {frames.shape[-1]}, config.feature_dim={self.config.feature_dim}"
            )
        B, T, _ = frames.shape
        mask = check_frame_mask(batch.get("frame_mask"), (B, T), frames.device, full=not checked)
        for key in ("qa_texts", "question_candidates"):
            if key in batch and len(batch[key]) != B:
                raise ValueError(f"batch[{key!r}]: {len(batch[key])} samples, frames has {B}")
        frame_states = self.backbone(frames, mask)  # (B, T, D)
        evidence = batch.get("evidence_mask")
        if evidence is not None:
            evidence = evidence.to(mask.device).bool()
            if evidence.shape != (B, T):
                raise ValueError(f"batch['evidence_mask']: expected shape {(B, T)}, got {tuple(evidence.shape)}")

        has_vq = batch.get("question_candidates") is not None
        texts = [("qa_texts", batch["qa_texts"])]
        if has_vq:
            if "question_answer" not in batch:
                raise ValueError("batch['question_answer'] is required with batch['question_candidates']")
            texts.append(("question_candidates", batch["question_candidates"]))
        embs = self.encode_candidates(*texts, tokens=batch.get(TOKENS_KEY))

        cand = embs[0]  # (B, K, D)
        terms = self.frame_terms(frame_states)
        vqa = self.video_pass(frame_states, mask, cand, cand.max(1).values, evidence, terms)  # l = max_k l_k
        vq = None
        if has_vq:
            questions = embs[1]  # (B, K_q, D)
            true_q = self._index(batch, "question_answer", questions.shape[1], questions.device, checked)
            l_true = questions[torch.arange(B, device=questions.device), true_q]  # (B, D)
            # released: the VQ pass runs the video encoder again (its own dropout mask; the same in eval)
            if self.config.shared_backbone_pass:
                vq_states, vq_terms = frame_states, terms
            else:
                vq_states = self.backbone(frames, mask)
                vq_terms = self.frame_terms(vq_states)
            vq = self.video_pass(vq_states, mask, questions, l_true, evidence, vq_terms)
        return CRAOutput(vqa, vq, frame_states, mask)

    @staticmethod
    def _index(batch: dict, key: str, size: int, device, checked: bool = False) -> torch.Tensor:
        idx = batch.get(key)
        if not torch.is_tensor(idx) or idx.dtype != torch.long or idx.ndim != 1:
            raise ValueError(f"batch[{key!r}]: expected a long tensor (B,)")
        if not checked and bool(((idx < 0) | (idx >= size)).any()):
            raise ValueError(f"batch[{key!r}]: indices must lie in [0, {size}), got {idx.tolist()}")
        return idx.to(device)

    def losses(self, batch: dict, out: CRAOutput, gather=None, checked: bool = False) -> dict:
        """{"loss", "loss_vqa", "loss_vq", "loss_cma", "cma_vqa", "cma_vq", ...}: scalars (means over the batch).

        ``gather(x) -> (x of the global batch, offset of these rows)``: CMA negatives from every
        process's batch (:func:`cra.distributed.gather_with_grad`); each term stays a mean over these rows."""
        cfg = self.config
        B = out.vqa.logits.shape[0]
        rows = torch.arange(B, device=out.vqa.logits.device)
        answer = self._index(batch, "answer", out.vqa.logits.shape[1], rows.device, checked)
        result = {"loss_vqa": F.cross_entropy(out.vqa.logits, answer)}
        total = cfg.weight_vqa * result["loss_vqa"]
        passes = [("vqa", out.vqa, answer)]
        if out.vq is not None:
            true_q = self._index(batch, "question_answer", out.vq.logits.shape[1], rows.device, checked)
            result["loss_vq"] = F.cross_entropy(out.vq.logits, true_q)
            total = total + cfg.weight_vq * result["loss_vq"]
            passes.append(("vq", out.vq, true_q))
        if cfg.use_cma:
            cma_total = 0.0
            for name, p, target in passes:
                parts = cma_loss(
                    p.text_emb[rows, target],
                    p.v_final,
                    cfg.temperature,
                    cfg.cma_directions,
                    cfg.cma_negatives,
                    cfg.cma_num_negatives,
                    gather=gather,
                )
                result[f"cma_{name}"] = parts["total"]
                for direction, value in parts.items():
                    if direction != "total":
                        result[f"cma_{name}_{direction}"] = value
                cma_total = cma_total + parts["total"]
            result["loss_cma"] = cma_total
            total = total + cfg.weight_cma * cma_total
        if cfg.gsg_supervision > 0 and cfg.mediator == "learned":
            result["loss_grounding"] = self.grounding_supervision(batch, out)
            total = total + cfg.gsg_supervision_weight * result["loss_grounding"]
        result["loss"] = total
        return result

    @staticmethod
    def grounding_supervision(batch: dict, out: CRAOutput) -> torch.Tensor:
        """BEYOND THE PAPER: mean over supervised questions of CE(e / |e|, w) on the VQA pass (0 if none)."""
        evidence, chosen = batch.get("evidence_mask"), batch.get("evidence_supervised")
        if evidence is None or chosen is None:
            raise ValueError("model.gsg_supervision > 0 needs batch['evidence_mask'] and batch['evidence_supervised']")
        w = out.vqa.w  # (B, T)
        e = (evidence.to(w.device).bool() & out.frame_mask).to(w.dtype)
        chosen = chosen.to(w.device).bool() & (e.sum(1) > 0)
        if not bool(chosen.any()):
            return w.sum() * 0.0
        target = e[chosen] / e[chosen].sum(1, keepdim=True)  # (S, T)
        return -(target * w[chosen].clamp_min(1e-8).log()).sum(1).mean()
