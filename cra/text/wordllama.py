"""WordLlama: pretrained static token embeddings that ship inside the PyPI wheel, so no download.

``wordllama`` (extra ``wordllama``) packs a 32,000 x 256 table of token vectors, trained from the
concatenated token-embedding tables of several large language models that share the Llama-2
tokenizer, with that SentencePiece tokenizer.
A text's vector is the mean of its tokens' vectors:

    pooled(t) = (1 / |t|) sum_{i in t} E[id_i]        E: (32000, 256), frozen

There is no context (a token's vector does not depend on its neighbours) and nothing is trained:
a cheap, offline, *pretrained* alternative to the random-init word encoder for CPU experiments
such as clustering semantic structure graphs.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from cra.text.base import TextEncoder, TextEncoding, masked_mean, pad_ids


def import_wordllama():
    """``import wordllama``, keeping the root logger as it was (the package calls
    ``logging.basicConfig(level=INFO)`` on import, which would make every library's INFO log print)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        import wordllama
    except ModuleNotFoundError as err:
        raise ImportError("the 'wordllama' text encoder needs wordllama: pip install 'cra-book[wordllama]'") from err
    finally:
        root.handlers[:], root.level = handlers, level
    return wordllama


class WordLlamaTextEncoder(TextEncoder):
    """Frozen WordLlama token vectors; pooled = their mean over the real tokens (= ``wordllama.embed``).

    ``config`` and ``dim`` name a weight file of the wheel (``l2_supercat``, 256-d ships with it);
    ``trunc_dim`` keeps the first dimensions (the vectors are trained to allow it). Files are only
    looked up on disk: nothing is downloaded. The empty text (a missing graph node) is one extra
    token whose vector is zero, so its pooled vector is zero, as ``wordllama.embed("")`` gives.
    """

    name = "wordllama"

    def __init__(self, config: str = "l2_supercat", dim: int = 256, trunc_dim: int | None = None):
        super().__init__()
        wordllama = import_wordllama()
        package = Path(wordllama.__file__).parent
        # The loader looks for the bundled tokenizer under "tokenizer/", but the wheel keeps it in
        # "tokenizers/", the layout of its cache folder: pointing the cache at the package finds both.
        try:
            model = wordllama.WordLlama.load(
                config, cache_dir=package, dim=dim, trunc_dim=trunc_dim, disable_download=True
            )
        except FileNotFoundError as err:
            raise FileNotFoundError(
                f"WordLlama weights {config!r} (dim {dim}) are not in the installed wheel {package} ({err}); "
                f"the wheel ships l2_supercat at 256-d"
            ) from err
        table = torch.from_numpy(model.embedding.copy())  # (V, D)
        self.tokenizer = model.tokenizer
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.empty_id = table.shape[0]  # one extra row: the empty text's zero vector
        self.embedding = nn.Embedding.from_pretrained(
            torch.cat([table, table.new_zeros(1, table.shape[1])]), freeze=True
        )
        self.dim = self.token_dim = table.shape[1]
        self.config_name = config

    def tokenize(self, texts):
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        # ids beyond the table are clamped to its last row, as wordllama.embed does
        seqs = [[min(i, self.empty_id - 1) for i in enc.ids] or [self.empty_id] for enc in encodings]
        return pad_ids(seqs, self.empty_id)

    def encode_ids(self, ids, mask):
        tokens = self.embedding(ids)  # (N, L, D)
        return TextEncoding(masked_mean(tokens, mask), tokens, mask)  # pooled (N, D)
