"""Confounder dictionaries: encoding, seeded clustering, the file format and the CLI."""

from __future__ import annotations

import hashlib
import sys
import types
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml

from cra import cli
from cra import confounders as cf
from cra.text.semantic_graph import NODE_NAMES, QAComponents


class HashEncoder:
    """A deterministic stand-in text encoder: each token hashes to a fixed random vector; a text is
    the sum of its tokens' vectors (the empty text is its own token). Follows cf.TextEncoder."""

    name = "hash-test"

    def __init__(self, dim: int = 16):
        self.dim = dim
        self.calls: list[list[str]] = []

    def encode(self, texts: list[str]) -> torch.Tensor:
        self.calls.append(list(texts))
        out = torch.zeros(len(texts), self.dim)
        for i, text in enumerate(texts):
            for token in text.split() or ["<empty>"]:
                seed = int.from_bytes(hashlib.sha256(token.encode()).digest()[:8], "little")
                out[i] += torch.randn(self.dim, generator=torch.Generator().manual_seed(seed))
        return out


def make_components(n: int, seed: int = 0) -> list[QAComponents]:
    rng = np.random.default_rng(seed)
    words = ["man", "woman", "baby", "dog", "ball", "hold", "hand", "walk", "play", "table", "cup", "smile"]
    pick = lambda k: tuple(rng.choice(words, size=k))  # noqa: E731
    return [
        QAComponents(f"q{i} " + " ".join(pick(4)), str(rng.choice(["what", "why", "how"])), pick(1), pick(2),
                     pick(int(rng.integers(0, 3))), f"a{i} " + " ".join(pick(2)), pick(1),
                     pick(int(rng.integers(0, 2))))
        for i in range(n)
    ]  # fmt: skip


def test_encode_graph_nodes_shape_order_and_dedup():
    comps = make_components(30)
    encoder = HashEncoder(dim=12)
    node_emb = cf.encode_graph_nodes(comps, encoder, batch_size=7)
    assert node_emb.shape == (30, 8, 12)
    seen = [t for call in encoder.calls for t in call]
    assert len(seen) == len(set(seen))  # each distinct text encoded once
    for i in (0, 17):
        assert torch.allclose(node_emb[i], encoder.encode(comps[i].node_texts()))


def test_encoder_with_wrong_output_shape_is_an_error():
    class Bad(HashEncoder):
        def encode(self, texts):
            return torch.zeros(len(texts), self.dim + 1)

    with pytest.raises(ValueError, match="expected a torch.Tensor of shape"):
        cf.encode_graph_nodes(make_components(3), Bad(dim=4))


def test_clustering_is_deterministic_for_a_seed():
    node_emb = cf.encode_graph_nodes(make_components(120), HashEncoder(dim=8))
    z1, n1 = cf.cluster_graphs(node_emb, 6, seed=3, batch_size=32)
    z2, n2 = cf.cluster_graphs(node_emb, 6, seed=3, batch_size=32)
    z3, _ = cf.cluster_graphs(node_emb, 6, seed=4, batch_size=32)
    assert z1.shape == (6, 8, 8) and z1.dtype == torch.float32
    assert torch.equal(z1, z2) and torch.equal(n1, n2)
    assert not torch.equal(z1, z3)
    assert int(n1.sum()) == 120 and n1.dtype == torch.int64  # sizes = the empirical P(z) * N
    with pytest.raises(ValueError, match="cannot make 200 clusters from 120 points"):
        cf.cluster_graphs(node_emb, 200, seed=0)


def test_visual_clusters_recover_separated_groups():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 5)) * 20
    frames = np.concatenate([c + rng.normal(size=(n, 5)) for c, n in zip(centres, (50, 30, 20))])
    x_hat, sizes = cf.cluster_frames(frames, 3, seed=0)
    assert sorted(sizes.tolist()) == [20, 30, 50]
    nearest = torch.cdist(torch.tensor(centres, dtype=torch.float32), x_hat).min(dim=1).values
    assert bool((nearest < 1.0).all())


