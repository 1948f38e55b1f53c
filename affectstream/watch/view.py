"""What ``affectstream watch`` draws: a pure function of the client's state, so a test renders
it into rich's recording console without a terminal."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from affectstream.client.state import CameraState, State
from affectstream.schemas.models import Stats, VlmStats

SHOWN_BURSTS = 8


@dataclass(frozen=True)
class Link:
    """The connection, as the header shows it."""

    url: str
    connected: bool
    reconnects: int


def render(state: State, link: Link, now: float) -> RenderableType:
    """The whole view: a header, the cameras, the faces and the last bursts."""
    status = "[green]connected[/]" if link.connected else "[red]reconnecting[/]"
    header = Text.from_markup(f"[b]affectstream watch[/]  {link.url}  {status}"
                              f"  reconnects {link.reconnects}")
    if not state.cameras:
        return Group(header, Text("no camera heard yet: is a run or a replay publishing "
                                  "under this prefix?", style="dim"))
    return Group(header, _cameras(state, now), _faces(state), _bursts(state))


def _cameras(state: State, now: float) -> Table:
    table = Table(title="cameras", title_justify="left", expand=True)
    for name in ("camera", "status", "fps", "lag p50/p95 ms", "frames", "dropped", "faces",
                 "bursts/min", "VLM", "last message"):
        table.add_column(name, no_wrap=name != "VLM")
    for cam in sorted(state.cameras.values(), key=lambda c: c.camera):
        st = cam.stats
        table.add_row(cam.camera, _availability(cam), *_counters(st), str(len(cam.tracks)),
                      f"{st.bursts_per_min:g}" if st else "–",
                      _vlm(st.vlm) if st else "–", _age(cam, now))
    return table


def _availability(cam: CameraState) -> str:
    colour = {"online": "green", "offline": "red"}.get(cam.availability or "", "yellow")
    return f"[{colour}]{cam.availability or 'unknown'}[/]"


def _counters(st: Stats | None) -> tuple[str, str, str, str]:
    if st is None:
        return ("–", "–", "–", "–")
    lag = st.stages_ms.get("end_to_end")
    lag_text = f"{_num(lag.p50)} / {_num(lag.p95)}" if lag else "–"
    return (f"{st.fps:.1f}", lag_text, str(st.frames), str(st.dropped))


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def _vlm(vlm: VlmStats) -> str:
    """VLM health in a word, then its counters."""
    if vlm.calls == 0 and vlm.in_flight == 0:
        return "[dim]off[/]"
    bad = vlm.failures / max(vlm.calls, 1)
    word = ("[green]ok[/]" if bad < 0.1 else "[yellow]degraded[/]" if bad < 0.5
            else "[red]failing[/]")
    return (f"{word} {vlm.calls} calls, {vlm.failures} failed, {vlm.in_flight} in flight, "
            f"p95 {_num(vlm.latency_ms_p95)} ms")


def _age(cam: CameraState, now: float) -> str:
    if cam.last_message_at is None:
        return "–"
    return f"{max(now - cam.last_message_at, 0):.1f} s ago"


def _faces(state: State) -> Table:
    table = Table(title="faces", title_justify="left", expand=True)
    for name in ("camera", "face", "emotion", "confidence", "valence", "arousal", "source",
                 "model", "window s"):
        table.add_column(name, no_wrap=True)
    for cam in sorted(state.cameras.values(), key=lambda c: c.camera):
        for track_id in sorted(cam.tracks.keys() | cam.emotions.keys()):
            e = cam.emotions.get(track_id)
            if e is None:
                table.add_row(cam.camera, str(track_id), "[dim]waiting for an update[/]",
                              *["" for _ in range(6)])
                continue
            table.add_row(cam.camera, str(track_id), f"[b]{e.label}[/]", f"{e.confidence:.2f}",
                          f"{e.valence:+.2f}", f"{e.arousal:.2f}", e.source, e.model,
                          f"{e.window.start_s:.1f}–{e.window.end_s:.1f}")
    return table


def _bursts(state: State) -> Table:
    table = Table(title="last bursts", title_justify="left", expand=True)
    for name in ("camera", "face", "stream s", "kind", "text"):
        table.add_column(name, no_wrap=name != "text", overflow="fold")
    recent = sorted((b for cam in state.cameras.values() for b in cam.bursts),
                    key=lambda b: b.ts)[-SHOWN_BURSTS:]
    for b in reversed(recent):  # newest first
        kind = f"{b.kind}, speaking" if b.speaking else b.kind  # a mouth burst may be speech
        table.add_row(b.camera, str(b.track_id), f"{b.onset_s:.2f}–{b.offset_s:.2f}", kind,
                      b.text)
    return table
