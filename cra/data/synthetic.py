"""A synthetic video-question-grounding world with planted confounders, in the official NExT-GQA layout.

Real datasets never tell us *why* a model answered; this world does. Every question's evidence
segment, the frames where its answer's action also happens elsewhere (distractors) and the shortcuts
that a model could use instead (a word in the question, the background of the video) are known, and
the shortcuts' strengths are knobs.

The structural causal model (SCM) of one question, drawn by :func:`draw_scm` (``C`` situations,
one per action; ``s_l``, ``s_v`` the confounder strengths of the split)::

    Z ~ Uniform{0..C-1}                              situation (latent confounder)
    A := action(Z)                                   action of the queried event = the correct answer
    E := entity_partner(Z) w.p. s_l, else Uniform    subject of the queried event, named in the question
    S := scene_partner(Z)  w.p. s_v, else Uniform    background, present in all 32 frames
    R := other events: entities != E, actions != A   (one of them is named in the question)
    T := time layout: ordered non-overlapping intervals of the events, the distractor and the decoy
    D := with prob. p_d, action A done by an entity not in any event, at an interval outside every event
    K := for each other event, w.p. p_k, a decoy: its action repeated by an entity not in any event
         (with p_k = p_d every action of the video is repeated equally often: repetition is no cue)
    Q := "what does the <E> do after|before the <E_ref> <action_ref>"
    C := candidates: A, the partners of E and S, the actions of R, then unused actions (5, shuffled)
    V_t := scene_scale * s[S]
           + sum over intervals (events, D, K) covering t of (entity_scale * e[.] + action_scale * a[.])
           + noise_std * eps_t,   eps_t ~ N(0, I/D)
    G := seconds of A's event (the gsub evidence segment); Y := index of A in C

A negative strength ``s < 0`` *reverses* the confounder: w.p. ``|s|`` the word (scene) is the partner
of another situation, whose action is then a wrong candidate. ``s = 0`` breaks it: word and scene are
independent of the answer, i.e. the world under ``do(E)``, ``do(S)``. Neither the word nor the scene
causes the answer; their association with it flows only through ``Z``.

Splits: ``train``, ``val`` and ``test-id`` use (``lang_strength``, ``vis_strength``); ``test-ood``
uses (``lang_strength_ood``, ``vis_strength_ood``). Files under the output folder, per split::

    <split>.csv                  QA: video_id, frame_count, width, height, question, answer (index),
                                 qid, type (TN/TP), a0..a4
    gsub_<split>.json            {video_id: {duration, fps, location: {qid: [[s, e]]}}}  (also train,
                                 for analysis only: the weakly supervised task never reads it)
    frame2time_<split>.json      {video_id: [32 frame times, s]}
    CLIPL/CLIPL_I_<split>.h5     vid (N,), CLIPL_I (N, 32, feature_dim)
    truth_<split>.json           per question: situation, entity, scene, partners, evidence and
                                 distractor frames and seconds, events, decoys (see :func:`load_truth`)
    world.json                   seed, config, vocabulary, partner maps, concept vectors

Everything is a deterministic function of ``(seed, config)``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from cra.data.features import FEAT_TYPE, feature_path, write_feature_file
from cra.data.nextgqa import NUM_CANDIDATES, question_key
from cra.paths import atomic_write_bytes

NUM_FRAMES = 32  # T: every synthetic video has exactly 32 frames
SPLITS = ("train", "val", "test-id", "test-ood")
FORMAT = "cra-synthetic-world"
FORMAT_VERSION = 1
QA_HEADER = ("video_id", "frame_count", "width", "height", "question", "answer", "qid", "type",
             *(f"a{k}" for k in range(NUM_CANDIDATES)))
#: frame roles returned by :func:`frame_roles`
BACKGROUND, EVIDENCE, DISTRACTOR, OTHER_EVENT, DECOY = 0, 1, 2, 3, 4
ROLE_NAMES = {BACKGROUND: "background", EVIDENCE: "evidence", DISTRACTOR: "distractor", OTHER_EVENT: "other event",
              DECOY: "decoy"}

#: (answer text, third-person form used inside questions)
ACTIONS = (
    ("hold hands", "holds hands"), ("clap", "claps"), ("wave", "waves"), ("jump", "jumps"),
    ("drink water", "drinks water"), ("eat cake", "eats cake"), ("pick up the toy", "picks up the toy"),
    ("run away", "runs away"), ("sit down", "sits down"), ("dance", "dances"), ("laugh", "laughs"),
    ("push the cart", "pushes the cart"), ("throw the ball", "throws the ball"), ("open the door", "opens the door"),
    ("point at the camera", "points at the camera"),
)
ENTITIES = ("baby", "woman", "man", "boy", "girl", "lady", "grandpa", "toddler", "dog", "cat", "teenager", "chef")
SCENES = ("park", "kitchen", "beach", "living room", "garden", "playground", "street", "bedroom", "snowfield",
          "restaurant", "classroom", "lakeshore")
QUESTION_RE = re.compile(r"^what does the (?P<entity>.+?) do (?P<relation>after|before) the (?P<reference>.+)$")
_STREAMS = {"concepts": 0, **{split: i + 1 for i, split in enumerate(SPLITS)}}
_VIDEO_ID_BASE = {split: (i + 1) * 1_000_000 for i, split in enumerate(SPLITS)}


def _doc(text: str) -> dict:
    return {"doc": text}


@dataclass(frozen=True)
class WorldConfig:
    """Every parameter of the world, fixed before any ablation (change one with ``--set k=v`` or a keyword).

    The defaults follow the causal story (strongly confounded training world, confounders broken at
    test-OOD) and are small enough for CPU training; they were not tuned for any model.
    """

    # split sizes (one question per video)
    train_videos: int = field(default=1200, metadata=_doc("videos (= questions) in train"))
    val_videos: int = field(default=300, metadata=_doc("videos in val"))
    test_id_videos: int = field(default=300, metadata=_doc("videos in test-id (confounded like train)"))
    test_ood_videos: int = field(default=300, metadata=_doc("videos in test-ood (confounders broken/reversed)"))
    # vocabulary
    num_actions: int = field(default=10, metadata=_doc(f"actions = answers = situations C (5..{len(ACTIONS)})"))
    num_entities: int = field(default=10, metadata=_doc(f"entities, >= num_actions (<= {len(ENTITIES)})"))
    num_scenes: int = field(default=10, metadata=_doc(f"scenes, >= num_actions (<= {len(SCENES)})"))
    # time
    events_per_video: int = field(default=3, metadata=_doc("events per video (>= 2: the question names a neighbour)"))
    min_event_frames: int = field(default=3, metadata=_doc("shortest event, frames"))
    max_event_frames: int = field(default=5, metadata=_doc("longest event, frames"))
    distractor_prob: float = field(default=0.5, metadata=_doc("P(answer's action also happens outside the evidence)"))
    min_distractor_frames: int = field(default=2, metadata=_doc("shortest distractor (and decoy), frames"))
    max_distractor_frames: int = field(default=4, metadata=_doc("longest distractor (and decoy), frames"))
    decoy_prob: float = field(default=0.5, metadata=_doc("P(each other event's action also happens elsewhere)"))
    # confounding (signed: > 0 aligned with the answer, 0 independent, < 0 reversed)
    lang_strength: float = field(default=0.8, metadata=_doc("s_l in train/val/test-id: P(subject word = partner of Z)"))
    vis_strength: float = field(default=0.8, metadata=_doc("s_v in train/val/test-id: P(scene = partner of Z)"))
    lang_strength_ood: float = field(default=0.0, metadata=_doc("s_l in test-ood (0 broken, < 0 reversed)"))
    vis_strength_ood: float = field(default=0.0, metadata=_doc("s_v in test-ood (0 broken, < 0 reversed)"))
    # features
    feature_dim: int = field(default=64, metadata=_doc("D of the frame features (768 = CLIP ViT-L/14 size)"))
    scene_scale: float = field(default=1.0, metadata=_doc("norm of the scene vector in every frame"))
    entity_scale: float = field(default=1.0, metadata=_doc("norm of an entity vector in its event's frames"))
    action_scale: float = field(default=1.0, metadata=_doc("norm of an action vector in its event's frames"))
    noise_std: float = field(default=1.0, metadata=_doc("expected norm of the per-frame Gaussian noise"))
    # video metadata
    min_duration: int = field(default=15, metadata=_doc("shortest video, integer seconds"))
    max_duration: int = field(default=60, metadata=_doc("longest video, integer seconds"))
    fps: float = field(default=30.0, metadata=_doc("frames per second written to gsub and frame_count"))

    def __post_init__(self):
        problems = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("int", int) and (not isinstance(value, int) or isinstance(value, bool)):
                problems.append(f"{f.name}={value!r} is not an integer")
            elif f.type in ("float", float) and not (isinstance(value, (int, float)) and math.isfinite(value)):
                problems.append(f"{f.name}={value!r} is not a finite number")
        if problems:
            raise ValueError("WorldConfig: " + "; ".join(problems))
        checks = [
            (all(getattr(self, f"{s.replace('-', '_')}_videos") >= 1 for s in SPLITS), "every split needs >= 1 video"),
            (NUM_CANDIDATES <= self.num_actions <= len(ACTIONS), f"num_actions must be in {NUM_CANDIDATES}..{len(ACTIONS)}"),
            (self.num_actions <= self.num_entities <= len(ENTITIES), f"num_entities must be in num_actions..{len(ENTITIES)}"),
            (self.num_actions <= self.num_scenes <= len(SCENES), f"num_scenes must be in num_actions..{len(SCENES)}"),
            (2 <= self.events_per_video < self.num_entities, "events_per_video must be >= 2 and < num_entities"),
            (self.events_per_video <= self.num_actions, "events_per_video must be <= num_actions"),
            (1 <= self.min_event_frames <= self.max_event_frames, "need 1 <= min_event_frames <= max_event_frames"),
            (1 <= self.min_distractor_frames <= self.max_distractor_frames,
             "need 1 <= min_distractor_frames <= max_distractor_frames"),
            (self.events_per_video * (self.max_event_frames + 1) + self.extra_intervals * (self.max_distractor_frames + 1)
             - 1 <= NUM_FRAMES, f"events (+ distractor, + decoys, 1-frame gaps) must fit in {NUM_FRAMES} frames"),
            (0.0 <= self.distractor_prob <= 1.0 and 0.0 <= self.decoy_prob <= 1.0,
             "distractor_prob and decoy_prob must be in [0, 1]"),
            (self.num_entities >= self.events_per_video + self.extra_intervals,
             "num_entities must cover the events, the distractor and the decoys"),
            (all(-1.0 <= getattr(self, k) <= 1.0 for k in ("lang_strength", "vis_strength", "lang_strength_ood",
                                                            "vis_strength_ood")), "strengths must be in [-1, 1]"),
            (self.feature_dim >= 2, "feature_dim must be >= 2"),
            (min(self.scene_scale, self.entity_scale, self.action_scale, self.noise_std) >= 0, "scales must be >= 0"),
            (1 <= self.min_duration <= self.max_duration, "need 1 <= min_duration <= max_duration"),
            (self.fps > 0, "fps must be > 0"),
        ]
        problems = [message for ok, message in checks if not ok]
        if problems:
            raise ValueError(f"WorldConfig: {'; '.join(problems)} (got {self})")

    @property
    def extra_intervals(self) -> int:
        """How many non-event intervals a video can have (a distractor, a decoy per other event)."""
        return int(self.distractor_prob > 0) + (self.events_per_video - 1) * int(self.decoy_prob > 0)

    def strengths(self, split: str) -> tuple[float, float]:
        """``(s_l, s_v)`` of a split."""
        _check_split(split)
        if split == "test-ood":
            return self.lang_strength_ood, self.vis_strength_ood
        return self.lang_strength, self.vis_strength

    def num_videos(self, split: str) -> int:
        _check_split(split)
        return getattr(self, f"{split.replace('-', '_')}_videos")

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def with_overrides(self, overrides: Mapping[str, Any]) -> "WorldConfig":
        """A copy with ``overrides`` (values may be strings, as from ``--set k=v``); unknown keys raise KeyError."""
        types = {f.name: f.type for f in fields(self)}
        unknown = sorted(set(overrides) - set(types))
        if unknown:
            raise KeyError(f"unknown WorldConfig key(s) {unknown}; valid keys: {', '.join(types)}")
        values = asdict(self)
        for key, value in overrides.items():
            values[key] = _parse_value(key, value, types[key])
        return WorldConfig(**values)

    def describe(self) -> list[tuple[str, Any, str]]:
        """``(name, value, meaning)`` for every parameter (the README table)."""
        return [(f.name, getattr(self, f.name), f.metadata.get("doc", "")) for f in fields(self)]


def _parse_value(key: str, value: Any, kind: Any) -> Any:
    kind = {"int": int, "float": float}.get(kind, kind) if isinstance(kind, str) else kind
    if not isinstance(value, str):
        return value
    try:
        if kind is int:
            return int(value)
        if kind is float:
            return float(value)
    except ValueError:
        raise ValueError(f"WorldConfig key {key!r}: {value!r} is not {'an integer' if kind is int else 'a number'}") from None
    raise TypeError(f"WorldConfig key {key!r} has an unsupported type {kind}")


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")


# --------------------------------------------------------------------------------------------
# The world's fixed parts: vocabulary, partner maps, concept vectors
# --------------------------------------------------------------------------------------------
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
    rng = np.random.default_rng([seed, _STREAMS["concepts"]])
    c = config.num_actions
    entity_of = tuple(int(i) for i in rng.permutation(config.num_entities)[:c])
    scene_of = tuple(int(i) for i in rng.permutation(config.num_scenes)[:c])
    return Vocabulary(
        actions=tuple(a for a, _ in ACTIONS[:c]), action_phrases=tuple(p for _, p in ACTIONS[:c]),
        entities=ENTITIES[:config.num_entities], scenes=SCENES[:config.num_scenes],
        entity_of=entity_of, scene_of=scene_of,
        action_vecs=_unit_vectors(rng, c, config.feature_dim),
        entity_vecs=_unit_vectors(rng, config.num_entities, config.feature_dim),
        scene_vecs=_unit_vectors(rng, config.num_scenes, config.feature_dim),
    )


# --------------------------------------------------------------------------------------------
# Drawing one split
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


def _confounded(rng: np.random.Generator, strength: float, aligned: int, reversed_options: Sequence[int], n: int) -> int:
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


def _seconds(frames: tuple[int, int], duration: int) -> list[float]:
    """Frames first..last (inclusive) in seconds: frame i spans [i, i + 1) * duration / T."""
    return [round(frames[0] * duration / NUM_FRAMES, 1), round((frames[1] + 1) * duration / NUM_FRAMES, 1)]


def generate_split(config: WorldConfig, seed: int, split: str, vocab: Vocabulary | None = None) -> Split:
    """Draw split ``split`` of world ``seed`` from the SCM (see the module docstring)."""
    _check_split(split)
    vocab = vocab or make_vocabulary(config, seed)
    rng = np.random.default_rng([seed, _STREAMS[split]])
    s_l, s_v = config.strengths(split)
    c, n_ent, n_scn, k = config.num_actions, config.num_entities, config.num_scenes, config.events_per_video
    n = config.num_videos(split)
    features = np.empty((n, NUM_FRAMES, config.feature_dim), dtype=np.float32)  # (N, T, D)
    rows, gsub, frame2time, truth, video_ids = [], {}, {}, {}, []
    for i in range(n):
        # --- the SCM ---------------------------------------------------------------------------
        z = int(rng.integers(c))  # situation
        answer = z  # A := action(Z)
        others_z = [o for o in range(c) if o != z]
        entity = _confounded(rng, s_l, vocab.entity_of[z], [vocab.entity_of[o] for o in others_z], n_ent)
        scene = _confounded(rng, s_v, vocab.scene_of[z], [vocab.scene_of[o] for o in others_z], n_scn)
        other_entities = [int(e) for e in rng.choice([e for e in range(n_ent) if e != entity], k - 1, replace=False)]
        other_actions = [int(a) for a in rng.choice(others_z, k - 1, replace=False)]
        queried = int(rng.integers(k))  # position of the queried event in time
        events = [(e, a) for e, a in zip(other_entities, other_actions)]
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
        # --- question and candidates ------------------------------------------------------------
        ref_entity, ref_action = events[reference]
        relation = "before" if reference > queried else "after"
        question = (f"what does the {vocab.entities[entity]} do {relation} the {vocab.entities[ref_entity]} "
                    f"{vocab.action_phrases[ref_action]}")
        word_partner, scene_partner = vocab.word_partner(entity), vocab.scene_partner(scene)
        order = [answer, word_partner, scene_partner, *rng.permutation(other_actions).tolist()]
        in_video = {a for _, a in events}
        unused = [a for a in rng.permutation(c).tolist() if a not in in_video]
        candidates: list[int] = []
        for a in [*order, *unused]:
            if a is not None and a not in candidates:
                candidates.append(int(a))
        candidates = [candidates[:NUM_CANDIDATES][j] for j in rng.permutation(NUM_CANDIDATES)]  # first K, shuffled
        if answer not in candidates:  # impossible: the answer is first in `order`
            raise AssertionError("answer missing from its candidates")
        # --- features -----------------------------------------------------------------------------
        x = rng.standard_normal((NUM_FRAMES, config.feature_dim)) * (config.noise_std / math.sqrt(config.feature_dim))
        x += config.scene_scale * vocab.scene_vecs[scene]  # background, all frames  (T, D)
        for seg in segments:
            first, last = seg["frames"]
            x[first:last + 1] += (config.entity_scale * vocab.entity_vecs[seg["entity"]]
                                  + config.action_scale * vocab.action_vecs[seg["action"]])
        features[i] = x
        # --- files --------------------------------------------------------------------------------
        video_id = _VIDEO_ID_BASE[split] + i
        qid = "0"
        duration = int(rng.integers(config.min_duration, config.max_duration + 1))
        key = question_key(video_id, qid)
        event_segments = [s for s in segments if s["role"] == "event"]
        evidence = event_segments[queried]["frames"]
        distractors = [s["frames"] for s in segments if s["role"] == "distractor"]
        decoys = [s for s in segments if s["role"] == "decoy"]
        rows.append({"video_id": video_id, "frame_count": int(round(duration * config.fps)), "width": 640,
                     "height": 480, "question": question, "answer": candidates.index(answer), "qid": qid,
                     "type": "TP" if relation == "before" else "TN",
                     **{f"a{j}": vocab.actions[a] for j, a in enumerate(candidates)}})
        gsub[str(video_id)] = {"duration": duration, "fps": config.fps,
                               "location": {qid: [_seconds(evidence, duration)]}}
        frame2time[str(video_id)] = [round((t + 0.5) * duration / NUM_FRAMES, 1) for t in range(NUM_FRAMES)]
        truth[key] = {
            "situation": z, "answer": vocab.actions[answer], "entity": vocab.entities[entity],
            "scene": vocab.scenes[scene],
            "word_partner": None if word_partner is None else vocab.actions[word_partner],
            "scene_partner": None if scene_partner is None else vocab.actions[scene_partner],
            "lang_aligned": word_partner == answer, "vis_aligned": scene_partner == answer,
            "evidence_frames": list(evidence), "evidence_seconds": _seconds(evidence, duration),
            "distractor_frames": [list(f) for f in distractors],
            "distractor_seconds": [_seconds(f, duration) for f in distractors],
            "decoys": [{"entity": vocab.entities[s["entity"]], "action": vocab.actions[s["action"]],
                        "frames": list(s["frames"]), "seconds": _seconds(s["frames"], duration)} for s in decoys],
            "events": [{"entity": vocab.entities[s["entity"]], "action": vocab.actions[s["action"]],
                        "frames": list(s["frames"]), "seconds": _seconds(s["frames"], duration)} for s in event_segments],
            "queried_event": queried, "reference_event": reference, "duration": duration,
        }
        video_ids.append(video_id)
    return Split(split, rows, gsub, frame2time, video_ids, features, truth)


def generate_world(config: WorldConfig, seed: int) -> dict[str, Split]:
    """All four splits of world ``seed`` in memory (what :func:`make_world` writes)."""
    vocab = make_vocabulary(config, seed)
    return {split: generate_split(config, seed, split, vocab) for split in SPLITS}


# --------------------------------------------------------------------------------------------
# Writing and reading a world
# --------------------------------------------------------------------------------------------
def split_paths(root: Path | str, split: str) -> dict[str, Path]:
    """The files of one split under ``root``."""
    _check_split(split)
    root = Path(root)
    return {"qa": root / f"{split}.csv", "gsub": root / f"gsub_{split}.json",
            "frame2time": root / f"frame2time_{split}.json", "features": feature_path(root, split),
            "truth": root / f"truth_{split}.json"}


def _json_text(obj: Any, depth: int, indent: str = "") -> str:
    """JSON with objects spread one entry per line down to ``depth`` levels, compact below."""
    if depth <= 0 or not isinstance(obj, dict) or not obj:
        return json.dumps(obj, ensure_ascii=True)
    inner = indent + " "
    entries = [f"{inner}{json.dumps(str(k))}: {_json_text(v, depth - 1, inner)}" for k, v in obj.items()]
    return "{\n" + ",\n".join(entries) + "\n" + indent + "}"


def _json_bytes(obj: Any, depth: int = 1) -> bytes:
    return (_json_text(obj, depth) + "\n").encode()


def _csv_bytes(rows: list[dict]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=QA_HEADER, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def _write_split(root: Path, data: Split) -> None:
    paths = split_paths(root, data.name)
    atomic_write_bytes(paths["qa"], _csv_bytes(data.rows))
    atomic_write_bytes(paths["gsub"], _json_bytes(data.gsub))
    atomic_write_bytes(paths["frame2time"], _json_bytes(data.frame2time))
    atomic_write_bytes(paths["truth"], _json_bytes(data.truth))
    write_feature_file(paths["features"], data.video_ids, data.features)


def world_metadata(config: WorldConfig, seed: int, vocab: Vocabulary) -> dict:
    """The content of ``world.json``."""
    return {
        "format": FORMAT, "version": FORMAT_VERSION, "seed": seed, "num_frames": NUM_FRAMES,
        "feature_type": FEAT_TYPE, "config": asdict(config),
        "splits": {s: {"videos": config.num_videos(s), "lang_strength": config.strengths(s)[0],
                       "vis_strength": config.strengths(s)[1]} for s in SPLITS},
        "vocabulary": {"actions": list(vocab.actions), "action_phrases": list(vocab.action_phrases),
                       "entities": list(vocab.entities), "scenes": list(vocab.scenes)},
        "partners": {"word": {vocab.entities[e]: vocab.actions[z] for z, e in enumerate(vocab.entity_of)},
                     "scene": {vocab.scenes[s]: vocab.actions[z] for z, s in enumerate(vocab.scene_of)}},
        "concepts": {"action": vocab.action_vecs.tolist(), "entity": vocab.entity_vecs.tolist(),
                     "scene": vocab.scene_vecs.tolist()},
    }


def make_world(out_dir: Path | str, seed: int, config: WorldConfig | None = None, *, overwrite: bool = False) -> Path:
    """Generate world ``seed`` and write it to ``out_dir`` in the official NExT-GQA layout.

    The world is written to a temporary sibling folder and moved into place at the end, so
    ``out_dir`` is never half-written. An existing ``out_dir`` is replaced only with
    ``overwrite=True`` and only if it holds a previous world (a ``world.json``) or is empty.
    """
    config = config or WorldConfig()
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    out = Path(out_dir)
    if out.exists():
        if not out.is_dir():
            raise FileExistsError(f"{out} exists and is not a folder")
        if any(out.iterdir()):
            if not overwrite:
                raise FileExistsError(f"{out} is not empty; pass overwrite=True (--overwrite) to replace a previous world")
            if not (out / "world.json").is_file():
                raise FileExistsError(f"{out} holds files but no world.json: refusing to replace a folder that is not a world")
    vocab = make_vocabulary(config, seed)
    tmp = out.parent / f".{out.name}.part-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for split in SPLITS:  # one split in memory at a time
            _write_split(tmp, generate_split(config, seed, split, vocab))
        atomic_write_bytes(tmp / "world.json", _json_bytes(world_metadata(config, seed, vocab), depth=2))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def load_world(root: Path | str) -> dict:
    """``world.json`` of a generated world, with its config as a :class:`WorldConfig` under ``"world_config"``."""
    from cra.data.nextgqa import load_json
    from cra.data.errors import DataFormatError

    path = Path(root) / "world.json"
    meta = load_json(path, "world.json of a synthetic world (python -m cra make-synthetic)")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataFormatError(path, "top level", f"format {meta.get('format') if isinstance(meta, dict) else meta!r}",
                              f"format {FORMAT!r}")
    if meta.get("version") != FORMAT_VERSION:
        raise DataFormatError(path, "version", repr(meta.get("version")), f"version {FORMAT_VERSION}")
    return {**meta, "world_config": WorldConfig(**meta["config"])}


def load_truth(root: Path | str, split: str) -> dict[str, dict]:
    """Per question key, what no real dataset gives: situation, subject entity, scene, the actions
    that the word and the scene point to, whether each shortcut is right, evidence and distractor
    frames (inclusive) and seconds, all events and decoys (entity, action, frames, seconds)."""
    from cra.data.nextgqa import load_json

    return load_json(split_paths(root, split)["truth"], "truth json of a synthetic world")


def load_split(root: Path | str, split: str, **dataset_kwargs):
    """A :class:`~cra.data.dataset.NextGQADataset` of one split, read with the project's official readers."""
    from cra.data.dataset import NextGQADataset
    from cra.data.features import FeatureStore
    from cra.data.nextgqa import read_qa_csv

    paths = split_paths(root, split)
    return NextGQADataset(read_qa_csv(paths["qa"]), FeatureStore(paths["features"], feature_dim=None), **dataset_kwargs)


