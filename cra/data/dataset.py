"""The PyTorch ``Dataset`` and ``collate`` that turn NExT-GQA questions and features into batches.

A batch (``B`` questions, ``T`` frames, ``D`` feature size, ``K`` = 5 candidates):

=======================  =====================  ===============================================
key                      type / shape           meaning
=======================  =====================  ===============================================
``frames``               float ``(B, T, D)``    frame features (zero rows where ``frame_mask`` is off)
``frame_mask``           bool ``(B, T)``        real frames
``qa_texts``             ``B`` lists of ``K``   candidate texts :math:`q \\oplus a_k` (``qa_template``)
``question``             ``B`` str              the question
``candidates``           ``B`` lists of ``K``   the answers a0..a4
``answer``               long ``(B,)``          index of the right candidate
``question_candidates``  ``B`` lists of ``K``   the true question among negatives (VQ pass)
``question_answer``      long ``(B,)``          index of the true question there
``key``, ``video_id``,   ``B`` str              ids (``key`` = ``"<video_id>_<qid>"``)
``qid``, ``type``
=======================  =====================  ===============================================

Question candidates follow NG+/CRA: K-1 other questions, drawn from the same video with
probability ``same_video_prob`` (0.3) and otherwise from questions of the same group (csv ``type``,
or with ``negative_groups="question_word"`` the question's leading word, as released). The released
training draws (GPT-4 paraphrases, resampled distractors) are an optional
:class:`~cra.data.augment.Augmentation`.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Sequence

import torch

from cra.data.augment import NEGATIVE_GROUPS, Augmentation, group_key
from cra.data.errors import DataFormatError, SkipReport
from cra.data.features import FeatureStore
from cra.data.nextgqa import NUM_CANDIDATES, QAFile, QARecord

#: How a question and one candidate answer become one text for the text encoder. Ours joins them as a
#: sentence; the released code (utils/dataloader/dataset.py) joins them with RoBERTa's separator token.
QA_TEMPLATE = "{question}? {answer}"
RELEASED_QA_TEMPLATE = "{question} </s> {answer}"


class NextGQADataset(torch.utils.data.Dataset):
    """NExT-GQA questions paired with their video features.

    Every video of the csv must have finite features of the store's dimension; otherwise
    :class:`DataFormatError` names the csv row, the feature file and the video — unless
    ``skip_bad_rows``, which leaves those questions out, keeps them in ``self.skipped`` and warns.
    ``seed=None`` draws fresh question negatives on every access (training); an integer makes
    them a fixed function of the item (evaluation).
    """

    def __init__(
        self,
        qa: QAFile,
        features: FeatureStore,
        *,
        skip_bad_rows: bool = False,
        check_finite: bool = True,
        num_question_candidates: int = NUM_CANDIDATES,
        same_video_prob: float = 0.3,
        seed: int | None = 0,
        qa_template: str = QA_TEMPLATE,
        negative_groups: str = "type",
        augment: Augmentation | None = None,
    ):
        if negative_groups not in NEGATIVE_GROUPS:
            raise ValueError(f"negative_groups={negative_groups!r}: expected one of {NEGATIVE_GROUPS}")
        self.features = features
        self.negative_groups, self.augment = negative_groups, augment
        self.num_question_candidates = num_question_candidates
        self.same_video_prob = same_video_prob
        self.seed = seed
        self.qa_template = qa_template
        self.skipped = SkipReport(list(qa.skipped.ids), list(qa.skipped.reasons))
        bad_videos = set(features.non_finite({r.video_id for r in qa.records})) if check_finite else set()
        self.records: list[QARecord] = []
        for r in qa.records:
            where = f"video {r.video_id} (csv {qa.path} row {r.row}, key {r.key})"
            try:
                if r.video_id not in features:
                    raise DataFormatError(
                        features.path, where, "no features in dataset 'vid'", "one feature row per csv video"
                    )
                if r.video_id in bad_videos:
                    raise DataFormatError(features.path, where, "NaN or inf in its features", "finite values")
            except DataFormatError as e:
                if not skip_bad_rows:
                    raise
                self.skipped.add(r.key, e)
                continue
            self.records.append(r)
        self.skipped.warn(f"NextGQADataset({qa.path}, {features.path})")
        # Pools of question texts for the VQ negatives, and of right answers for resampled distractors.
        self._by_video: dict[str, list[str]] = defaultdict(list)
        self._by_type: dict[str, list[str]] = defaultdict(list)  # keyed by group_key(negative_groups, ...)
        answers_by_group: dict[str, set[str]] = defaultdict(set)
        for r in self.records:
            self._by_video[r.video_id].append(r.question)
            self._by_type[group_key(negative_groups, r.question, r.type)].append(r.question)
            answers_by_group[group_key(negative_groups, r.question, r.type)].add(r.candidates[r.answer])
        self._all_questions = [r.question for r in self.records]
        self._answers_by_group = {g: sorted(a) for g, a in answers_by_group.items()}
        self._all_answers = sorted(set().union(*answers_by_group.values())) if answers_by_group else []

    def __len__(self) -> int:
        return len(self.records)

    def question_candidates(self, index: int, rng: random.Random, question: str | None = None) -> tuple[list[str], int]:
        """The true question (``question``: a paraphrase of it) and K-1 negatives, shuffled;
        returns (texts, index of the true one)."""
        r = self.records[index]
        question = r.question if question is None else question
        need = self.num_question_candidates - 1
        negatives: list[str] = []
        pools = [self._by_type[group_key(self.negative_groups, question, r.type)], self._all_questions]
        if rng.random() < self.same_video_prob:
            pools.insert(0, self._by_video[r.video_id])
        for pool in pools:  # fall back to wider pools when a pool has too few distinct questions
            options = sorted({q for q in pool if q not in (r.question, question) and q not in negatives})
            negatives += rng.sample(options, min(need - len(negatives), len(options)))
            if len(negatives) == need:
                break
        while len(negatives) < need:  # a tiny dataset: repeat (only possible with < K distinct questions)
            negatives.append(rng.choice(negatives or [question]))
        position = rng.randrange(self.num_question_candidates)
        texts = negatives[:position] + [question] + negatives[position:]
        return texts, position

    def __getitem__(self, index: int) -> dict:
        r = self.records[index]
        frames, mask = self.features.get(r.video_id)  # (T, D), (T,)
        rng = random.Random(None if self.seed is None else self.seed * 1_000_003 + index)
        question, candidates, answer = r.question, list(r.candidates), r.answer
        if self.augment is not None:  # released draws, in the released order: paraphrase, VQ, answers
            question = self.augment.paraphrase(r.key, question, rng)
        question_candidates, question_answer = self.question_candidates(index, rng, question)
        if self.augment is not None:
            pool = self._answers_by_group.get(group_key(self.negative_groups, question, r.type), [])
            pool = (
                pool if len([a for a in pool if a != candidates[answer]]) >= len(candidates) - 1 else self._all_answers
            )
            candidates, answer = self.augment.resample_answers(candidates, answer, pool, rng)
        return {
            "frames": torch.from_numpy(frames),
            "frame_mask": torch.from_numpy(mask),
            "question": question,
            "candidates": candidates,
            "qa_texts": [self.qa_template.format(question=question, answer=a) for a in candidates],
            "answer": answer,
            "question_candidates": question_candidates,
            "question_answer": question_answer,
            "key": r.key,
            "video_id": r.video_id,
            "qid": r.qid,
            "type": r.type,
        }


def collate(items: Sequence[dict]) -> dict:
    """Stack items into a batch; frames are padded to the longest ``T`` of the batch."""
    t_max = max(item["frames"].shape[0] for item in items)
    d = items[0]["frames"].shape[1]
    frames = torch.zeros(len(items), t_max, d, dtype=items[0]["frames"].dtype)  # (B, T, D)
    mask = torch.zeros(len(items), t_max, dtype=torch.bool)  # (B, T)
    for b, item in enumerate(items):
        t = item["frames"].shape[0]
        frames[b, :t] = item["frames"]
        mask[b, :t] = item["frame_mask"]
    batch = {
        "frames": frames,
        "frame_mask": mask,
        "answer": torch.tensor([item["answer"] for item in items], dtype=torch.long),
        "question_answer": torch.tensor([item["question_answer"] for item in items], dtype=torch.long),
    }
    for key in ("question", "candidates", "qa_texts", "question_candidates", "key", "video_id", "qid", "type"):
        batch[key] = [item[key] for item in items]
    if "evidence_mask" in items[0]:  # cra.data.adjust.WithEvidence (study options)
        evidence = torch.zeros(len(items), t_max, dtype=torch.bool)  # (B, T)
        for b, item in enumerate(items):
            evidence[b, : item["evidence_mask"].shape[0]] = item["evidence_mask"]
        batch["evidence_mask"] = evidence
        batch["evidence_supervised"] = torch.tensor([bool(item["evidence_supervised"]) for item in items])
    return batch


def make_loader(
    dataset: NextGQADataset,
    batch_size: int = 64,
    shuffle: bool = False,
    num_workers: int = 0,
    collate_fn=collate,
    **kwargs,
) -> torch.utils.data.DataLoader:
    """A ``DataLoader`` over ``dataset`` with :func:`collate` (or ``collate_fn``, e.g.
    :meth:`cra.model.cra.CandidateTokenizer.collate`)."""
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers, collate_fn=collate_fn, **kwargs
    )
