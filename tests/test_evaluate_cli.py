"""``python -m cra evaluate`` on the hand-made golden files of test_metrics_golden."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from test_metrics_golden import CORRECT, GSUB, SPANS

from cra import cli

KEYS = ["Acc@QA", "Acc@GQA", "mIoP", "IoP@0.3", "IoP@0.5", "mIoU", "IoU@0.3", "IoU@0.5", "n"]


@pytest.fixture
def files(tmp_path):
    paths = {}
    res = {k: {"prediction": 1, "answer": 1 if ok else 0} for k, ok in CORRECT.items()}
    for name, content in (("gsub", GSUB), ("qa", res), ("pred", SPANS)):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(content))
    return paths


def evaluate(files, *extra):
    return cli.main(
        ["evaluate", "--gsub", str(files["gsub"]), "--qa", str(files["qa"]), "--pred", str(files["pred"]), *extra]
    )


def test_json_output(files, capsys):
    assert evaluate(files, "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out)[:9] == KEYS
    assert out["n"] == 9 and out["missing"] == 1 and out["zero_length"] == 2 and out["zero_length_inside_gt"] == 2
    assert out["Acc@GQA"] == pytest.approx(100 * 4 / 9) and out["mIoU"] == pytest.approx(100 * 1.65 / 9)
    assert evaluate(files, "--json", "--strict") == 0
    strict = json.loads(capsys.readouterr().out)
    assert strict["n"] == 10 and strict["Acc@GQA"] == pytest.approx(40.0)


def test_table_output(files, capsys):
    assert evaluate(files, "--name", "golden", "--baselines", "--seeds", "2") == 0
    out = capsys.readouterr().out
    assert "9 of 10 questions scored" in out
    row = next(line for line in out.splitlines() if line.startswith("| golden"))
    assert [c.strip() for c in row.strip("|").split("|")][1:] == [
        "66.67",
        "44.44",
        "53.70",
        "66.67",
        "55.56",
        "18.33",
        "33.33",
        "22.22",
        "9",
    ]
    assert "FR = Acc@GQA / Acc@QA = 66.67" in out and "UF@0.5 = 22.22" in out
    assert "1 of 10 ground-truth questions have no prediction" in out and "v1_5" in out
    assert "2 zero-length spans" in out and "| whole video (all answers correct)" in out


def test_normalized_and_attention_formats(tmp_path, capsys):
    gsub = {"v": {"duration": 10, "location": {"0": [[8.0, 10.0]]}}}
    (tmp_path / "g.json").write_text(json.dumps(gsub))
    (tmp_path / "p.json").write_text(json.dumps({"v_0": [0.9, 1.1]}))
    base = ["evaluate", "--gsub", str(tmp_path / "g.json"), "--json"]
    assert cli.main([*base, "--pred", str(tmp_path / "p.json"), "--pred-format", "normalized"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mIoU"] == pytest.approx(100 / 3) and out["mIoP"] == pytest.approx(50.0) and out["Acc@QA"] is None
    # attention: 32 weights peaking on frames 28-29, frame i at (i + 1) * 0.3 s -> post-hoc span [8.7, 9.0]
    w = [0.0] * 32
    w[28], w[29] = 1.0, 0.9
    (tmp_path / "a.json").write_text(json.dumps({"v_0": w}))
    (tmp_path / "f.json").write_text(json.dumps({"v": [round(0.3 * (i + 1), 1) for i in range(32)]}))
    assert (
        cli.main(
            [
                *base,
                "--pred",
                str(tmp_path / "a.json"),
                "--pred-format",
                "attention",
                "--frame2time",
                str(tmp_path / "f.json"),
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["mIoP"] == pytest.approx(100.0) and out["mIoU"] == pytest.approx(100 * 0.3 / 2)  # [8.7, 9.0] in [8, 10]
    # merge: normalized [0.9, 1.1] -> [9, 11] intersected with the post-hoc [8.7, 9.0] -> [9.0, 9.0]
    assert (
        cli.main(
            [
                *base,
                "--pred",
                str(tmp_path / "p.json"),
                "--pred-format",
                "normalized",
                "--merge-with",
                str(tmp_path / "a.json"),
                "--frame2time",
                str(tmp_path / "f.json"),
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["zero_length"] == 1 and out["mIoP"] == pytest.approx(100.0) and out["mIoU"] == 0.0
    with pytest.raises(SystemExit, match="merges normalized spans"):
        cli.main(
            [
                *base,
                "--pred",
                str(tmp_path / "p.json"),
                "--merge-with",
                str(tmp_path / "a.json"),
                "--frame2time",
                str(tmp_path / "f.json"),
            ]
        )
    with pytest.raises(SystemExit, match="need --frame2time"):
        cli.main([*base, "--pred", str(tmp_path / "a.json"), "--pred-format", "attention"])


def test_bad_input_exits_2_with_a_clear_message(files, tmp_path, capsys):
    (tmp_path / "bad.json").write_text(json.dumps({"v1_0": [1.0]}))
    assert cli.main(["evaluate", "--gsub", str(files["gsub"]), "--pred", str(tmp_path / "bad.json")]) == 2
    assert "bad.json: key v1_0: [1.0]; expected a list of at least 2 finite numbers" in capsys.readouterr().err
    assert cli.main(["evaluate", "--gsub", str(tmp_path / "none.json"), "--pred", str(files["pred"])]) == 2
    assert "missing file" in capsys.readouterr().err
    qa = {k: {"prediction": 0, "answer": 0} for k in list(CORRECT)[1:]}  # v1_0 has no QA result
    (tmp_path / "qa.json").write_text(json.dumps(qa))
    assert (
        cli.main(
            ["evaluate", "--gsub", str(files["gsub"]), "--qa", str(tmp_path / "qa.json"), "--pred", str(files["pred"])]
        )
        == 2
    )
    assert "no QA result" in capsys.readouterr().err


def test_registered_as_a_module_command(files):
    out = subprocess.run(
        [sys.executable, "-m", "cra", "evaluate", "--gsub", str(files["gsub"]), "--pred", str(files["pred"]), "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(out)["n"] == 9


def test_baselines_alone(files, capsys):
    assert (
        cli.main(
            [
                "evaluate",
                "--gsub",
                str(files["gsub"]),
                "--qa",
                str(files["qa"]),
                "--baselines",
                "--seeds",
                "3",
                "--json",
            ]
        )
        == 0
    )
    rows = json.loads(capsys.readouterr().out)["baselines"]
    assert set(rows) == {
        "whole video",
        "middle half",
        "random span (3 seeds)",
        "whole video (all answers correct)",
        "middle half (all answers correct)",
        "random span (3 seeds) (all answers correct)",
    }
    # whole video, by hand: v1 questions [0, 10] vs GT -> IoP .4 .4 .4 .4 .2 .4 (two-segment q1: 4/10 each);
    # v2 [0, 20] vs [5, 15] -> .5 four times. IoP >= .5: v2 x4 (v1_1 with .4 per segment fails) -> 40 %
    assert rows["whole video"]["n"] == 10 and rows["whole video (all answers correct)"]["IoP@0.5"] == pytest.approx(
        40.0
    )
    assert rows["whole video"]["Acc@GQA"] == pytest.approx(20.0)  # of v2_0..v2_3 only v2_0 and v2_3 are right
    assert cli.main(["evaluate", "--gsub", str(files["gsub"]), "--baselines", "--seeds", "1"]) == 0
    assert "random span (1 seed) (all answers correct)" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="give --pred"):
        cli.main(["evaluate", "--gsub", str(files["gsub"])])