# --------------------------------------------------------------------------------------------
# Ground truth for faithfulness: where the weights and spans of a model fall
# --------------------------------------------------------------------------------------------
def frame_roles(entry: Mapping) -> np.ndarray:
    """Role of each of the 32 frames of a question (``truth[key]``): BACKGROUND, EVIDENCE,
    DISTRACTOR (the answer's action outside the evidence), OTHER_EVENT or DECOY (another event's
    action repeated).  ``(T,)`` int"""
    roles = np.full(NUM_FRAMES, BACKGROUND, dtype=np.int64)
    for j, event in enumerate(entry["events"]):
        first, last = event["frames"]
        roles[first:last + 1] = EVIDENCE if j == entry["queried_event"] else OTHER_EVENT
    for first, last in entry["distractor_frames"]:
        roles[first:last + 1] = DISTRACTOR
    for decoy in entry["decoys"]:
        first, last = decoy["frames"]
        roles[first:last + 1] = DECOY
    return roles


def weight_mass(weights: Mapping[str, Sequence[float]], truth: Mapping[str, Mapping]) -> dict[str, float]:
    """Mean share of per-frame weights (``{key: 32 weights}``, e.g. ``w``) on each frame role.

    Only questions that have a distractor (decoy) count for ``"distractor"`` (``"decoy"``); each share is
    sum(w on role) / sum(w), averaged over questions.
    """
    shares: dict[str, list[float]] = {name: [] for name in ROLE_NAMES.values()}
    for key, w in weights.items():
        if key not in truth:
            raise KeyError(f"weights for {key!r}, which is not a question of this split")
        w = np.asarray(w, dtype=float)  # (T,)
        roles = frame_roles(truth[key])
        total = w.sum()
        for role, name in ROLE_NAMES.items():
            if (role == DISTRACTOR and not truth[key]["distractor_frames"]) or (role == DECOY and not truth[key]["decoys"]):
                continue
            shares[name].append(float(w[roles == role].sum() / total) if total > 0 else float("nan"))
    return {name: float(np.mean(v)) if v else float("nan") for name, v in shares.items()}


