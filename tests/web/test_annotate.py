"""Annotations drawn on a real frame of ``single_face.mp4``."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from affectstream.types import Image
from affectstream.web.annotate import BOX, FLASH, Overlay, ascii_text, render

EMOTION = {"label": "happiness", "source": "facs",
           "probs": {"happiness": 0.8, "neutral": 0.15, "sadness": 0.05}}
BURST = {"track_id": 1, "kind": "micro", "text": "both lip corners pulled up – briefly",
         "action_units": [{"au": 12}, {"au": 6}]}
BOX_XYXY = (220.0, 80.0, 380.0, 300.0)


def _frame(media_dir: Path) -> Image:
    capture = cv2.VideoCapture(str(media_dir / "single_face.mp4"))
    ok, image = capture.read()
    capture.release()
    assert ok
    return np.asarray(image, np.uint8)


def _decode(jpeg: bytes) -> Image:
    return np.asarray(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), np.uint8)


def _near(image: Image, colour: tuple[int, int, int], tol: int = 60) -> Image:
    return np.asarray(np.abs(image.astype(int) - colour).max(axis=2) < tol)


def test_face_box_and_emotion_are_drawn_on_a_copy(media_dir: Path) -> None:
    frame = _frame(media_dir)
    before = frame.copy()
    jpeg, scale, width, height = render(frame, Overlay(((1, BOX_XYXY),), {1: EMOTION}), 85)
    assert np.array_equal(frame, before), "the tapped frame must never be drawn on"
    assert (scale, width, height) == (1.0, 640, 360)
    image = _decode(jpeg)
    box = _near(image, BOX)
    # the box's left edge, its label above it, nothing box-coloured far from it
    assert box[100:280, 218:223].mean() > 0.5
    assert box[:, :200].sum() < 50
    # the probability bars right of the box differ from the plain frame there
    assert np.abs(image[100:150, 390:530].astype(int) - before[100:150, 390:530]).mean() > 20


def test_burst_flashes_the_face_and_the_border(media_dir: Path) -> None:
    frame = _frame(media_dir)
    plain = _decode(render(frame, Overlay(((1, BOX_XYXY),), {}), 85)[0])
    flash = _decode(render(frame, Overlay(((1, BOX_XYXY),), {}, BURST, 1.0), 85)[0])
    assert _near(flash, FLASH)[:6, :].mean() > 0.5, "no amber border"
    assert _near(flash, FLASH)[100:280, 218:224].mean() > 0.5, "the face box is not flashing"
    assert _near(plain, FLASH)[:6, :].mean() < 0.05
    # the burst's text along the bottom
    assert np.abs(flash[300:350, 10:300].astype(int) - plain[300:350, 10:300]).mean() > 10


def test_wide_frames_are_shrunk(media_dir: Path) -> None:
    wide = cv2.resize(_frame(media_dir), (1920, 1080))
    _, scale, width, height = render(wide, Overlay(((1, (660.0, 240.0, 1140.0, 900.0)),), {}),
                                     80)
    assert (width, height) == (960, 540) and scale == 0.5


def test_ascii_text_folds_what_hershey_cannot_draw() -> None:
    assert ascii_text("0.53–2.37 s — lèvres…") == "0.53-2.37 s - levres..."
