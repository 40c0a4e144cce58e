"""Render a trial's history as a readable timeline and its verdict, with rich."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness.checker.classify import classify_event, error_text, headline
from harness.checker.verdict import ABSORBED, Verdict, shown
from harness.history import queries, schema

VERDICT_STYLE = {"healthy": "bold green", ABSORBED: "bold green", "recovered": "bold yellow", "stuck": "bold red",
                 "not_exercised": "bold magenta", "fault_not_armed": "bold magenta", "harness_error": "bold red"}
QUIET = {schema.LOG, schema.RESOLVER_QUERY, schema.SERVICE_REQUEST, schema.INVOKE_START, schema.DNS_QUERY,
         schema.DNS_ANSWER, schema.TCP_SYN, schema.SCHEDULE, schema.CAPTURE_START, schema.THAW, schema.TCP_FIN}
PACKETS = set(schema.PACKET)
PACKET_NOTABLE = PACKETS - {schema.DNS_ANSWER}
# Shorter frozen spans (init done, then the first event right away) only in --verbose.
MIN_FROZEN_MS = 10.0
# How long after a restored runtime's first /next its after-restore hooks' output may still be read.
HOOK_LOG_LAG_MS = 20.0


def _detail(detail: Any) -> str:
    if not isinstance(detail, dict):
        return str(detail or "")
    parts = []
    for key, value in detail.items():
        if isinstance(value, dict):
            value = value.get("address") or value.get("ifname") or ""
        if value not in (None, "", [], {}):
            parts.append(f"{key}={value}")
    return " ".join(parts)


def _notable(event: dict[str, Any]) -> bool:
    """Packets shown by default: the ones that went wrong."""
    if event["kind"] == schema.DNS_QUERY:
        return event.get("sent", False) and (not event.get("answered") or event.get("rcode") != "NOERROR")
    if event["kind"] == schema.TCP_SYN:
        return not event.get("answered")
    return True


def _packet(event: dict[str, Any]) -> str:
    kind = event["kind"]
    if kind == schema.DNS_QUERY:
        answer = (f"answered {event.get('rcode')} in {event.get('answer_ms', 0):.1f} ms"
                  if event.get("answered") else "no answer")
        return f"DNS {event.get('qtype')} {event.get('name')} -> {event.get('dst')} via {event.get('iface')}: {answer}"
    if kind == schema.DNS_ANSWER:
        return f"DNS answer {event.get('rcode')} {event.get('name')} {' '.join(event.get('answers', []))}"
    if kind == schema.TCP_SYN:
        return f"SYN {event.get('flow')}" + ("" if event.get("answered") else " (no SYN-ACK)")
    if kind == schema.TCP_RETRANSMIT:
        return f"{event.get('what')} retransmit #{event.get('count')} {event.get('flow')}"
    if kind == schema.TCP_RST:
        idle = event.get("idle_ms")
        return f"RST {event.get('flow')}" + (f" (flow silent {_span_ms(idle)} before)" if idle else "")
    if kind == schema.TCP_FIN:
        return f"FIN {event.get('flow')}"
    if kind == schema.TCP_SEND_AFTER_FIN:
        return f"data on a closed connection {event.get('flow')}, {_span_ms(event.get('after_ms', 0))} after its FIN"
    return f"ICMP {event.get('reason')} about {event.get('about')}"


def _error(text: str, limit: int = 140) -> str:
    """The error as the function said it when it fits; its headline otherwise."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else headline(flat)


def _short(text: str, limit: int = 110) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _span_ms(ms: float) -> str:
    return f"{ms / 1000:.1f} s" if ms >= 1000 else f"{ms:.1f} ms"


def frozen_row(span: dict[str, Any], starts: dict[int, float], verbose: bool = False) -> tuple[str, Text] | None:
    """One row per frozen span, at the freeze: how long, which runtime, how, and
    what thawed it; None for a short verified span outside --verbose."""
    who = f"runtime #{span['generation']}"
    how = ("SIGSTOP fallback, visible to the function" if span["method"] == "sigstop" else span["method"])
    if not span["verified"]:
        return "frozen", Text(f"freeze of {who} NOT verified ({how}): {span['state']} {span['detail']}".rstrip(),
                              style="bold red")
    if span["end"] is None:
        return "frozen", Text(f"{who} ({how}) until the trial ended", style="blue")
    took = span["frozen_ms"]
    if took < MIN_FROZEN_MS and not verbose and span["method"] != "sigstop":
        return None
    after = [n for n, t in starts.items() if t >= span["start"]]
    why = f"thawed for invoke {min(after)}" if span["reason"] == "invoke" and after else f"thawed ({span['reason']})"
    text = Text(f"{_span_ms(took)}  {who} ({how}), {why}", style="blue")
    text.append(f"  freeze#{span['n']}" + (f" thaw#{span['thaw_n']}" if span["thaw_n"] else ""), style="dim")
    if not span.get("thaw_verified", True):
        text.append("  thaw NOT verified", style="bold red")
    return "frozen", text


