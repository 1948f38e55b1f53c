"""Per-frame perception: detector → tracker → landmarks → aligned crop → motion → spotter →
describer → rolling log and keyframes (DESIGN §2, §7).

:class:`Perception` is synchronous and single-threaded on purpose: the live runner, ``spot`` and
``bench`` all drive the same object, so offline results equal live ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2

from affectstream.config import Config
from affectstream.detectors import facs
from affectstream.detectors.align import FaceAligner, scaled
from affectstream.detectors.describer import SlowChangeDescriber, describe_burst
from affectstream.detectors.face import make_detector
from affectstream.detectors.keyframes import KeyframeStore
from affectstream.detectors.landmarks import TrackLandmarker
from affectstream.detectors.motion import RegionMotion
from affectstream.detectors.samples import RawBurst, Sample
from affectstream.detectors.spotter import BurstSpotter
from affectstream.detectors.textlog import RollingLog
from affectstream.detectors.tracker import FaceTracker, Track
from affectstream.labels import LABEL_SETS
from affectstream.specialist.classifier import ExpressionClassifier, load_classifier
from affectstream.types import (
    STAGES,
    Burst,
    Detections,
    Face,
    FloatArray,
    Frame,
    FrameResult,
    Image,
    Keyframe,
    LogLine,
    TrackEvent,
    TrackEventType,
)

SampleObserver = Callable[[int, Sample, tuple[int, float]], None]
"""observer(track_id, sample, (frame index, spotter score)): every aligned sample the spotter
sees, with its latest score (which lags the sample by the spotter's look-ahead), for research
tools: the spotting benchmark runs its baseline on the same crops and plots the score."""

@dataclass(slots=True)
class TrackState:
    """Everything perception keeps per track. The VLM scheduler does not read it (it lives in
    the worker thread); it mirrors the keyframes and log lines from each FrameResult."""

    track_id: int
    landmarker: TrackLandmarker | None
    changes: SlowChangeDescriber
    log: RollingLog
    keyframes: KeyframeStore
    aligner: FaceAligner | None = None
    motion: RegionMotion | None = None
    spotter: BurstSpotter | None = None
    bursts: int = 0
    speaking_since: float | None = None
    """Stream time the face started speaking (the spotter's speaking state), None if silent."""
    frames: int = 0
    """Frames with landmarks so far (the specialist runs on every n-th)."""


class _Collector:
    """Accumulates one frame's outputs and stage timings."""

    def __init__(self) -> None:
        self.faces: list[Face] = []
        self.bursts: list[Burst] = []
        self.events: list[TrackEvent] = []
        self.lines: list[LogLine] = []
        self.keyframes: list[Keyframe] = []
        self.ms: dict[str, float] = dict.fromkeys(STAGES, 0.0)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] += (time.perf_counter() - t0) * 1000

    def result(self, frame_index: int, pts_s: float, ts: float) -> FrameResult:
        return FrameResult(frame_index, pts_s, ts, tuple(self.faces), tuple(self.bursts),
                           tuple(self.events), tuple(self.lines), tuple(self.keyframes), self.ms)


class Perception:
    def __init__(self, cfg: Config, model_paths: dict[str, Path], fps: float, run_id: str, *,
                 still_image: bool = False, observer: SampleObserver | None = None) -> None:
        self._cfg = cfg
        self._observer = observer
        self._fps = fps if fps > 0 else 30.0
        self._run_id = run_id
        self._landmarker_path = model_paths.get("face-landmarker")
        self._detector = make_detector(cfg.detector,
                                       model_paths[cfg.detector.registry_model])
        tracker_cfg = cfg.tracker
        if still_image:  # a single frame can never confirm a track over several detections
            tracker_cfg = tracker_cfg.model_copy(update={"min_hits": 1})
        self._tracker = FaceTracker(tracker_cfg)
        self.tracks: dict[int, TrackState] = {}
        self.providers = self._detector.providers
        self.bursts_total = 0
        self._last: Frame | None = None
        self.specialist: ExpressionClassifier | None = None
        if cfg.specialist.enabled:
            self.specialist = load_classifier(cfg.specialist, model_paths["specialist"],
                                              LABEL_SETS[cfg.vlm.labels])

    def detect(self, image: Image) -> Detections:
        """Face detection alone: may run in another thread, ahead of :meth:`process`."""
        return self._detector.detect(image)

    def process(self, frame: Frame, detections: Detections | None = None,
                detect_ms: float = 0.0) -> FrameResult:
        """Everything for one frame; ``detections`` (with their ``detect_ms``) when the
        detector already ran on it, e.g. in a :class:`DetectAhead` thread."""
        out = _Collector()
        if detections is None:
            with out.stage("detect"):
                dets = self._detector.detect(frame.image)
        else:
            dets = detections
            out.ms["detect"] = detect_ms
        with out.stage("track"):
            update = self._tracker.update(dets, frame.index, frame.pts_s)
        for track in update.started:
            self.tracks[track.track_id] = self._new_state(track.track_id)
            out.events.append(self._event("new", track, frame))
        ranked = sorted(update.active, key=lambda t: -(t.bbox[2] - t.bbox[0]))
        for rank, track in enumerate(ranked):
            with_landmarks = rank < self._cfg.landmarks.max_faces
            self._process_track(frame, track, self.tracks[track.track_id], with_landmarks, out)
        for track in update.ended:
            self._end_track(track, frame, out)
        self._last = frame
        return out.result(frame.index, frame.pts_s, frame.ts)

    def finish(self) -> FrameResult:
        """The stream ended (or failed): close open bursts and end every track, as of the last
        frame processed."""
        out = _Collector()
        last = self._last
        index = last.index if last else 0
        pts = last.pts_s if last else 0.0
        for track in self._tracker.finish():
            self._end_track(track, last, out)
        return out.result(index, pts, time.time())

    def close(self) -> None:
        for state in self.tracks.values():
            if state.landmarker is not None:
                state.landmarker.close()
        self.tracks.clear()

    # -- per track ----------------------------------------------------------------------------
    def _new_state(self, track_id: int) -> TrackState:
        cam, cfg = self._cfg.camera_id, self._cfg
        landmarker = None
        if cfg.landmarks.enabled and self._landmarker_path is not None:
            landmarker = TrackLandmarker(self._landmarker_path, cfg.landmarks.crop_scale)
        return TrackState(track_id, landmarker, SlowChangeDescriber(cfg.log, cam, track_id),
                          RollingLog(cam, track_id, cfg.log.token_budget),
                          KeyframeStore(cfg.keyframes, track_id))

    def _process_track(self, frame: Frame, track: Track, state: TrackState, with_landmarks: bool,
                       out: _Collector) -> None:
        face = Face(track.track_id, frame.index, frame.pts_s, track.bbox, track.score)
        if not with_landmarks or state.landmarker is None:
            out.faces.append(face)
            return
        with out.stage("landmarks"):
            lm = state.landmarker.detect(frame.image, track.bbox, frame.pts_s)
        if lm is None:
            out.faces.append(face)
            return
        units = tuple(facs.action_units(lm.blendshapes, 0.0))
        with out.stage("align"):
            crop, gray = self._aligned(state, lm.landmarks, frame.image)
        keyframe_due = state.keyframes.due(frame.pts_s)
        expression = self._classify(state, crop, keyframe_due, out)
        out.faces.append(Face(track.track_id, frame.index, frame.pts_s, track.bbox, track.score,
                              lm.landmarks, lm.blendshapes, lm.head_pose, units, expression))
        assert state.spotter is not None
        with out.stage("spot"):
            sample = Sample(frame.index, frame.pts_s, gray, crop, lm.blendshapes)
            spotted = state.spotter.update(sample)
        if self._observer is not None:
            self._observer(track.track_id, sample,
                           (state.spotter.last_signal_index, state.spotter.last_signal))
        with out.stage("describe"):
            kf = state.keyframes.offer(frame.index, frame.pts_s, crop,
                                       expression if self._cfg.specialist.to_vlm else None)
            if kf is not None:
                out.keyframes.append(kf)
            for line in state.changes.update(frame.pts_s, units):
                self._log(state, line, out)
            self._speech_line(state, frame.pts_s, state.spotter.speaking, out)
            for raw in spotted:
                self._emit_burst(state, raw, out)

    def _classify(self, state: TrackState, crop: Image, keyframe_due: bool,
                  out: _Collector) -> dict[str, float] | None:
        """The specialist's probabilities on every n-th landmarked frame and on keyframes
        (so every keyframe the VLM may see has them); None on the other frames."""
        state.frames += 1
        if self.specialist is None or not (
                keyframe_due or (state.frames - 1) % self._cfg.specialist.every_n_frames == 0):
            return None
        with out.stage("classify"):
            return self.specialist.classify([crop])[0]

    def _aligned(self, state: TrackState, landmarks: FloatArray,
                 image: Image) -> tuple[Image, Image]:
        size, kf_size = self._cfg.motion.crop_size, self._cfg.keyframes.size
        if state.aligner is None:
            state.aligner = FaceAligner(landmarks)
            state.motion = RegionMotion(state.aligner.template, size)
            state.spotter = BurstSpotter(self._cfg.spotter, state.motion, self._fps)
        m_unit = state.aligner.unit_transform(landmarks)
        crop = cv2.warpAffine(image, scaled(m_unit, kf_size), (kf_size, kf_size),
                              flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        small = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
        gray: Image = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        return crop, gray

    def _emit_burst(self, state: TrackState, raw: RawBurst, out: _Collector) -> None:
        burst_id = f"{self._cfg.camera_id}-{self._run_id}-t{state.track_id}-f{raw.onset.index}"
        burst = describe_burst(raw, burst_id=burst_id, camera=self._cfg.camera_id,
                               track_id=state.track_id, ts=time.time(),
                               crop_size=self._cfg.motion.crop_size,
                               micro_max_s=self._cfg.spotter.micro_max_s)
        state.bursts += 1
        self.bursts_total += 1
        out.bursts.append(burst)
        expression = None
        if self.specialist is not None and self._cfg.specialist.to_vlm:
            with out.stage("classify"):
                expression = self.specialist.classify([raw.apex.crop])[0]
        out.keyframes.append(state.keyframes.add_apex(raw.apex.index, raw.apex.pts_s,
                                                      raw.apex.crop, burst_id, expression))
        self._log(state, LogLine(burst.camera, burst.track_id, burst.onset_s, burst.offset_s,
                                 "burst", burst.text, burst.id), out)

    def _speech_line(self, state: TrackState, pts_s: float, speaking: bool,
                     out: _Collector) -> None:
        """A log line when the face starts or stops speaking: the VLM reads mouth bursts
        differently during speech, and the spotter judges them differently too."""
        if speaking == (state.speaking_since is not None):
            return
        cam, tid = self._cfg.camera_id, state.track_id
        if speaking:
            state.speaking_since = pts_s
            self._log(state, LogLine(cam, tid, pts_s, pts_s, "change",
                                     f"{pts_s:.2f} s: started speaking"), out)
            return
        start, state.speaking_since = state.speaking_since, None
        assert start is not None
        self._log(state, LogLine(cam, tid, start, pts_s, "change",
                                 f"{pts_s:.2f} s: stopped speaking after {pts_s - start:.2f} s"),
                  out)

    def _log(self, state: TrackState, line: LogLine, out: _Collector) -> None:
        state.log.append(line)
        out.lines.append(line)

    def _end_track(self, track: Track, frame: Frame | None, out: _Collector) -> None:
        state = self.tracks.pop(track.track_id, None)
        if state is not None:
            if state.spotter is not None:
                for raw in state.spotter.flush():
                    self._emit_burst(state, raw, out)
            if state.landmarker is not None:
                state.landmarker.close()
        out.events.append(self._event("end", track, frame))

    def _event(self, kind: TrackEventType, track: Track, frame: Frame | None) -> TrackEvent:
        index = frame.index if frame else track.last_frame
        pts = frame.pts_s if frame else track.last_s
        return TrackEvent(kind, self._cfg.camera_id, track.track_id,
                          index, pts, track.bbox, time.time(), track.first_s, track.last_s)
