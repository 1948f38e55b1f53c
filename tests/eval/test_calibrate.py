"""``affectstream eval calibrate``: offsets fitted on crafted predictions recover a known label
bias, the written table loads through ``vlm.calibration: table`` in a real config, and the
held-out report shows the effect (hand-computed UAR before and after)."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import main

from affectstream.config import load_config
from affectstream.errors import ConfigError
from affectstream.eval.calibrate import calibrate, holdout_split, read_predictions
from affectstream.eval.classify import class_metrics
from affectstream.labels import DFEW7
from affectstream.vlm.calibration import TABLE_SCHEMA, TableCalibration, read_table
from affectstream.vlm.factory import calibrator_for

# The model's label prior: log-probability added to each label whatever the clip shows.
BIAS = {"happiness": 1.5, "neutral": 3.0}
CENTRE = sum(BIAS.values()) / len(DFEW7)
# Hand-computed: the offsets that undo it are -(bias − its mean over the seven labels).
EXPECTED = {label: -(BIAS.get(label, 0.0) - CENTRE) for label in DFEW7}


def probs_of(evidence: str, bias: bool = True) -> dict[str, float]:
    """softmax over labels of 2·[label == evidence] (+ the bias)."""
    logits = {label: 2.0 * (label == evidence) + (BIAS.get(label, 0.0) if bias else 0.0)
              for label in DFEW7}
    total = sum(math.exp(v) for v in logits.values())
    return {label: math.exp(v) / total for label, v in logits.items()}


def crafted(per_class: dict[str, int], prefix: str) -> list[dict[str, object]]:
    """Per class, 3 in 4 clips show its own evidence and 1 in 4 the next label's (cyclic):
    the same structure for every class, so the balanced fit's optimum is exactly the bias
    undone (up to the small L2 pull toward 0)."""
    lines = []
    for c, label in enumerate(DFEW7):
        for i in range(per_class[label]):
            evidence = label if i % 4 != 3 else DFEW7[(c + 1) % len(DFEW7)]
            probs = probs_of(evidence)
            lines.append({"clip": f"{prefix}{label}-{i:03d}", "condition": "uniform-8",
                          "label": label, "pred": max(probs, key=lambda k: probs[k]),
                          "probs": probs})
    return lines


def write_jsonl(path: Path, lines: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


# long-tailed fitting split: the balanced objective must not care
TRAIN = dict(zip(DFEW7, (40, 8, 120, 12, 16, 4, 8), strict=True))
HELD = dict.fromkeys(DFEW7, 8)


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path]:
    return (write_jsonl(tmp_path / "fit.jsonl", crafted(TRAIN, "f")),
            write_jsonl(tmp_path / "held.jsonl", crafted(HELD, "h")))


def test_fit_recovers_the_known_bias(files: tuple[Path, Path], tmp_path: Path) -> None:
    fit, held = files
    out = tmp_path / "cal.json"
    report = calibrate(fit, out, heldout=held)
    for label in DFEW7:
        assert report["offsets"][label] == pytest.approx(EXPECTED[label], abs=0.05), label
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["schema"] == TABLE_SCHEMA and doc["offsets"] == report["offsets"]
    assert doc["labels"] == list(DFEW7) and doc["condition"] == "uniform-8"
    # calibrated probabilities are the unbiased ones
    table = TableCalibration(doc["offsets"])
    for label in DFEW7:
        cal, clean = table(probs_of(label)), probs_of(label, bias=False)
        for k in DFEW7:
            assert cal[k] == pytest.approx(clean[k], abs=0.02)


def test_heldout_report_shows_the_effect(files: tuple[Path, Path], tmp_path: Path) -> None:
    fit, held = files
    report = calibrate(fit, tmp_path / "cal.json", heldout=held)
    part = report["heldout"]
    assert part["clips"] == 7 * 8 and part["source"] == {"file": str(held)}
    before, after = part["before"], part["after"]
    # Hand-computed. Before: neutral (logit 3) beats every evidence (2) except happiness's
    # (2 + 1.5), so only happiness's own clips (6 of 8) and every neutral clip are right:
    # UAR = (0.75 + 1) / 7 = 0.25, WAR = (6 + 8) / 56 = 0.25.
    assert before["uar"] == pytest.approx(0.25) and before["war"] == pytest.approx(0.25)
    assert before["per_class"]["neutral"]["recall"] == 1.0
    assert before["per_class"]["happiness"]["recall"] == 0.75
    assert before["per_class"]["fear"]["recall"] == 0.0
    # After: every clip is predicted as its evidence, right 3 times in 4 for every class.
    assert after["uar"] == pytest.approx(0.75) and after["war"] == pytest.approx(0.75)
    assert after["macro_f1"] == pytest.approx(0.75)  # precision is 6/8 for every class too
    assert all(m["recall"] == 0.75 for m in after["per_class"].values())


def test_table_loads_through_a_real_config(files: tuple[Path, Path], tmp_path: Path) -> None:
    fit, _ = files
    table_path = tmp_path / "tables" / "cal.json"
    calibrate(fit, table_path)
    cfg_file = tmp_path / "vlm.yaml"
    cfg_file.write_text("vlm:\n  type: openai\n  url: http://127.0.0.1:9/v1\n"
                        "  calibration: table\n"
                        f"  calibration_table: {table_path}\n", encoding="utf-8")
    cfg = load_config(cfg_file)
    calibrator = asyncio.run(calibrator_for(cfg.vlm, None, DFEW7))  # type: ignore[arg-type]
    biased = probs_of("fear")
    assert max(biased, key=lambda k: biased[k]) == "neutral"  # the sink wins uncalibrated
    out = calibrator(biased)
    assert max(out, key=lambda k: out[k]) == "fear"
    assert read_table(table_path) == json.loads(table_path.read_text())["offsets"]


def test_plain_and_bad_tables(tmp_path: Path) -> None:
    plain = tmp_path / "plain.json"
    plain.write_text('{"neutral": -1.5, "fear": 0.5}', encoding="utf-8")
    assert read_table(plain) == {"neutral": -1.5, "fear": 0.5}
    for name, text in (("junk", "{"), ("str", '{"neutral": "x"}'), ("nan", '{"a": NaN}'),
                       ("schema", '{"schema": "other/9", "offsets": {"a": 1}}'),
                       ("empty", "{}")):
        bad = tmp_path / f"{name}.json"
        bad.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError, match="calibration_table") as info:
            read_table(bad)
        assert "\n" not in str(info.value)


def test_holdout_fraction_is_stratified_and_seeded(files: tuple[Path, Path],
                                                   tmp_path: Path) -> None:
    fit, _ = files
    preds = read_predictions(fit)
    a_fit, a_held = holdout_split(preds, 0.25, seed=1)
    _, b_held = holdout_split(preds, 0.25, seed=1)
    assert [p.clip for p in a_held] == [p.clip for p in b_held]
    assert not {p.clip for p in a_fit} & {p.clip for p in a_held}
    held_counts = {label: sum(p.label == label for p in a_held) for label in DFEW7}
    assert held_counts == {label: round(0.25 * n) for label, n in TRAIN.items()}
    report = calibrate(fit, tmp_path / "cal.json", holdout=0.25, seed=1)
    part = report["heldout"]
    assert part["source"] == {"fraction": 0.25, "seed": 1}
    assert part["after"]["uar"] > part["before"]["uar"] + 0.3


def test_cli_writes_table_report_and_prints(files: tuple[Path, Path], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    fit, held = files
    out = tmp_path / "cal.json"
    rc = main(["eval", "calibrate", "--predictions", str(fit), "--heldout", str(held),
               "--output", str(out)])
    assert rc == 0
    printed = capsys.readouterr()
    assert "UAR" in printed.out and "0.2500" in printed.out and "0.7500" in printed.out
    report = json.loads((tmp_path / "cal.report.json").read_text(encoding="utf-8"))
    assert report["heldout"]["after"]["uar"] == pytest.approx(0.75)
    assert read_table(out) == report["offsets"]


def test_bad_input_is_one_line_exit_2(tmp_path: Path, files: tuple[Path, Path],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    fit, _ = files
    mixed = write_jsonl(tmp_path / "mixed.jsonl", [
        *crafted(HELD, "a"), *({**x, "condition": "dense-5"} for x in crafted(HELD, "a"))])
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"clip": "x", "label": "fear"}\n', encoding="utf-8")
    cases = [
        (["--predictions", str(tmp_path / "none.jsonl")], "cannot read predictions"),
        (["--predictions", str(mixed)], "several conditions"),
        (["--predictions", str(mixed), "--condition", "nope"], "no predictions for condition"),
        (["--predictions", str(broken)], "broken.jsonl:1"),
        (["--predictions", str(fit), "--holdout", "1.5"], "fraction"),
        (["--predictions", str(fit), "--heldout", str(fit)], "in both files"),
    ]
    for extra, message in cases:
        rc = main(["eval", "calibrate", *extra, "--output", str(tmp_path / "o.json")])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and message in err and "\n" not in err, (extra, err)


def test_class_metrics_by_hand() -> None:
    truth = ["a", "a", "a", "b", "c"]
    pred = ["a", "b", "b", "b", "a"]
    m = class_metrics(truth, pred, ("a", "b", "c", "d"))
    # recalls a 1/3, b 1, c 0 (d absent: not averaged); precisions a 1/2, b 1/3
    assert m["uar"] == pytest.approx((1 / 3 + 1 + 0) / 3)
    assert m["war"] == pytest.approx(2 / 5)
    f1a, f1b = 2 * (1 / 2 * 1 / 3) / (1 / 2 + 1 / 3), 2 * (1 / 3) / (1 / 3 + 1)
    assert m["macro_f1"] == pytest.approx((f1a + f1b + 0) / 3)
    assert m["per_class"]["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert np.isclose(m["per_class"]["b"]["precision"], 1 / 3)