def grounding_outcomes(spans: Mapping[str, Sequence[float]], correct: Mapping[str, bool],
                       truth: Mapping[str, Mapping], threshold: float = 0.5) -> dict[str, float]:
    """Shares (percent, over ``spans``) of: right answer on the evidence (IoP >= t), right answer on a
    distractor (IoP with a distractor >= t: right for the wrong reason), right answer elsewhere,
    wrong answer. ``spans`` in seconds, as scored by :mod:`cra.metrics`."""
    from cra.metrics import best_iou_iop

    counts = {"right, on evidence": 0, "right, on distractor": 0, "right, elsewhere": 0, "wrong": 0}
    for key, span in spans.items():
        entry = truth[key]
        if not correct[key]:
            counts["wrong"] += 1
        elif best_iou_iop([entry["evidence_seconds"]], span)[1] >= threshold:
            counts["right, on evidence"] += 1
        elif entry["distractor_seconds"] and best_iou_iop(entry["distractor_seconds"], span)[1] >= threshold:
            counts["right, on distractor"] += 1
        else:
            counts["right, elsewhere"] += 1
    n = max(len(spans), 1)
    return {name: 100.0 * c / n for name, c in counts.items()}


# --------------------------------------------------------------------------------------------
# Measured checks of the planted confounding (read back from the written files)
# --------------------------------------------------------------------------------------------
def expected_alignment(strength: float, n: int) -> float:
    """P(shortcut points to the answer) under the mechanism of :func:`_confounded` with n values."""
    return max(strength, 0.0) + (1.0 - abs(strength)) / n


