"""Pydantic models of every published payload: the single source of truth for the messages.

``affectstream.publish.messages`` builds each payload by constructing one of these models and
dumping it, so an undocumented field cannot be published: the models forbid extra fields.
Subscribers parse with :func:`parse` and ``lenient=True``, which ignores fields they do not know
yet, because additive changes keep a schema's ``/1`` (docs/messages.md: versioning).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    ValidationInfo,
    model_validator,
)

Camera = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$",
                              description="Camera id, as in the topic ({prefix}/{camera}/…).")]
TrackId = Annotated[int, Field(ge=0, description="Face track id, stable while the face is "
                                                 "tracked; unique within a run of a camera.")]
Wall = Annotated[float, Field(ge=0, description="Wall-clock time, seconds since the Unix epoch.")]
StreamS = Annotated[float, Field(ge=0)]
Count = Annotated[int, Field(ge=0)]
Unit = Annotated[float, Field(ge=0, le=1)]
OptMs = Annotated[float | None, Field(ge=0)]


class _Strict(BaseModel):
    """Frozen, extra fields forbidden; ``parse(..., lenient=True)`` drops unknown keys instead
    (a subscriber must keep working when a newer publisher adds a field)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _drop_unknown_when_lenient(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and isinstance(info.context, dict) \
                and info.context.get("lenient"):
            known = {f.alias or name for name, f in cls.model_fields.items()} \
                | set(cls.model_fields)
            return {k: v for k, v in data.items() if k in known}
        return data


class _Payload(_Strict):
    """A top-level JSON payload that names its own schema (``schema``: ``affectstream.X/N``)."""

    SCHEMA: ClassVar[str]
    TITLE: ClassVar[str]

    @model_validator(mode="before")
    @classmethod
    def _name_schema(cls, data: Any) -> Any:
        # Set explicitly, so that dumping with exclude_unset (which drops the optional fields a
        # publisher did not fill in) still writes the schema name.
        if isinstance(data, dict) and "schema" not in data and "schema_" not in data:
            return {"schema": cls.SCHEMA, **data}
        return data


class ActionUnit(_Strict):
    """One FACS action unit taking part in a burst."""

    au: int = Field(ge=1, le=99, description="FACS action unit number (12: lip corner puller).")
    name: str = Field(min_length=1, description="Its FACS name, in English.")
    side: Literal["L", "R", "both"] = Field(description="The face's side (the person's left L, "
                                                        "right R) or both.")
    intensity: float = Field(ge=0, le=1, description="Peak intensity, 0 to 1 (from the "
                                                     "matching blendshape).")


class Burst(_Payload):
    """A facial-expression burst: one spotted movement, onset to offset."""

    SCHEMA = "affectstream.burst/1"
    TITLE = "affectstream burst"
    schema_: Literal["affectstream.burst/1"] = Field(
        "affectstream.burst/1", alias="schema", description="Payload schema and version.")
    id: str = Field(min_length=1, description="Unique burst id: {camera}-{run}-t{track}-f{onset "
                                              "frame}; deduplicate on it (delivery is "
                                              "at-least-once).")
    camera: Camera
    track_id: TrackId
    onset_s: StreamS = Field(description="Onset, seconds from the stream start.")
    apex_s: StreamS = Field(description="Apex (peak motion), seconds from the stream start.")
    offset_s: StreamS = Field(description="Offset, seconds from the stream start.")
    duration_s: StreamS = Field(description="offset_s − onset_s.")
    onset_frame: Count = Field(description="Onset frame index, 0-based.")
    apex_frame: Count = Field(description="Apex frame index, 0-based.")
    offset_frame: Count = Field(description="Offset frame index, 0-based, inclusive.")
    ts: Wall = Field(description="When the burst was detected (its offset seen), epoch s.")
    kind: Literal["micro", "macro"] = Field(description="micro if duration_s ≤ 0.5 s, else "
                                                        "macro.")
    regions: list[str] = Field(description="Face regions that moved, strongest first "
                                           "(mouth_corner_L, upper_lip, …).")
    action_units: list[ActionUnit] = Field(description="Action units involved, strongest "
                                                       "first.")
    peak_motion: float = Field(ge=0, description="Peak motion signal, relative to the region's "
                                                 "own noise (dimensionless).")
    text: str = Field(min_length=1, description="One factual FACS-style line describing it.")
    speaking: bool = Field(False, description="The face was speaking at the apex (its jaw had "
                           "kept moving for a second): a burst of the mouth, upper lip or chin "
                           "may then be speech. Absent (read as false) in recordings made "
                           "before the field existed.")


class Track(_Payload):
    """A face track started (``new``) or ended (``end``)."""

    SCHEMA = "affectstream.track/1"
    TITLE = "affectstream track event"
    schema_: Literal["affectstream.track/1"] = Field(
        "affectstream.track/1", alias="schema", description="Payload schema and version.")
    type: Literal["new", "end"] = Field(description="new: the face appeared; end: it is gone.")
    camera: Camera
    track_id: TrackId
    frame: Count = Field(description="Frame index of the event, 0-based.")
    t_s: StreamS = Field(description="Stream time of the event, seconds from the stream start.")
    bbox: tuple[float, float, float, float] = Field(
        description="Face box [x1, y1, x2, y2] in pixels of the frame (last seen for end).")
    first_s: StreamS = Field(description="Stream time the track was first seen.")
    last_s: StreamS = Field(description="Stream time the track was last seen.")
    ts: Wall = Field(description="When the event was published, epoch s.")


class LogLine(_Payload):
    """One line of a face's rolling text log (what the VLM reads)."""

    SCHEMA = "affectstream.log/1"
    TITLE = "affectstream log line"
    schema_: Literal["affectstream.log/1"] = Field(
        "affectstream.log/1", alias="schema", description="Payload schema and version.")
    camera: Camera
    track_id: TrackId
    ts: Wall = Field(description="When the line was added, epoch s.")
    start_s: StreamS = Field(description="Stream time the line starts covering.")
    end_s: StreamS = Field(description="Stream time the line stops covering.")
    kind: Literal["burst", "change", "summary"] = Field(
        description="burst: a burst's text; change: a slow change of an action unit; summary: "
                    "older lines folded into one.")
    text: str = Field(min_length=1, description="The line.")
    burst_id: str | None = Field(description="The burst's id for kind burst, else null.")


class EmotionWindow(_Strict):
    """The stream time an emotion update covers."""

    start_s: StreamS = Field(description="Window start, seconds from the stream start.")
    end_s: StreamS = Field(description="Window end, seconds from the stream start.")


class Emotion(_Payload):
    """An emotion update for one face (retained: the face's current emotion)."""

    SCHEMA = "affectstream.emotion/1"
    TITLE = "affectstream emotion update"
    schema_: Literal["affectstream.emotion/1"] = Field(
        "affectstream.emotion/1", alias="schema", description="Payload schema and version.")
    camera: Camera
    track_id: TrackId
    ts: Wall = Field(description="When the update was made, epoch s.")
    window: EmotionWindow = Field(description="The stream time the update covers.")
    label: str = Field(min_length=1, description="The most likely emotion (a key of probs).")
    probs: dict[str, Unit] = Field(description="Probability of each label (DFEW's seven, or "
                                               "MAFW's eleven); they sum to 1.")
    valence: float = Field(ge=-1, le=1, description="Valence, −1 (negative) to 1 (positive).")
    arousal: Unit = Field(description="Arousal, 0 (calm) to 1 (excited).")
    confidence: Unit = Field(description="The estimator's confidence, 0 to 1.")
    rationale: str = Field(description="Short reason given by the estimator (may be empty).")
    source: str = Field(
        pattern=r"^[a-z][a-z0-9_-]*$",
        examples=["vlm", "specialist", "facs"],
        description="Estimator: vlm (a vision-language model), specialist (ONNX classifier) or "
                    "facs (prototype rules over action units) for the built-in ones; an "
                    "estimator registered by another package gives its own name.")
    model: str = Field(min_length=1, description="Model id or rule set that made the update.")
    calibrated: bool = Field(description="Whether label-prior calibration was applied.")
    keyframes_s: list[StreamS] = Field(description="Stream times of the keyframes shown to the "
                                                   "VLM (empty for other sources).")
    bursts: list[str] = Field(description="Ids of the bursts inside the window.")
    latency_ms: float = Field(ge=0, description="Time the estimator took, ms.")
    prompt_tokens: Count = Field(description="Prompt tokens of the VLM request (0 for other "
                                             "sources).")


class Percentiles(_Strict):
    """Median and 95th percentile of a rolling window; null while it is empty."""

    p50: OptMs = Field(description="Median, ms (null: no samples yet).")
    p95: OptMs = Field(description="95th percentile, ms (null: no samples yet).")


class Primary(_Strict):
    """The primary (largest) face's latest emotion, as Home Assistant's sensors read it."""

    track_id: TrackId
    label: str = Field(min_length=1, description="Its latest emotion label.")
    valence: float = Field(ge=-1, le=1, description="Its latest valence.")


class VlmStats(_Strict):
    """The VLM scheduler's counters (zeros and nulls without a VLM)."""

    calls: Count = Field(description="VLM requests made.")
    failures: Count = Field(description="Requests that failed (error, timeout, bad output).")
    in_flight: Count = Field(description="Requests under way now.")
    latency_ms_p50: OptMs = Field(description="Median request latency, ms.")
    latency_ms_p95: OptMs = Field(description="95th percentile request latency, ms.")
    prompt_tokens_mean: float | None = Field(ge=0, description="Mean prompt tokens per request.")
    token_ratio_mean: float | None = Field(None, ge=0, description="Mean prompt tokens relative "
                                           "to dense 5-fps sampling of the same window (with a "
                                           "VLM only).")
    coalesced: Count | None = Field(None, description="Requests replaced by a newer one for the "
                                                      "same face (with a VLM only).")
    skipped: Count | None = Field(None, description="Updates skipped (with a VLM only).")
    late: Count | None = Field(None, description="Answers dropped because their face had ended "
                                                 "(with a VLM only).")
    queued: Count | None = Field(None, description="Requests waiting for a slot (with a VLM "
                                                   "only).")
    caption_calls: Count | None = Field(None, description="Caption requests (with VLM "
                                                          "captions only).")
    caption_failures: Count | None = Field(None, description="Failed caption requests (with "
                                                             "VLM captions only).")
    caption_tokens_mean: float | None = Field(None, ge=0, description="Mean caption prompt "
                                              "tokens (with VLM captions only).")
    total_token_ratio_mean: float | None = Field(None, ge=0, description="Token ratio counting "
                                                 "the captions too (with VLM captions only).")


class SinkStats(_Strict):
    """One output sink's state."""

    queued: Count = Field(description="Messages waiting to be sent.")
    dropped: Count = Field(description="Messages dropped (queue full or sink errors).")
    connected: bool = Field(description="Whether the sink can deliver now.")
    sent: Count | None = Field(None, description="Messages the broker acknowledged (MQTT only).")
    reconnects: Count | None = Field(None, description="Reconnects so far (MQTT only).")
    burst_to_broker_ms: Percentiles | None = Field(
        None, description="Burst ts to broker acknowledgement, ms (MQTT only).")


class Stats(_Payload):
    """A camera's run statistics, every stats_interval_s and once at the end (retained)."""

    SCHEMA = "affectstream.stats/1"
    TITLE = "affectstream camera stats"
    schema_: Literal["affectstream.stats/1"] = Field(
        "affectstream.stats/1", alias="schema", description="Payload schema and version.")
    camera: Camera
    ts: Wall = Field(description="When the stats were taken, epoch s.")
    uptime_s: float = Field(ge=0, description="Seconds since the camera's run started.")
    frames: Count = Field(description="Frames processed since the start.")
    dropped: Count = Field(description="Frames a live source dropped (the freshest are kept).")
    stale: Count = Field(description="Frames discarded as too old.")
    errors: Count = Field(description="Undecodable frames, failed reads and reconnect attempts "
                                      "of the source.")
    fps: float = Field(ge=0, description="Frames processed per second, recent.")
    reconnects: Count = Field(description="Source reconnects.")
    stalls: Count = Field(description="Times the source stalled (no frame in time).")
    tracks: Count = Field(description="Faces tracked now.")
    state: Literal["running", "opening"] = Field(description="running: the source is open; "
                                                             "opening: still being opened.")
    open_failures: Count = Field(description="Failed attempts to open the source.")
    bursts: Count = Field(description="Bursts published since the start.")
    bursts_per_min: float = Field(ge=0, description="Bursts in the last minute (the rate over "
                                                    "the uptime during the first minute).")
    primary: Primary | None = Field(description="The primary face's latest emotion; null "
                                                "without one.")
    stages_ms: dict[str, Percentiles] = Field(
        description="Per-stage perception latency (detect, track, landmarks, align, classify, "
                    "spot, describe, end_to_end), ms.")
    publish_ms: Percentiles = Field(description="Burst offset seen to message handed to the "
                                                "sinks, ms.")
    vlm: VlmStats = Field(description="The VLM stage's counters.")
    sinks: dict[str, SinkStats] = Field(description="Each sink by name (URLs with the password "
                                                    "redacted).")
    estimators: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Counters of emotion estimators registered by other packages, one object per "
                    "section name, as each estimator reports them (the built-in VLM's are in "
                    "vlm); empty without such estimators.")


