"""Log every burst of every camera on a broker to a CSV file (affectstream.client, blocking).

    python examples/burst_logger.py mqtt://127.0.0.1:1883 bursts.csv
    python examples/burst_logger.py mqtt://broker.lan/lab bursts.csv --camera door --idle-exit 60
    python examples/burst_logger.py mqtt://broker.lan bursts.csv --session lab-logger

Bursts are delivered at least once: the id column deduplicates them, also against the rows
the CSV already holds. With ``--session NAME`` the broker keeps the logger's subscription and
queues the bursts published while it is stopped, and it logs them when it starts again with
the same NAME: no burst is lost to a restart of the logger.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from affectstream.client import SyncClient
from affectstream.errors import AffectStreamError
from affectstream.schemas import Burst

COLUMNS = ("id", "camera", "track_id", "onset_s", "apex_s", "offset_s", "duration_s", "kind",
           "action_units", "regions", "peak_motion", "ts", "text")


def row(burst: Burst) -> list[object]:
    units = " ".join(f"AU{u.au}{'' if u.side == 'both' else u.side}:{u.intensity:.2f}"
                     for u in burst.action_units)
    return [burst.id, burst.camera, burst.track_id, burst.onset_s, burst.apex_s,
            burst.offset_s, burst.duration_s, burst.kind, units, " ".join(burst.regions),
            burst.peak_motion, burst.ts, burst.text]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="mqtt://[user:pass@]host[:port][/prefix]")
    parser.add_argument("csv", type=Path, help="CSV file to append to")
    parser.add_argument("--camera", action="append", default=[], help="only these cameras")
    parser.add_argument("--idle-exit", type=float, help="stop after this many quiet seconds")
    parser.add_argument("--session", help="persistent session name: bursts published while "
                        "the logger is stopped are logged when it starts again with it")
    args = parser.parse_args()
    seen = logged_ids(args.csv)
    before = len(seen)
    try:
        with SyncClient(args.url, kinds=["burst"], cameras=args.camera, retained=False,
                        session=args.session) as client, \
                args.csv.open("a", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            if f.tell() == 0:
                writer.writerow(COLUMNS)
            print(f"logging bursts from {args.url} to {args.csv}", file=sys.stderr, flush=True)
            for msg in client.messages(idle_timeout_s=args.idle_exit):
                if isinstance(msg.payload, Burst) and msg.payload.id not in seen:
                    seen.add(msg.payload.id)
                    writer.writerow(row(msg.payload))
                    f.flush()
    except AffectStreamError as exc:  # unreachable broker, bad URL: one line, exit 2
        print(f"burst_logger: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    print(f"{len(seen) - before} bursts logged", file=sys.stderr)
    return 0


def logged_ids(path: Path) -> set[str]:
    """The burst ids the CSV already holds (a redelivered burst is not logged twice)."""
    if not path.exists():
        return set()
    with path.open(newline="", encoding="utf-8") as f:
        return {r["id"] for r in csv.DictReader(f) if r.get("id")}


if __name__ == "__main__":
    sys.exit(main())