def describe(event: dict[str, Any], starts: dict[int, float]) -> tuple[str, Text] | None:
    """(label, detail) for one event, or None to leave it out of the default view."""
    kind = event["kind"]
    text: Text
    if kind == schema.TRIAL_START:
        return "trial_start", Text(f"subnet {event.get('subnet')}")
    if kind == schema.INITIAL_STATE:
        held = "verified" if event.get("verified") else "NOT as requested"
        return "initial_state", Text(f"ENI {event.get('eni')} ({held})")
    if kind == schema.SANDBOX_READY:
        return "sandbox_ready", Text(str(event.get("sandbox")))
    if kind == schema.INIT_START:
        return "init_start", Text(f"runtime #{event['generation']} ({event.get('phase')} phase) "
                                  f"{event.get('command', '')}", style="cyan")
    if kind == schema.RUNTIME_READY:
        return "runtime_ready", Text(f"runtime #{event['generation']} polled /next: init done", style="cyan")
    if kind == schema.INIT_ERROR:
        return "init_error", Text(f"runtime #{event.get('generation')} [{classify_event(event)}] "
                                  f"{_error(error_text(event))}", style="red")
    if kind == schema.RUNTIME_EXIT:
        return "runtime_exit", Text(f"runtime #{event['generation']} {event.get('reason')}"
                                    f" (during {event.get('during')})", style="dim")
    if kind in (schema.RESET, schema.TIMEOUT):
        return kind, Text(str(event.get("reason", "")), style="red")
    if kind == schema.FAULT:
        ok = event.get("verified")
        step = event.get("step", "apply")
        text = Text(f"{event['fault']}" + (f" ({step})" if step != "apply" else "") + " ",
                    style="bold magenta")
        trigger = event.get("trigger", "")
        if "..." not in trigger and ".." in trigger:
            trigger += f" drew {event.get('offset_ms', 0):g}ms"
        text.append(f"[{trigger}] timer error {event.get('error_ms', 0):+.3f} ms, "
                    f"applied in {event.get('apply_ms', 0):.1f} ms ")
        text.append("verified" if ok else f"NOT armed {event.get('error', '')}",
                    style="green" if ok else "bold red")
        what = _detail(event.get("detail"))
        if what:
            text.append(f"  {what}", style="dim")
        return "FAULT", text
    if kind == schema.FAULT_STEP_CANCELLED:
        return "FAULT", Text(f"{event['fault']} ({event.get('step')}) not run: {event.get('why')}",
                             style="dim")
    if kind in PACKET_NOTABLE and _notable(event):
        return "packet", Text(_packet(event), style="yellow")
    if kind == schema.CAPTURE:
        if event.get("error"):
            return "capture", Text(f"failed: {event['error']}", style="red")
        return "capture", Text(f"{event.get('packets')} packets -> {event.get('file')}"
                               + (f", {event['kernel_drops']} dropped" if event.get("kernel_drops") else ""),
                               style="dim")
    if kind == schema.FAULT_SKIPPED:
        return "FAULT", Text(f"{event['fault']} [{event.get('trigger')}] never fired: {event.get('why')}",
                             style="bold red")
    if kind == schema.INVOKE_END:
        n = event["n"]
        status = event["status"]
        took = event.get("duration_ms", 0)
        if status == "ok":
            text = Text(f"ok      {took:7.1f} ms", style="green")
            if event.get("reinit"):
                text.append("  (after a re-init)", style="yellow")
            return f"invoke {n}", text
        text = Text(f"{status:<7} {took:7.1f} ms  ", style="red")
        text.append(f"[{classify_event(event)}] ", style="bold red")
        text.append(_error(error_text(event)))
        return f"invoke {n}", text
    if kind in (schema.SNAPSHOT, schema.RESTORE, schema.RESTORE_ERROR):
        return _snapstart(event)
    if kind == schema.HARNESS_ERROR:
        return "HARNESS", Text(str(event.get("error")), style="bold red")
    if kind == schema.THAW and not event.get("verified"):
        return "thaw", Text(f"runtime #{event.get('generation')} NOT thawed ({event.get('method')}): "
                            f"{event.get('state')} {event.get('detail', '')}".rstrip(), style="bold red")
    return None


