"""Every parameter of the synthetic world (:class:`WorldConfig`), its vocabulary and its splits.

A world config is built like a run config (:func:`cra.config.load_layers`): the dataclass defaults,
then packaged or file layers (``cra/configs/worlds/<name>.yaml``, e.g. ``ceiling``), then ``--set k=v``
items, each value parsed as YAML and checked against the field's type.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

from cra.config import PACKAGED_CONFIGS, ConfigError, check_keys, from_dict, load_layers, parse_yaml
from cra.data.nextgqa import NUM_CANDIDATES

NUM_FRAMES = 32  # T: every synthetic video has exactly 32 frames
#: ``val-ood`` is drawn like ``test-ood`` (confounders broken): the split for checkpoint selection
SPLITS = ("train", "val", "val-ood", "test-id", "test-ood")
OOD_SPLITS = ("val-ood", "test-ood")
WORLD_CONFIGS = PACKAGED_CONFIGS / "worlds"

#: (answer text, third-person form used inside questions)
ACTIONS = (
    ("hold hands", "holds hands"),
    ("clap", "claps"),
    ("wave", "waves"),
    ("jump", "jumps"),
    ("drink water", "drinks water"),
    ("eat cake", "eats cake"),
    ("pick up the toy", "picks up the toy"),
    ("run away", "runs away"),
    ("sit down", "sits down"),
    ("dance", "dances"),
    ("laugh", "laughs"),
    ("push the cart", "pushes the cart"),
    ("throw the ball", "throws the ball"),
    ("open the door", "opens the door"),
    ("point at the camera", "points at the camera"),
)
ENTITIES = ("baby", "woman", "man", "boy", "girl", "lady", "grandpa", "toddler", "dog", "cat", "teenager", "chef")
SCENES = (
    "park",
    "kitchen",
    "beach",
    "living room",
    "garden",
    "playground",
    "street",
    "bedroom",
    "snowfield",
    "restaurant",
    "classroom",
    "lakeshore",
)


def _doc(text: str) -> dict:
    return {"doc": text}


@dataclass(frozen=True)
class WorldConfig:
    """Every parameter of the world (change one with ``--set k=v``, a layer such as ``ceiling``, or a keyword).

    The defaults follow the causal story (a strongly confounded training world, confounders broken in
    the OOD splits) at a size where the package's CRA learns the mechanism on two CPU cores
    (``benchmarks/world_learnability.py`` measures it).
    """

    # split sizes (one question per video)
    train_videos: int = field(default=1000, metadata=_doc("videos (= questions) in train"))
    val_videos: int = field(default=200, metadata=_doc("videos in val (confounded like train)"))
    val_ood_videos: int = field(
        default=200, metadata=_doc("videos in val-ood (confounded like test-ood): for selection")
    )
    test_id_videos: int = field(default=300, metadata=_doc("videos in test-id (confounded like train)"))
    test_ood_videos: int = field(default=300, metadata=_doc("videos in test-ood (confounders broken/reversed)"))
    # vocabulary
    num_actions: int = field(
        default=6, metadata=_doc(f"actions = answers = situations C ({NUM_CANDIDATES}..{len(ACTIONS)})")
    )
    num_entities: int = field(default=6, metadata=_doc(f"entities, >= num_actions (<= {len(ENTITIES)})"))
    num_scenes: int = field(default=6, metadata=_doc(f"scenes, >= num_actions (<= {len(SCENES)})"))
    # mechanism of the answer
    answer_prob: float = field(
        default=0.8, metadata=_doc("P(A = action(Z)) given Z; else A is uniform over the other actions")
    )
    # time
    events_per_video: int = field(default=3, metadata=_doc("events per video (>= 2: the question names a neighbour)"))
    min_event_frames: int = field(default=4, metadata=_doc("shortest event, frames"))
    max_event_frames: int = field(default=6, metadata=_doc("longest event, frames"))
    distractor_prob: float = field(default=0.5, metadata=_doc("P(answer's action also happens outside the evidence)"))
    min_distractor_frames: int = field(default=2, metadata=_doc("shortest distractor (and decoy), frames"))
    max_distractor_frames: int = field(default=3, metadata=_doc("longest distractor (and decoy), frames"))
    decoy_prob: float = field(default=0.5, metadata=_doc("P(each other event's action also happens elsewhere)"))
    # confounding (signed: > 0 aligned with the situation, 0 independent, < 0 reversed)
    lang_strength: float = field(
        default=0.8, metadata=_doc("s_l in train/val/test-id: P(subject = partner of Z) beyond chance")
    )
    vis_strength: float = field(
        default=0.8, metadata=_doc("s_v in train/val/test-id: P(scene = partner of Z) beyond chance")
    )
    lang_strength_ood: float = field(default=0.0, metadata=_doc("s_l in val-ood/test-ood (0 broken, < 0 reversed)"))
    vis_strength_ood: float = field(default=0.0, metadata=_doc("s_v in val-ood/test-ood (0 broken, < 0 reversed)"))
    # what the frames show
    scene_in_events: bool = field(
        default=False,
        metadata=_doc(
            "scene vector also in the frames of events, distractor and decoys (false: background frames only, "
            "so the evidence frames carry no scene)"
        ),
    )
    entity_in_evidence: bool = field(
        default=True,
        metadata=_doc(
            "the subject's entity vector in the evidence frames (false: only its action; the evidence is then "
            "found through the reference event)"
        ),
    )
    question_form: str = field(
        default="temporal",
        metadata=_doc(
            "'temporal': 'what does the <E> do after|before <reference event>' (NExT-GQA's TN/TP shape); "
            "'subject': 'what does the <E> do' (type DO), the subject is the only visible concept named, so "
            "text-frame similarity points at the evidence (the learnable world of the study)"
        ),
    )
    name_reference_entity: bool = field(
        default=True,
        metadata=_doc(
            "the question names who does the reference action (false: 'someone'; the subject is then the only "
            "entity named)"
        ),
    )
    # features
    feature_dim: int = field(default=64, metadata=_doc("D of the frame features (768 = CLIP ViT-L/14 size)"))
    scene_scale: float = field(default=1.0, metadata=_doc("norm of the scene vector in a frame"))
    entity_scale: float = field(default=1.0, metadata=_doc("norm of an entity vector in its event's frames"))
    action_scale: float = field(default=1.0, metadata=_doc("norm of an action vector in its event's frames"))
    noise_std: float = field(default=0.5, metadata=_doc("expected norm of the per-frame Gaussian noise"))
    # video metadata
    min_duration: int = field(default=15, metadata=_doc("shortest video, integer seconds"))
    max_duration: int = field(default=60, metadata=_doc("longest video, integer seconds"))
    fps: float = field(default=30.0, metadata=_doc("frames per second written to gsub and frame_count"))

    def __post_init__(self):
        checks = [
            (all(self.num_videos(s) >= 1 for s in SPLITS), "every split needs >= 1 video"),
            (
                NUM_CANDIDATES <= self.num_actions <= len(ACTIONS),
                f"num_actions must be in {NUM_CANDIDATES}..{len(ACTIONS)}",
            ),
            (
                self.num_actions <= self.num_entities <= len(ENTITIES),
                f"num_entities must be in num_actions..{len(ENTITIES)}",
            ),
            (self.num_actions <= self.num_scenes <= len(SCENES), f"num_scenes must be in num_actions..{len(SCENES)}"),
            (0.0 <= self.answer_prob <= 1.0, "answer_prob must be in [0, 1]"),
            (self.question_form in ("temporal", "subject"), "question_form must be 'temporal' or 'subject'"),
            (
                self.question_form == "temporal" or self.entity_in_evidence,
                "question_form 'subject' needs entity_in_evidence (else nothing in the question finds the evidence)",
            ),
            (2 <= self.events_per_video < self.num_entities, "events_per_video must be >= 2 and < num_entities"),
            (self.events_per_video <= self.num_actions, "events_per_video must be <= num_actions"),
            (1 <= self.min_event_frames <= self.max_event_frames, "need 1 <= min_event_frames <= max_event_frames"),
            (
                1 <= self.min_distractor_frames <= self.max_distractor_frames,
                "need 1 <= min_distractor_frames <= max_distractor_frames",
            ),
            (
                self.events_per_video * (self.max_event_frames + 1)
                + self.extra_intervals * (self.max_distractor_frames + 1)
                - 1
                <= NUM_FRAMES,
                f"events (+ distractor, + decoys, 1-frame gaps) must fit in {NUM_FRAMES} frames",
            ),
            (
                0.0 <= self.distractor_prob <= 1.0 and 0.0 <= self.decoy_prob <= 1.0,
                "distractor_prob and decoy_prob must be in [0, 1]",
            ),
            (
                self.num_entities >= self.events_per_video + self.extra_intervals,
                "num_entities must cover the events, the distractor and the decoys",
            ),
            (
                all(
                    -1.0 <= getattr(self, k) <= 1.0
                    for k in ("lang_strength", "vis_strength", "lang_strength_ood", "vis_strength_ood")
                ),
                "strengths must be in [-1, 1]",
            ),
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
        check_split(split)
        if split in OOD_SPLITS:
            return self.lang_strength_ood, self.vis_strength_ood
        return self.lang_strength, self.vis_strength

    def num_videos(self, split: str) -> int:
        check_split(split)
        return getattr(self, f"{split.replace('-', '_')}_videos")

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def load(cls, layers: Sequence[str | Path] = (), overrides: Sequence[str] = ()) -> "WorldConfig":
        """Defaults, then ``layers`` (YAML paths or names in ``cra/configs/worlds``), then ``k=v`` items."""
        config, _ = load_layers(cls, list(layers), list(overrides), folder=WORLD_CONFIGS, first=None)
        return config

    def with_overrides(self, overrides: Mapping[str, Any]) -> "WorldConfig":
        """A copy with ``overrides`` (a string value is parsed as YAML, as from ``--set k=v``); an
        unknown key or a bad value is a :class:`cra.config.ConfigError` naming it."""
        values = {k: parse_yaml(v) if isinstance(v, str) else v for k, v in overrides.items()}
        check_keys(values, WorldConfig, "world overrides")
        return from_dict(WorldConfig, {**asdict(self), **values})

    def describe(self) -> list[tuple[str, Any, str]]:
        """``(name, value, meaning)`` for every parameter (the README table)."""
        return [(f.name, getattr(self, f.name), f.metadata.get("doc", "")) for f in fields(self)]


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")


__all__ = [
    "NUM_FRAMES",
    "SPLITS",
    "OOD_SPLITS",
    "WORLD_CONFIGS",
    "ACTIONS",
    "ENTITIES",
    "SCENES",
    "WorldConfig",
    "ConfigError",
    "check_split",
]
