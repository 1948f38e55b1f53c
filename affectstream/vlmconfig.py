"""The ``vlm`` section (see :mod:`affectstream.config`): a tagged union on ``vlm.type``.

``none`` has only what every emotion estimator reads (labels and update timing); ``openai`` and
``transformers`` share the VLM settings of :class:`VlmModelConfig` and add their own. A mapping
without ``type`` is ``none``, as in files written before the union.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self, TypeAlias

from pydantic import BaseModel, ConfigDict, Discriminator, Field, SecretStr, Tag, model_validator

from affectstream.configbase import Section, type_tag


class VlmContextConfig(Section):
    motion_text: Literal["detectors", "vlm", "both"] = Field("detectors", description="Motion text between keyframes: 'detectors' writes the per-frame detectors' log lines; 'vlm' has a VLM caption the periodic frames between consecutive keyframes instead (the paper's stage 1; one extra VLM call per gap); 'both' puts the caption first and the detector lines after it. Needs vlm.type openai or transformers.")
    caption_frames: int = Field(4, ge=1, le=8, description="At most this many in-between frames are captioned per gap between consecutive keyframes.")
    caption_fps: float = Field(5.0, gt=0, le=30, description="In-between frames are sampled at most this densely; with motion_text vlm or both, keyframes.periodic_fps is raised to at least this rate.")
    caption_max_tokens: int = Field(48, ge=8, le=512, description="Maximum tokens of one caption.")
    captioner: Literal["same", "openai", "transformers"] = Field("same", description="Which model captions: 'same' is the main VLM backend; 'openai' or 'transformers' a separate (smaller) one from captioner_model and captioner_url, with vlm's timeouts, retries and max_tokens, and the main VLM's api_key and temperature (openai) or device and dtype (transformers) when it is of the same type.")
    captioner_model: str | None = Field(None, description="Separate captioner: model id or directory (transformers, required) or served model name (openai; default: the server's first model).")
    captioner_url: str | None = Field(None, description="Separate openai captioner: its server's base URL ending in /v1 (default: vlm.url).")


class EstimatorConfig(Section):
    """What every emotion estimator reads, with or without a VLM (FACS rules, specialist)."""

    labels: Literal["dfew7", "mafw11"] = Field("dfew7", description="Label set: DFEW's seven (happiness, sadness, neutral, anger, surprise, disgust, fear) or MAFW's eleven (adds contempt, anxiety, helplessness, disappointment).")
    period_s: float = Field(2.0, gt=0, description="Seconds of stream time between emotion updates per face.")
    min_interval_s: float = Field(0.5, gt=0, description="After a burst an update comes early, but at least this long after the previous one.")


class NoVlmConfig(EstimatorConfig):
    type: Literal["none"] = Field("none", description="VLM backend: 'none' gives emotion updates from FACS prototype rules over the blendshape action units (source: facs), or from the specialist when it is enabled; 'openai' and 'transformers' have settings of their own.")


class VlmModelConfig(EstimatorConfig):
    """Settings of both real VLM backends (``type: openai`` and ``type: transformers``)."""

    model: str | None = Field(None, description="Served model name with openai (default: the server's first model); hub id or local model directory with transformers (required).")
    decode: Literal["generate", "score"] = Field("generate", description="'generate' asks for the JSON answer; 'score' reads each label's log-likelihood (exact with transformers, logprobs with a server).")
    keyframes: int = Field(4, ge=1, le=8, description="Keyframes per request: burst apexes first, the rest evenly spaced, the newest always.")
    max_side: int = Field(448, ge=64, le=1344, description="Keyframes are resized so their longest side is at most this many pixels.")
    max_in_flight: int = Field(1, ge=1, le=64, description="Requests in flight at once; a newer request for a track replaces its queued one.")
    timeout_s: float = Field(30.0, gt=0, description="Timeout of one VLM request.")
    max_retries: int = Field(2, ge=0, le=10, description="Retries of a failed server request (connection errors, 5xx, 429) with backoff.")
    max_tokens: int = Field(256, ge=16, description="Maximum tokens of a generated answer.")
    calibration: Literal["none", "contextual", "table"] = Field("none", description="Against head-class bias: 'contextual' divides by the label distribution the model gives to content-free input (computed at start-up); 'table' applies per-class log-probability offsets from calibration_table.")
    calibration_table: Path | None = Field(None, description="JSON file of per-label log-probability offsets for calibration: table, as affectstream eval calibrate writes it (or a plain object {label: offset}); required with it, read at start-up.")
    smoothing_tau_s: float = Field(0.0, ge=0, description="Time constant of the emotion smoothing across updates (0: none).")
    context: VlmContextConfig = Field(default_factory=VlmContextConfig, description="What goes between the keyframes of a request: detector log lines, VLM captions of the in-between frames, or both.")

    def server_url(self) -> str | None:
        """The OpenAI-compatible server this VLM uses (None: it runs in-process)."""
        return None

    @model_validator(mode="after")
    def _check_vlm_rules(self) -> Self:
        if self.calibration == "table" and self.calibration_table is None:
            raise ValueError("vlm.calibration: table needs vlm.calibration_table (a JSON file "
                             "of label offsets, fitted with affectstream eval calibrate); set it or choose another vlm.calibration")
        ctx = self.context
        if ctx.captioner == "same" and (ctx.captioner_model or ctx.captioner_url):
            raise ValueError("vlm.context.captioner_model and captioner_url only apply to a "
                             "separate captioner; set vlm.context.captioner: openai or "
                             "transformers, or remove them")
        if ctx.captioner == "openai" and not (ctx.captioner_url or self.server_url()):
            raise ValueError("vlm.context.captioner: openai needs the captioner server's URL; "
                             "set vlm.context.captioner_url (http://HOST:PORT/v1)")
        if ctx.captioner == "transformers" and not ctx.captioner_model:
            raise ValueError("vlm.context.captioner: transformers needs "
                             "vlm.context.captioner_model (a hub id or local directory of a "
                             "small VLM); set it")
        return self


class OpenAIVlmConfig(VlmModelConfig):
    # A mapping without `type` is `none`, so `type` is always written for this member; saying
    # so in the schema keeps its oneOf unambiguous for editors that validate against it.
    model_config = ConfigDict(json_schema_extra={"required": ["type", "url"]})

    type: Literal["openai"] = Field("openai", description="An OpenAI-compatible chat-completions server (vLLM, SGLang, Ollama).")
    url: str = Field(min_length=1, description="Base URL of the OpenAI-compatible server ending in /v1, e.g. http://127.0.0.1:8000/v1 from `vllm serve MODEL` (required).")
    api_key: SecretStr | None = Field(None, description="API key for the server (default: $OPENAI_API_KEY); use ${ENV_VAR} substitution.")
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature (0: greedy).")

    def server_url(self) -> str | None:
        return self.url


class TransformersVlmConfig(VlmModelConfig):
    model_config = ConfigDict(json_schema_extra={"required": ["type", "model"]})

    type: Literal["transformers"] = Field("transformers", description="A VLM run in-process with transformers (pip install 'affectstream[vlm]').")
    model: str = Field(min_length=1, description="Hub id or local model directory, e.g. Qwen/Qwen2.5-VL-3B-Instruct (required).")
    device: str | None = Field(None, description="torch device (default: cuda when available, else cpu).")
    dtype: str | None = Field(None, description="torch dtype (default: bfloat16 on CUDA, float32 on CPU).")


VLM_TYPES: dict[str, type[BaseModel]] = {
    "none": NoVlmConfig, "openai": OpenAIVlmConfig, "transformers": TransformersVlmConfig}
VlmConfig: TypeAlias = Annotated[
    Annotated[NoVlmConfig, Tag("none")] | Annotated[OpenAIVlmConfig, Tag("openai")]
    | Annotated[TransformersVlmConfig, Tag("transformers")],
    Discriminator(type_tag("none"))]
"""The ``vlm`` section: one member per ``vlm.type``, each with only its own settings."""