class ProcessStats(_Payload):
    """A run of several cameras, their counters summed (``{prefix}/stats``, retained)."""

    SCHEMA = "affectstream.process_stats/1"
    TITLE = "affectstream process stats"
    schema_: Literal["affectstream.process_stats/1"] = Field(
        "affectstream.process_stats/1", alias="schema", description="Payload schema and "
                                                                    "version.")
    ts: Wall = Field(description="When the stats were taken, epoch s.")
    cameras: Count = Field(description="Cameras in the run.")
    running: Count = Field(description="Cameras whose source is open.")
    frames: Count = Field(description="Frames processed, all cameras.")
    fps: float = Field(ge=0, description="Frames per second, all cameras.")
    dropped: Count = Field(description="Frames dropped, all cameras.")
    stale: Count = Field(description="Stale frames discarded, all cameras.")
    errors: Count = Field(description="Source errors, all cameras.")
    reconnects: Count = Field(description="Source reconnects, all cameras.")
    stalls: Count = Field(description="Source stalls, all cameras.")
    open_failures: Count = Field(description="Failed opens, all cameras.")
    tracks: Count = Field(description="Faces tracked now, all cameras.")
    bursts: Count = Field(description="Bursts published, all cameras.")
    bursts_per_min: float = Field(ge=0, description="Bursts per minute, all cameras.")


