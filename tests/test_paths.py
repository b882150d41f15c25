"""The data-location setting and the checksummed annotation download."""

from __future__ import annotations

import hashlib

import pytest

from cra import paths


def test_data_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(tmp_path))
    assert paths.data_dir() == tmp_path.resolve()
    monkeypatch.delenv(paths.DATA_DIR_ENV)
    assert paths.data_dir() == paths.DEFAULT_DATA_DIR


def test_missing_file_error_names_path_setting_and_remedy(monkeypatch, tmp_path):
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(tmp_path))
    with pytest.raises(paths.DataNotFoundError) as err:
        paths.data_file("nextgqa/val.csv")
    message = str(err.value)
    assert str(tmp_path / "nextgqa" / "val.csv") in message
    assert paths.DATA_DIR_ENV in message and "python -m cra download" in message
    with pytest.raises(paths.DataNotFoundError, match="not downloadable"):
        paths.data_file("cra_released/val-res.json")


def _fake_registry(files: dict[str, bytes]):
    """Pinned files whose sha256 match ``files``, plus a fetch function serving them by URL."""
    pinned = {
        rel: paths.RemoteFile(rel, f"https://example.test/{rel}", hashlib.sha256(data).hexdigest())
        for rel, data in files.items()
    }
    served = {pinned[rel].url: data for rel, data in files.items()}
    calls = []

    def fetch(url: str) -> bytes:
        calls.append(url)
        return served[url]

    return pinned, fetch, calls


def test_download_checks_sha256_and_skips_good_files(monkeypatch, tmp_path):
    pinned, fetch, calls = _fake_registry({"nextgqa/val.csv": b"a,b\n1,2\n", "nextgqa/gsub_val.json": b"{}"})
    monkeypatch.setattr(paths, "ANNOTATION_FILES", pinned)
    written = paths.download_annotations(tmp_path, fetch=fetch)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == sorted(pinned)
    assert (tmp_path / "nextgqa/val.csv").read_bytes() == b"a,b\n1,2\n"
    assert len(calls) == 2
    paths.download_annotations(tmp_path, fetch=fetch)  # already there with the right digest
    assert len(calls) == 2
    assert set(paths.verify_annotations(tmp_path).values()) == {"ok"}


def test_download_refuses_a_corrupted_file_and_writes_nothing(monkeypatch, tmp_path):
    pinned, _, _ = _fake_registry({"nextgqa/val.csv": b"good"})
    monkeypatch.setattr(paths, "ANNOTATION_FILES", pinned)
    with pytest.raises(ValueError, match="checksum mismatch for https://example.test/nextgqa/val.csv"):
        paths.download_annotations(tmp_path, fetch=lambda url: b"tampered")
    assert not (tmp_path / "nextgqa").exists() or not any((tmp_path / "nextgqa").iterdir())


def test_download_rejects_unknown_files(tmp_path):
    with pytest.raises(KeyError, match="nextgqa/train.csv"):
        paths.download_annotations(tmp_path, files=["nextgqa/train.csv"], fetch=lambda url: b"")


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(paths.os, "replace", broken_replace)
    with pytest.raises(OSError):
        paths.atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_pinned_digests_match_the_real_annotations():
    from conftest import require_data

    root = require_data(*paths.ANNOTATION_FILES)
    assert paths.verify_annotations(root) == {rel: "ok" for rel in paths.ANNOTATION_FILES}
