"""The synthetic confounded world: determinism, the official layout read back by the project's
readers, the planted confounders and distractors as configured, the CLI, the committed sample."""

from __future__ import annotations

import json
import math
import re
import shlex
from pathlib import Path

import h5py
import numpy as np
import pytest

from cra import cli, synthetic
from cra.config import ConfigError
from cra.data import FeatureStore, collate, question_key, read_frame2time, read_gsub, read_qa_csv
from cra.synthetic import SPLITS, WorldConfig

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data_samples" / "synthetic"
SMALL = WorldConfig(
    train_videos=40, val_videos=12, val_ood_videos=12, test_id_videos=12, test_ood_videos=12, feature_dim=32
)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return synthetic.make_world(tmp_path_factory.mktemp("w") / "world", 3, SMALL)


def text_files(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.suffix in (".csv", ".json"))


def features(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    with h5py.File(synthetic.split_paths(root, split)["features"], "r") as f:
        return f["vid"][()], f["CLIPL_I"][()]


# --------------------------------------------------------------------------------------------
# Determinism
# --------------------------------------------------------------------------------------------
def test_same_seed_gives_identical_files(world, tmp_path):
    again = synthetic.make_world(tmp_path / "again", 3, SMALL)
    names = [p.name for p in text_files(world)]
    assert names == [p.name for p in text_files(again)] and len(names) == 4 * len(SPLITS) + 1
    for name in names:
        assert (world / name).read_bytes() == (again / name).read_bytes(), name
    for split in SPLITS:
        (ids_a, x_a), (ids_b, x_b) = features(world, split), features(again, split)
        assert np.array_equal(ids_a, ids_b) and np.array_equal(x_a, x_b)


def test_other_seed_gives_another_world(world, tmp_path):
    other = synthetic.make_world(tmp_path / "other", 4, SMALL)
    assert (other / "train.csv").read_bytes() != (world / "train.csv").read_bytes()
    assert not np.array_equal(features(other, "train")[1], features(world, "train")[1])


def test_split_sizes_do_not_change_the_concepts():
    bigger = WorldConfig(**{**SMALL.__dict__, "train_videos": 50})
    a, b = synthetic.make_vocabulary(SMALL, 3), synthetic.make_vocabulary(bigger, 3)
    assert np.array_equal(a.action_vecs, b.action_vecs) and a.entity_of == b.entity_of
    val_a, val_b = synthetic.generate_world(SMALL, 3)["val"], synthetic.generate_split(bigger, 3, "val")
    assert val_a.rows == val_b.rows and np.array_equal(val_a.features, val_b.features)


# --------------------------------------------------------------------------------------------
# The official layout, read back by the project's readers
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("split", SPLITS)
def test_layout_round_trip(world, split):
    paths = synthetic.split_paths(world, split)
    assert paths["features"] == world / "CLIPL" / f"CLIPL_I_{split}.h5"
    qa, gsub, f2t = read_qa_csv(paths["qa"]), read_gsub(paths["gsub"]), read_frame2time(paths["frame2time"])
    truth = synthetic.load_truth(world, split)
    store = FeatureStore(paths["features"], feature_dim=SMALL.feature_dim)
    assert len(qa) == SMALL.num_videos(split) == len(gsub) == len(f2t) == len(store) == len(truth)
    header = paths["qa"].read_text().splitlines()[0].split(",")
    assert header == [
        "video_id",
        "frame_count",
        "width",
        "height",
        "question",
        "answer",
        "qid",
        "type",
        "a0",
        "a1",
        "a2",
        "a3",
        "a4",
    ]
    drawn = synthetic.generate_split(SMALL, 3, split)
    for i, r in enumerate(qa.records):
        entry = truth[r.key]
        assert r.candidates[r.answer] == entry["answer"] and len(set(r.candidates)) == 5
        assert r.type in ("TN", "TP") and entry["entity"] in r.question
        g = gsub[r.video_id]
        assert isinstance(g["duration"], int) and g["location"] == {r.qid: [entry["evidence_seconds"]]}
        times = f2t[r.video_id]
        assert len(times) == 32 and times == sorted(times) and 0 < times[0] and times[-1] < g["duration"]
        first, last = entry["evidence_frames"]
        start, end = g["location"][r.qid][0]
        assert start <= times[first] and times[last] <= end  # evidence frames lie inside the segment
        frames, mask = store.get(r.video_id)
        assert mask.all() and np.array_equal(frames, drawn.features[i])


def test_dataset_and_batches(world):
    dataset = synthetic.load_split(world, "test-ood")
    truth = synthetic.load_truth(world, "test-ood")
    batch = collate([dataset[i] for i in range(4)])
    assert batch["frames"].shape == (4, 32, SMALL.feature_dim) and batch["frame_mask"].all()
    for b, key in enumerate(batch["key"]):
        assert batch["candidates"][b][int(batch["answer"][b])] == truth[key]["answer"]
        assert batch["qa_texts"][b][0].startswith(batch["question"][b])


def test_evaluate_cli_accepts_the_world(world, tmp_path, capsys):
    """`python -m cra evaluate` scores trivial predictions on the world's gsub/frame2time files."""
    paths = synthetic.split_paths(world, "test-id")
    truth = synthetic.load_truth(world, "test-id")
    (tmp_path / "res.json").write_text(json.dumps({k: {"prediction": 0, "answer": 0} for k in truth}))
    (tmp_path / "oracle.json").write_text(json.dumps({k: e["evidence_seconds"] for k, e in truth.items()}))
    att = {}
    for k, e in truth.items():
        w = [0.0] * 32
        w[e["evidence_frames"][0]] = 1.0
        att[k] = w
    (tmp_path / "att.json").write_text(json.dumps(att))
    base = ["evaluate", "--gsub", str(paths["gsub"]), "--qa", str(tmp_path / "res.json"), "--json", "--strict"]
    assert cli.main([*base, "--pred", str(tmp_path / "oracle.json")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == len(truth) and out["Acc@GQA"] == 100 and out["mIoU"] == pytest.approx(100)
    assert (
        cli.main(
            [
                *base,
                "--pred",
                str(tmp_path / "att.json"),
                "--pred-format",
                "attention",
                "--frame2time",
                str(paths["frame2time"]),
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["IoP@0.5"] == 100 and out["missing"] == 0  # post-hoc spans from frame2time fall on the evidence
    assert cli.main([*base, "--baselines", "--seeds", "2"]) == 0
    out = json.loads(capsys.readouterr().out)["baselines"]
    whole = out["whole video (all answers correct)"]
    fractions = [(e["evidence_seconds"][1] - e["evidence_seconds"][0]) / e["duration"] for e in truth.values()]
    assert whole["mIoP"] == pytest.approx(100 * np.mean(fractions), abs=0.5)


# --------------------------------------------------------------------------------------------
# The planted structure
# --------------------------------------------------------------------------------------------
def binomial_ok(measured: float, p: float, n: int, z: float = 4.5) -> bool:
    return abs(measured - p) <= z * math.sqrt(p * (1 - p) / n) + 1e-9


@pytest.mark.parametrize("lang, vis, lang_ood, vis_ood", [(0.8, 0.8, 0.0, 0.0), (0.5, 0.95, -0.9, -0.5)])
def test_confounder_strengths_are_measured_as_configured(tmp_path, lang, vis, lang_ood, vis_ood):
    config = WorldConfig(
        train_videos=900,
        val_videos=300,
        val_ood_videos=300,
        test_id_videos=300,
        test_ood_videos=600,
        feature_dim=32,
        lang_strength=lang,
        vis_strength=vis,
        lang_strength_ood=lang_ood,
        vis_strength_ood=vis_ood,
    )
    root = synthetic.make_world(tmp_path / "w", 11, config)
    rows = {r["split"]: r for r in synthetic.measure_confounding(root)}
    for split, row in rows.items():
        s_l, s_v = config.strengths(split)
        assert row["expected (word)"] == pytest.approx(
            synthetic.expected_alignment(s_l, config.num_entities, config.num_actions, config.answer_prob)
        )
        assert binomial_ok(row["P(A=action(Z))"], config.answer_prob, row["n"]), row  # A ~ P(A | Z)
        assert binomial_ok(row["P(A=word partner)"], row["expected (word)"], row["n"]), row
        assert binomial_ok(row["P(A=scene partner)"], row["expected (scene)"], row["n"]), row
        assert row["scene decoded"] >= 0.99
    train, ood = rows["train"], rows["test-ood"]
    assert train["P(A=word partner)"] - ood["P(A=word partner)"] > 0.25  # confounded in train, not in OOD
    assert train["P(A=scene partner)"] - ood["P(A=scene partner)"] > 0.25
    assert config.strengths("val-ood") == config.strengths("test-ood")  # the selection split is drawn like test-ood
    # the per-word view ("baby -> hold hands") agrees with the overall rate
    table = synthetic.word_answer_table(root, "train")
    overall = sum(r["n"] * r["P(A=partner | word)"] for r in table) / sum(r["n"] for r in table)
    assert overall == pytest.approx(train["P(A=word partner)"])


def test_shortcut_actions_are_always_candidates(world):
    for split in SPLITS:
        for r in read_qa_csv(synthetic.split_paths(world, split)["qa"]).records:
            entry = synthetic.load_truth(world, split)[r.key]
            assert {entry["word_partner"], entry["scene_partner"], entry["answer"]} <= set(r.candidates)
            assert entry["lang_aligned"] == (entry["word_partner"] == entry["answer"])


def test_distractors_lie_outside_the_evidence(tmp_path):
    config = WorldConfig(train_videos=400, val_videos=20, val_ood_videos=20, test_id_videos=20, test_ood_videos=20)
    root = synthetic.make_world(tmp_path / "w", 5, config)
    truth = synthetic.load_truth(root, "train")
    with_distractor = 0
    for entry in truth.values():
        roles = synthetic.frame_roles(entry)
        assert (roles == synthetic.EVIDENCE).sum() == entry["evidence_frames"][1] - entry["evidence_frames"][0] + 1
        for first, last in entry["distractor_frames"]:  # distractor frames are never evidence or another event
            assert (roles[first : last + 1] == synthetic.DISTRACTOR).all()
        n_d = sum(last - first + 1 for first, last in entry["distractor_frames"])
        assert (roles == synthetic.DISTRACTOR).sum() == n_d
        events = [e["frames"] for e in entry["events"]]
        assert all(a[1] < b[0] for a, b in zip(events, events[1:]))  # ordered, non-overlapping
        assert entry["events"][entry["queried_event"]]["action"] == entry["answer"]
        with_distractor += bool(entry["distractor_frames"])
    assert binomial_ok(with_distractor / len(truth), config.distractor_prob, len(truth))
    # the answer's action is really in the distractor frames' features (measured from the h5)
    row = next(r for r in synthetic.measure_confounding(root) if r["split"] == "train")
    assert row["distractor (truth)"] == with_distractor / len(truth)
    assert row["distractor"] == pytest.approx(with_distractor / len(truth), abs=0.01)
    none = synthetic.generate_split(WorldConfig(**{**config.__dict__, "distractor_prob": 0.0}), 5, "val")
    assert not any(e["distractor_frames"] for e in none.truth.values())


def test_decoys_repeat_other_events_actions():
    config = WorldConfig(train_videos=600, val_videos=5, val_ood_videos=5, test_id_videos=5, test_ood_videos=5)
    truth = synthetic.generate_split(config, 6, "train").truth
    repeats = {"answer": 0, "other": 0}
    for entry in truth.values():
        roles = synthetic.frame_roles(entry)
        others = [e["action"] for j, e in enumerate(entry["events"]) if j != entry["queried_event"]]
        entities = {e["entity"] for e in entry["events"]}
        for decoy in entry["decoys"]:
            first, last = decoy["frames"]
            assert (roles[first : last + 1] == synthetic.DECOY).all()  # no overlap with anything else
            assert decoy["action"] in others and decoy["action"] != entry["answer"] and decoy["entity"] not in entities
        assert len({d["action"] for d in entry["decoys"]}) == len(entry["decoys"])  # at most one decoy per event
        repeats["answer"] += bool(entry["distractor_frames"])
        repeats["other"] += len(entry["decoys"])
    n = len(truth)
    assert binomial_ok(repeats["other"] / (2 * n), config.decoy_prob, 2 * n)
    # an action seen twice is not by itself the answer: the answer and each other action repeat equally often
    assert binomial_ok(repeats["answer"] / n, repeats["other"] / (2 * n), n, z=6)


def concept_amounts(config: WorldConfig, seed: int, split: str):
    """The split drawn without noise, and each frame's exact amount of every concept (least squares)."""
    data = synthetic.generate_split(config, seed, split)
    vocab = synthetic.make_vocabulary(config, seed)
    basis = np.concatenate([vocab.action_vecs, vocab.entity_vecs, vocab.scene_vecs]).astype(np.float64)  # (M, D)
    amounts = data.features.astype(np.float64) @ np.linalg.pinv(basis)  # (N, T, M)
    c, e = config.num_actions, config.num_entities
    return data, vocab, amounts[..., :c], amounts[..., c : c + e], amounts[..., c + e :]


@pytest.mark.parametrize("scene_in_events, entity_in_evidence", [(False, True), (True, False)])
def test_what_the_evidence_frames_show(scene_in_events, entity_in_evidence):
    config = WorldConfig(
        train_videos=60, noise_std=0.0, scene_in_events=scene_in_events, entity_in_evidence=entity_in_evidence
    )
    data, vocab, action, entity, scene = concept_amounts(config, 2, "train")
    for i, row in enumerate(data.rows):
        entry = data.truth[question_key(row["video_id"], row["qid"])]
        roles = synthetic.frame_roles(entry)
        s, e, a = (
            vocab.scenes.index(entry["scene"]),
            vocab.entities.index(entry["entity"]),
            vocab.actions.index(entry["answer"]),
        )
        evidence, background = roles == synthetic.EVIDENCE, roles == synthetic.BACKGROUND
        assert np.allclose(scene[i, background, s], 1.0, atol=1e-4)
        assert np.allclose(scene[i, ~background, s], float(scene_in_events), atol=1e-4)  # a mediator can block S
        assert np.allclose(action[i, evidence, a], 1.0, atol=1e-4)
        assert np.allclose(entity[i, evidence, e], float(entity_in_evidence), atol=1e-4)


def test_the_reference_entity_can_be_left_unnamed():
    named = synthetic.generate_split(SMALL, 3, "train")
    unnamed = synthetic.generate_split(WorldConfig(**{**SMALL.__dict__, "name_reference_entity": False}), 3, "train")
    vocab = synthetic.make_vocabulary(SMALL, 3)
    for a, b in zip(named.rows, unnamed.rows):
        entry = named.truth[question_key(a["video_id"], a["qid"])]
        reference = entry["events"][entry["reference_event"]]["entity"]
        assert f" the {reference} " in a["question"] and " someone " in b["question"]
        assert [e for e in vocab.entities if f" {e} " in b["question"]] == [entry["entity"]]  # only the subject
        assert synthetic.QUESTION_RE.match(b["question"])["entity"] == entry["entity"]
    assert np.array_equal(named.features, unnamed.features)  # only the text changes


def test_the_answer_is_drawn_from_the_situation():
    deterministic = synthetic.generate_split(WorldConfig(train_videos=200, answer_prob=1.0), 1, "train").truth
    assert all(e["answer"] == e["situation_action"] for e in deterministic.values())  # the first world's rule
    config = WorldConfig(train_videos=2000, answer_prob=0.6)
    truth = synthetic.generate_split(config, 1, "train").truth.values()
    own = np.mean([e["answer"] == e["situation_action"] for e in truth])
    assert binomial_ok(own, 0.6, len(truth))
    # every answer occurs in every situation, with the other actions equally likely
    pairs = {(e["situation"], e["answer"]) for e in truth}
    assert len(pairs) == config.num_actions**2


def test_question_names_the_queried_subject_and_a_neighbour(world):
    for key, entry in synthetic.load_truth(world, "train").items():
        ref = entry["events"][entry["reference_event"]]
        assert abs(entry["reference_event"] - entry["queried_event"]) == 1 and ref["entity"] != entry["entity"]


def test_faithfulness_helpers():
    entry = {
        "events": [{"frames": [0, 3]}, {"frames": [10, 14]}],
        "queried_event": 1,
        "distractor_frames": [[20, 22]],
        "evidence_seconds": [10.0, 15.0],
        "distractor_seconds": [[20.0, 23.0]],
        "decoys": [{"frames": [25, 26]}],
    }
    roles = synthetic.frame_roles(entry)
    assert roles[:4].tolist() == [3] * 4 and roles[10:15].tolist() == [1] * 5 and roles[20:23].tolist() == [2] * 3
    assert roles[25:27].tolist() == [4] * 2 and (roles == 0).sum() == 32 - 4 - 5 - 3 - 2
    w = np.zeros(32)
    w[10:15], w[20:23] = 0.1, 0.5 / 3
    mass = synthetic.weight_mass({"k": w}, {"k": entry})
    assert (
        mass["evidence"] == pytest.approx(0.5) and mass["distractor"] == pytest.approx(0.5) and mass["background"] == 0
    )
    assert mass["decoy"] == 0
    spans = {"a": [11.0, 14.0], "b": [20.5, 22.0], "c": [0.0, 3.0], "d": [11.0, 14.0]}
    out = synthetic.grounding_outcomes(
        spans, {"a": True, "b": True, "c": True, "d": False}, dict.fromkeys(spans, entry)
    )
    assert out == {"right, on evidence": 25.0, "right, on distractor": 25.0, "right, elsewhere": 25.0, "wrong": 25.0}


def test_scm_graph_is_the_drawn_causal_story():
    import matplotlib

    matplotlib.use("Agg")
    graph = synthetic.scm_graph(SMALL)
    assert list(graph.predecessors("A")) == ["Z"]  # nothing observed causes the answer
    assert {"Q", "V", "C"} == {n for n, d in graph.nodes(data=True) if d["observed"]}
    cut = graph.copy()
    cut.remove_node("Z")
    import networkx as nx

    assert not ({"E", "S"} & nx.ancestors(cut, "A"))  # word and scene relate to A only through Z
    assert "s_l=0.8" in graph.edges["Z", "E"]["mechanism"] and graph.edges["Z", "S"]["confounding"]
    ax = synthetic.draw_scm(config=SMALL)
    detailed = synthetic.draw_scm(detail=True)
    assert 0 < len(ax.patches) < len(detailed.patches)  # the distinctness edges are drawn only on request
    import matplotlib.pyplot as plt

    plt.close("all")


# --------------------------------------------------------------------------------------------
# Configuration and command line
# --------------------------------------------------------------------------------------------
def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="strengths must be in"):
        WorldConfig(lang_strength=1.5)
    with pytest.raises(ValueError, match="must fit in 32 frames"):
        WorldConfig(max_event_frames=7)
    assert WorldConfig(max_event_frames=7, decoy_prob=0.0).extra_intervals == 1  # fits without decoys
    with pytest.raises(ValueError, match="num_actions"):
        WorldConfig(num_actions=4)
    with pytest.raises(ValueError, match="answer_prob"):
        WorldConfig(answer_prob=1.5)
    with pytest.raises(ConfigError, match="unknown key 'no_such_key'"):
        WorldConfig().with_overrides({"no_such_key": "1"})
    with pytest.raises(ConfigError, match=r"feature_dim=1\.5: expected int"):
        WorldConfig().with_overrides({"feature_dim": "1.5"})
    ood = WorldConfig().with_overrides({"vis_strength_ood": "-0.5"})
    assert ood.strengths("test-ood") == ood.strengths("val-ood") == (0.0, -0.5)
    # layers: the packaged ceiling world, then --set items on top
    ceiling = WorldConfig.load(["ceiling"], ["train_videos=7", "scene_in_events=true"])
    assert (ceiling.strengths("train"), ceiling.train_videos, ceiling.scene_in_events) == ((0.0, 0.0), 7, True)
    with pytest.raises(FileNotFoundError, match="no_such_layer"):
        WorldConfig.load(["no_such_layer"])


def test_cli_writes_a_world_and_rejects_unknown_keys(tmp_path, capsys):
    args = [
        "make-synthetic",
        "--out",
        str(tmp_path / "w"),
        "--seed",
        "3",
        *[
            f"--set={k}={getattr(SMALL, k)}"
            for k in (
                "train_videos",
                "val_videos",
                "val_ood_videos",
                "test_id_videos",
                "test_ood_videos",
                "feature_dim",
            )
        ],
    ]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "measured confounding" in out and "test-ood" in out
    assert (tmp_path / "w" / "train.csv").read_bytes() == synthetic.make_world(tmp_path / "f", 3, SMALL).joinpath(
        "train.csv"
    ).read_bytes()
    assert cli.main(args) == 2 and "not empty" in capsys.readouterr().err  # no silent overwrite
    assert cli.main([*args, "--overwrite", "--quiet"]) == 0
    assert cli.main([*args[:5], "--set", "lang_strenght=0.5"]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'lang_strenght'" in err and "lang_strength" in err
    assert cli.main([*args[:5], "--set", "lang_strength"]) == 2 and "KEY=VALUE" in capsys.readouterr().err
    assert cli.main([*args[:5], "--set", "lang_strength=2"]) == 2 and "[-1, 1]" in capsys.readouterr().err
    (tmp_path / "notaworld").mkdir()
    (tmp_path / "notaworld" / "keep.txt").write_text("x")
    assert cli.main(["make-synthetic", "--out", str(tmp_path / "notaworld"), "--seed", "1", "--overwrite"]) == 2
    assert (tmp_path / "notaworld" / "keep.txt").exists()


# --------------------------------------------------------------------------------------------
# The committed sample
# --------------------------------------------------------------------------------------------
def sample_command() -> list[str]:
    """The generation command recorded in data_samples/README.md."""
    readme = (REPO / "data_samples" / "README.md").read_text()
    match = re.search(r"^python -m cra (make-synthetic .*)$", readme, flags=re.M)
    assert match, "data_samples/README.md must record the make-synthetic command on its own line"
    return shlex.split(match.group(1))


def test_committed_sample_is_reproduced_by_its_recorded_command(tmp_path, capsys):
    args = sample_command()
    out_index = args.index("--out") + 1
    assert args[out_index] == "data_samples/synthetic"
    args[out_index] = str(tmp_path / "again")
    assert cli.main([*args, "--quiet"]) == 0
    for path in text_files(SAMPLE):
        assert path.read_bytes() == (tmp_path / "again" / path.name).read_bytes(), path.name
    assert len(text_files(SAMPLE)) == 4 * len(SPLITS) + 1
    for split in SPLITS:
        assert np.array_equal(features(SAMPLE, split)[1], features(tmp_path / "again", split)[1])
    size = sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file())
    assert size < 4e6


def test_readme_states_every_parameter_of_the_sample():
    readme = (REPO / "data_samples" / "README.md").read_text()
    meta = synthetic.load_world(SAMPLE)
    for name, value, _ in meta["world_config"].describe():
        assert re.search(rf"\|\s*`{name}`\s*\|\s*`?{re.escape(str(value))}`?\s*\|", readme), name
    assert f"--seed {meta['seed']}" in readme


def test_subject_questions_name_only_the_subject():
    temporal = synthetic.generate_split(SMALL, 3, "train")
    subject = synthetic.generate_split(WorldConfig(**{**SMALL.__dict__, "question_form": "subject"}), 3, "train")
    for a, b in zip(temporal.rows, subject.rows):
        entry = temporal.truth[question_key(a["video_id"], a["qid"])]
        assert b["question"] == f"what does the {entry['entity']} do" and b["type"] == "DO"
        assert a["type"] in ("TN", "TP")
        match = synthetic.QUESTION_RE.match(b["question"])
        assert match["entity"] == entry["entity"] and match["relation"] is None and match["reference"] is None
        assert {k: v for k, v in a.items() if k not in ("question", "type")} == {
            k: v for k, v in b.items() if k not in ("question", "type")
        }
    assert np.array_equal(temporal.features, subject.features)  # the same draws: only the text changes
    with pytest.raises(ValueError, match="needs entity_in_evidence"):
        WorldConfig(question_form="subject", entity_in_evidence=False)
    with pytest.raises(ValueError, match="question_form must be"):
        WorldConfig(question_form="why")
