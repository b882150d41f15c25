"""Measured checks of the planted confounding, read back from the written files.

:func:`measure_confounding` parses the csv questions with the project's reader and decodes the scene
and the distractor from the HDF5 features, so it checks what a model will see, not what the
generator meant to write.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from cra.synthetic.config import NUM_FRAMES, SPLITS, WorldConfig
from cra.synthetic.io import load_truth, load_world, split_paths
from cra.synthetic.scm import QUESTION_RE


def expected_alignment(strength: float, n: int, num_actions: int, answer_prob: float) -> float:
    """P(the shortcut's partner action is the answer) for a shortcut with ``n`` values (entities or
    scenes) at strength ``s``:  q p_a + r (1 - p_a) / (C - 1), where q = P(shortcut = partner of Z)
    = max(s, 0) + (1 - |s|)/n and r = P(shortcut = partner of another situation)
    = (1 - |s|)(C - 1)/n + max(-s, 0). With p_a = 1 (the first world) this is max(s, 0) + (1 - |s|)/n."""
    q = max(strength, 0.0) + (1.0 - abs(strength)) / n
    r = (1.0 - abs(strength)) * (num_actions - 1) / n + max(-strength, 0.0)
    return q * answer_prob + r * (1.0 - answer_prob) / (num_actions - 1)


def measure_confounding(root: Path | str) -> list[dict]:
    """Per split, the confounding as measured from the written files (csv via the project's reader,
    scenes decoded from the HDF5 features), beside the configured strengths.

    Columns: ``P(A=word partner)`` = share of questions whose answer is the action paired with the
    subject word of the question; ``P(A=scene partner)`` the same for the scene decoded from the
    features (the scene with the largest least-squares amount in the time-averaged frame); ``expected``:
    :func:`expected_alignment`;
    ``P(A=action(Z))`` = share of answers that are the situation's own action (truth), beside
    ``answer_prob``; ``scene decoded`` = share of videos whose decoded scene is the
    true one; ``distractor`` = share of questions whose answer's action is detected (least-squares
    amount > half its scale) in a run of >= min_distractor_frames frames outside the evidence, beside
    the share that truly has one (the two agree when ``feature_dim`` is well above the number of
    concepts, e.g. 64 for the default 30; at smaller D the concepts overlap and the read-out blurs);
    ``decoy (truth)`` = share of the other events whose action is repeated by a decoy; ``evidence / video`` =
    mean length ratio.
    """
    from cra.data.features import FeatureStore
    from cra.data.nextgqa import read_qa_csv

    meta = load_world(root)
    config: WorldConfig = meta["world_config"]
    vocab = meta["vocabulary"]
    partners = meta["partners"]
    readout = concept_readout(meta)  # (D, C+E+S)
    rows = []
    for split in SPLITS:
        paths = split_paths(root, split)
        qa = read_qa_csv(paths["qa"])
        truth = load_truth(root, split)
        store = FeatureStore(paths["features"], feature_dim=None)
        word_hits = scene_hits = both = decoded_ok = distractor = distractor_truth = decoys = own = 0
        evidence_share = []
        for r in qa.records:
            answer = r.candidates[r.answer]
            match = QUESTION_RE.match(r.question)
            if match is None:
                raise ValueError(
                    f"{paths['qa']}: row {r.row}: question {r.question!r} does not follow the world's template"
                )
            word_ok = partners["word"].get(match["entity"]) == answer
            frames, _ = store.get(r.video_id)  # (T, D)
            amounts = frames @ readout  # (T, C+E+S) amount of every concept in every frame
            scene = vocab["scenes"][int(np.argmax(amounts.mean(axis=0)[-len(vocab["scenes"]) :]))]
            scene_ok = partners["scene"].get(scene) == answer
            word_hits += word_ok
            scene_hits += scene_ok
            both += word_ok and scene_ok
            entry = truth[r.key]
            decoded_ok += scene == entry["scene"]
            own += entry["answer"] == entry["situation_action"]
            first, last = entry["evidence_frames"]
            outside = np.ones(NUM_FRAMES, dtype=bool)
            outside[first : last + 1] = False
            amount = amounts[:, vocab["actions"].index(answer)]  # (T,) of the answer's action
            present = outside & (amount > 0.5 * config.action_scale)
            distractor += _longest_run(present) >= config.min_distractor_frames
            distractor_truth += bool(entry["distractor_frames"])
            decoys += len(entry["decoys"])
            evidence_share.append((last - first + 1) / NUM_FRAMES)
        n = len(qa.records)
        s_l, s_v = config.strengths(split)
        rows.append(
            {
                "split": split,
                "n": n,
                "lang_strength": s_l,
                "P(A=word partner)": word_hits / n,
                "expected (word)": expected_alignment(s_l, config.num_entities, config.num_actions, config.answer_prob),
                "vis_strength": s_v,
                "P(A=scene partner)": scene_hits / n,
                "expected (scene)": expected_alignment(s_v, config.num_scenes, config.num_actions, config.answer_prob),
                "P(both)": both / n,
                "P(A=action(Z))": own / n,
                "answer_prob": config.answer_prob,
                "scene decoded": decoded_ok / n,
                "distractor": distractor / n,
                "distractor (truth)": distractor_truth / n,
                "distractor_prob": config.distractor_prob,
                "decoy (truth)": decoys / (n * (config.events_per_video - 1)),
                "decoy_prob": config.decoy_prob,
                "evidence / video": float(np.mean(evidence_share)),
            }
        )
    return rows


def concept_readout(meta: Mapping) -> np.ndarray:
    """Least-squares read-out of every concept's amount in a frame, ``frames @ pinv(M)`` with M the
    stacked action, entity and scene vectors of ``world.json``: (D, C+E+S)."""
    concepts = [np.asarray(meta["concepts"][name], dtype=np.float64) for name in ("action", "entity", "scene")]
    return np.linalg.pinv(np.concatenate(concepts))


def reader_accuracy(root: Path | str, split: str) -> dict[str, float]:
    """Acc@QA (percent) of two readers that know the concept vectors, on ``split``: is the signal there?

    ``ideal``: the frames where the question's subject is seen (its least-squares amount above half its
    scale; the whole video if none), then the candidate whose action is most present in them.
    ``whole video``: the candidate whose action is most present in the mean frame, leaving out the
    action the question names (a temporal question's reference action): what a reader that does not
    ground can do.
    """
    from cra.data.features import FeatureStore
    from cra.data.nextgqa import read_qa_csv

    meta = load_world(root)
    config: WorldConfig = meta["world_config"]
    vocab = meta["vocabulary"]
    readout = concept_readout(meta)
    c = len(vocab["actions"])
    paths = split_paths(root, split)
    store = FeatureStore(paths["features"], feature_dim=None)
    hits = {"ideal": 0, "whole video": 0}
    records = read_qa_csv(paths["qa"]).records
    for r in records:
        amounts = store.get(r.video_id)[0] @ readout  # (T, C+E+S)
        match = QUESTION_RE.match(r.question)
        subject = amounts[:, c + vocab["entities"].index(match["entity"])]  # (T,)
        seen = subject > 0.5 * config.entity_scale
        on_subject = amounts[seen if seen.any() else slice(None), :c].mean(axis=0)  # (C,)
        whole = amounts[:, :c].mean(axis=0)  # (C,)
        reference = match["reference"] or ""  # a subject question names no action
        named = {a for a, phrase in zip(vocab["actions"], vocab["action_phrases"]) if reference.endswith(phrase)}
        cand = [vocab["actions"].index(a) for a in r.candidates]
        hits["ideal"] += int(np.argmax(on_subject[cand])) == r.answer
        hits["whole video"] += (
            int(np.argmax([-np.inf if vocab["actions"][a] in named else whole[a] for a in cand])) == r.answer
        )
    return {name: 100.0 * h / max(len(records), 1) for name, h in hits.items()}


def _longest_run(flags: np.ndarray) -> int:
    best = run = 0
    for flag in flags:
        run = run + 1 if flag else 0
        best = max(best, run)
    return best


def word_answer_table(root: Path | str, split: str) -> list[dict]:
    """For each subject word: its partner action and P(answer = partner | word) in ``split``
    (the "baby -> hold hands" pattern), read from the csv."""
    from cra.data.nextgqa import read_qa_csv

    meta = load_world(root)
    counts: dict[str, list[int]] = {}
    for r in read_qa_csv(split_paths(root, split)["qa"]).records:
        word = QUESTION_RE.match(r.question)["entity"]
        hit = meta["partners"]["word"].get(word) == r.candidates[r.answer]
        counts.setdefault(word, [0, 0])
        counts[word][0] += 1
        counts[word][1] += hit
    return [
        {"word": w, "partner action": meta["partners"]["word"].get(w), "n": n, "P(A=partner | word)": hits / n}
        for w, (n, hits) in sorted(counts.items())
    ]


def format_confounding(rows: Sequence[Mapping]) -> str:
    """A plain-text table of :func:`measure_confounding` rows."""
    columns = list(rows[0])
    cells = [[f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[j]) for r in cells)) for j, c in enumerate(columns)]
    line = lambda values: "  ".join(v.rjust(w) for v, w in zip(values, widths))  # noqa: E731
    return "\n".join([line(columns), *(line(r) for r in cells)])


def print_confounding(root: Path | str) -> list[dict]:
    """Print (and return) the measured confounding of the world at ``root``."""
    rows = measure_confounding(root)
    print(format_confounding(rows))
    return rows
