"""Capture evidence for the lifecycle network: a RST from the NAT for a flow it
forgot, and a request sent on a connection the service had closed (decoded from
packets built with scapy, then explained from a history)."""

from __future__ import annotations

from scapy.layers.inet import IP, TCP

from harness.capture.decode import decode_packets
from harness.capture.sniffer import PACKET_OUTGOING, Packet
from harness.checker.evidence import explain

ENI, SVC = "198.18.3.100", "198.18.3.10"
S = 1_000_000_000


def pkt(t_s: float, sent: bool, flags: str, payload: bytes = b"") -> Packet:
    src, dst, sport, dport = (ENI, SVC, 40000, 8080) if sent else (SVC, ENI, 8080, 40000)
    data = bytes(IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags, seq=1) / payload)
    return Packet(int(t_s * S), "e1", 0x0800, PACKET_OUTGOING if sent else 0, 1, b"", data)


def test_decoder_gives_a_received_rst_the_flows_silence_before_the_request():
    events = decode_packets([pkt(0, True, "PA", b"GET"), pkt(0.01, False, "PA", b"200"),
                             pkt(400, True, "PA", b"GET"), pkt(400.001, False, "R")])
    [rst] = [e for e in events if e["kind"] == "tcp_rst"]
    assert rst["idle_ms"] == 399990.0 and not rst["sent"]


def test_decoder_sees_a_request_after_the_services_fin():
    events = decode_packets([pkt(0, True, "PA", b"GET"), pkt(0.01, False, "PA", b"200"),
                             pkt(5, False, "FA"), pkt(6, True, "PA", b"GET"), pkt(6.001, False, "R")])
    kinds = [e["kind"] for e in events]
    assert kinds.count("tcp_fin") == 1
    [after] = [e for e in events if e["kind"] == "tcp_send_after_fin"]
    assert after["after_ms"] == 1000.0 and after["dst"] == f"{SVC}:8080"


def _history(*packets, nat=True, fault=None):
    events = [{"t_ms": 0, "kind": "initial_state", "aspects": {}, "verified": True},
              {"t_ms": 1, "kind": "capture_start"}]
    if nat:
        events.append({"t_ms": 1, "kind": "nat", "address": "198.18.3.250", "idle_timeout_s": 350,
                       "on_expired": "rst"})
    if fault:
        events.append(fault)
    events += [{"t_ms": 1000, "kind": "invoke_start", "n": 2},
               {"t_ms": 1010, "kind": "invoke_end", "n": 2, "status": "error", "error_type": "E",
                "error_message": "ConnectionResetError: [Errno 104] Connection reset by peer"},
               *packets, {"t_ms": 9000, "kind": "capture", "packets": 4}]
    return events


RST = {"t_ms": 1005, "kind": "tcp_rst", "flow": f"{SVC}:8080 > {ENI}:40000", "sent": False, "iface": "e1"}


def test_rst_after_an_idle_past_the_nat_timeout_is_the_nats():
    [line] = explain(_history({**RST, "idle_ms": 351_000.0}))
    assert "RST from the NAT for a flow it forgot" in line and "idle 351.0 s" in line


def test_rst_after_a_reap_is_the_nats():
    reap = {"t_ms": 500, "kind": "fault", "fault": "reap_idle", "verified": True, "aspects": {"nat": False}}
    [line] = explain(_history({**RST, "idle_ms": 900.0}, fault=reap))
    assert "RST from the NAT for a flow it forgot" in line and "reap_idle at 500 ms" in line


def test_a_short_idle_rst_or_no_nat_is_the_peers():
    for history in (_history({**RST, "idle_ms": 20.0}), _history({**RST, "idle_ms": 351_000.0}, nat=False)):
        [line] = explain(history)
        assert "reset (by the peer)" in line and "NAT" not in line


def test_request_on_a_closed_connection():
    after = {"t_ms": 1002, "kind": "tcp_send_after_fin", "flow": f"{ENI}:40000 > {SVC}:8080",
             "dst": f"{SVC}:8080", "after_ms": 4000.0, "bytes": 3, "iface": "e1"}
    [line] = explain(_history(after, nat=False))
    assert "request sent on a connection the service had closed" in line and "4000 ms after its FIN" in line
