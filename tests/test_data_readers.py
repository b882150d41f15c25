"""The official-file readers: what they return, and the error each kind of bad input raises."""

from __future__ import annotations

import json

import pytest

from cra import data
from cra.data import DataFormatError
from cra.paths import DataNotFoundError

HEADER = "video_id,frame_count,width,height,question,answer,qid,type,a0,a1,a2,a3,a4\n"
ROWS = [
    "100,900,640,480,why did the boy run,1,3,CW,to hide,to catch the ball,to eat,to sleep,to sing\n",
    "100,900,640,480,what did the girl do after falling,0,4,TN,cry,laugh,jump,run,sit\n",
    "200,600,640,480,how does the man hold the cup,4,1,CH,left hand,right hand,mouth,foot,both hands\n",
]


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def csv(tmp_path, rows=ROWS, header=HEADER):
    return write(tmp_path, "val.csv", header + "".join(rows))


def test_read_qa_csv(tmp_path):
    qa = data.read_qa_csv(csv(tmp_path))
    assert len(qa) == 3 and qa.skipped.count == 0
    r = qa.records[0]
    assert (r.key, r.question, r.answer, r.type, r.row) == ("100_3", "why did the boy run", 1, "CW", 0)
    assert r.candidates[r.answer] == "to catch the ball"


def test_train_csv_answer_text_becomes_an_index(tmp_path):
    rows = ["100,900,640,480,why did the boy run,to eat,3,CW,to hide,to catch the ball,to eat,to sleep,to sing\n"]
    assert data.read_qa_csv(csv(tmp_path, rows)).records[0].answer == 2
    bad = ["100,900,640,480,why did the boy run,to fly,3,CW,to hide,to catch the ball,to eat,to sleep,to sing\n"]
    with pytest.raises(DataFormatError, match=r"row 0 \(line 2, key 100_3\): answer 'to fly' is neither"):
        data.read_qa_csv(csv(tmp_path, bad))


@pytest.mark.parametrize(
    "row, message",
    [
        (
            "300,1,1,1,why,5,2,CW,a,b,c,d,e\n",
            r"row 3 \(line 5, key 300_2\): answer index 5; expected an integer in 0..4",
        ),
        ("300,1,1,1,why,-1,2,CW,a,b,c,d,e\n", r"key 300_2\): answer index -1"),
        ("300,1,1,1,  ,1,2,CW,a,b,c,d,e\n", r"key 300_2\): empty question; expected a non-empty question"),
        ("300,1,1,1,why,1,2,CW,a,b,,d,e\n", r"key 300_2\): empty candidate\(s\) \['a2'\]"),
        ("100,1,1,1,why,1,3,CW,a,b,c,d,e\n", r"key 100_3 already on row 0"),
        (",1,1,1,why,1,3,CW,a,b,c,d,e\n", r"empty video_id or qid"),
    ],
)
def test_bad_qa_rows_raise_naming_file_and_row(tmp_path, row, message):
    path = csv(tmp_path, ROWS + [row])
    with pytest.raises(DataFormatError, match=message) as info:
        data.read_qa_csv(path)
    assert str(path) in str(info.value)


def test_skip_bad_rows_reports_count_and_ids(tmp_path):
    path = csv(tmp_path, ROWS + ["300,1,1,1,why,7,2,CW,a,b,c,d,e\n", "301,1,1,1,,1,2,CW,a,b,c,d,e\n"])
    with pytest.warns(UserWarning, match=r"skipped 2 bad row\(s\): 300_2, 301_2"):
        qa = data.read_qa_csv(path, skip_bad_rows=True)
    assert len(qa) == 3 and qa.skipped.count == 2 and qa.skipped.ids == ["300_2", "301_2"]
    assert "answer index 7" in qa.skipped.reasons[0]


def test_missing_columns_and_files(tmp_path):
    with pytest.raises(DataFormatError, match=r"header: missing column\(s\) \['a4'\]"):
        data.read_qa_csv(csv(tmp_path, [], header=HEADER.replace(",a4", "")))
    for reader in (
        data.read_qa_csv,
        data.read_gsub,
        data.read_frame2time,
        data.read_qa_results,
        data.read_span_predictions,
        data.read_frame_weights,
    ):
        with pytest.raises(DataNotFoundError, match=r"missing file .*nothere.json: expected"):
            reader(tmp_path / "nothere.json")


GSUB = {
    "100": {"duration": 30, "fps": 29.97, "location": {"3": [[1.2, 5.8]], "4": [[0.0, 2.0], [10.0, 12.5]]}},
    "200": {"duration": 20, "fps": 30, "location": {"1": [[-0.1, 20.4]]}},
}