def measure_confounding(root: Path | str) -> list[dict]:
    """Per split, the confounding as measured from the written files (csv via the project's reader,
    scenes decoded from the HDF5 features), beside the configured strengths.

    Columns: ``P(A=word partner)`` = share of questions whose answer is the action paired with the
    subject word of the question; ``P(A=scene partner)`` the same for the scene decoded from the
    features (argmax over scene vectors of the time-averaged frame); ``expected`` = s + (1 - |s|)/n
    (for s >= 0; (1 - |s|)/n for s < 0); ``scene decoded`` = share of videos whose decoded scene is the
    true one; ``distractor`` = share of questions whose answer's action is detected (least-squares
    amount > half its scale) in a run of >= min_distractor_frames frames outside the evidence, beside
    the share that truly has one (the two agree when ``feature_dim`` is well above the number of
    concepts, e.g. 64 for the default 30; at smaller D the concepts overlap and the read-out blurs);
    ``decoy (truth)`` = share of the other events whose action is repeated by a decoy; ``evidence / video`` = mean length ratio.
    """
    from cra.data.features import FeatureStore
    from cra.data.nextgqa import read_qa_csv

    meta = load_world(root)
    config: WorldConfig = meta["world_config"]
    vocab = meta["vocabulary"]
    partners = meta["partners"]
    concepts = {name: np.asarray(meta["concepts"][name], dtype=np.float64) for name in ("action", "entity", "scene")}
    scene_vecs = concepts["scene"]  # (S, D)
    # Least-squares read-out of every concept's amount in a frame: frames @ pinv(M), M = all concepts.
    readout = np.linalg.pinv(np.concatenate([concepts["action"], concepts["entity"], concepts["scene"]]))  # (D, C+E+S)
    rows = []
    for split in SPLITS:
        paths = split_paths(root, split)
        qa = read_qa_csv(paths["qa"])
        truth = load_truth(root, split)
        store = FeatureStore(paths["features"], feature_dim=None)
        word_hits = scene_hits = both = decoded_ok = distractor = distractor_truth = decoys = 0
        evidence_share = []
        for r in qa.records:
            answer = r.candidates[r.answer]
            match = QUESTION_RE.match(r.question)
            if match is None:
                raise ValueError(f"{paths['qa']}: row {r.row}: question {r.question!r} does not follow the world's template")
            word_ok = partners["word"].get(match["entity"]) == answer
            frames, _ = store.get(r.video_id)  # (T, D)
            scene = vocab["scenes"][int(np.argmax(scene_vecs @ frames.mean(axis=0)))]
            scene_ok = partners["scene"].get(scene) == answer
            word_hits += word_ok
            scene_hits += scene_ok
            both += word_ok and scene_ok
            entry = truth[r.key]
            decoded_ok += scene == entry["scene"]
            first, last = entry["evidence_frames"]
            outside = np.ones(NUM_FRAMES, dtype=bool)
            outside[first:last + 1] = False
            amount = (frames @ readout)[:, vocab["actions"].index(answer)]  # (T,) of the answer's action
            present = outside & (amount > 0.5 * config.action_scale)
            distractor += _longest_run(present) >= config.min_distractor_frames
            distractor_truth += bool(entry["distractor_frames"])
            decoys += len(entry["decoys"])
            evidence_share.append((last - first + 1) / NUM_FRAMES)
        n = len(qa.records)
        s_l, s_v = config.strengths(split)
        rows.append({
            "split": split, "n": n,
            "lang_strength": s_l, "P(A=word partner)": word_hits / n,
            "expected (word)": expected_alignment(s_l, config.num_entities),
            "vis_strength": s_v, "P(A=scene partner)": scene_hits / n,
            "expected (scene)": expected_alignment(s_v, config.num_scenes),
            "P(both)": both / n, "scene decoded": decoded_ok / n,
            "distractor": distractor / n, "distractor (truth)": distractor_truth / n,
            "distractor_prob": config.distractor_prob,
            "decoy (truth)": decoys / (n * (config.events_per_video - 1)), "decoy_prob": config.decoy_prob,
            "evidence / video": float(np.mean(evidence_share)),
        })
    return rows


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
    return [{"word": w, "partner action": meta["partners"]["word"].get(w), "n": n, "P(A=partner | word)": hits / n}
            for w, (n, hits) in sorted(counts.items())]


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


