"""Each fault against a real lab: apply, verify, revert, verify again, and the
behaviour the sandbox sees, read back independently (`ip -n`, iptables-save, DNS
queries and connections made from inside the sandbox, a running process)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from dnslib import RCODE, DNSRecord

from harness.backends.process import ProcessLauncher
from harness.function.spec import LaunchSpec
from harness.lab import netns
from harness.lab.services import SERVICE_PORT
from harness.lab.topology import Lab
from harness.nemesis import catalogue
from harness.nemesis import fault as faults

pytestmark = [pytest.mark.root]


def attach(lab: Lab):
    """An ENI that is usable both ways before the test goes on."""
    eni = lab.attach_eni()
    ok, state = faults.settled(lambda: {**lab.sandbox_state(), "bridge": lab.bridge_end_up(eni)},
                               lambda st: faults.eni_usable(st) and st["bridge"])
    assert ok, state
    return eni


def ip_json(ns: str, *args: str) -> list[dict]:
    return json.loads(subprocess.run(["ip", "-n", ns, "-j", *args], capture_output=True, text=True,
                                     check=True).stdout or "[]")


def sandbox_links(lab: Lab) -> dict[str, dict]:
    return {link["ifname"]: link for link in ip_json(lab.sandbox, "link", "show") if link["ifname"] != "lo"}


def sandbox_addresses(lab: Lab) -> list[str]:
    return [a["local"] for link in ip_json(lab.sandbox, "addr", "show") if link["ifname"] != "lo"
            for a in link.get("addr_info", []) if a.get("family") == "inet"]


def default_route(lab: Lab) -> dict | None:
    return next((r for r in ip_json(lab.sandbox, "route", "show") if r["dst"] == "default"), None)


def dns_from_sandbox(lab: Lab, timeout: float = 0.5) -> str:
    """Ask the lab resolver from inside the sandbox: an rcode, or NO_ANSWER."""
    sock = netns.socket_in(lab.sandbox, socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.settimeout(timeout)
        query = DNSRecord.question("svc.internal")
        sock.sendto(query.pack(), (str(lab.subnet.resolver), 53))
        try:
            return str(RCODE[DNSRecord.parse(sock.recv(4096)).header.rcode])
        except (TimeoutError, OSError):
            return "NO_ANSWER"
    finally:
        sock.close()


def http_from_sandbox(lab: Lab, timeout: float = 3.0) -> bytes:
    sock = netns.socket_in(lab.sandbox, socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((str(lab.subnet.service), SERVICE_PORT))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: svc.internal\r\nConnection: close\r\n\r\n")
        return sock.recv(4096)
    finally:
        sock.close()


def applied(fault: faults.Fault) -> dict:
    detail = fault.apply()
    ok, state = fault.verify()
    assert ok, state
    return detail


def reverted(fault: faults.Fault) -> dict:
    detail = fault.revert()
    ok, state = fault.verify_reverted()
    assert ok, state
    return detail


# -- ENI ----------------------------------------------------------------------------------


def test_attach_eni(lab):
    assert sandbox_links(lab) == {} and default_route(lab) is None
    fault = catalogue.make("attach_eni", lab, {})
    fault.prepare()  # plans names and address, changes nothing the sandbox can see
    assert sandbox_links(lab) == {}
    detail = applied(fault)
    assert sandbox_addresses(lab) == [detail["address"]]
    assert default_route(lab)["gateway"] == str(lab.subnet.gateway)
    assert dns_from_sandbox(lab) == "NOERROR"
    assert fault.effect() == {"eni": False, "link": False} and not fault.impairs
    reverted(fault)
    assert sandbox_links(lab) == {} and default_route(lab) is None


def test_detach_eni_and_its_revert_restores_the_address(lab):
    eni = attach(lab)
    fault = catalogue.make("detach_eni", lab, {})
    applied(fault)
    assert sandbox_links(lab) == {} and fault.impairs
    with pytest.raises(OSError):  # no interface, no route: the fast failure
        http_from_sandbox(lab)
    reverted(fault)
    assert sandbox_addresses(lab) == [str(eni.address)]
    assert b"200 OK" in http_from_sandbox(lab)


def test_detach_with_no_eni_is_not_applicable(lab):
    with pytest.raises(faults.FaultNotApplicable):
        catalogue.make("detach_eni", lab, {}).apply()


@pytest.mark.parametrize("ip", ["new", "same"])
def test_swap_eni(lab, ip):
    old = attach(lab)
    fault = catalogue.make("swap_eni", lab, {"ip": ip})
    detail = applied(fault)
    links = sandbox_links(lab)
    assert old.ifname not in links and detail["to"]["ifname"] in links
    assert (sandbox_addresses(lab) == [str(old.address)]) == (ip == "same")
    assert b"200 OK" in http_from_sandbox(lab)
    assert fault.transient and not fault.impairs
    reverted(fault)
    assert sandbox_addresses(lab) == [str(old.address)]


def test_link_down_keeps_address_and_route_but_loses_carrier(lab):
    attach(lab)
    down = catalogue.make("link_down", lab, {})
    applied(down)
    [link] = sandbox_links(lab).values()
    assert "NO-CARRIER" in link["flags"] and default_route(lab) is not None
    assert dns_from_sandbox(lab, timeout=0.3) == "NO_ANSWER"
    up = catalogue.make("link_up", lab, {})
    applied(up)
    [link] = sandbox_links(lab).values()
    assert "NO-CARRIER" not in link["flags"] and "LOWER_UP" in link["flags"]
    # The neighbour entry failed while the link was down; ARP retries it within
    # its retransmit time (1 s), then the queued query goes out.
    assert dns_from_sandbox(lab, timeout=3) == "NOERROR"
    assert down.effect() == {"link": True} and up.effect() == {"link": False}
    reverted(up)  # link_up's revert takes the link down again
    assert "NO-CARRIER" in next(iter(sandbox_links(lab).values()))["flags"]


def test_flap_steps_alternate_down_and_up(lab):
    attach(lab)
    flap = catalogue.make("flap", lab, {"period": "100ms", "count": 2, "down": "40ms"})
    steps = flap.steps(None)
    assert [(s.at_ms, s.action) for s in steps] == [(0, "apply"), (40, "revert"), (100, "apply"), (140, "revert")]
    for step in steps:
        (applied if step.action == "apply" else reverted)(flap)
        carrier = "NO-CARRIER" not in next(iter(sandbox_links(lab).values()))["flags"]
        assert carrier == (step.action == "revert")


# -- traffic ----------------------------------------------------------------------------


def vpc_rules(lab: Lab, table: str) -> str:
    return subprocess.run(["ip", "netns", "exec", lab.vpc, "iptables-save", "-t", table],
                          capture_output=True, text=True, check=True).stdout


def test_blackhole_drops_silently_and_reverts(lab):
    attach(lab)
    assert dns_from_sandbox(lab) == "NOERROR"
    fault = catalogue.make("blackhole", lab, {})
    applied(fault)
    assert f"-A PREROUTING -i {lab.bridge} -j DROP" in vpc_rules(lab, "raw")
    assert dns_from_sandbox(lab, timeout=0.3) == "NO_ANSWER"
    with pytest.raises((TimeoutError, socket.timeout)):  # silence, not a refusal
        http_from_sandbox(lab, timeout=0.5)
    reverted(fault)
    assert "DROP" not in vpc_rules(lab, "raw")
    assert dns_from_sandbox(lab) == "NOERROR"


def test_netem_holds_packets_in_its_queue_and_reverts(lab):
    attach(lab)
    fault = catalogue.make("netem", lab, {"delay": "30ms", "jitter": "10ms"})
    applied(fault)
    assert "NFQUEUE" in vpc_rules(lab, "mangle")
    assert b"200 OK" in http_from_sandbox(lab)  # delayed, not lost
    assert fault.queue is not None and fault.queue.delayed > 0 and fault.queue.dropped == 0
    detail = reverted(fault)
    assert detail["delayed"] > 0
    assert "NFQUEUE" not in vpc_rules(lab, "mangle")
    assert dns_from_sandbox(lab) == "NOERROR"


def test_netem_full_loss_drops_everything(lab):
    attach(lab)
    fault = catalogue.make("netem", lab, {"loss": 100})
    applied(fault)
    assert dns_from_sandbox(lab, timeout=0.3) == "NO_ANSWER"
    assert fault.queue is not None and fault.queue.dropped > 0
    reverted(fault)
    assert dns_from_sandbox(lab) == "NOERROR"


def test_netem_without_effect_does_not_impair(lab):
    assert not catalogue.make("netem", lab, {}).impairs
    assert catalogue.make("netem", lab, {"loss": "1%"}).impairs


# -- resolver ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode, rcode", [("servfail", "SERVFAIL"), ("nxdomain", "NXDOMAIN"),
                                         ("drop", "NO_ANSWER")])
def test_dns_modes(lab, mode, rcode):
    attach(lab)
    fault = catalogue.make("dns", lab, {"mode": mode})
    applied(fault)
    assert dns_from_sandbox(lab, timeout=0.3) == rcode
    assert fault.impairs
    reverted(fault)
    assert dns_from_sandbox(lab) == "NOERROR"


def test_dns_slow_answers_late(lab):
    attach(lab)
    fault = catalogue.make("dns", lab, {"mode": "slow", "delay": "300ms"})
    applied(fault)
    assert dns_from_sandbox(lab, timeout=0.05) == "NO_ANSWER"  # not within a sixth of the delay ...
    assert dns_from_sandbox(lab, timeout=3) == "NOERROR"  # ... but it does come
    reverted(fault)


class Resolving:
    """A process in the sandbox (started like a runtime, with the /etc overlay)
    that resolves svc.internal every 20 ms and prints ok/fail."""

    SCRIPT = ("import socket, sys, time\n"
              "while True:\n"
              "    try:\n"
              "        print('ok', socket.gethostbyname('svc.internal'), flush=True)\n"
              "    except OSError as e:\n"
              "        print('fail', e, flush=True)\n"
              "    time.sleep(0.02)\n")

    def __init__(self, lab: Lab) -> None:
        self.lines: list[str] = []
        self._cv = threading.Condition()
        backend = ProcessLauncher(lab.sandbox, self._line, etc_prefix=lab.etc.mount_prefix())
        spec = LaunchSpec([sys.executable, "-c", self.SCRIPT], {"PATH": "/usr/bin:/bin"}, Path("/"))
        self.proc = backend.spawn(spec, 1)

    def _line(self, generation: int, line: str) -> None:
        with self._cv:
            self.lines.append(line)
            self._cv.notify_all()

    def wait_for(self, prefix: str, after: int = 0, timeout: float = 10) -> int:
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for i in range(after, len(self.lines)):
                    if self.lines[i].startswith(prefix):
                        return i
                if time.monotonic() > deadline:
                    raise AssertionError(f"no {prefix!r} line; got {self.lines[-5:]}")
                self._cv.wait(0.1)

    def stop(self) -> None:
        self.proc.kill_group()
        self.proc.wait()


@pytest.mark.parametrize("start", ["empty", "absent"])
@pytest.mark.parametrize("how", ["in_place", "rename"])
def test_resolv_conf_filled_late_reaches_a_running_process(lab, start, how):
    attach(lab)
    lab.write_resolv_conf("" if start == "empty" else None)
    proc = Resolving(lab)
    try:
        failing = proc.wait_for("fail")
        before = lab.etc.read()
        fault = catalogue.make("resolv_conf", lab, {"content": "filled", "how": how})
        applied(fault)
        after = lab.etc.read()
        if start == "empty":  # in place keeps the inode, rename makes a new one
            assert (after["inode"] == before["inode"]) == (how == "in_place")
        ok, state = fault.verify()
        assert ok and [v["pid"] for v in state["views"]] == [proc.proc.pid]
        proc.wait_for(f"ok {lab.subnet.service}", after=failing)
        assert not fault.impairs
        reverted(fault)
        assert lab.etc.read()["content"] == ("" if start == "empty" else None)
    finally:
        proc.stop()


def test_resolv_conf_emptied_in_place_breaks_lookups(lab):
    attach(lab)
    proc = Resolving(lab)
    try:
        ok_at = proc.wait_for("ok")
        fault = catalogue.make("resolv_conf", lab, {"content": "empty", "how": "in_place"})
        applied(fault)
        assert fault.impairs
        failed_at = proc.wait_for("fail", after=ok_at)
        reverted(fault)
        proc.wait_for("ok", after=failed_at)
    finally:
        proc.stop()


def test_the_sandbox_etc_is_read_only_and_the_host_etc_untouched(lab):
    host_before = Path("/etc/resolv.conf").read_text()
    proc = Resolving(lab)
    try:
        proc.wait_for("fail")  # no ENI yet
        probe = subprocess.run(["nsenter", "-t", str(proc.proc.pid), "-m", "sh", "-c",
                                "touch /etc/enirace-probe; readlink /etc/resolv.conf"],
                               capture_output=True, text=True)
        assert "Read-only file system" in probe.stderr
        assert probe.stdout.strip().endswith(f"{lab.sandbox}/resolv/resolv.conf")
    finally:
        proc.stop()
    assert Path("/etc/resolv.conf").read_text() == host_before
    assert not Path("/etc/enirace-probe").exists()
