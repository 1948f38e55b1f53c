"""Describer: FACS-style burst lines, micro/macro boundary, side merging, blink detection, and
slow-change lines from blendshape streams."""

from __future__ import annotations

import re

import numpy as np
import pytest

from affectstream.config import LogConfig
from affectstream.detectors import facs
from affectstream.detectors.describer import (
    SlowChangeDescriber,
    burst_action_units,
    describe_burst,
    is_eye_movement,
    region_phrases,
)
from affectstream.detectors.samples import RawBurst, Sample
from affectstream.types import Burst, LogLine

CROP = 128
_IMG = np.zeros((8, 8), np.uint8)


def sample(index: int, pts_s: float, blend: dict[str, float] | None = None) -> Sample:
    return Sample(index, pts_s, _IMG, _IMG, blend or {})


def raw_burst(onset_s: float, offset_s: float, regions: tuple[str, ...],
              vectors: dict[str, tuple[float, float]], *, fps: float = 30.0,
              ref_blend: dict[str, float] | None = None,
              apex_blend: dict[str, float] | None = None) -> RawBurst:
    on, off = round(onset_s * fps), round(offset_s * fps)
    apex_s = (onset_s + offset_s) / 2
    return RawBurst(
        onset=sample(on, onset_s), apex=sample((on + off) // 2, apex_s, apex_blend),
        offset=sample(off, offset_s), reference=sample(on - 3, onset_s - 0.1, ref_blend),
        regions=regions, apex_vectors=vectors, peak_motion=1.234567)


def describe(raw: RawBurst, micro_max_s: float = 0.5) -> Burst:
    return describe_burst(raw, burst_id="cam0-run-t1-f373", camera="cam0", track_id=1,
                          ts=1000.0, crop_size=CROP, micro_max_s=micro_max_s)


TIMES = re.compile(r"^(\d+\.\d\d)–(\d+\.\d\d) s, (\d+\.\d\d) s (micro|macro): \S")


def test_design_example_line() -> None:
    raw = raw_burst(12.43, 12.70, ("mouth_corner_L",), {"mouth_corner_L": (2.0, -3.0)})
    burst = describe(raw)
    assert burst.text == ("12.43–12.70 s, 0.27 s micro: left lip corner pulled up and back "
                          "(AU12 moderate), eyes not involved")
    assert burst.kind == "micro"
    assert (burst.onset_s, burst.offset_s, burst.apex_s) == (12.43, 12.70, raw.apex.pts_s)
    assert (burst.onset_frame, burst.apex_frame, burst.offset_frame) == \
        (raw.onset.index, raw.apex.index, raw.offset.index)
    assert burst.duration_s == pytest.approx(0.27)
    assert [(u.au, u.side) for u in burst.action_units] == [(12, "L")]
    assert burst.regions == ("mouth_corner_L",)
    assert burst.peak_motion == 1.235
    assert (burst.id, burst.camera, burst.track_id, burst.ts) == \
        ("cam0-run-t1-f373", "cam0", 1, 1000.0)


@pytest.mark.parametrize(("onset", "offset", "kind"), [
    (1.0, 1.5, "micro"),            # exactly micro_max_s is micro
    (10.0, 10.5, "micro"),
    (1.0, 1.5 + 1 / 30, "macro"),   # one frame longer is macro
    (2.0, 2.1, "micro"),
    (3.0, 5.0, "macro"),
])
def test_kind_boundary_and_time_format(onset: float, offset: float, kind: str) -> None:
    burst = describe(raw_burst(onset, offset, ("chin",), {"chin": (0.0, 2.0)}))
    assert burst.kind == kind
    m = TIMES.match(burst.text)
    assert m is not None, burst.text
    assert m.groups() == (f"{onset:.2f}", f"{offset:.2f}", f"{offset - onset:.2f}", kind)


def test_kind_boundary_follows_config() -> None:
    raw = raw_burst(1.0, 1.4, ("chin",), {"chin": (0.0, 2.0)})
    assert describe(raw, micro_max_s=0.5).kind == "micro"
    assert describe(raw, micro_max_s=0.3).kind == "macro"


def test_eyes_not_involved_rule() -> None:
    mouth = {"mouth_corner_L": (2.0, -3.0), "mouth_corner_R": (-2.0, -3.0)}
    assert describe(raw_burst(1, 1.3, ("mouth_corner_L",), mouth)).text.endswith(
        ", eyes not involved")
    # An eye-area region moved too → no claim about the eyes.
    with_lid = raw_burst(1, 1.3, ("mouth_corner_L", "lower_lid_L"),
                         {**mouth, "lower_lid_L": (0.0, -1.0)})
    assert "eyes not involved" not in describe(with_lid).text
    # Cheek raiser (AU6) from blendshapes means the eyes are involved (Duchenne smile).
    duchenne = raw_burst(1, 1.3, ("mouth_corner_L",), mouth,
                         ref_blend={"cheekSquintLeft": 0.0, "cheekSquintRight": 0.0},
                         apex_blend={"cheekSquintLeft": 0.4, "cheekSquintRight": 0.35})
    burst = describe(duchenne)
    assert 6 in [u.au for u in burst.action_units]
    assert "eyes not involved" not in burst.text
    # Brows only: no mouth region, nothing said about the eyes either way.
    brow = raw_burst(1, 1.3, ("inner_brow_L",), {"inner_brow_L": (0.0, -2.0)})
    assert "eyes not involved" not in describe(brow).text


def test_left_right_merge_to_both() -> None:
    agree = {"mouth_corner_L": (2.0, -3.0), "mouth_corner_R": (-2.0, -3.0)}
    assert region_phrases(("mouth_corner_L", "mouth_corner_R"), agree) == \
        ["both lip corners pulled up and back"]
    disagree = {"mouth_corner_L": (2.0, -3.0), "mouth_corner_R": (0.0, 3.0)}
    assert region_phrases(("mouth_corner_L", "mouth_corner_R"), disagree) == \
        ["left lip corner pulled up and back", "right lip corner pulled down"]
    brows = {"inner_brow_L": (0.0, -1.0), "inner_brow_R": (0.1, -1.2)}
    burst = describe(raw_burst(4.0, 4.4, ("inner_brow_R", "inner_brow_L"), brows))
    assert "both inner brows raised" in burst.text
    assert [(u.au, u.side) for u in burst.action_units] == [(1, "R")]
    assert region_phrases(("upper_lip",), {"upper_lip": (0.0, -1.0)}) == ["upper lip raised"]


def test_blendshape_aus_come_first_and_blink_is_not_an_au() -> None:
    raw = raw_burst(2.0, 2.3, ("mouth_corner_R",), {"mouth_corner_R": (-0.5, -1.0)},
                    ref_blend={"mouthSmileLeft": 0.05, "mouthSmileRight": 0.05,
                               "eyeBlinkLeft": 0.0, "eyeBlinkRight": 0.0},
                    apex_blend={"mouthSmileLeft": 0.1, "mouthSmileRight": 0.75,
                                "eyeBlinkLeft": 0.9, "eyeBlinkRight": 0.9})
    units = burst_action_units(raw, CROP)
    assert [(u.au, u.side) for u in units] == [(12, "R")]
    assert units[0].intensity == pytest.approx(0.7)
    assert "(AU12 strong)" in describe(raw).text


def test_fallback_phrase() -> None:
    nothing = describe(raw_burst(1.0, 1.2, (), {}))
    assert nothing.text == "1.00–1.20 s, 0.20 s micro: facial movement"


def test_is_eye_movement() -> None:
    lids = ("lower_lid_L", "lower_lid_R")
    vec = {"lower_lid_L": (0.0, -1.0), "lower_lid_R": (0.0, -1.0),
           "mouth_corner_L": (1.0, -1.0)}
    closed = {"eyeBlinkLeft": 0.7, "eyeBlinkRight": 0.65}
    opened = {"eyeBlinkLeft": 0.05, "eyeBlinkRight": 0.05}
    assert is_eye_movement(raw_burst(1, 1.2, lids, vec, ref_blend=opened, apex_blend=closed))
    # Eye regions but the lids barely closed: a real lid action, not a blink.
    assert not is_eye_movement(raw_burst(1, 1.2, lids, vec, ref_blend=opened,
                                  apex_blend={"eyeBlinkLeft": 0.2, "eyeBlinkRight": 0.2}))
    # The mouth moved too: not only a blink.
    assert not is_eye_movement(raw_burst(1, 1.2, (*lids, "mouth_corner_L"), vec, ref_blend=opened,
                                  apex_blend=closed))


# -- slow changes ---------------------------------------------------------------------------

def _smile(level: float, left_only: bool = False) -> dict[str, float]:
    blend = {"mouthSmileLeft": level, "mouthSmileRight": 0.02 if left_only else level,
             "jawOpen": 0.05, "browInnerUp": 0.05, "eyeBlinkLeft": 0.02, "eyeBlinkRight": 0.02}
    return blend


def _drive(describer: SlowChangeDescriber, start_s: float, seconds: float,
           blend: dict[str, float], fps: float = 30.0) -> list[tuple[float, LogLine]]:
    out = []
    for i in range(round(seconds * fps)):
        t = start_s + i / fps
        out += [(t, line) for line in describer.update(t, facs.action_units(blend, 0.0))]
    return out


def test_slow_change_rose_and_faded() -> None:
    d = SlowChangeDescriber(LogConfig(), "cam0", 7)
    assert _drive(d, 0.0, 3.0, _smile(0.05)) == []  # resting: nothing to say
    rose = _drive(d, 3.0, 3.0, _smile(0.8))
    assert len(rose) == 1
    t_rose, line = rose[0]
    assert 3.0 < t_rose < 3.6  # follows within the fast time constant
    assert (line.kind, line.camera, line.track_id) == ("change", "cam0", 7)
    assert line.start_s == line.end_s == t_rose
    # The word is the smoothed level when the rise is noticed (≈ resting + change_on).
    assert re.fullmatch(rf"{t_rose:.2f} s: lip corner puller \(AU12\) rose to "
                        r"(moderate|strong), both sides", line.text), line.text
    assert line.burst_id is None
    faded = _drive(d, 6.0, 3.0, _smile(0.05))
    assert len(faded) == 1
    t_fade, line = faded[0]
    assert 6.0 < t_fade < 7.0
    assert line.kind == "change" and line.start_s == t_rose and line.end_s == t_fade
    assert line.text == (f"{t_fade:.2f} s: lip corner puller (AU12) faded after "
                         f"{t_fade - t_rose:.2f} s")
    assert _drive(d, 9.0, 2.0, _smile(0.05)) == []  # quiet again


def test_slow_change_one_sided() -> None:
    d = SlowChangeDescriber(LogConfig(), "cam0", 1)
    _drive(d, 0.0, 2.0, _smile(0.05, left_only=True))
    lines = _drive(d, 2.0, 2.0, _smile(0.7, left_only=True))
    assert [line.text.split(", ")[-1] for _, line in lines] == ["left side"]


def test_slow_change_ignores_blinks() -> None:
    # Blinks are left to the spotter: a long eye closure makes no change line.
    d = SlowChangeDescriber(LogConfig(), "cam0", 1)
    _drive(d, 0.0, 2.0, _smile(0.05))
    closed = {**_smile(0.05), "eyeBlinkLeft": 0.95, "eyeBlinkRight": 0.95}
    assert _drive(d, 2.0, 2.0, closed) == []
    # …while the same rise on a non-blink AU is reported.
    brow = {**_smile(0.05), "browInnerUp": 0.9}
    lines = _drive(d, 4.0, 2.0, brow)
    assert [line.text.split(": ")[1].split(" rose")[0] for _, line in lines] == \
        ["inner brow raiser (AU1)"]


def test_slow_change_needs_a_clear_rise() -> None:
    d = SlowChangeDescriber(LogConfig(), "cam0", 1)
    _drive(d, 0.0, 2.0, _smile(0.05))
    assert _drive(d, 2.0, 2.0, _smile(0.3)) == []  # +0.25 is below change_on (0.35)
    # A resting level that is already high is the track's baseline, not a change.
    d = SlowChangeDescriber(LogConfig(), "cam0", 1)
    assert _drive(d, 0.0, 5.0, _smile(0.8)) == []