# --------------------------------------------------------------------------------------------
# The SCM as a graph, and its drawing
# --------------------------------------------------------------------------------------------
#: node -> (label, meaning, observed by the model?)
SCM_NODES = {
    "Z": ("Z", "situation (latent confounder)", False),
    "A": ("A", "action of the queried event (the answer)", False),
    "E": ("E", "subject entity (word in Q, entity in V)", False),
    "S": ("S", "scene / background", False),
    "R": ("R", "other events (entities, actions)", False),
    "T": ("T", "time layout of events, distractor, decoy", False),
    "D": ("D", "distractor: A done by another entity outside the events", False),
    "K": ("K", "decoys: actions of R repeated by other entities", False),
    "Q": ("Q", "question text", True),
    "C": ("C", "candidate answers a0..a4", True),
    "V": ("V", "frame features (32 x D)", True),
    "G": ("G", "evidence segment (gsub, seconds)", False),
    "Y": ("Y", "answer index", False),
}
#: (cause, effect, mechanism)
SCM_EDGES = (
    ("Z", "A", "A := action(Z)"),
    ("Z", "E", "partner w.p. s_l"),
    ("Z", "S", "partner w.p. s_v"),
    ("E", "R", "other entities != E"),
    ("A", "R", "other actions != A"),
    ("A", "D", "distractor action = A"),
    ("E", "D", "distractor entity not in events"),
    ("R", "D", "distractor entity not in events"),
    ("R", "K", "decoy actions from R, entities not in events"),
    ("E", "K", "decoy entities not in events"),
    ("D", "K", "decoy entities != distractor entity"),
    ("K", "V", "repeated non-answer actions"),
    ("E", "Q", "subject word"),
    ("R", "Q", "reference event words"),
    ("T", "Q", "after / before"),
    ("A", "C", "answer"),
    ("E", "C", "word partner added"),
    ("S", "C", "scene partner added"),
    ("R", "C", "other events' actions added"),
    ("S", "V", "scene vector, all frames"),
    ("E", "V", "entity vector in its event"),
    ("A", "V", "action vector in its event"),
    ("R", "V", "other events' vectors"),
    ("D", "V", "action A outside the evidence"),
    ("T", "V", "where each vector is"),
    ("T", "G", "seconds of A's event"),
    ("A", "Y", "position of A"),
    ("C", "Y", "position of A"),
)
_SCM_POS = {"Z": (0, 3), "E": (-2, 2), "A": (0, 2), "S": (2, 2), "R": (-1.6, 1), "K": (0.3, 0.7), "D": (1.2, 1.1),
            "T": (3, -1), "Q": (-2.8, 0), "C": (-1, 0), "V": (1.5, 0), "G": (3, 0.3), "Y": (-0.4, -1)}
