"""k-means never returns an empty cluster, and an old confounder file with one still loads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cra import confounders as cf


class StuckKMeans:
    """Stands in for MiniBatchKMeans: centre 2 lies far from every point, so it ends empty."""

    def __init__(self, n_clusters, **kwargs):
        self.n_clusters = n_clusters

    def fit(self, x):
        self.cluster_centers_ = np.stack([x[0], x[-1]] + [np.full(x.shape[1], 1e3)] * (self.n_clusters - 2))
        return self


def test_empty_clusters_are_reseeded(monkeypatch):
    import sklearn.cluster

    monkeypatch.setattr(sklearn.cluster, "MiniBatchKMeans", StuckKMeans)
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.normal(0, 1, (20, 3)), rng.normal(8, 1, (20, 3))]).astype(np.float32)
    centres, sizes = cf.kmeans(points, 4, seed=0)
    assert sizes.sum() == 40 and bool((sizes > 0).all()), sizes
    assert centres.shape == (4, 3) and bool((centres.abs() < 100).all())


def test_too_few_distinct_points_is_an_error():
    with pytest.raises(ValueError, match="distinct points"):
        cf.kmeans(np.array([[0.0, 0.0]] * 5 + [[1.0, 1.0]] * 5), 3, seed=0)


def test_old_file_with_an_empty_cluster_loads_without_it(tmp_path):
    c = cf.Confounders(
        Z_l=torch.randn(3, 8, 4),
        Z_l_sizes=torch.tensor([2, 0, 5]),
        X_hat=torch.randn(2, 4),
        X_hat_sizes=torch.tensor([1, 1]),
    )
    path = cf.save_confounders(tmp_path / "old.pt", c)
    with pytest.warns(UserWarning, match=r"old.pt: Z_l clusters \[1\] hold no point"):
        loaded = cf.load_confounders(path)
    assert loaded.Z_l.shape == (2, 8, 4) and loaded.Z_l_sizes.tolist() == [2, 5]
    assert torch.equal(loaded.Z_l, c.Z_l[[0, 2]]) and bool((loaded.prior > 0).all())