def test_read_gsub(tmp_path):
    g = data.read_gsub(write(tmp_path, "gsub_val.json", json.dumps(GSUB)))
    assert g["100"]["duration"] == 30 and g["100"]["location"]["4"] == [[0.0, 2.0], [10.0, 12.5]]
    assert g["200"]["location"]["1"] == [[-0.1, 20.4]]  # not clipped


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"fps": 30, "location": {"1": [[0, 1]]}}, r"video 200: no 'duration'; expected a duration in seconds"),
        ({"duration": "x", "location": {}}, r"video 200: duration 'x'; expected a positive number"),
        ({"duration": 0, "location": {}}, r"video 200: duration 0"),
        ({"duration": 9, "location": {"1": [[0, 1, 2]]}}, r"video 200, question 1: segment \[0, 1, 2\]"),
        ({"duration": 9, "location": {"1": []}}, r"video 200, question 1: segments \[\]; expected a non-empty list"),
        ({"duration": 9, "location": {"1": [[5, 1]]}}, r"ends before it starts; expected start <= end"),
        ({"duration": 9}, r"video 200: location None"),
    ],
)
def test_bad_gsub_entries(tmp_path, entry, message):
    path = write(tmp_path, "gsub_val.json", json.dumps({**GSUB, "200": entry}))
    with pytest.raises(DataFormatError, match=message):
        data.read_gsub(path)
    with pytest.warns(UserWarning, match=r"skipped 1 bad row\(s\): 200"):
        assert list(data.read_gsub(path, skip_bad_rows=True)) == ["100"]


def test_invalid_json_names_line(tmp_path):
    path = write(tmp_path, "gsub_val.json", '{"100": {"duration": 3,\n "location": }}')
    with pytest.raises(DataFormatError, match=r"gsub_val.json: line 2 column \d+: invalid json"):
        data.read_gsub(path)
    with pytest.raises(DataFormatError, match="top level: a json list"):
        data.read_gsub(write(tmp_path, "g.json", "[1, 2]"))


def test_frame2time_and_result_files(tmp_path):
    times = [float(i) for i in range(32)]
    assert data.read_frame2time(write(tmp_path, "f.json", json.dumps({"100": times})))["100"] == times
    with pytest.raises(
        DataFormatError, match=r"video 100: 31 entries \(or non-finite values\); expected 32 finite timestamps"
    ):
        data.read_frame2time(write(tmp_path, "f.json", json.dumps({"100": times[:31]})))
    res = {"100_3": {"prediction": 1, "answer": 1, "acc": True}, "100_4": {"prediction": 2, "answer": 0}}
    assert data.read_qa_results(write(tmp_path, "r.json", json.dumps(res))) == {"100_3": True, "100_4": False}
    with pytest.raises(DataFormatError, match=r"key 100_4: entry \{'prediction': 2\}; expected an object with integer"):
        data.read_qa_results(write(tmp_path, "r.json", json.dumps({"100_4": {"prediction": 2}})))
    assert data.read_span_predictions(write(tmp_path, "s.json", '{"100_3": [1, 2.5]}')) == {"100_3": [1.0, 2.5]}
    for bad in ('{"100_3": [1]}', '{"100_3": "1-2"}', '{"100_3": [1, NaN]}'):
        with pytest.raises(DataFormatError, match=r"key 100_3: span .*expected a list \[start, ..., end\]"):
            data.read_span_predictions(write(tmp_path, "s.json", bad))
    w = {"100_3": [1 / 32] * 32}
    assert data.read_frame_weights(write(tmp_path, "w.json", json.dumps(w))) == w
    with pytest.raises(DataFormatError, match=r"key 100_3: 5 entries .*expected 32 finite weights"):
        data.read_frame_weights(write(tmp_path, "w.json", json.dumps({"100_3": [0.2] * 5})))


def test_real_annotations_load(nextgqa_dir):
    for split, n_questions, n_videos in (("val", 3358, 570), ("test", 5553, 999)):
        qa = data.read_qa_csv(nextgqa_dir / f"{split}.csv")
        gsub = data.read_gsub(nextgqa_dir / f"gsub_{split}.json")
        f2t = data.read_frame2time(nextgqa_dir / f"frame2time_{split}.json")
        assert len(qa) == n_questions and len(gsub) == n_videos and set(f2t) == set(gsub)
        gt_keys = {data.question_key(v, q) for v, e in gsub.items() for q in e["location"]}
        assert {r.key for r in qa.records} == gt_keys  # every csv row has ground truth, and back
        assert {r.answer for r in qa.records} == set(range(5))
