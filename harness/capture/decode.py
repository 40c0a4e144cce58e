"""Captured packets -> evidence events (decoded with scapy, after the trial).

dns_query        a query the sandbox sent: name, type, resolver, and whether and
                 how it was answered (rcode, after how long)
dns_answer       an answer that reached the sandbox
tcp_syn          a connection attempt (first SYN), and whether a SYN-ACK came
tcp_retransmit   a SYN or data segment sent again (count so far)
tcp_rst          a reset, either way; one the sandbox received says how long the flow
                 had been silent before the sandbox's last packet on it (idle_ms)
tcp_fin          a FIN, either way
tcp_send_after_fin data the sandbox sent on a connection after the peer's FIN
icmp_unreachable an ICMP destination-unreachable (e.g. port 53 on 127.0.0.1)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.capture.sniffer import Packet

Event = dict[str, Any]
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
ICMP_CODES = {0: "net unreachable", 1: "host unreachable", 3: "port unreachable",
              13: "administratively prohibited"}


def _dns_event(p: Packet, ip: Any, udp: Any, dns: Any) -> Event:
    from scapy.layers.dns import dnsqtypes

    q = dns.qd[0] if dns.qd else None
    name = q.qname.decode(errors="replace").rstrip(".") if q is not None else ""
    qtype = dnsqtypes.get(q.qtype, str(q.qtype)) if q is not None else ""
    return {"iface": p.ifname, "src": f"{ip.src}:{udp.sport}", "dst": f"{ip.dst}:{udp.dport}",
            "id": dns.id, "name": name, "qtype": qtype}


class _Decoder:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.queries: dict[tuple[str, int, str], Event] = {}
        self.syns: dict[tuple[str, int], Event] = {}
        self.sent_segments: dict[tuple[str, int, int], int] = {}
        # Per connection (both directions): when its last packet passed, the gap
        # before the sandbox's last packet on it, and when the peer's FIN came.
        self.last_ns: dict[frozenset[str], int] = {}
        self.sent_gap_ns: dict[frozenset[str], int] = {}
        self.peer_fin_ns: dict[frozenset[str], int] = {}
        self.after_fin_told: set[frozenset[str]] = set()

    def add(self, kind: str, p: Packet, **fields: Any) -> Event:
        event = {"kind": kind, "t_ns": p.t_ns, **fields}
        self.events.append(event)
        return event

    def dns(self, p: Packet, ip: Any, udp: Any, dns: Any) -> None:
        fields = _dns_event(p, ip, udp, dns)
        if not dns.qr:
            query = self.add("dns_query", p, sent=p.sent or p.ifname == "lo", answered=False, **fields)
            self.queries[(fields["src"], dns.id, fields["name"])] = query
            return
        rcode = RCODES.get(dns.rcode, str(dns.rcode))
        answers = [str(rr.rdata) for rr in (dns.an or []) if getattr(rr, "type", 0) == 1]
        self.add("dns_answer", p, rcode=rcode, answers=answers, **fields)
        asked = self.queries.get((fields["dst"], dns.id, fields["name"]))
        if asked is not None and not asked["answered"]:
            asked.update(answered=True, rcode=rcode, answer_ms=round((p.t_ns - asked["t_ns"]) / 1e6, 3))

    def _timing(self, p: Packet, conn: frozenset[str]) -> None:
        last = self.last_ns.get(conn)
        if p.sent and last is not None:
            self.sent_gap_ns[conn] = p.t_ns - last
        self.last_ns[conn] = p.t_ns

    def _closing(self, p: Packet, flow: str, conn: frozenset[str], flags: str, payload: int, dst: str) -> None:
        if "S" in flags and "A" not in flags:  # the port's new connection: forget the old one's
            for seen in (self.last_ns, self.sent_gap_ns, self.peer_fin_ns):
                seen.pop(conn, None)
            self.after_fin_told.discard(conn)
        if "R" in flags:
            idle = {} if p.sent or conn not in self.sent_gap_ns else {
                "idle_ms": round(self.sent_gap_ns[conn] / 1e6, 3)}
            self.add("tcp_rst", p, flow=flow, sent=p.sent, iface=p.ifname, **idle)
        if "F" in flags:
            self.add("tcp_fin", p, flow=flow, sent=p.sent, iface=p.ifname)
            if not p.sent:
                self.peer_fin_ns.setdefault(conn, p.t_ns)
        if p.sent and payload and conn in self.peer_fin_ns and conn not in self.after_fin_told:
            self.after_fin_told.add(conn)
            self.add("tcp_send_after_fin", p, flow=flow, dst=dst, bytes=payload, iface=p.ifname,
                     after_ms=round((p.t_ns - self.peer_fin_ns[conn]) / 1e6, 3))

    def tcp(self, p: Packet, ip: Any, tcp: Any) -> None:
        flags = str(tcp.flags)
        flow = f"{ip.src}:{tcp.sport} > {ip.dst}:{tcp.dport}"
        conn = frozenset((f"{ip.src}:{tcp.sport}", f"{ip.dst}:{tcp.dport}"))
        self._closing(p, flow, conn, flags, len(tcp.payload), f"{ip.dst}:{tcp.dport}")
        self._timing(p, conn)
        if "S" in flags and "A" not in flags:
            key = (flow, tcp.seq)
            if key in self.syns:
                syn = self.syns[key]
                syn["retransmits"] += 1
                self.add("tcp_retransmit", p, what="SYN", flow=flow, dst=f"{ip.dst}:{tcp.dport}",
                         count=syn["retransmits"], iface=p.ifname)
            else:
                self.syns[key] = self.add("tcp_syn", p, flow=flow, dst=f"{ip.dst}:{tcp.dport}",
                                          answered=False, retransmits=0, iface=p.ifname)
            return
        if "S" in flags and "A" in flags:
            reverse = f"{ip.dst}:{tcp.dport} > {ip.src}:{tcp.sport}"
            for (syn_flow, _), syn in self.syns.items():
                if syn_flow == reverse:
                    syn["answered"] = True
            return
        payload = len(tcp.payload)
        if p.sent and payload:
            segment = (flow, int(tcp.seq), payload)
            count = self.sent_segments.get(segment, -1) + 1
            self.sent_segments[segment] = count
            if count:
                self.add("tcp_retransmit", p, what="data", flow=flow, dst=f"{ip.dst}:{tcp.dport}",
                         bytes=payload, count=count, iface=p.ifname)

    def icmp(self, p: Packet, ip: Any, icmp: Any) -> None:
        if icmp.type != 3:
            return
        inner = icmp.payload
        dst = getattr(inner, "dst", "?")
        port = getattr(inner.payload, "dport", None) if inner is not None else None
        self.add("icmp_unreachable", p, reason=ICMP_CODES.get(icmp.code, f"code {icmp.code}"),
                 about=f"{dst}:{port}" if port else str(dst), sent=p.sent, iface=p.ifname)


def decode_packets(packets: list[Packet]) -> list[Event]:
    from scapy.layers.dns import DNS
    from scapy.layers.inet import ICMP, IP, TCP, UDP

    decoder = _Decoder()
    for p in sorted(packets, key=lambda p: p.t_ns):
        if p.proto != 0x0800:
            continue
        try:
            ip = IP(p.data)
        except Exception:
            continue  # not worth failing a trial's evidence over one odd packet
        if ICMP in ip:  # first: an ICMP error quotes the UDP/TCP header it is about
            decoder.icmp(p, ip, ip[ICMP])
        elif UDP in ip and 53 in (ip[UDP].sport, ip[UDP].dport) and DNS in ip:
            decoder.dns(p, ip, ip[UDP], ip[DNS])
        elif TCP in ip:
            decoder.tcp(p, ip, ip[TCP])
    return sorted(decoder.events, key=lambda e: e["t_ns"])
