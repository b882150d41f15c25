r"""The CRA model, one idea of the paper per file.

=====================  =============================================  =====================================================
file                   class / function                               paper equation (paper_digest.md section)
=====================  =============================================  =====================================================
``config.py``          :class:`CRAConfig`, ``RELEASED_CODE``          switches and weights; released-code preset (9)
``backbone.py``        :class:`TemporalEncoder`                       $\bar x = \mathrm{Transformer}(\mathrm{LN}(W_{in} v) + P)$ (2.1, 6)
``backbone.py``        :class:`TextHead`                              $l_k = \sum_j \mathrm{softmax}_j(u^\top h_j) h_j$ (5.1)
``../text/encoders.py`` ``build_text_encoder`` (word/roberta/clip)   text tokens of $q \oplus a_k$ (6)
``gsg.py``             :class:`GSG`                                   $g_i = \tanh\langle \tilde v_i, \tilde l\rangle$, $w^0 = \mathrm{softmax}\,\mathrm{MLP}(g_i \tilde v_i)$ (2.1)
``gsg.py``             :class:`GaussianSmoothing`                     $w \propto k_\sigma * w^0$, learned $\sigma > 0$ (2.2)
``gsg.py``             ``window_readout`` / ``posthoc_readout`` /     $t^* = \Phi(w)$: window, adaptive threshold, merge (2.3)
                       ``merge_readout``
``cma.py``             :func:`info_nce`, :func:`cma_loss`             $\mathcal L_{NCE}(l^+, v^+, v^-) + \mathcal L_{NCE}(v^+, l^+, l^-)$ (3)
``causal.py``          :class:`BackDoor` (+ :class:`GraphConv`)       $P(a \mid do(L)) = \sum_z P(a \mid L, z) P(z)$, NWGM (4.2)
``causal.py``          :class:`FrontDoor`                             $P(a \mid do(X)) = \sum_m P(m \mid x) \sum_{\hat x} P(\hat x) P(a \mid \hat x, m)$, NWGM (4.3)
``cra.py``             :class:`CRA`                                   $\mathrm{logit}_k = \langle l_k, v_{final}\rangle$; $\mathcal L = CE^{VQA} + CE^{VQ} + 0.5(CMA^{VQ} + CMA^{VQA})$ (5)
=====================  =============================================  =====================================================

The batch a data loader must yield is documented in :mod:`cra.model.cra`.
"""

from cra.model.causal import BackDoor, FrontDoor, GraphConv
from cra.model.cma import cma_loss, info_nce
from cra.model.config import RELEASED_CODE, CRAConfig
from cra.model.cra import CRA, CRAOutput, PassOutput
from cra.model.gsg import GSG, AttentionPooling, GaussianSmoothing, merge_readout, posthoc_readout, window_readout

__all__ = [
    "CRA", "CRAConfig", "CRAOutput", "PassOutput", "RELEASED_CODE", "GSG", "AttentionPooling", "GaussianSmoothing",
    "window_readout", "posthoc_readout", "merge_readout", "info_nce", "cma_loss", "BackDoor", "FrontDoor", "GraphConv",
]