def small_confounders(text_dim=8, visual_dim=6) -> cf.Confounders:
    g = torch.Generator().manual_seed(0)
    return cf.Confounders(
        Z_l=torch.randn(5, 8, text_dim, generator=g), Z_l_sizes=torch.tensor([4, 3, 2, 1, 0]),
        X_hat=torch.randn(4, visual_dim, generator=g), X_hat_sizes=torch.tensor([10, 5, 5, 0]),
        metadata={"encoder": "hash-test", "seed": 1,
                  "sources": [{"role": "qa_csv", "path": "x.csv", "sha256": "0" * 64}]},
    )  # fmt: skip


def test_file_round_trip(tmp_path):
    original = small_confounders()
    path = cf.save_confounders(tmp_path / "sub" / "conf.pt", original)
    with pytest.warns(UserWarning) as caught:  # empty clusters (prior 0) are dropped on load, with a warning
        loaded = cf.load_confounders(path, text_dim=8, visual_dim=6)
    assert [str(w.message).split(": ")[1].split(" hold")[0] for w in caught] == [
        "Z_l clusters [4]",
        "X_hat clusters [3]",
    ]
    assert torch.equal(loaded.Z_l, original.Z_l[:4]) and torch.equal(loaded.Z_l_sizes, original.Z_l_sizes[:4])
    assert torch.equal(loaded.X_hat, original.X_hat[:3]) and torch.equal(loaded.X_hat_sizes, original.X_hat_sizes[:3])
    assert loaded.metadata["encoder"] == "hash-test" and loaded.metadata["text_dim"] == 8
    assert loaded.metadata["node_names"] == list(NODE_NAMES) and len(loaded.metadata["edges"]) == 12
    assert torch.allclose(loaded.prior, torch.tensor([0.4, 0.3, 0.2, 0.1]))
    assert float(loaded.visual_prior.sum()) == pytest.approx(1.0)
    assert not list(tmp_path.glob("sub/.*.part"))  # the atomic write left no temporary file
    text_only = cf.Confounders(Z_l=original.Z_l, Z_l_sizes=original.Z_l_sizes)
    with pytest.warns(UserWarning, match="hold no point"):
        loaded = cf.load_confounders(cf.save_confounders(tmp_path / "t.pt", text_only), text_dim=8)
    assert loaded.X_hat is None and loaded.visual_dim is None


def test_dimension_mismatch_is_a_clear_error(tmp_path):
    path = cf.save_confounders(tmp_path / "conf.pt", small_confounders(text_dim=8, visual_dim=6))
    with pytest.raises(cf.ConfounderDimensionError, match=r"Z_l has D=8 .*'hash-test'.* expects D=768"):
        cf.load_confounders(path, text_dim=768)
    with pytest.raises(cf.ConfounderDimensionError, match=r"X_hat has D=6 .* expects D=768"):
        cf.load_confounders(path, text_dim=8, visual_dim=768)
    text_only = cf.save_confounders(
        tmp_path / "t.pt", cf.Confounders(Z_l=torch.zeros(2, 8, 4), Z_l_sizes=torch.tensor([1, 1]))
    )
    with pytest.raises(cf.ConfounderFileError, match="needs X_hat"):
        cf.load_confounders(text_only, visual_dim=4)