class Availability(RootModel[Literal["online", "offline"]]):
    """Whether the camera is up: plain text ``online`` / ``offline`` (not JSON), retained; the
    broker publishes ``offline`` as the last will when the process dies."""

    SCHEMA: ClassVar[str] = "affectstream.availability/1"
    TITLE: ClassVar[str] = "affectstream availability"


PayloadModel = Burst | Track | LogLine | Emotion | Stats | ProcessStats

PAYLOADS: dict[str, type[PayloadModel]] = {
    m.SCHEMA: m for m in (Track, Burst, LogLine, Emotion, Stats, ProcessStats)}
"""The JSON payloads' models by schema name."""

MODELS: dict[str, type[PayloadModel] | type[Availability]] = {
    **PAYLOADS, Availability.SCHEMA: Availability}
"""Every message's model by schema name (availability's name is only used for its file)."""


def parse(data: Any, *, lenient: bool = False) -> PayloadModel:
    """The model of a JSON payload, chosen by its ``schema`` field; ``lenient`` ignores fields
    the model does not know. Raises KeyError for an unknown schema, pydantic's
    ValidationError for a payload that does not match."""
    name = data.get("schema") if isinstance(data, dict) else None
    model = PAYLOADS.get(str(name))
    if model is None:
        raise KeyError(name)
    return model.model_validate(data, context={"lenient": lenient})
