"""Soak benchmark: a looped file in real time for a while, one camera or several, sampled every
few seconds (RSS of the process, and per camera fps, capture→result lag and dropped frames from
its stats messages). Writes a CSV and a PNG plot; the figures go in docs/benchmarks.md.

    python scripts/soak.py --minutes 10 --cameras 1 --out soak-1cam
    python scripts/soak.py --minutes 10 --cameras 2 --out soak-2cam

It runs the real CLI (``python -m affectstream run``) on a generated ``cameras:`` config with a
JSONL sink, so what it measures is what a user runs.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared" / "media" / "single_face.mp4"


def rss_mb(pid: int) -> float | None:
    """Resident set size of a process (Linux /proc), None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def write_config(folder: Path, cameras: int, clip: Path, every_s: float) -> tuple[Path, Path]:
    out = folder / "run.jsonl"
    lines = [f"sinks: ['jsonl:{out}']", f"stats_interval_s: {every_s}", "cameras:"]
    lines += [f"  - {{id: cam{i}, source: {{url: '{clip}', loop: true}}}}"
              for i in range(cameras)]
    config = folder / "soak.yaml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config, out


def latest_stats(path: Path, offset: int) -> tuple[dict[str, dict[str, Any]], int]:
    """The newest stats payload per camera written since byte ``offset``, and the new offset."""
    found: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return found, offset
    with path.open("rb") as f:
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n") + 1  # a half-written last line waits for the next sample
    for raw in data[:end].splitlines():
        msg = json.loads(raw)
        if msg["topic"].endswith("/stats"):
            found[msg["payload"]["camera"]] = msg["payload"]
    return found, offset + end


def soak(minutes: float, cameras: int, folder: Path, every_s: float = 10.0,
         clip: Path = CLIP) -> list[dict[str, Any]]:
    folder.mkdir(parents=True, exist_ok=True)
    config, out = write_config(folder, cameras, clip, every_s)
    out.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "affectstream", "run", "--config",
                             str(config), "--max-seconds", str(minutes * 60)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    rows: list[dict[str, Any]] = []
    offset, start = 0, time.monotonic()
    try:
        while proc.poll() is None:
            time.sleep(every_s)  # a sampling period, not a wait for an event
            rss = rss_mb(proc.pid)
            stats, offset = latest_stats(out, offset)
            t = round(time.monotonic() - start, 1)
            for cam, st in sorted(stats.items()):
                lag = st["stages_ms"]["end_to_end"]
                rows.append({"t_s": t, "rss_mb": rss, "camera": cam, "fps": st["fps"],
                             "lag_ms_p50": lag["p50"], "lag_ms_p95": lag["p95"],
                             "frames": st["frames"], "dropped": st["dropped"]})
            print(f"{t:7.1f} s  rss {rss or 0:7.1f} MB  " + "  ".join(
                f"{c}: {s['fps']} fps, lag p95 {s['stages_ms']['end_to_end']['p95']} ms"
                for c, s in sorted(stats.items())), flush=True)
    finally:
        if proc.poll() is None:
            proc.terminate()
        _, err = proc.communicate(timeout=60)
    if proc.returncode != 0:
        raise SystemExit(f"soak run failed (exit {proc.returncode}): {err.strip()[-500:]}")
    with (folder / "soak.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, folder / "soak.png", f"soak: {cameras} camera(s), {minutes:g} min")
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, float]:
    """RSS growth after the first minute (warm-up: models, first tracks), fps and lag p95."""
    alive = [r for r in rows if r["rss_mb"] is not None]
    warm = [r for r in alive if r["t_s"] >= 60] or alive
    rss = [r["rss_mb"] for r in warm]
    lag = [r["lag_ms_p95"] for r in warm if r["lag_ms_p95"] is not None]
    half = len(lag) // 2
    return {"rss_start_mb": round(rss[0], 1), "rss_end_mb": round(rss[-1], 1),
            "rss_growth_mb": round(rss[-1] - rss[0], 1),
            "fps_median": float(np.median([r["fps"] for r in warm])),
            "lag_p95_first_half_ms": round(float(np.median(lag[:half] or lag)), 1),
            "lag_p95_second_half_ms": round(float(np.median(lag[half:] or lag)), 1)}


def plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """RSS (MB) and each camera's lag p95 (ms) against time, on one PNG."""
    w, h, pad = 900, 420, 50
    img = np.full((h, w, 3), 255, np.uint8)
    t_max = max(r["t_s"] for r in rows) or 1.0
    series = {"rss MB": [(r["t_s"], r["rss_mb"]) for r in rows if r["camera"] == rows[0]["camera"]
                         and r["rss_mb"] is not None]}
    for cam in sorted({r["camera"] for r in rows}):
        series[f"{cam} lag p95 ms"] = [(r["t_s"], r["lag_ms_p95"]) for r in rows
                                       if r["camera"] == cam and r["lag_ms_p95"] is not None]
    colours = [(200, 60, 30), (30, 120, 220), (40, 160, 60), (150, 50, 170)]
    y_max = max(v for pts in series.values() for _, v in pts) * 1.1 or 1.0
    cv2.rectangle(img, (pad, pad), (w - pad, h - pad), (0, 0, 0), 1)
    for i, (name, pts) in enumerate(series.items()):
        xy = np.array([(pad + t / t_max * (w - 2 * pad), h - pad - v / y_max * (h - 2 * pad))
                       for t, v in pts], np.int32)
        colour = colours[i % len(colours)]
        if len(xy) > 1:
            cv2.polylines(img, [xy], False, colour, 2, cv2.LINE_AA)
        cv2.putText(img, name, (pad + 10, pad + 20 + 18 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    colour, 1, cv2.LINE_AA)
    cv2.putText(img, title, (pad, pad - 15), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1,
                cv2.LINE_AA)
    cv2.putText(img, f"0 .. {t_max:.0f} s; y: 0 .. {y_max:.0f}", (pad, h - 15),
                cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    if not cv2.imwrite(str(path), img):
        raise SystemExit(f"cannot write {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--cameras", type=int, default=1)
    parser.add_argument("--every", type=float, default=10.0, help="sampling period (s)")
    parser.add_argument("--clip", type=Path, default=CLIP)
    parser.add_argument("--out", type=Path, required=True, help="folder for CSV, PNG, JSONL")
    args = parser.parse_args()
    rows = soak(args.minutes, args.cameras, args.out, args.every, args.clip)
    result = summary(rows)
    (args.out / "summary.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
