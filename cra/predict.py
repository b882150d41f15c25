"""Predictions of a trained run in the official NExT-GQA formats (see ``python -m cra predict``)."""

from __future__ import annotations

from pathlib import Path

from cra.train import (data_root, load_checkpoint, load_split, model_from_checkpoint, predict_split, read_run_config,
                       score_predictions, select_device, write_json)

__all__ = ["predict_run"]


def predict_run(run_dir: Path | str, split: str, *, checkpoint: str = "best", out: Path | str | None = None,
                device: str | None = None, progress: bool = False) -> tuple[list[Path], dict]:
    """Write the prediction files of ``split`` for the run's ``checkpoint``; returns (paths, scores).

    Scores (:func:`cra.train.score_predictions`) are computed when the split has ``gsub`` and
    ``frame2time`` files; a split without them (train) gets QA results and weights only.
    """
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    if device is not None:
        config.train.device = device
    ckpt_path = Path(checkpoint) if checkpoint not in ("best", "last") else run_dir / f"{checkpoint}.pt"
    torch_device = select_device(config.train.device)
    state = load_checkpoint(ckpt_path, "cpu")
    folder = data_root(config) / config.data.annotations
    grounding = (folder / f"gsub_{split}.json").is_file() and (folder / f"frame2time_{split}.json").is_file()
    data = load_split(config, split, grounding=grounding)
    model = model_from_checkpoint(config, state).to(torch_device)
    predictions = predict_split(model, data, config, torch_device, progress)
    out = Path(out) if out is not None else run_dir / "predictions"
    written = [out / f"{split}-res.json", out / f"{split}_ground_att.json"]
    write_json(written[0], predictions["qa"])
    write_json(written[1], predictions["weights"])
    if grounding:
        for readout, spans in predictions["spans"].items():
            written.append(out / f"{split}_ground_{readout}.json")
            write_json(written[-1], spans)
    scores = score_predictions(predictions, data)
    if grounding:
        written.append(out / f"{split}_scores.json")
        write_json(written[-1], {"checkpoint": str(ckpt_path), "epoch": state.get("epoch"), **scores})
    return written, scores