def _snapstart(event: dict[str, Any]) -> tuple[str, Text]:
    who = f"runtime #{event.get('generation')}"
    if event["kind"] == schema.SNAPSHOT:
        text = Text(f"{who} called restore/next: snapshot taken ({event.get('method')})", style="bold cyan")
        if not event.get("verified"):
            text.append(f"  NOT verified {event.get('detail', '')}", style="bold red")
        return "snapshot", text
    if event["kind"] == schema.RESTORE_ERROR:
        return "restore_error", Text(f"{who} ({event.get('source')}) [{classify_event(event)}] "
                                     f"{_error(error_text(event))}", style="red")
    changes = event.get("changes") or {}
    where = f"onto {event.get('address')}" + (f" (was {event['from_address']})" if event.get("from_address") else "")
    dropped = [f"{what} {changes[key]}" for key, what in (("service_dropped", "service"), ("nat_forgot", "NAT"))
               if key in changes]
    text = Text(f"{who} restored after {_span_ms(event.get('waited_ms', 0))} {where}", style="bold magenta")
    if dropped:
        text.append(f", flows dropped: {', '.join(dropped)}", style="magenta")
    if not event.get("verified"):
        text.append("  changes NOT verified", style="bold red")
    return "restore", text


def snapstart_spans(events: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """Where a SnapStart runtime's hooks run: its init up to the snapshot (the
    before-snapshot hooks last), and the restore up to the runtime's first /next
    (plus HOOK_LOG_LAG_MS: the hooks' last lines are read just after it) or its exit."""
    spans: list[tuple[float, float]] = []
    opened: tuple[str, float] | None = None
    # A failed restore's traceback may follow its restore_error: up to the runtime's exit.
    ends = {schema.SNAPSHOT: schema.INIT_START, schema.RUNTIME_READY: schema.RESTORE,
            schema.RUNTIME_EXIT: schema.RESTORE}
    for e in sorted(events, key=lambda e: e["t_ms"]):
        if e["kind"] in (schema.INIT_START, schema.RESTORE):
            opened = (e["kind"], e["t_ms"])
        elif opened is not None and ends.get(e["kind"]) == opened[0]:
            lag = HOOK_LOG_LAG_MS if e["kind"] == schema.RUNTIME_READY else 0.0
            spans.append((opened[1], e["t_ms"] + lag))
            opened = None
        elif e["kind"] == schema.INIT_ERROR and opened is not None and opened[0] == schema.INIT_START:
            spans.append((opened[1], e["t_ms"]))  # a before-snapshot hook that raised says why
            opened = None
    return spans


def render(console: Console, title: str, events: list[dict[str, Any]], verdict: Verdict,
           verbose: bool = False) -> None:
    console.print(Text(title, style="bold"))
    table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1))
    table.add_column(justify="right", style="dim", no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    starts = queries.invoke_starts(events)
    spans = {span["start"]: span for span in queries.frozen_spans(events)}
    hooks = snapstart_spans(events)

    def shown_at(event: dict[str, Any]) -> float:
        # An invocation's row sits at its start; its outcome is the row's content.
        if event["kind"] == schema.INVOKE_END:
            return starts.get(event["n"], event["t_ms"])
        return event["t_ms"]

    for event in sorted(events, key=shown_at):
        t = shown_at(event)
        if event["kind"] == schema.FREEZE:
            row = frozen_row(spans[t], starts, verbose)
            if row is not None:
                table.add_row(f"{t:9.1f} ms", *row)
            continue
        row = describe(event, starts)
        if event["kind"] == schema.RUNTIME_READY and any(lo <= t <= hi for lo, hi in hooks):
            row = ("runtime_ready", Text(f"runtime #{event['generation']} polled /next: restore done",
                                         style="cyan"))
        if event["kind"] == schema.LOG and any(lo <= t <= hi for lo, hi in hooks):
            row = ("output", Text(_short(event.get("line", ""), 160)))  # a SnapStart hook's, or its init's
        if row is None:
            if not verbose or event["kind"] not in QUIET:
                continue
            if event["kind"] in PACKETS:
                row = ("packet", Text(_packet(event), style="dim"))
            else:
                detail = event.get("line") or " ".join(f"{k}={v}" for k, v in event.items()
                                                      if k not in ("t_ms", "kind"))
                row = (event["kind"], Text(_short(detail, 160), style="dim"))
        table.add_row(f"{t:9.1f} ms", row[0], row[1])
    console.print(table)
    console.print(verdict_line(verdict))
    for line in verdict.evidence:
        console.print(Text(f"  evidence: {line}", style="yellow"))


def verdict_line(verdict: Verdict) -> Text:
    text = Text("verdict: ")
    word = shown(verdict)
    text.append(word.upper(), style=VERDICT_STYLE.get(word, "bold"))
    text.append(f"  {verdict.reason}")
    return text
