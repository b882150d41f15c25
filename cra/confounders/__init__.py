"""Confounder dictionaries for the causal interventions: building them and their file.

Two dictionaries, built once from the training data and loaded by the model:

* ``Z_l`` (linguistic, back-door) ``(K_z, 8, D)``: k-means centres of the semantic structure graphs
  of the training QA pairs, with their empirical prior $P(z_k) = n_k / N_{qa}$;
* ``X_hat`` (visual, front-door) ``(K_v, D_v)``: k-means centres of all training frame features,
  with $P(\\hat v_j) = n_j / N_{frames}$.

=============  ===============================================================================
module         job
=============  ===============================================================================
``format.py``  the file: :class:`Confounders`, :func:`save_confounders`, :func:`load_confounders`
               (format, version, sha256 and dimension checks), :func:`describe`
``build.py``   building: :func:`encode_graph_nodes`, :func:`kmeans`, :func:`nearest_centre`,
               :func:`cluster_graphs`, :func:`cluster_frames`, :func:`build_text_dictionary`
               (``Z_l`` with each QA pair's graph and cluster), :func:`build_confounders` (inputs
               read by :mod:`cra.data`)
``config.py``  :class:`BuildConfig` and :func:`load_build_config` (layered YAML + ``--set``,
               through :mod:`cra.config`)
=============  ===============================================================================
"""

from cra.confounders.build import (
    TextDictionary,
    TextEncoder,
    build_confounders,
    build_text_dictionary,
    cluster_frames,
    cluster_graphs,
    encode_graph_nodes,
    encoder_name,
    kmeans,
    nearest_centre,
    select_qa,
)
from cra.confounders.config import PACKAGED_CONFIGS, BuildConfig, load_build_config
from cra.confounders.format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    ConfounderDimensionError,
    ConfounderFileError,
    Confounders,
    describe,
    load_confounders,
    save_confounders,
)

__all__ = [
    "TextDictionary",
    "TextEncoder",
    "build_confounders",
    "build_text_dictionary",
    "nearest_centre",
    "select_qa",
    "cluster_frames",
    "cluster_graphs",
    "encode_graph_nodes",
    "encoder_name",
    "kmeans",
    "PACKAGED_CONFIGS",
    "BuildConfig",
    "load_build_config",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ConfounderDimensionError",
    "ConfounderFileError",
    "Confounders",
    "describe",
    "load_confounders",
    "save_confounders",
]
