"""The settings of ``python -m cra build-confounders``: :class:`BuildConfig`, read through the
layering of :mod:`cra.config` (a YAML file, then ``--set key=value`` overrides; unknown keys are errors)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cra import paths
from cra.text.semantic_graph import RULES

#: Packaged build configs (``--config nextgqa_train`` means ``<here>/nextgqa_train.yaml``).
PACKAGED_CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "confounders"


@dataclass
class BuildConfig:
    """Settings of ``python -m cra build-confounders`` (YAML keys; read with :func:`load_build_config`).

    Relative input paths are taken under ``data_root`` (default ``$CRA_DATA_DIR``); ``out`` is
    relative to the working directory. An empty ``qa_csv`` skips ``Z_l``; an empty ``features_h5``
    skips ``X_hat``.
    """

    out: str = ""
    data_root: str | None = None
    qa_csv: list = field(default_factory=list)
    features_h5: list = field(default_factory=list)
    features_dataset: str = "CLIPL_I"
    text_encoder: dict = field(default_factory=lambda: {"name": "clip"})
    text_clusters: int = 512
    max_qa: int | None = None  # a seeded random subset of this many QA pairs (null: all of them)
    visual_clusters: int = 512
    seed: int = 43  # the authors' notebooks use random_state=43
    parse_rules: str = "wh"
    parse_batch_size: int = 256
    parse_processes: int = 1
    encode_batch_size: int = 256
    kmeans_batch_size: int = 1024
    kmeans_max_iter: int = 100
    kmeans_n_init: int = 1

    def validate(self, where: str = "config") -> None:
        def fail(key: str, expected: str) -> None:
            raise ValueError(f"{where}: {key}={getattr(self, key)!r}; expected {expected}")

        if not isinstance(self.out, str) or not self.out:
            fail("out", "the output file path")
        if self.data_root is not None and not isinstance(self.data_root, str):
            fail("data_root", "a folder path, or null for $CRA_DATA_DIR")
        for key in ("qa_csv", "features_h5"):
            value = getattr(self, key)
            if isinstance(value, str):
                setattr(self, key, [value])
            elif not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                fail(key, "a list of file paths")
        if not self.qa_csv and not self.features_h5:
            raise ValueError(f"{where}: both qa_csv and features_h5 are empty; nothing to build")
        for key in ("text_clusters", "visual_clusters", "parse_batch_size", "parse_processes", "encode_batch_size",
                    "kmeans_batch_size", "kmeans_max_iter", "kmeans_n_init"):  # fmt: skip
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                fail(key, "a positive integer")
        if self.max_qa is not None and (
            not isinstance(self.max_qa, int) or isinstance(self.max_qa, bool) or self.max_qa < 1
        ):
            fail("max_qa", "a positive integer, or null for every QA pair")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            fail("seed", "an integer")
        if self.parse_rules not in RULES:
            fail("parse_rules", f"one of {RULES}")
        if not isinstance(self.text_encoder, dict) or not isinstance(self.text_encoder.get("name"), str):
            fail("text_encoder", "a mapping with a 'name' (and keyword arguments of build_text_encoder)")

    def resolve(self, relpath: str) -> Path:
        path = Path(relpath).expanduser()
        if path.is_absolute():
            return path
        root = Path(self.data_root).expanduser() if self.data_root else paths.data_dir()
        return root / path


def load_build_config(name_or_path: str | Path, overrides: list[str] = ()) -> BuildConfig:
    """:class:`BuildConfig` from a YAML file (or a packaged name) and ``--set key=value`` overrides
    (``text_encoder.name=word`` reaches into the encoder's keyword arguments), checked."""
    from cra import config as cra_config  # the run-config layering, shared by every --set

    path = cra_config.config_path(name_or_path, PACKAGED_CONFIGS)
    config, _ = cra_config.load_layers(BuildConfig, [path], list(overrides), folder=PACKAGED_CONFIGS, first=None)
    config.validate(str(path))
    return config
