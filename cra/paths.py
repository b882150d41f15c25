"""Where data lives: one setting, ``CRA_DATA_DIR``, plus checksummed downloads.

Layout under ``CRA_DATA_DIR`` (the same as ``../shared/data`` in CI)::

    nextgqa/      val.csv, test.csv, gsub_{val,test}.json, frame2time_{val,test}.json, ...
    nextqa/       NExT-QA val/test csv
    cra_released/ predictions released by the CRA authors (not downloadable here)
    features/     CLIPL/CLIPL_I_{train,val,test}.h5   (official feature layout; bring your own)

When ``CRA_DATA_DIR`` is unset, the default is ``~/.cache/cra-book/data``, which
:func:`download_annotations` fills from the upstream NExT-GQA repository, checking each file's sha256.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

DATA_DIR_ENV = "CRA_DATA_DIR"
DEFAULT_DATA_DIR = Path.home() / ".cache" / "cra-book" / "data"

#: Root of a source checkout (``data_samples/``, ``book/`` live here in an editable install).
REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class RemoteFile:
    """A file of an upstream repository, pinned to a commit and a sha256 digest."""

    relpath: str  # path under the data dir, e.g. "nextgqa/val.csv"
    url: str
    sha256: str


_NEXTGQA = "https://raw.githubusercontent.com/doc-doc/NExT-GQA/{commit}/datasets/nextgqa/{name}"
_ANNOTATIONS_COMMIT = "8331fcce57bd1a58b04c4331c217bf29f061fd97"
_GPT4_COMMIT = "af99ae122ceb46718a5f892cdc1110afdcc521ff"

#: The official NExT-GQA annotation files (MIT licence), pinned by commit and sha256.
ANNOTATION_FILES: dict[str, RemoteFile] = {
    f.relpath: f
    for f in [
        RemoteFile("nextgqa/" + name, _NEXTGQA.format(commit=commit, name=name), digest)
        for name, commit, digest in [
            ("val.csv", _ANNOTATIONS_COMMIT, "ac5a1eb1d6dee9cd84ab7f9c94ab345b2404646f24b79ac182cd2aa9e2d424c1"),
            ("test.csv", _ANNOTATIONS_COMMIT, "0443ede53f521de4cbfb5e4fb02253926b90f81f62041b18bd17207a3511d114"),
            ("gsub_val.json", _ANNOTATIONS_COMMIT, "4feb23e53102cb2d4779e857ff8f9fd9b552fc38435621406b2ed9b0bf76204b"),
            ("gsub_test.json", _ANNOTATIONS_COMMIT, "0c16c31699238a0f2b8ace45aeed7f193149ce2f011d6ed4f1ef7170ef5d41e9"),
            (
                "frame2time_val.json",
                _ANNOTATIONS_COMMIT,
                "61dca3cc960848127e3bc7aa173a64a28f1df730e32b9f4c8c0399d04b04f029",
            ),
            (
                "frame2time_test.json",
                _ANNOTATIONS_COMMIT,
                "e2a043e8c5141f15a212536343cd7d329ab212eac4917eb53aadf341abb30820",
            ),
            ("upbd_val.json", _ANNOTATIONS_COMMIT, "a718cb126da5a2e4b5594f72eba83804deb5d1afa3e1f8b29ceee6cd63fa3218"),
            ("upbd_test.json", _ANNOTATIONS_COMMIT, "ac4653ca6e621e5c36e1705ebc4ffd3e3670ac35b79b85e980d489e1e601b0a2"),
            ("train_gpt4_sub.json", _GPT4_COMMIT, "88cc6f058f2ec94b4293d359fe973e36d9fb1af43beaf0c049bb9302e2b258b5"),
        ]
    ]
}


class DataNotFoundError(FileNotFoundError):
    """A data file is missing; the message says where it was looked for and how to get it."""


class DownloadError(OSError):
    """A file could not be fetched; the message names the URL, the target file and what to do."""


def data_dir() -> Path:
    """The data root: ``$CRA_DATA_DIR`` if set, else ``~/.cache/cra-book/data``."""
    value = os.environ.get(DATA_DIR_ENV, "").strip()
    return Path(value).expanduser().resolve() if value else DEFAULT_DATA_DIR


def data_file(relpath: str, root: Path | None = None) -> Path:
    """Path of ``relpath`` under the data root; raises :class:`DataNotFoundError` if absent."""
    root = Path(root) if root is not None else data_dir()
    path = root / relpath
    if not path.is_file():
        how = (
            "run `python -m cra download` to fetch it (needs network)"
            if relpath in ANNOTATION_FILES
            else "it is not downloadable by this project; copy it there by hand"
        )
        setting = (
            f"{DATA_DIR_ENV}={os.environ[DATA_DIR_ENV]!r}" if DATA_DIR_ENV in os.environ else f"{DATA_DIR_ENV} is unset"
        )
        raise DataNotFoundError(f"missing data file {path} ({setting}); {how}")
    return path


def has_data(*relpaths: str, root: Path | None = None) -> bool:
    """True when every ``relpath`` exists under the data root (tests use this to skip)."""
    root = Path(root) if root is not None else data_dir()
    return all((root / p).is_file() for p in relpaths)


def features_dir(root: Path | None = None) -> Path:
    """Folder holding the official feature layout ``CLIPL/CLIPL_I_<split>.h5``."""
    return (Path(root) if root is not None else data_dir()) / "features"


def samples_dir() -> Path:
    """The committed synthetic samples (``data_samples/`` of a source checkout)."""
    path = REPO_ROOT / "data_samples"
    if not path.is_dir():
        raise DataNotFoundError(f"{path} does not exist: data_samples/ ships with a source checkout only")
    return path


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class OutputNotWritable(ValueError):
    """An output path where nothing can be written; the message names it and why."""


def check_writable(path: Path | str, *, folder: bool = False) -> Path:
    """Check, before any long work, that a file (``folder``: a folder) can be written at ``path``:
    it is not the other kind, and its nearest existing parent is a folder where a file can be made
    (tried with a temporary file, removed at once; no folder is created). Returns ``path``."""
    path = Path(path).expanduser()
    kind = "folder" if folder else "file"
    if path.exists() and path.is_dir() != folder:
        raise OutputNotWritable(f"{path}: is a {'file' if folder else 'folder'}; expected a {kind} path to write")
    parent = path if folder else path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OutputNotWritable(f"cannot write {path}: {parent} is a file, not a folder")
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=".write-check.", suffix=".part")
        os.close(fd)
        os.unlink(tmp)
    except OSError as err:
        raise OutputNotWritable(
            f"cannot write {path}: no file can be created in {parent} ({err.strerror or err})"
        ) from None
    return path


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 (pinned https URLs)
        return response.read()


def download_annotations(
    root: Path | None = None,
    files: Iterable[str] | None = None,
    *,
    fetch: Callable[[str], bytes] = _fetch,
    force: bool = False,
) -> list[Path]:
    """Download the official NExT-GQA annotation files into ``root`` (default: :func:`data_dir`).

    Each file is checked against its pinned sha256 before it is written (atomically); a file
    already present with the right digest is kept. A wrong digest raises ``ValueError`` naming
    the URL, the expected and the received digest, and nothing is written; a failed fetch raises
    :class:`DownloadError` naming the URL and the file (files fetched before it are kept).
    """
    root = Path(root) if root is not None else data_dir()
    wanted = list(files) if files is not None else list(ANNOTATION_FILES)
    unknown = [f for f in wanted if f not in ANNOTATION_FILES]
    if unknown:
        raise KeyError(f"unknown annotation file(s) {unknown}; expected some of {sorted(ANNOTATION_FILES)}")
    written = []
    for relpath in wanted:
        remote = ANNOTATION_FILES[relpath]
        target = root / relpath
        if target.is_file() and not force and sha256_of(target) == remote.sha256:
            written.append(target)
            continue
        try:
            data = fetch(remote.url)
        except OSError as err:  # URLError, HTTPError, timeouts and refused connections are all OSErrors
            reason = getattr(err, "reason", None) or err
            raise DownloadError(
                f"could not download {remote.url} to {target}: {reason}; check the network "
                f"(or copy the file there by hand: sha256 {remote.sha256})"
            ) from None
        digest = hashlib.sha256(data).hexdigest()
        if digest != remote.sha256:
            raise ValueError(f"checksum mismatch for {remote.url}: expected sha256 {remote.sha256}, got {digest}")
        atomic_write_bytes(target, data)
        written.append(target)
    return written


def verify_annotations(root: Path | None = None) -> dict[str, str]:
    """Status of every pinned annotation file under ``root``: 'ok', 'missing' or 'sha256 mismatch'."""
    root = Path(root) if root is not None else data_dir()
    status = {}
    for relpath, remote in ANNOTATION_FILES.items():
        path = root / relpath
        if not path.is_file():
            status[relpath] = "missing"
        else:
            status[relpath] = "ok" if sha256_of(path) == remote.sha256 else "sha256 mismatch"
    return status