def test_damaged_or_foreign_files_are_clear_errors(tmp_path):
    path = cf.save_confounders(tmp_path / "conf.pt", small_confounders())
    data = path.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(cf.ConfounderFileError, match="truncated.pt: not a readable confounder file"):
        cf.load_confounders(truncated)
    # change the stored arrays but keep a valid container: the payload digest catches it
    raw = torch.load(path, weights_only=True)
    raw["Z_l"][0, 0, 0] += 1.0
    tampered = tmp_path / "tampered.pt"
    torch.save(raw, tampered)
    with pytest.raises(cf.ConfounderFileError, match="tampered.pt: .*damaged"):
        cf.load_confounders(tampered)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(cf.ConfounderFileError, match="not a cra-confounders file"):
        cf.load_confounders(foreign)
    raw["version"] = 99
    newer = tmp_path / "newer.pt"
    torch.save(raw, newer)
    with pytest.raises(cf.ConfounderFileError, match="format version 99"):
        cf.load_confounders(newer)
    with pytest.raises(cf.ConfounderFileError, match="does not exist"):
        cf.load_confounders(tmp_path / "absent.pt")
    with pytest.raises(cf.ConfounderFileError, match="Z_l has shape"):
        cf.save_confounders(
            tmp_path / "bad.pt", cf.Confounders(Z_l=torch.zeros(2, 7, 4), Z_l_sizes=torch.tensor([1, 1]))
        )


def test_qa_pairs_accept_text_or_index_answers(tmp_path):
    from cra.data import DataFormatError, read_qa_csv

    header = "video_id,question,answer,qid,type,a0,a1,a2,a3,a4\n"
    (tmp_path / "text.csv").write_text(header + "1,what did the man do,wave,0,TN,run,wave,sit,eat,jump\n")
    (tmp_path / "index.csv").write_text(header + "1,what did the man do,1,0,TN,run,wave,sit,eat,jump\n")
    pairs = [read_qa_csv(tmp_path / name).qa_pairs() for name in ("text.csv", "index.csv")]
    assert pairs[0] == pairs[1] == [("what did the man do", "wave")]
    (tmp_path / "bad.csv").write_text(header + "1,q,fly,0,TN,run,wave,sit,eat,jump\n")
    with pytest.raises(DataFormatError, match=r"bad.csv: row 0 \(line 2, key 1_0\): answer 'fly'"):
        read_qa_csv(tmp_path / "bad.csv")


# ------------------------------------------------------------------------------------------- CLI
QUESTIONS = [
    ("what did the baby do after throwing the cup", "lay on floor"),
    ("why did the man hold the boy", "prevent falling"),
    ("how does the woman feed the baby", "with a spoon"),
    ("what is on the table", "a cake"),
    ("who is holding the baby", "the lady"),
    ("what does the dog do after going to the cushion", "smells the cat"),
]


def write_synthetic_world(root: Path, num_videos: int = 6, frames: int = 32, dim: int = 10) -> None:
    """A tiny dataset in the official layout: a QA csv and a CLIPL_I HDF5 file."""
    rows = ["video_id,frame_count,width,height,question,answer,qid,type,a0,a1,a2,a3,a4"]
    for i, (q, a) in enumerate(QUESTIONS * 2):
        rows.append(f"{100 + i % num_videos},100,320,240,{q},{a},{i},CW,{a},x1,x2,x3,x4")
    (root / "qa").mkdir(parents=True)
    (root / "qa" / "train.csv").write_text("\n".join(rows) + "\n")
    (root / "features" / "CLIPL").mkdir(parents=True)
    rng = np.random.default_rng(0)
    with h5py.File(root / "features" / "CLIPL" / "CLIPL_I_train.h5", "w") as f:
        f["vid"] = np.arange(100, 100 + num_videos)
        f["CLIPL_I"] = rng.normal(size=(num_videos, frames, dim)).astype(np.float32)


@pytest.fixture
def fake_encoders(monkeypatch):
    """Stand in for cra.text.encoders (built elsewhere) with the hashing encoder."""
    module = types.ModuleType("cra.text.encoders")
    module.build_text_encoder = lambda name, dim=16, **kw: HashEncoder(dim=dim)
    monkeypatch.setitem(sys.modules, "cra.text.encoders", module)


