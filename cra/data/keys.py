"""The key of one question in every NExT-GQA result and ground-truth file: ``"<video_id>_<qid>"``.

Video ids never contain ``_`` (they are digits on NExT-GQA), so the key splits at its first ``_``.
"""

from __future__ import annotations

from typing import Any


def question_key(video_id: Any, qid: Any) -> str:
    """``"<video_id>_<qid>"``, e.g. ``question_key(4882821564, 1) == "4882821564_1"``."""
    return f"{video_id}_{qid}"


def split_key(key: str) -> tuple[str, str]:
    """``"<video_id>_<qid>"`` -> ``(video_id, qid)``; the video id is the part before the first ``_``."""
    vid, sep, qid = key.partition("_")
    if not sep:
        raise ValueError(f"prediction key {key!r} is not of the form '<video_id>_<qid>'")
    return vid, qid
