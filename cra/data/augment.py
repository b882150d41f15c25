"""Training-data options of the released code, each off by default (on in ``variants/released_code.yaml``).

* ``data.paraphrase_prob`` (released: 0.3): with this probability a training question is replaced by
  one of its GPT-4 paraphrases from ``train_gpt4_sub.json`` (``{"<video_id>_<qid>": {"ori": str,
  "gen": [str, ...]}}``), its trailing ``?`` removed. The paraphrase is then the question everywhere:
  in the QA texts, as the true VQ candidate and for the question-word group.
* ``data.answer_resample_prob`` (released: 0.3): with this probability the four distractors of a
  training question are replaced by right answers of other training questions of the same group.
* ``data.negative_groups`` (``"type"`` ours, ``"question_word"`` released): the groups that VQ
  negatives (and resampled distractors) are drawn from: the csv ``type`` column, or the question's
  leading word(s) (:func:`question_word`).

Every draw comes from the dataset item's seeded ``random.Random``, so runs stay reproducible; with
the options off no draw is made and batches are those of a run without this module.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from cra.data.errors import DataFormatError
from cra.paths import DataNotFoundError

NEGATIVE_GROUPS = ("type", "question_word")
PARAPHRASE_FILE = "train_gpt4_sub.json"

_AUXILIARIES = {
    "do": "whata",
    "does": "whata",
    "did": "whata",
    "is": "whatb",
    "are": "whatb",
    "was": "whatb",
    "were": "whatb",
}
_QUESTION_WORDS = ("what", "who", "which", "why", "how", "where")


def question_word(question: str) -> str:
    """The question's group by its leading word(s), as the released code groups questions.

    ``what`` splits by the next word (``whata``: do/does/did, ``whatb``: is/are/was/were, else
    ``whato``), ``how many`` is ``howm``; other w-words are themselves; anything else is ``other``.
    """
    words = question.lower().split()
    if not words:
        return "other"
    first, second = words[0], (words[1] if len(words) > 1 else "")
    if first == "what":
        return _AUXILIARIES.get(second, "whato")
    if first == "how" and second == "many":
        return "howm"
    return first if first in _QUESTION_WORDS else "other"


def group_key(negative_groups: str, question: str, qtype: str) -> str:
    """The pool a question belongs to under ``data.negative_groups``."""
    return question_word(question) if negative_groups == "question_word" else qtype


def read_paraphrases(path: Path | str) -> dict[str, list[str]]:
    """``{key: [paraphrase, ...]}`` from a ``train_gpt4_sub.json``-format file, every entry checked."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(
            f"missing paraphrase file {path}: data.paraphrase_prob > 0 needs the GPT-4 paraphrases "
            f'{PARAPHRASE_FILE} ({{"<video_id>_<qid>": {{"ori": question, "gen": [paraphrase, ...]}}}}); '
            f"get it with `python -m cra download` (cra.paths.ANNOTATION_FILES) or set data.paraphrase_prob=0"
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataFormatError(path, "file", f"not JSON ({e})", "a JSON object") from None
    if not isinstance(raw, dict):
        raise DataFormatError(path, "top level", type(raw).__name__, '{"<video_id>_<qid>": {"gen": [...]}}')
    out: dict[str, list[str]] = {}
    for key, entry in raw.items():
        gen = entry.get("gen") if isinstance(entry, dict) else None
        if not (isinstance(gen, list) and gen and all(isinstance(g, str) and g.strip() for g in gen)):
            raise DataFormatError(path, f"key {key!r}", repr(entry)[:80], '{"gen": [non-empty paraphrase strings]}')
        out[key] = gen
    return out


@dataclass(frozen=True)
class Augmentation:
    """The released training-data draws for one split (the training split only)."""

    paraphrases: dict[str, list[str]] | None = None  # key -> GPT-4 paraphrases
    paraphrase_prob: float = 0.0
    answer_resample_prob: float = 0.0

    def __post_init__(self):
        for name in ("paraphrase_prob", "answer_resample_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"data.{name}={getattr(self, name)!r}: expected a probability in [0, 1]")
        if self.paraphrase_prob > 0 and self.paraphrases is None:
            raise ValueError("paraphrase_prob > 0 needs paraphrases (read_paraphrases)")

    def paraphrase(self, key: str, question: str, rng: random.Random) -> str:
        """``question``, or with probability ``paraphrase_prob`` one of its paraphrases (no ``?``)."""
        options = self.paraphrases.get(key) if self.paraphrase_prob > 0 else None
        if options and rng.random() < self.paraphrase_prob:
            return rng.choice(options).rstrip("?")
        return question

    def resample_answers(
        self, candidates: list[str], answer: int, pool: list[str], rng: random.Random
    ) -> tuple[list[str], int]:
        """With probability ``answer_resample_prob``: K-1 distractors drawn from ``pool`` (sorted right
        answers of the group, the true one excluded), shuffled with the true answer; else unchanged."""
        if self.answer_resample_prob <= 0 or rng.random() >= self.answer_resample_prob:
            return candidates, answer
        truth = candidates[answer]
        options = [a for a in pool if a != truth]
        k = len(candidates) - 1
        distractors = rng.sample(options, k) if len(options) >= k else [rng.choice(options) for _ in range(k)]
        position = rng.randrange(len(candidates))
        return distractors[:position] + [truth] + distractors[position:], position


def training_augmentation(data_config, annotations: Path) -> Augmentation | None:
    """The :class:`Augmentation` of ``data_config`` (a :class:`cra.config.DataConfig`), or ``None`` when off.

    The paraphrase file is ``data.paraphrase_file`` under the annotations folder; it is read only when
    ``data.paraphrase_prob > 0`` and must then exist.
    """
    d = data_config
    if d.paraphrase_prob <= 0 and d.answer_resample_prob <= 0:
        return None
    paraphrases = read_paraphrases(Path(annotations) / d.paraphrase_file) if d.paraphrase_prob > 0 else None
    return Augmentation(paraphrases, d.paraphrase_prob, d.answer_resample_prob)
