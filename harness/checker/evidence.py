"""What the packets say about each failure: a pure function of the history.

For every failed invocation (and every failed init of the init phase) it looks
at the packet events (harness/capture/sniffer.py) inside that window and says what
happened below the error text, e.g. "invoke 2: DNS query never left the sandbox
(no interface, no route)" or "invoke 3: SYN to 198.18.3.10:8080 retransmitted 3
times, no answer". Identical explanations of consecutive failures are merged.
Without a capture in the history it says nothing.
"""

from __future__ import annotations

from collections import defaultdict

from harness.checker.classify import classify_event
from harness.checker.recovery import failed_events
from harness.checker.windows import aspects_at
from harness.history import schema
from harness.history.recorder import Event

PACKET_KINDS = set(schema.PACKET)
MAX_LINES = 8
WHY_SILENT = [("eni", "no interface, no route"), ("link", "the link has no carrier"),
              ("blackhole", "black-holed"), ("resolv_conf", "no nameserver in resolv.conf")]


def _windows(events: list[Event]) -> list[tuple[str, float, float, str]]:
    """(label, start, end, error class) of each failure."""
    starts: dict[int, float] = {e["n"]: e["t_ms"] for e in events if e["kind"] == schema.INVOKE_START}
    init_at = {e.get("generation"): e["t_ms"] for e in events
               if e["kind"] == schema.INIT_START and e.get("phase") == "init"}
    out: list[tuple[str, float, float, str]] = []
    for e in failed_events(events):
        if e["kind"] == schema.INVOKE_END:
            out.append((f"invoke {e['n']}", starts.get(e["n"], float(e["t_ms"])), float(e["t_ms"]),
                        classify_event(e)))
        else:
            out.append((f"init of runtime #{e['generation']}", init_at[e["generation"]], e["t_ms"],
                        classify_event(e)))
    return sorted(out, key=lambda w: w[1])


def _silence(events: list[Event], t_ms: float) -> str:
    impaired = aspects_at(events, t_ms)
    for aspect, why in WHY_SILENT:
        if impaired.get(aspect):
            return f" ({why})"
    swaps = [e for e in events if e["kind"] == schema.FAULT and e.get("fault") == "swap_eni" and e.get("verified")
             and e["t_ms"] <= t_ms and isinstance(e.get("detail"), dict)
             and e["detail"].get("from", {}).get("address") != e["detail"].get("to", {}).get("address")]
    if swaps:
        # The kernel cannot route a segment whose source address is gone: a pooled
        # connection's request and its retransmissions never reach the wire.
        old = swaps[-1]["detail"]["from"]["address"]
        return (f" (a connection pooled before the ENI swap at {swaps[-1]['t_ms']:.0f} ms still uses "
                f"{old}, which is gone, so nothing can leave on it)")
    restores = [e for e in events if e["kind"] == schema.RESTORE and e.get("verified")
                and e.get("from_address") and e.get("from_address") != e.get("address")]
    if restores:
        # The restore runs inside the invocation it is for: the one after t_ms counts too.
        before = [e for e in restores if e["t_ms"] <= t_ms]
        last = before[-1] if before else restores[0]
        return (f" (a connection pooled before the SnapStart snapshot still uses {last['from_address']}, "
                f"gone since the restore onto {last['address']} at {last['t_ms']:.0f} ms, so nothing can leave on it)")
    return " (nothing tried the network: a failure remembered from earlier?)"


def _nat_forgot(events: list[Event], rst: Event) -> str | None:
    """Why the lab's NAT had forgotten the flow this RST came on, or None: it was
    silent past the NAT's idle timeout, or a reap_idle/reset_flows fired while it
    was (conntrack reports whole seconds, hence the 1 s allowance)."""
    nat = next((e for e in events if e["kind"] == schema.NAT), None)
    if nat is None:
        return None
    idle_ms = rst.get("idle_ms")
    if idle_ms is not None and idle_ms >= nat["idle_timeout_s"] * 1000 - 1000:
        return f"idle {idle_ms / 1000:.1f} s, the NAT forgets after {nat['idle_timeout_s']} s"
    quiet_from = rst["t_ms"] - (idle_ms if idle_ms is not None else 1000.0)
    for e in events:
        if (e["kind"] == schema.FAULT and e.get("fault") in ("reap_idle", "reset_flows") and e.get("verified")
                and quiet_from - 1 <= e["t_ms"] <= rst["t_ms"]):
            return f"{e['fault']} at {e['t_ms']:.0f} ms"
    return None


