"""FACS action units from MediaPipe blendshapes and from region motion (DESIGN §7 table)."""

from __future__ import annotations

from affectstream.types import ActionUnit, Side

# blendshape stem → (AU number, FACS name). Stems get "Left"/"Right" suffixes in MediaPipe.
BLENDSHAPE_AU: dict[str, tuple[int, str]] = {
    "browInnerUp": (1, "inner brow raiser"),
    "browOuterUp": (2, "outer brow raiser"),
    "browDown": (4, "brow lowerer"),
    "eyeWide": (5, "upper lid raiser"),
    "cheekSquint": (6, "cheek raiser"),
    "eyeSquint": (7, "lid tightener"),
    "noseSneer": (9, "nose wrinkler"),
    "mouthUpperUp": (10, "upper lip raiser"),
    "mouthSmile": (12, "lip corner puller"),
    "mouthDimple": (14, "dimpler"),
    "mouthFrown": (15, "lip corner depressor"),
    "mouthLowerDown": (16, "lower lip depressor"),
    "mouthShrugLower": (17, "chin raiser"),
    "mouthStretch": (20, "lip stretcher"),
    "mouthPress": (24, "lip pressor"),
    "jawOpen": (26, "jaw drop"),
    "eyeBlink": (45, "blink"),
}
AU_NAMES: dict[int, str] = {au: name for au, name in BLENDSHAPE_AU.values()}


def intensity_word(value: float) -> str:
    if value < 0.3:
        return "weak"
    return "moderate" if value < 0.6 else "strong"


def _sided(scores: dict[str, float], stem: str) -> tuple[float, float] | None:
    """(left, right) score of a stem; unsided stems (e.g. jawOpen) report both sides equal."""
    if stem in scores:
        return scores[stem], scores[stem]
    left, right = scores.get(stem + "Left"), scores.get(stem + "Right")
    if left is None and right is None:
        return None
    return left or 0.0, right or 0.0


def action_units(scores: dict[str, float], threshold: float) -> list[ActionUnit]:
    """AUs whose blendshape score (or score change) reaches ``threshold``, strongest first.

    Sides follow MediaPipe's naming; an AU present on both sides within a factor of two is
    reported as ``both``.
    """
    out: list[ActionUnit] = []
    for stem, (au, name) in BLENDSHAPE_AU.items():
        sided = _sided(scores, stem)
        if sided is None:
            continue
        left, right = sided
        top = max(left, right)
        if top < threshold:
            continue
        low = min(left, right)
        side: Side = "both" if low >= top / 2 else ("L" if left > right else "R")
        out.append(ActionUnit(au, name, side, min(1.0, top)))
    out.sort(key=lambda a: -a.intensity)
    return out


def blendshape_delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    """Per-blendshape increase from ``before`` to ``after`` (decreases clipped to zero)."""
    return {k: max(0.0, v - before.get(k, 0.0)) for k, v in after.items()}


# Region + direction of motion → AU, used when blendshapes barely move (small brow and
# upper-lip actions): dy < 0 is upward on the aligned crop.
def au_from_motion(region: str, dx: float, dy: float) -> tuple[int, str] | None:
    stem = region.rsplit("_", 1)[0] if region[-2:] in ("_L", "_R") else region
    up = dy < 0 and abs(dy) >= 0.5 * abs(dx)
    down = dy > 0 and abs(dy) >= 0.5 * abs(dx)
    table: dict[str, tuple[tuple[int, str] | None, tuple[int, str] | None]] = {
        "inner_brow": ((1, AU_NAMES[1]), (4, AU_NAMES[4])),
        "outer_brow": ((2, AU_NAMES[2]), (4, AU_NAMES[4])),
        "lower_lid": ((7, AU_NAMES[7]), None),
        "nose": ((9, AU_NAMES[9]), None),
        "mouth_corner": ((12, AU_NAMES[12]), (15, AU_NAMES[15])),
        "upper_lip": ((10, AU_NAMES[10]), None),
        "chin": ((17, AU_NAMES[17]), (26, AU_NAMES[26])),
    }
    up_au, down_au = table.get(stem, (None, None))
    if up:
        return up_au
    if down:
        return down_au
    if stem == "mouth_corner":
        return (20, AU_NAMES[20])  # sideways pull of the corner
    return None
