r"""The CRA model, one idea of the paper per file (a Markdown table, ready for a chapter).

| file | class / function | paper equation (section of docs/paper_notes.md) |
|---|---|---|
| `config.py` | `CRAConfig`, `RELEASED_CODE` | switches, sizes, loss weights; the released-code preset (9) |
| `backbone.py` | `TemporalEncoder` | $\bar x = \mathrm{Transformer}(\mathrm{Dropout}(\mathrm{LN}(W_{in} v) + P))$ (2.1, 6) |
| `released_encoder.py` | `ReleasedTemporalEncoder` | the release's encoder: $\mathrm{LN}(\mathrm{GELU}(W_{in} v)) + P_{sin}$, pre-norm layers, final norm (option `temporal_encoder`) |
| `backbone.py` | `TextHead` | $l_k = \sum_j \mathrm{softmax}_j(u^\top h_j)\, h_j$, $h = W_t\,\mathrm{tokens}(q \oplus a_k)$ (5.1) |
| `../text/encoders.py` | `build_text_encoder("word" / "roberta" / "clip")` | token vectors of $q \oplus a_k$ (6) |
| `gsg.py` | `GSG` | $g_i = \tanh(\langle \tilde v_i, \tilde l\rangle / \sqrt D)$, $w^0 = \mathrm{softmax}_i\, \mathrm{MLP}(g_i\, \mathrm{LN}(\tilde v_i))$ (2.1) |
| `gsg.py` | `GaussianSmoothing` | $w \propto k_\sigma * w^0$, one learned $\sigma > 0$ (2.2) |
| `../readouts.py` | `interval_readouts` | $t^* = \Phi(w)$: best window, adaptive threshold, intersection (2.3) |
| `cma.py` | `info_nce`, `cma_loss` | $\mathcal L_{CMA} = \mathcal L_{NCE}(l^+, v^+, \{v^-\}) + \mathcal L_{NCE}(v^+, l^+, \{l^-\})$ (3) |
| `causal.py` | `BackDoor`, `GraphConv` | $P(a \mid do(L)) = \sum_z P(a \mid L, z) P(z)$, NWGM: $l' = \mathrm{LN}(l + \mathrm{Attn}(l, Z_l))$ (4.2) |
| `causal.py` | `FrontDoor` | $P(a \mid do(X)) = \sum_m P(m \mid x) \sum_{\hat x} P(\hat x) P(a \mid \hat x, m)$, NWGM: $m' = \mathrm{LN}(m + W_o[h_1; h_2])$ (4.3) |
| `gaussian_mask.py` | `GaussianMask` | NG+ baseline (not CRA): $w \propto g_{c,\omega} \odot \mathrm{softmax}\langle \bar x_i, l\rangle$, a learned Gaussian over time |
| `cra.py` | `CRA` | $\mathrm{logit}_k = \langle l_k, W_a m'\rangle$ (released: $\langle l_k, m'\rangle$); $\mathcal L = CE^{VQA} + CE^{VQ} + 0.5\,(CMA^{VQ} + CMA^{VQA})$ (5) |

The batch a data loader must yield is documented in `cra.model.cra`.
"""

from cra.model.causal import BackDoor, FrontDoor, GraphConv
from cra.model.cma import cma_loss, info_nce
from cra.model.config import RELEASED_CODE, CRAConfig
from cra.model.cra import CRA, CRAOutput, PassOutput
from cra.model.gsg import GSG, AttentionPooling, GaussianSmoothing
from cra.model.released_encoder import ReleasedTemporalEncoder

__all__ = [
    "CRA",
    "CRAConfig",
    "CRAOutput",
    "PassOutput",
    "RELEASED_CODE",
    "GSG",
    "AttentionPooling",
    "GaussianSmoothing",
    "info_nce",
    "cma_loss",
    "BackDoor",
    "FrontDoor",
    "GraphConv",
    "ReleasedTemporalEncoder",
]