#: edges that only say "distinct from" (other entities != E, ...): drawn only with ``detail=True``
_DISTINCTNESS = {("E", "R"), ("A", "R"), ("E", "D"), ("R", "D"), ("E", "K"), ("D", "K")}


def scm_graph(config: WorldConfig | None = None):
    """The world's SCM as a ``networkx.DiGraph`` (node attrs: label, meaning, observed; edge attr:
    mechanism, with the strengths of ``config`` filled in when given)."""
    import networkx as nx

    graph = nx.DiGraph()
    for node, (label, meaning, observed) in SCM_NODES.items():
        graph.add_node(node, label=label, meaning=meaning, observed=observed)
    for cause, effect, mechanism in SCM_EDGES:
        if config is not None:
            mechanism = (mechanism.replace("s_l", f"s_l={config.lang_strength:g} (OOD {config.lang_strength_ood:g})")
                         .replace("s_v", f"s_v={config.vis_strength:g} (OOD {config.vis_strength_ood:g})"))
        graph.add_edge(cause, effect, mechanism=mechanism, confounding=cause == "Z" and effect in ("E", "S"),
                       distinctness=(cause, effect) in _DISTINCTNESS)
    return graph


def draw_scm(ax=None, config: WorldConfig | None = None, legend: bool = True, detail: bool = False):
    """Draw the SCM: grey nodes are what a model sees, red dashed edges the confounding mechanisms
    whose strength differs between train and test-OOD. ``detail`` adds the edges that only keep
    entities and actions distinct (e.g. other entities != E). Returns the matplotlib axes."""
    import matplotlib.pyplot as plt
    import networkx as nx

    graph = scm_graph(config)
    if not detail:
        graph.remove_edges_from([(u, v) for u, v, d in graph.edges(data=True) if d["distinctness"]])
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 5.5))
    colors = ["#d9d9d9" if graph.nodes[n]["observed"] else "white" for n in graph]
    nx.draw_networkx_nodes(graph, _SCM_POS, ax=ax, node_color=colors, edgecolors="black", node_size=900)
    nx.draw_networkx_labels(graph, _SCM_POS, ax=ax, labels={n: graph.nodes[n]["label"] for n in graph}, font_size=12)
    red = [(u, v) for u, v, d in graph.edges(data=True) if d["confounding"]]
    plain = [(u, v) for u, v, d in graph.edges(data=True) if not d["confounding"]]
    common = dict(ax=ax, node_size=900, arrows=True, arrowsize=14, connectionstyle="arc3,rad=0.08")
    nx.draw_networkx_edges(graph, _SCM_POS, edgelist=plain, edge_color="#444444", **common)
    nx.draw_networkx_edges(graph, _SCM_POS, edgelist=red, edge_color="#c0392b", width=2.5, style="dashed", **common)
    labels = {(u, v): d["mechanism"] for u, v, d in graph.edges(data=True) if d["confounding"]}
    nx.draw_networkx_edge_labels(graph, _SCM_POS, edge_labels=labels, ax=ax, font_size=8, font_color="#c0392b",
                                 label_pos=0.4, bbox={"alpha": 0})
    if legend:
        text = "\n".join(f"{graph.nodes[n]['label']}: {graph.nodes[n]['meaning']}" for n in graph)
        ax.text(1.02, 0.5, text, transform=ax.transAxes, va="center", fontsize=8, family="monospace")
    ax.set_axis_off()
    return ax
