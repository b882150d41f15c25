"""An open_clip text tower (CLIP's text transformer), imported lazily."""

from __future__ import annotations

import torch
from torch import nn

from cra.text.base import TextEncoder, TextEncoding, ensure_torchvision_importable


def import_open_clip():
    """``import open_clip`` (lazily, after :func:`ensure_torchvision_importable`)."""
    ensure_torchvision_importable()
    try:
        import open_clip
    except ModuleNotFoundError as err:
        raise ImportError("the 'clip' text encoder needs open_clip: pip install 'cra-book[clip]'") from err
    return open_clip


#: A tiny CLIP text tower for tests and CPU demos (random weights, open_clip's bundled BPE tokenizer).
TINY_CLIP_TEXT_CFG = dict(context_length=77, vocab_size=49408, width=64, heads=2, layers=2)
TINY_CLIP_EMBED_DIM = 64


class OpenClipTextEncoder(TextEncoder):
    """A CLIP text transformer (causal attention, pooled at the end-of-text token, projected).

    ``model_name`` is an open_clip architecture (default ViT-L-14, whose 768-d output matches the
    frame features) or ``"tiny"`` (:data:`TINY_CLIP_TEXT_CFG`). With ``pretrained`` (an open_clip tag
    such as ``"openai"``) the text weights are copied from ``open_clip.create_model``; without, the
    tower has random weights. Tokens are open_clip's bundled BPE ids, trimmed to the batch's longest
    text: with causal attention and end-of-text pooling this gives exactly the 77-token result.
    """

    name = "clip"

    def __init__(
        self,
        model_name: str = "ViT-L-14",
        pretrained: str | None = None,
        text_cfg: dict | None = None,
        embed_dim: int | None = None,
        quick_gelu: bool | None = None,
        cache_dir: str | None = None,
    ):
        super().__init__()
        open_clip = import_open_clip()
        from open_clip.model import _build_text_tower

        if text_cfg is None and model_name == "tiny":
            text_cfg, embed_dim = dict(TINY_CLIP_TEXT_CFG), embed_dim or TINY_CLIP_EMBED_DIM
        if text_cfg is None:
            model_cfg = open_clip.get_model_config(model_name)
            if model_cfg is None:
                raise ValueError(f"unknown open_clip model {model_name!r}; see open_clip.list_models()")
            text_cfg, embed_dim = dict(model_cfg["text_cfg"]), embed_dim or model_cfg["embed_dim"]
            if quick_gelu is None:
                quick_gelu = bool(model_cfg.get("quick_gelu", False)) or pretrained == "openai"
        if embed_dim is None:
            raise ValueError("OpenClipTextEncoder: give embed_dim with a custom text_cfg")
        for key in ("hf_model_name", "hf_tokenizer_name"):
            if text_cfg.get(key):
                raise NotImplementedError(f"open_clip text towers with {key} are not supported here")
        tower = _build_text_tower(embed_dim, text_cfg, quick_gelu=bool(quick_gelu))
        if getattr(tower, "cls_emb", None) is not None or tower.pool_type != "argmax" or tower.attn_mask is None:
            raise NotImplementedError("only causal CLIP towers pooled at the end-of-text token are supported")
        if pretrained:
            full = open_clip.create_model(model_name, pretrained=pretrained, cache_dir=cache_dir)
            state = {k: v for k, v in full.state_dict().items() if not k.startswith("visual.") and "logit_" not in k}
            missing, _ = tower.load_state_dict(state, strict=False)
            if [k for k in missing if k != "attn_mask"]:
                raise RuntimeError(f"{model_name}/{pretrained}: text weights missing {missing}")
        self.tower = tower
        tokenizer_name = model_name if open_clip.get_model_config(model_name) else "ViT-B-32"
        self.tokenizer = open_clip.get_tokenizer(tokenizer_name, context_length=text_cfg.get("context_length", 77))
        self.dim = embed_dim
        self.token_dim = tower.width

    def tokenize(self, texts):
        ids = self.tokenizer(list(texts))  # (N, 77), 0-padded, <end_of_text> has the largest id
        mask = ids != 0
        length = int(mask.sum(1).max())
        return ids[:, :length], mask[:, :length]

    def encode_ids(self, ids, mask):
        t = self.tower
        length = ids.shape[1]
        x = t.token_embedding(ids) + t.positional_embedding[:length]  # (N, L, W)
        x = t.transformer(x, attn_mask=t.attn_mask[:length, :length])
        x = t.ln_final(x)
        pooled = x[torch.arange(len(ids), device=ids.device), ids.argmax(dim=-1)]  # end-of-text token
        if isinstance(t.text_projection, nn.Linear):
            pooled = t.text_projection(pooled)
        elif t.text_projection is not None:
            pooled = pooled @ t.text_projection  # (N, dim)
        return TextEncoding(pooled, x, mask)