def _explain(events: list[Event], packets: list[Event], start: float, error_class: str) -> str:
    parts: list[str] = []
    queries = [p for p in packets if p["kind"] == schema.DNS_QUERY and p.get("sent")]
    local = [q for q in queries if q["iface"] == "lo"]
    if local:
        refused = any(p["kind"] == schema.ICMP_UNREACHABLE and p.get("about", "").endswith(":53") for p in packets)
        parts.append(f"DNS query went to {local[0]['dst']} (resolv.conf has no nameserver)"
                     + (", refused" if refused else ""))
    by_target: dict[tuple[str, str], list[Event]] = defaultdict(list)
    for q in queries:
        if q["iface"] != "lo":
            by_target[(q["name"], q["dst"])].append(q)
    for (name, dst), qs in by_target.items():
        unanswered = [q for q in qs if not q.get("answered")]
        rcodes = sorted({q["rcode"] for q in qs if q.get("answered") and q.get("rcode") != "NOERROR"})
        if unanswered:
            parts.append(f"{len(unanswered)} DNS quer{'y' if len(unanswered) == 1 else 'ies'} for {name} "
                         f"to {dst} got no answer")
        if rcodes:
            parts.append(f"DNS for {name} answered {'/'.join(rcodes)}")
    syns = [p for p in packets if p["kind"] == schema.TCP_SYN]
    for syn in syns:
        if not syn.get("answered"):
            again = syn.get("retransmits", 0)
            parts.append(f"SYN to {syn['dst']} " + (f"retransmitted {again} times, no answer" if again
                                                     else "got no answer"))
    data: dict[str, int] = defaultdict(int)
    for p in packets:
        if p["kind"] == schema.TCP_RETRANSMIT and p["what"] == "data":
            data[p["dst"]] = max(data[p["dst"]], p["count"])
    for dst, count in data.items():
        parts.append(f"request to {dst} retransmitted {count} time{'s' if count > 1 else ''} without a reply")
    for after in (p for p in packets if p["kind"] == schema.TCP_SEND_AFTER_FIN):
        parts.append(f"request sent on a connection the service had closed ({after['flow']}, "
                     f"{after['after_ms']:.0f} ms after its FIN)")
    for rst in (p for p in packets if p["kind"] == schema.TCP_RST):
        forgot = None if rst.get("sent") else _nat_forgot(events, rst)
        if forgot:
            parts.append(f"RST from the NAT for a flow it forgot ({rst['flow']}: {forgot})")
        else:
            parts.append(f"connection {rst['flow']} reset ({'by the sandbox' if rst.get('sent') else 'by the peer'})")
    if parts:
        return "; ".join(dict.fromkeys(parts))
    if error_class == "dns":
        return "DNS query never left the sandbox" + _silence(events, start)
    if error_class in ("connect", "timeout"):
        return "no packet left the sandbox" + _silence(events, start)
    return "no DNS query or connection attempt in this window"


def explain(events: list[Event]) -> list[str]:
    if not any(e["kind"] == schema.CAPTURE for e in events):
        return []
    packets = sorted((e for e in events if e["kind"] in PACKET_KINDS), key=lambda e: e["t_ms"])
    merged: list[tuple[list[str], str]] = []
    for label, start, end, error_class in _windows(events):
        inside = [p for p in packets if start <= p["t_ms"] <= end]
        text = _explain(events, inside, start, error_class)
        if merged and merged[-1][1] == text:
            merged[-1][0].append(label)
        else:
            merged.append(([label], text))
    lines = [f"{_labels(labels)}: {text}" for labels, text in merged]
    if len(lines) > MAX_LINES:
        lines = lines[: MAX_LINES - 1] + [f"... and {len(lines) - MAX_LINES + 1} more"]
    return lines


def _labels(labels: list[str]) -> str:
    if len(labels) == 1:
        return labels[0]
    invokes = [label.split()[1] for label in labels if label.startswith("invoke ")]
    if len(invokes) == len(labels):
        return f"invokes {invokes[0]}-{invokes[-1]}" if len(invokes) > 2 else f"invokes {', '.join(invokes)}"
    return ", ".join(labels)
