"""Shared fixtures. Tests that need the real NExT-GQA files take ``nextgqa_dir`` and skip, with a
reason, when ``CRA_DATA_DIR`` does not hold them (``make test`` points it at ../shared/data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cra import paths

REPO_ROOT = Path(__file__).resolve().parents[1]


def require_data(*relpaths: str) -> Path:
    """The data root, or skip the calling test naming the files and the setting that are missing."""
    root = paths.data_dir()
    missing = [p for p in relpaths if not (root / p).is_file()]
    if missing:
        pytest.skip(f"real data absent: {missing} not under {root} (set {paths.DATA_DIR_ENV})")
    return root


@pytest.fixture
def nextgqa_dir() -> Path:
    """``$CRA_DATA_DIR/nextgqa`` with the val/test annotations, else skip."""
    root = require_data("nextgqa/val.csv", "nextgqa/test.csv", "nextgqa/gsub_val.json", "nextgqa/gsub_test.json")
    return root / "nextgqa"


@pytest.fixture
def cra_released_dir() -> Path:
    """``$CRA_DATA_DIR/cra_released`` (the CRA authors' released predictions), else skip."""
    root = require_data("cra_released/val-res.json", "cra_released/val_ground_att.json")
    return root / "cra_released"
