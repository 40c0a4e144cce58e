"""The RIE's log lines, in the real RIE's exact formats: written by the enirace-rie drop-in,
and read back by the harness when it runs an image's own RIE (`--rie image`).

Two streams: `(rapid)` lines on stderr, `DD Mon YYYY HH:MM:SS,mmm [LEVEL] (rapid) msg`
(logrus with the RIE's formatter; the time is local, millisecond resolution), and
START / END / REPORT on stdout. Stdlib only: the drop-in must run in any image with
a python3.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
LEVELS = ("panic", "fatal", "error", "warn", "warning", "info", "debug", "trace")
_RANK = {"panic": 0, "fatal": 1, "error": 2, "warn": 3, "warning": 3, "info": 4, "debug": 5, "trace": 6}
_LABEL = {"warn": "WARNING", "warning": "WARNING"}


def rapid_time(epoch: float | None = None) -> str:
    """Go's "02 Jan 2006 15:04:05.000" with the dot replaced by a comma (locale-free)."""
    epoch = time.time() if epoch is None else epoch
    tm = time.localtime(epoch)
    ms = int((epoch % 1) * 1000)
    clock = f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d},{ms:03d}"
    return f"{tm.tm_mday:02d} {_MONTHS[tm.tm_mon - 1]} {tm.tm_year} {clock}"


def rapid_line(level: str, message: str, epoch: float | None = None, **fields: Any) -> str:
    label = _LABEL.get(level, level.upper())
    extra = "".join(f" {k}={v}" for k, v in fields.items())
    return f"{rapid_time(epoch)} [{label}] (rapid) {message}{extra}"


def enabled(configured: str, level: str) -> bool:
    return _RANK[level] <= _RANK[configured]


def start_line(request_id: str, version: str = "$LATEST") -> str:
    return f"START RequestId: {request_id} Version: {version}"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}"


def report_line(request_id: str, duration_ms: float, memory_mb: str, init_ms: float | None = None) -> str:
    # Init Duration comes before Duration (unlike real Lambda) and the line ends in a tab.
    init = f"Init Duration: {init_ms:.2f} ms\t" if init_ms is not None else ""
    return (f"REPORT RequestId: {request_id}\t{init}Duration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {max(1, -int(-duration_ms // 1))} ms\tMemory Size: {memory_mb} MB\t"
            f"Max Memory Used: {memory_mb} MB\t")


def access_message(method: str, url: str, headers: list[tuple[str, str]]) -> str:
    """AccessLogMiddleware's `log.Debug("API request - ", r.Method, " ", r.URL,
    ", Headers:", r.Header)`: fmt.Sprint adds no spaces next to strings, and an
    http.Header prints as a Go map (canonical keys, sorted, values in brackets)."""
    merged: dict[str, list[str]] = {}
    for key, value in headers:
        canon = "-".join(part[:1].upper() + part[1:].lower() for part in key.split("-"))
        merged.setdefault(canon, []).append(value)
    shown = " ".join(f"{k}:[{' '.join(v)}]" for k, v in sorted(merged.items()))
    return f"API request - {method} {url}, Headers:map[{shown}]"


# -- reading ---------------------------------------------------------------------------

RAPID_RE = re.compile(r"^(?P<ts>\d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2},\d{3}) "
                      r"\[(?P<level>[A-Z]+)\] \(rapid\) (?P<msg>.*)$")
_INIT_START = re.compile(r"^INIT START\(type: (?P<type>[\w-]+), phase: (?P<phase>\w+)\)")
_INIT_RTDONE = re.compile(r"^INIT RTDONE\(status: (?P<status>[\w.-]+)\)")
_INIT_REPORT = re.compile(r"^INIT REPORT\(durationMs: (?P<ms>[\d.]+)\)")
_INVOKE_START = re.compile(r"^INVOKE START\(requestId: (?P<id>[^)]+)\)")
_INVOKE_RTDONE = re.compile(r"^INVOKE RTDONE\(status: (?P<status>[\w.-]+), produced bytes: (?P<bytes>\d+), "
                            r"duration: (?P<ms>[\d.]+)ms\)")
_PROCESS_EXIT = re.compile(r"^Process (?P<name>[\w-]+?)(?:\(\d+\))? exited: (?P<reason>.*)$")
_RESET = re.compile(r"^Reset initiated: (?P<reason>\w+)")
_INIT_FAILED = re.compile(r"^Init failed\b(?P<rest>.*)$")
_INVOKE_FAILED = re.compile(r"^(?:Invoke failed|Invoke DONE failed)\b(?P<rest>.*)$")
_EXEC = re.compile(r"^exec '(?P<cmd>[^']*)' \(cwd=(?P<cwd>[^,]*), handler=(?P<handler>[^)]*)\)")
_STDOUT = re.compile(r"^(?P<what>START|END|REPORT) RequestId: (?P<id>[0-9a-fA-F-]+)")


@dataclass
class RieLine:
    """One classified line of an RIE's output."""

    kind: str  # rapid | start | end | report | output
    text: str
    level: str = ""
    event: str = ""  # for rapid lines: init_start, init_done, init_report, invoke_start, ...
    fields: dict[str, Any] = field(default_factory=dict)


def classify_line(line: str) -> RieLine:
    m = RAPID_RE.match(line)
    if not m:
        s = _STDOUT.match(line)
        if s:
            return RieLine(s.group("what").lower(), line, fields={"request_id": s.group("id")})
        return RieLine("output", line)
    msg = m.group("msg")
    out = RieLine("rapid", line, level=m.group("level"), fields={"message": msg})
    for event, pattern in (("init_start", _INIT_START), ("init_done", _INIT_RTDONE),
                           ("init_report", _INIT_REPORT), ("invoke_start", _INVOKE_START),
                           ("invoke_done", _INVOKE_RTDONE), ("process_exit", _PROCESS_EXIT),
                           ("reset", _RESET), ("init_failed", _INIT_FAILED),
                           ("invoke_failed", _INVOKE_FAILED), ("exec", _EXEC)):
        hit = pattern.match(msg)
        if hit:
            out.event = event
            out.fields.update(hit.groupdict())
            break
    return out
