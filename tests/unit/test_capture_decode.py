"""Packets -> evidence events, and a pcap that readers accept (no root needed:
the packets are built here, not captured)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.utils import rdpcap

from harness.capture.decode import decode_packets
from harness.capture.sniffer import PACKET_OUTGOING, Packet, _keep, write_pcap

SBX, RESOLVER, SVC = "198.18.3.100", "198.18.3.2", "198.18.3.10"


def pkt(t_ms, layers, sent=True, ifname="enr1e1"):
    return Packet(int(1e15 + t_ms * 1e6), ifname, 0x0800, PACKET_OUTGOING if sent else 0, 1,
                  b"\x02\x00\x00\x00\x00\x01", bytes(layers))


def test_dns_query_answered_servfail_and_one_unanswered():
    q1 = IP(src=SBX, dst=RESOLVER) / UDP(sport=4000, dport=53) / DNS(id=7, rd=1, qd=DNSQR(qname="svc.internal"))
    a1 = IP(src=RESOLVER, dst=SBX) / UDP(sport=53, dport=4000) / DNS(
        id=7, qr=1, rcode=2, qd=DNSQR(qname="svc.internal"))
    q2 = IP(src=SBX, dst=RESOLVER) / UDP(sport=4001, dport=53) / DNS(id=8, rd=1, qd=DNSQR(qname="svc.internal"))
    events = decode_packets([pkt(0, q1), pkt(1.5, a1, sent=False), pkt(2, q2)])
    queries = [e for e in events if e["kind"] == "dns_query"]
    assert [(q["id"], q["answered"], q.get("rcode")) for q in queries] == [(7, True, "SERVFAIL"), (8, False, None)]
    assert queries[0]["answer_ms"] == 1.5 and queries[0]["name"] == "svc.internal"
    [answer] = [e for e in events if e["kind"] == "dns_answer"]
    assert answer["rcode"] == "SERVFAIL"


def test_dns_answer_carries_its_addresses():
    a = IP(src=RESOLVER, dst=SBX) / UDP(sport=53, dport=4000) / DNS(
        id=9, qr=1, qd=DNSQR(qname="svc.internal"), an=DNSRR(rrname="svc.internal", rdata=SVC))
    [answer] = decode_packets([pkt(0, a, sent=False)])
    assert answer["answers"] == [SVC] and answer["rcode"] == "NOERROR"


def test_syn_retransmissions_data_retransmissions_and_reset():
    syn = IP(src=SBX, dst=SVC) / TCP(sport=5000, dport=8080, flags="S", seq=100)
    data = IP(src=SBX, dst=SVC) / TCP(sport=5001, dport=8080, flags="PA", seq=200) / (b"GET / HTTP/1.1\r\n\r\n")
    rst = IP(src=SVC, dst=SBX) / TCP(sport=8080, dport=5002, flags="R")
    events = decode_packets([pkt(0, syn), pkt(1000, syn), pkt(3000, syn), pkt(10, data), pkt(210, data),
                             pkt(5, rst, sent=False)])
    [first] = [e for e in events if e["kind"] == "tcp_syn"]
    assert first["retransmits"] == 2 and not first["answered"] and first["dst"] == f"{SVC}:8080"
    again = [(e["what"], e["count"]) for e in events if e["kind"] == "tcp_retransmit"]
    assert again == [("data", 1), ("SYN", 1), ("SYN", 2)]  # in time order
    [reset] = [e for e in events if e["kind"] == "tcp_rst"]
    assert reset["flow"] == f"{SVC}:8080 > {SBX}:5002" and not reset["sent"]


def test_syn_ack_marks_the_syn_answered():
    syn = IP(src=SBX, dst=SVC) / TCP(sport=5000, dport=8080, flags="S", seq=1)
    synack = IP(src=SVC, dst=SBX) / TCP(sport=8080, dport=5000, flags="SA", seq=9, ack=2)
    [syn_event] = [e for e in decode_packets([pkt(0, syn), pkt(1, synack, sent=False)]) if e["kind"] == "tcp_syn"]
    assert syn_event["answered"]


def test_port_unreachable_from_loopback_dns():
    query = IP(src="127.0.0.1", dst="127.0.0.1") / UDP(sport=4000, dport=53) / DNS(qd=DNSQR(qname="svc.internal"))
    icmp = IP(src="127.0.0.1", dst="127.0.0.1") / ICMP(type=3, code=3) / bytes(query)[:28]
    events = decode_packets([pkt(0, query, sent=False, ifname="lo"), pkt(0.1, icmp, sent=False, ifname="lo")])
    assert [e["kind"] for e in events] == ["dns_query", "icmp_unreachable"]
    assert events[1]["about"] == "127.0.0.1:53" and events[1]["reason"] == "port unreachable"


def test_loopback_keeps_only_dns_once():
    dns = bytes(IP(src="127.0.0.1", dst="127.0.0.1") / UDP(sport=4000, dport=53) / DNS())
    http = bytes(IP(src="127.0.0.1", dst="127.0.0.1") / TCP(sport=4000, dport=9001))
    assert _keep("lo", 0, 0x0800, dns)
    assert not _keep("lo", PACKET_OUTGOING, 0x0800, dns)  # lo shows each packet twice
    assert not _keep("lo", 0, 0x0800, http)  # the Runtime API's own traffic
    assert _keep("enr1e1", PACKET_OUTGOING, 0x0800, http)


def test_pcap_reads_back(tmp_path):
    syn = IP(src=SBX, dst=SVC) / TCP(sport=5000, dport=8080, flags="S")
    path = tmp_path / "capture.pcap"
    write_pcap(path, [pkt(0, syn), pkt(1, syn)])
    packets = rdpcap(str(path))
    assert len(packets) == 2 and packets[0][IP].dst == SVC
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed: the scapy read-back above is the check")
    out = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "ip.dst", "-e", "tcp.flags.syn"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == [SVC, "1", SVC, "1"] or out == [SVC, "True", SVC, "True"]
