r"""Drawing the world from its structural causal model (the equations are in :mod:`cra.synthetic`).

:func:`make_vocabulary` fixes the parts shared by all splits of a world (names, partner maps, concept
vectors); :func:`draw_question` draws one question's variables; :func:`render_frames` turns them into
frame features; :func:`generate_split` assembles a split in memory (csv rows, gsub, frame times,
features, truth). Every draw is a function of ``(seed, split)`` through its own random stream.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from cra.data.nextgqa import NUM_CANDIDATES, question_key
from cra.synthetic.config import ACTIONS, ENTITIES, NUM_FRAMES, SCENES, SPLITS, WorldConfig, check_split

#: random stream of the concepts and of each split (a new split gets a new stream: old ones stay put)
STREAMS = {"concepts": 0, "train": 1, "val": 2, "test-id": 3, "test-ood": 4, "val-ood": 5}
#: video ids are VIDEO_ID_BASE[split] + i
VIDEO_ID_BASE = {split: STREAMS[split] * 1_000_000 for split in SPLITS}
#: the question templates (``WorldConfig.question_form``) and their parser (the subject word is group
#: ``entity``; ``relation`` and ``reference`` are None for a subject question).
#: temporal reference: "the <entity> <action>" or "someone <action>"
QUESTIONS = {"temporal": "what does the {entity} do {relation} {reference}", "subject": "what does the {entity} do"}
QUESTION_TYPES = {"temporal": None, "subject": "DO"}  # csv type; temporal: TN (after) or TP (before)
QUESTION_RE = re.compile(r"^what does the (?P<entity>.+?) do(?: (?P<relation>after|before) (?P<reference>.+))?$")


@dataclass(frozen=True)
class Vocabulary:
    """Names and concept vectors, and the partner maps situation -> entity / scene."""

    actions: tuple[str, ...]
    action_phrases: tuple[str, ...]  # third person, inside questions
    entities: tuple[str, ...]
    scenes: tuple[str, ...]
    entity_of: tuple[int, ...]  # situation z -> its partner entity (injective)
    scene_of: tuple[int, ...]  # situation z -> its partner scene (injective)
    action_vecs: np.ndarray  # (num_actions, D), unit norm
    entity_vecs: np.ndarray  # (num_entities, D)
    scene_vecs: np.ndarray  # (num_scenes, D)

    def word_partner(self, entity: int) -> int | None:
        """The action of the situation whose partner entity is ``entity`` (None if it has none)."""
        return self.entity_of.index(entity) if entity in self.entity_of else None

    def scene_partner(self, scene: int) -> int | None:
        return self.scene_of.index(scene) if scene in self.scene_of else None


def _unit_vectors(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make_vocabulary(config: WorldConfig, seed: int) -> Vocabulary:
    """The concept vectors and partner maps of world ``seed`` (independent of the split sizes)."""
    rng = np.random.default_rng([seed, STREAMS["concepts"]])
    c = config.num_actions
    entity_of = tuple(int(i) for i in rng.permutation(config.num_entities)[:c])
    scene_of = tuple(int(i) for i in rng.permutation(config.num_scenes)[:c])
    return Vocabulary(
        actions=tuple(a for a, _ in ACTIONS[:c]),
        action_phrases=tuple(p for _, p in ACTIONS[:c]),
        entities=ENTITIES[: config.num_entities],
        scenes=SCENES[: config.num_scenes],
        entity_of=entity_of,
        scene_of=scene_of,
        action_vecs=_unit_vectors(rng, c, config.feature_dim),
        entity_vecs=_unit_vectors(rng, config.num_entities, config.feature_dim),
        scene_vecs=_unit_vectors(rng, config.num_scenes, config.feature_dim),
    )


# --------------------------------------------------------------------------------------------
# One question
# --------------------------------------------------------------------------------------------
def _confounded(
    rng: np.random.Generator, strength: float, aligned: int, reversed_options: Sequence[int], n: int
) -> int:
    """Mechanism of a confounded variable: w.p. |s| the aligned (s > 0) or a reversed (s < 0) value, else uniform."""
    u = rng.random()
    if u < abs(strength):
        return aligned if strength > 0 else int(rng.choice(reversed_options))
    return int(rng.integers(n))


def _layout(rng: np.random.Generator, lengths: Sequence[int]) -> list[tuple[int, int]]:
    """Non-overlapping intervals (first, last frame) of the given lengths, in order, >= 1 frame apart;
    the free frames are split at random (sorted uniform cut points) over the gaps around them."""
    slack = NUM_FRAMES - sum(lengths) - (len(lengths) - 1)
    cuts = np.sort(rng.integers(0, slack + 1, size=len(lengths)))
    gaps = np.diff(np.concatenate([[0], cuts]))  # extra frames before each interval
    intervals, t = [], 0
    for i, (gap, length) in enumerate(zip(gaps, lengths)):
        start = t + int(gap) + (1 if i else 0)
        intervals.append((start, start + length - 1))
        t = start + length
    return intervals


def draw_question(rng: np.random.Generator, config: WorldConfig, vocab: Vocabulary, s_l: float, s_v: float) -> dict:
    """One question's variables, drawn in the order of the SCM (indices into the vocabulary).

    Returns ``situation, answer, entity, scene, events`` ((entity, action) in time order),
    ``queried, reference, segments`` (dicts ``entity, action, role, frames``; roles ``event``,
    ``distractor``, ``decoy``), ``relation`` and ``candidates`` (the K answer indices, shuffled).
    """
    c, n_ent, n_scn, k = config.num_actions, config.num_entities, config.num_scenes, config.events_per_video
    z = int(rng.integers(c))  # Z ~ Uniform
    others_z = [o for o in range(c) if o != z]
    answer = z if rng.random() < config.answer_prob else int(rng.choice(others_z))  # A ~ P(A | Z)
    entity = _confounded(rng, s_l, vocab.entity_of[z], [vocab.entity_of[o] for o in others_z], n_ent)
    scene = _confounded(rng, s_v, vocab.scene_of[z], [vocab.scene_of[o] for o in others_z], n_scn)
    other_entities = [int(e) for e in rng.choice([e for e in range(n_ent) if e != entity], k - 1, replace=False)]
    other_actions = [int(a) for a in rng.choice([a for a in range(c) if a != answer], k - 1, replace=False)]
    queried = int(rng.integers(k))  # place of the queried event in time
    events = list(zip(other_entities, other_actions))
    events.insert(queried, (entity, answer))
    if queried == 0:
        reference = 1
    elif queried == k - 1:
        reference = k - 2
    else:
        reference = queried + (1 if rng.random() < 0.5 else -1)
    extras = [("distractor", answer)] if rng.random() < config.distractor_prob else []
    extras += [("decoy", a) for a in other_actions if rng.random() < config.decoy_prob]
    lengths = [int(rng.integers(config.min_event_frames, config.max_event_frames + 1)) for _ in range(k)]
    segments = [{"entity": e, "action": a, "role": "event"} for e, a in events]
    used = {e for e, _ in events}
    for role, action in extras:  # each by a new entity, at a uniform place among the intervals
        extra_entity = int(rng.choice([e for e in range(n_ent) if e not in used]))
        used.add(extra_entity)
        position = int(rng.integers(len(segments) + 1))
        segments.insert(position, {"entity": extra_entity, "action": action, "role": role})
        lengths.insert(position, int(rng.integers(config.min_distractor_frames, config.max_distractor_frames + 1)))
    for seg, frames in zip(segments, _layout(rng, lengths)):
        seg["frames"] = frames
    # candidates: A, the word's and the scene's partner actions, the other events' actions, then unused ones
    order = [answer, vocab.word_partner(entity), vocab.scene_partner(scene), *rng.permutation(other_actions).tolist()]
    in_video = {a for _, a in events}
    unused = [a for a in rng.permutation(c).tolist() if a not in in_video]
    candidates: list[int] = []
    for a in [*order, *unused]:
        if a is not None and a not in candidates:
            candidates.append(int(a))
    candidates = [candidates[:NUM_CANDIDATES][j] for j in rng.permutation(NUM_CANDIDATES)]  # first K, shuffled
    return {
        "situation": z,
        "answer": answer,
        "entity": entity,
        "scene": scene,
        "events": events,
        "queried": queried,
        "reference": reference,
        "segments": segments,
        "relation": "before" if reference > queried else "after",
        "candidates": candidates,
    }


def render_frames(rng: np.random.Generator, config: WorldConfig, vocab: Vocabulary, q: dict) -> np.ndarray:
    """Frame features of one question, ``(T, D)``:

    V_t = noise_std * eps_t + scene_scale * s[S] (every frame, or only frames outside every interval)
          + sum over the intervals covering t of (entity_scale * e[entity] + action_scale * a[action]),
    eps_t ~ N(0, I/D); the subject's entity vector is left out of the evidence with entity_in_evidence=false.
    """
    x = rng.standard_normal((NUM_FRAMES, config.feature_dim)) * (config.noise_std / math.sqrt(config.feature_dim))
    background = np.ones(NUM_FRAMES, dtype=bool)
    evidence = [s for s in q["segments"] if s["role"] == "event"][q["queried"]]
    for seg in q["segments"]:
        first, last = seg["frames"]
        background[first : last + 1] = False
        shown = config.action_scale * vocab.action_vecs[seg["action"]]
        if seg is not evidence or config.entity_in_evidence:
            shown = shown + config.entity_scale * vocab.entity_vecs[seg["entity"]]
        x[first : last + 1] += shown
    scene_frames = slice(None) if config.scene_in_events else background
    x[scene_frames] += config.scene_scale * vocab.scene_vecs[q["scene"]]
    return x.astype(np.float32)


# --------------------------------------------------------------------------------------------
# One split
# --------------------------------------------------------------------------------------------
@dataclass
class Split:
    """One split in memory: csv rows, gsub, frame2time, features and per-question truth."""

    name: str
    rows: list[dict]
    gsub: dict[str, dict]
    frame2time: dict[str, list[float]]
    video_ids: list[int]
    features: np.ndarray  # (N, T, D) float32
    truth: dict[str, dict]


def seconds(frames: Sequence[int], duration: int) -> list[float]:
    """Frames first..last (inclusive) in seconds: frame i spans [i, i + 1) * duration / T."""
    return [round(frames[0] * duration / NUM_FRAMES, 1), round((frames[1] + 1) * duration / NUM_FRAMES, 1)]


def _truth_entry(q: dict, vocab: Vocabulary, duration: int) -> dict:
    def names(s: dict) -> dict:
        return {
            "entity": vocab.entities[s["entity"]],
            "action": vocab.actions[s["action"]],
            "frames": list(s["frames"]),
            "seconds": seconds(s["frames"], duration),
        }

    events = [s for s in q["segments"] if s["role"] == "event"]
    evidence = events[q["queried"]]["frames"]
    distractors = [s["frames"] for s in q["segments"] if s["role"] == "distractor"]
    word_partner, scene_partner = vocab.word_partner(q["entity"]), vocab.scene_partner(q["scene"])
    return {
        "situation": q["situation"],
        "situation_action": vocab.actions[q["situation"]],
        "answer": vocab.actions[q["answer"]],
        "entity": vocab.entities[q["entity"]],
        "scene": vocab.scenes[q["scene"]],
        "word_partner": None if word_partner is None else vocab.actions[word_partner],
        "scene_partner": None if scene_partner is None else vocab.actions[scene_partner],
        "lang_aligned": word_partner == q["answer"],
        "vis_aligned": scene_partner == q["answer"],
        "evidence_frames": list(evidence),
        "evidence_seconds": seconds(evidence, duration),
        "distractor_frames": [list(f) for f in distractors],
        "distractor_seconds": [seconds(f, duration) for f in distractors],
        "decoys": [names(s) for s in q["segments"] if s["role"] == "decoy"],
        "events": [names(s) for s in events],
        "queried_event": q["queried"],
        "reference_event": q["reference"],
        "duration": duration,
    }


def generate_split(config: WorldConfig, seed: int, split: str, vocab: Vocabulary | None = None) -> Split:
    """Draw split ``split`` of world ``seed`` from the SCM."""
    check_split(split)
    vocab = vocab or make_vocabulary(config, seed)
    rng = np.random.default_rng([seed, STREAMS[split]])
    s_l, s_v = config.strengths(split)
    n = config.num_videos(split)
    features = np.empty((n, NUM_FRAMES, config.feature_dim), dtype=np.float32)  # (N, T, D)
    rows, gsub, frame2time, truth, video_ids = [], {}, {}, {}, []
    for i in range(n):
        q = draw_question(rng, config, vocab, s_l, s_v)
        features[i] = render_frames(rng, config, vocab, q)
        video_id, qid = VIDEO_ID_BASE[split] + i, "0"
        duration = int(rng.integers(config.min_duration, config.max_duration + 1))
        ref_entity, ref_action = q["events"][q["reference"]]
        question = QUESTIONS[config.question_form].format(
            entity=vocab.entities[q["entity"]],
            relation=q["relation"],
            reference=f"{'the ' + vocab.entities[ref_entity] if config.name_reference_entity else 'someone'} "
            f"{vocab.action_phrases[ref_action]}",
        )
        rows.append(
            {
                "video_id": video_id,
                "frame_count": int(round(duration * config.fps)),
                "width": 640,
                "height": 480,
                "question": question,
                "answer": q["candidates"].index(q["answer"]),
                "qid": qid,
                "type": QUESTION_TYPES[config.question_form] or ("TP" if q["relation"] == "before" else "TN"),
                **{f"a{j}": vocab.actions[a] for j, a in enumerate(q["candidates"])},
            }
        )
        entry = _truth_entry(q, vocab, duration)
        gsub[str(video_id)] = {"duration": duration, "fps": config.fps, "location": {qid: [entry["evidence_seconds"]]}}
        frame2time[str(video_id)] = [round((t + 0.5) * duration / NUM_FRAMES, 1) for t in range(NUM_FRAMES)]
        truth[question_key(video_id, qid)] = entry
        video_ids.append(video_id)
    return Split(split, rows, gsub, frame2time, video_ids, features, truth)


def generate_world(config: WorldConfig, seed: int) -> dict[str, Split]:
    """All splits of world ``seed`` in memory (what :func:`cra.synthetic.io.make_world` writes)."""
    vocab = make_vocabulary(config, seed)
    return {split: generate_split(config, seed, split, vocab) for split in SPLITS}
