"""The parser of the released Temp[CLIP] training log (cra.released_log)."""

from __future__ import annotations

import pytest

from cra.released_log import LOG_FILE, LogFormatError, parse_training_log
from tests.conftest import require_data

HEADER = "Acc&GQA  FR  mIoP  TIoP@0.3  TIoP@0.5  mIoU  TIoU@0.3  TIoU@0.5  "


def _block(epoch: int, acc: float, base: float) -> str:
    lines = [
        f"#################### Epoch {epoch}/30 ... ####################",
        "",
        "+------+------+",
        "|   mean acc |   mean align_loss |",
        "+======+======+",
        f"|     0.{epoch}000 |                 0 |",
        "+------+------+",
    ]
    for split, title in (("val", "Val"), ("test", "Test")):
        lines.append(f"{title} Set\t mean acc: {acc + (split == 'test'):.2f}%")
        for k, readout in enumerate(("pre-hoc", "post-hoc", "merge")):
            lines += [
                f"======== {split}_{readout} ========",
                HEADER,
                " \t ".join(f"{base + k + j / 10:.1f}" for j in range(8)) + " \t ",
            ]
    return "\n".join(lines)


def _log(tmp_path, *blocks: str, config: str = '{\n "model": {\n  "d_model": 768\n },1 \n "seed": 2024\n}'):
    path = tmp_path / "info.log"
    path.write_text("#####\nRecording Time 25-01-22\n#####\n" + config + "\n" + "\n".join(blocks) + "\n")
    return path


def test_parses_epochs_names_and_truncation(tmp_path):
    path = _log(
        tmp_path,
        _block(1, 50.0, 10.0),
        _block(2, 55.5, 20.0),
        "#################### Epoch 3/30 ... ####################\n",
    )
    log = parse_training_log(path)
    assert log.config == {"model": {"d_model": 768}, "seed": 2024}
    assert len(log.config_repairs) == 1 and "'1'" in log.config_repairs[0]
    assert [e.epoch for e in log.epochs] == [1, 2] and log.incomplete == [3] and log.epochs_planned == 30
    e2 = log.epoch(2)
    assert e2.train == {"mean acc": 0.2, "mean align_loss": 0.0}
    assert e2.acc_qa == {"val": 55.5, "test": 56.5}
    row = e2.row("test", "posthoc")  # post-hoc is the second table of a split: base + 1
    assert row["Acc@QA"] == 56.5 and row["Acc@GQA"] == 21.0 and row["FR"] == 21.1 and row["IoU@0.5"] == 21.7
    assert e2.row("val", "window")["Acc@GQA"] == 20.0 and e2.row("val", "merge")["mIoP"] == 22.2
    assert log.best_epoch("val").epoch == 2
    with pytest.raises(KeyError, match="no complete epoch 3"):
        log.epoch(3)


def test_bad_rows_name_file_and_line(tmp_path):
    bad = _block(1, 50.0, 10.0).replace("10.0 \t 10.1", "10.0 \t x", 1)
    with pytest.raises(LogFormatError, match=r"info\.log:\d+: expected a row of numbers"):
        parse_training_log(_log(tmp_path, bad))
    with pytest.raises(LogFormatError, match="no complete epoch"):
        parse_training_log(_log(tmp_path, "#################### Epoch 1/30 ... ####################"))
    with pytest.raises(LogFormatError, match="configuration"):
        parse_training_log(_log(tmp_path, _block(1, 50.0, 10.0), config="no json here"))


def test_real_released_log():
    root = require_data(LOG_FILE)
    log = parse_training_log(root / LOG_FILE)
    assert log.epochs_planned == 30 and [e.epoch for e in log.epochs] == list(range(1, 14)) and log.incomplete == [14]
    for e in log.epochs:
        for split in ("val", "test"):
            for readout in ("window", "posthoc", "merge"):
                row = e.row(split, readout)
                assert 0 < row["Acc@GQA"] < row["Acc@QA"] < 100
                assert abs(row["FR"] - 100 * row["Acc@GQA"] / row["Acc@QA"]) < 0.3  # FR = Acc@GQA / Acc@QA
    assert log.config["optim"]["lr"] == 1e-05 and log.config["model"]["num_layers"] == 2
    losses = log.epoch_losses()  # total = CE_vq + CE_vqa + 0.5 CMA in every epoch, up to the log's rounding
    assert max(abs(r["residual"]) for r in losses.values()) < 1e-3
    assert abs(losses[1]["cma"] - 6.8181) < 1e-9 and all(e.train["mean align_loss"] == 0 for e in log.epochs)


def test_epoch_losses_undo_the_running_means(tmp_path):
    """vq/vqa/ag are running means since epoch 1 in the released monitor; total is per epoch."""
    per_epoch = [dict(vq=1.5, vqa=1.4, ag=6.0), dict(vq=1.0, vqa=0.9, ag=4.0), dict(vq=0.8, vqa=0.6, ag=3.0)]
    blocks = []
    for n in range(1, 4):
        run = {k: sum(p[k] for p in per_epoch[:n]) / n for k in ("vq", "vqa", "ag")}
        total = per_epoch[n - 1]["vq"] + per_epoch[n - 1]["vqa"] + 0.5 * per_epoch[n - 1]["ag"]
        table = (
            "|   mean acc |   mean total_loss |   mean align_loss |   mean vq_loss |   mean vqa_loss |   mean "
            "ag_loss |",
            f"|     0.5 | {total:.4f} | 0 | {run['vq']:.4f} | {run['vqa']:.4f} | {run['ag']:.4f} |",
        )
        lines = _block(n, 50.0, 10.0).split("\n")
        lines[3:6] = [table[0], "+======+======+", table[1]]
        blocks.append("\n".join(lines))
    config = '{\n "optim": {"loss": {"align": {"g": 0.5}}}\n}'
    losses = parse_training_log(_log(tmp_path, *blocks, config=config)).epoch_losses()
    for n, p in enumerate(per_epoch, 1):
        assert abs(losses[n]["cma"] - p["ag"]) < 1e-3 and abs(losses[n]["ce_vq"] - p["vq"]) < 1e-3
        assert abs(losses[n]["residual"]) < 1e-3
    with pytest.raises(LogFormatError, match="lacks"):
        parse_training_log(_log(tmp_path, _block(1, 50.0, 10.0))).epoch_losses()