def write_config(tmp_path: Path, **changes) -> Path:
    values = {
        "out": str(tmp_path / "out" / "conf.pt"), "data_root": str(tmp_path / "data"),
        "qa_csv": ["qa/train.csv"], "features_h5": ["features/CLIPL/CLIPL_I_train.h5"],
        "text_encoder": {"name": "hash", "dim": 16}, "text_clusters": 4, "visual_clusters": 8, "seed": 7,
    }  # fmt: skip
    values.update(changes)
    path = tmp_path / "conf.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def test_cli_builds_a_file_the_loader_accepts(tmp_path, fake_encoders, capsys):
    pytest.importorskip("spacy")
    write_synthetic_world(tmp_path / "data")
    config = write_config(tmp_path)
    args = ["build-confounders", "--config", str(config), "--no-progress", "--set", "text_clusters=3"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "Z_l (3, 8, 16)" in out
    loaded = cf.load_confounders(tmp_path / "out" / "conf.pt", text_dim=16, visual_dim=10)
    assert loaded.Z_l.shape == (3, 8, 16) and loaded.X_hat.shape == (8, 10)
    assert int(loaded.Z_l_sizes.sum()) == 12 and int(loaded.X_hat_sizes.sum()) == 6 * 32
    meta = loaded.metadata
    assert meta["encoder"] == "hash-test" and meta["seed"] == 7 and meta["text_clusters"] == 3
    assert meta["parser"].startswith("en_core_web_sm")
    csv_source = next(s for s in meta["sources"] if s["role"] == "qa_csv")
    assert csv_source["sha256"] == hashlib.sha256((tmp_path / "data" / "qa" / "train.csv").read_bytes()).hexdigest()
    # the same seed gives the same dictionaries
    first = loaded
    assert cli.main(args + ["--set", f"out={tmp_path / 'again.pt'}"]) == 0
    again = cf.load_confounders(tmp_path / "again.pt")
    assert torch.equal(first.Z_l, again.Z_l) and torch.equal(first.X_hat, again.X_hat)


def test_cli_visual_only_needs_no_text_encoder(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "cra.text.encoders", None)  # as if the module did not exist
    write_synthetic_world(tmp_path / "data")
    config = write_config(tmp_path, qa_csv=[])
    assert cli.main(["build-confounders", "--config", str(config), "--no-progress"]) == 0
    loaded = cf.load_confounders(tmp_path / "out" / "conf.pt", visual_dim=10)
    assert loaded.Z_l is None and loaded.metadata["num_frames"] == 6 * 32


def test_cli_errors_are_clear(tmp_path, monkeypatch, capsys):
    write_synthetic_world(tmp_path / "data")
    config = write_config(tmp_path, n_clusters=3)
    assert cli.main(["build-confounders", "--config", str(config)]) == 2
    assert "unknown key 'n_clusters'" in capsys.readouterr().err
    config = write_config(tmp_path)
    assert cli.main(["build-confounders", "--config", str(config), "--set", "seed"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err
    assert cli.main(["build-confounders", "--config", str(config), "--set", "visual_clusters=0"]) == 2
    assert "visual_clusters=0; expected a positive integer" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "cra.text.encoders", None)
    assert cli.main(["build-confounders", "--config", str(config)]) == 2
    assert "needs the text-encoder interface cra.text.encoders" in capsys.readouterr().err
    assert (
        cli.main(["build-confounders", "--config", str(config), "--set", "qa_csv=[]", "--set", "features_h5=[nope.h5]"])
        == 2
    )
    assert "missing feature file" in (err := capsys.readouterr().err) and "nope.h5" in err
    assert not (tmp_path / "out" / "conf.pt").exists()  # nothing half-written
    assert cli.main(["build-confounders", "--config", "no_such_config"]) == 2
    assert "not a packaged config" in capsys.readouterr().err


def test_packaged_configs_are_valid():
    from cra.commands.build_confounders import load_config
    from cra.confounders import PACKAGED_CONFIGS

    names = sorted(p.stem for p in PACKAGED_CONFIGS.glob("*.yaml"))
    assert {"nextgqa_train", "nextgqa_valtest_demo"} <= set(names)
    for name in names:
        config = load_config(name, [])
        assert config.qa_csv and config.text_clusters == 512 and config.seed == 43


def test_overrides_reach_nested_keys():
    from cra.config import apply_overrides

    values = apply_overrides(
        {"text_encoder": {"name": "clip"}}, ["text_encoder.model=ViT-B-32", "qa_csv=[a.csv, b.csv]"]
    )
    assert values == {"text_encoder": {"name": "clip", "model": "ViT-B-32"}, "qa_csv": ["a.csv", "b.csv"]}
    with pytest.raises(ValueError, match="is not a mapping"):
        apply_overrides({"seed": 1}, ["seed.x=2"])


def test_module_encoder_runs_in_eval_mode_and_is_restored():
    class DropoutEncoder(torch.nn.Module):
        name = "dropout-test"

        def __init__(self):
            super().__init__()
            self.dim = 8
            self.hash = HashEncoder(dim=8)
            self.drop = torch.nn.Dropout(0.5)

        def encode(self, texts):
            return self.drop(self.hash.encode(texts))

    encoder = DropoutEncoder().train()
    comps = make_components(10)
    first = cf.encode_graph_nodes(comps, encoder)
    assert torch.equal(first, cf.encode_graph_nodes(comps, encoder))  # no dropout noise
    assert encoder.training


def test_text_dictionary_keeps_each_pair_its_graph_and_cluster(tmp_path, monkeypatch):
    import cra.text.semantic_graph as sg

    rows = ["video_id,frame_count,width,height,question,answer,qid,type,a0,a1,a2,a3,a4"]
    rows += [f"{100 + i},10,1,1,why did the man {w} {i},{i % 5},{i},CW,a {w},b,c,d,e"
             for i, w in enumerate(["run", "eat", "sit", "jump"] * 5)]  # fmt: skip
    (tmp_path / "qa.csv").write_text("\n".join(rows) + "\n")
    monkeypatch.setattr(
        sg,
        "parse_qa_batch",
        lambda pairs, nlp, **kw: [
            QAComponents(q, "why", ("man",), tuple(q.split()[4:5]), (), a, (), tuple(a.split()[1:])) for q, a in pairs
        ],
    )
    monkeypatch.setattr(sg, "parser_name", lambda nlp: "stand-in")
    config = cf.BuildConfig(
        out=str(tmp_path / "c.pt"),
        data_root=str(tmp_path),
        qa_csv=["qa.csv"],
        text_clusters=4,
        max_qa=12,
        seed=0,
        text_encoder={"name": "hash"},
    )
    text = cf.build_text_dictionary(config, lambda name: HashEncoder(dim=8), nlp=object())
    assert len(text.records) == len(text.components) == 12  # a seeded subset, kept in file order
    assert [r.row for r in text.records] == sorted(r.row for r in text.records)
    assert [c.question for c in text.components] == [r.question for r in text.records]
    assert text.node_emb.shape == (12, 8, 8) and text.Z_l.shape == (4, 8, 8)
    assert torch.equal(torch.bincount(text.labels, minlength=4), text.sizes)  # sizes count the labels
    distances = torch.cdist(text.node_emb.reshape(12, -1), text.Z_l.reshape(4, -1))  # (12, 4)
    assert torch.equal(text.labels, distances.argmin(1))  # each pair's nearest entry
    again = cf.build_text_dictionary(config, lambda name: HashEncoder(dim=8), reuse=text)  # no parse, no parser
    assert again.components is text.components and torch.equal(again.labels, text.labels)
    monkeypatch.setattr(config, "max_qa", 11)
    with pytest.raises(ValueError, match="other QA pairs"):
        cf.build_text_dictionary(config, lambda name: HashEncoder(dim=8), reuse=text)
    assert len(cf.select_qa(list(range(20)), None, seed=0)) == 20
