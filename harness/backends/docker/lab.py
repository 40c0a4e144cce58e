"""The lab for the docker backend: the sandbox is a container's network namespace.

A sandbox container (network `none`, a `sleep infinity` pause process) owns the
namespace; the harness names it /run/netns/enr-<run>-<n>-sbx (a bind mount of
/proc/<pid>/ns/net, like `ip netns attach`), so the emulator, the faults and the
checks work on it exactly as on a namespace of the process backend.

Two ways to change the ENI of a running container:
- DockerLab (eni mode `netlink`): the lab's own veth moved in by netlink, the same
  code as the process backend; nothing is created on the host.
- DockerNetworkLab (eni mode `network`): `docker network connect/disconnect` on an
  internal docker network from the lab's /24; the fault itself needs no netlink and
  no root, only the Docker API. Docker necessarily creates a bridge on the host for
  that network (named enr<run>dn<n>, with the subnet's .1); the resolver and the
  service live in a vpc container on it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from harness.backends.docker import cleanup as docker_cleanup
from harness.backends.docker import engine as de
from harness.errors import ScenarioError
from harness.lab.netns import rtnl
from harness.lab.topology import Eni, Lab

LAB_LABEL = "org.enirace.lab"


@dataclass
class DockerLab(Lab):
    image: str = ""
    sandbox_container: str | None = field(default=None, init=False)
    sandbox_pid: int = field(default=0, init=False)
    eni_mode = "netlink"

    def labels(self, role: str) -> dict[str, str]:
        return de.labels(self.run.run_id, role, **{LAB_LABEL: str(self.index)})

    def _run_pause(self, name: str, role: str, network: str | None = None, ip: str | None = None
                   ) -> tuple[str, int]:
        """Start a `sleep infinity` container; (id, host pid of its process)."""
        api = de.client().api
        host_config = api.create_host_config(network_mode=network or "none", dns=[str(self.subnet.resolver)],
                                             dns_search=["."])
        networking = None
        if network:
            networking = api.create_networking_config({network: api.create_endpoint_config(ipv4_address=ip)})
        cid = docker_cleanup.create_container(self.run, image=self.image, entrypoint=["sleep", "infinity"],
                                              name=name, labels=self.labels(role), host_config=host_config,
                                              networking_config=networking, detach=True)
        api.start(cid)
        pid = int(api.inspect_container(cid)["State"]["Pid"])
        return cid, pid

    def create_sandbox(self) -> None:
        self.sandbox_container, self.sandbox_pid = self._run_pause(self.sandbox, "sandbox")
        self.own_netns(self.sandbox, self.sandbox_pid)

    def write_resolv_conf(self, text: str | None, how: str = "rename") -> dict[str, object]:
        """The sandbox's resolv.conf. Docker bind-mounts one file into the sandbox
        container and every function container sharing its network; a bind mount pins
        the inode, so the change is written through the sandbox's root in place (a
        `rename` is applied in place too, and `absent` leaves an empty file, which
        glibc treats alike: no nameserver line means 127.0.0.1, where nothing listens)."""
        host_side = super().write_resolv_conf(text, how)
        if not self.sandbox_pid:
            return host_side
        with open(f"/proc/{self.sandbox_pid}/root/etc/resolv.conf", "r+") as fh:
            if fh.read() != (text or ""):
                fh.seek(0)
                fh.truncate()
                fh.write(text or "")
        seen = self.etc.seen_by(self.sandbox_pid)
        seen["applied"] = "in_place"
        return seen

    def remove_containers(self) -> list[str]:
        """Every container of this lab (sandbox, vpc, runtimes), removed in parallel."""
        api = de.client().api
        wanted = de.owned_filter(self.run.run_id)
        wanted["label"].append(f"{LAB_LABEL}={self.index}")

        def remove(c: dict[str, Any]) -> str | None:
            try:
                api.remove_container(c["Id"], force=True)
            except Exception as exc:
                if "No such container" not in str(exc):
                    return f"remove container {c['Names'][0]}: {de._short(exc)}"
            self.run.forget("container", c["Names"][0].lstrip("/"))
            return None

        found = api.containers(all=True, filters=wanted)
        if not found:
            return []
        with ThreadPoolExecutor(len(found)) as pool:
            return [p for p in pool.map(remove, found) if p]

    def down(self) -> list[str]:
        # Containers first: the netns bind mount keeps the namespace until Lab.down.
        try:
            problems = self.remove_containers()
        except Exception as exc:
            problems = [f"remove containers: {de._short(exc)}"]
        return problems + super().down()


@dataclass
class DockerNetworkLab(DockerLab):
    eni_mode = "network"
    vpc_container: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.nat is not None:
            # The ENI is Docker's own network here, with no routed hop to put a NAT on.
            raise ScenarioError("lab.nat: needs docker.eni: netlink (the default); drop docker.eni: network")
        self.network = self.run.netns_name(self.index, "net")
        # The bridge is on the host; its name carries the run id, so it is recognisably ours.
        self.bridge = self.run.link_name(self.index, "dn")

    def up(self) -> None:
        import docker

        api = de.client().api
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
            subnet=str(self.subnet.network), gateway=str(self.subnet.gateway))])
        # internal: Docker drops anything leaving the subnet, so lab traffic stays in the lab.
        docker_cleanup.create_network(self.run, self.network, self.bridge, driver="bridge", internal=True,
                                      ipam=ipam, labels=self.labels("network"),
                                      options={"com.docker.network.bridge.name": self.bridge})
        # Starting a container on a network takes ~0.45 s here; the two start together.
        with ThreadPoolExecutor(2) as pool:
            vpc = pool.submit(self._run_pause, self.vpc, "vpc", self.network, str(self.subnet.resolver))
            sbx = pool.submit(self._run_pause, self.sandbox, "sandbox", self.network, str(self.subnet.eni(0)))
            self.vpc_container, vpc_pid = vpc.result()
            self.sandbox_container, self.sandbox_pid = sbx.result()
        self.own_netns(self.vpc, vpc_pid)
        with rtnl(self.vpc) as v:
            eth = v.link_lookup(ifname="eth0")[0]
            v.addr("add", index=eth, address=str(self.subnet.service), prefixlen=self.subnet.prefixlen)
        self.own_netns(self.sandbox, self.sandbox_pid)
        # Born attached (Docker refuses to connect a `none` container later), detached at once:
        # like every lab, the sandbox starts with no ENI.
        api.disconnect_container_from_network(self.sandbox_container, self.network, force=True)
        # The same build-time sockets, /etc and services as Lab.up, so faults that act on
        # the sandbox's links (by ifindex) work here too.
        self.open_and_serve()

    def plug_eni(self, eni: Eni) -> Eni:
        """`docker network connect` with the planned address; Docker picks the
        interface name and index, read back here so later faults can find it."""
        de.client().api.connect_container_to_network(self.sandbox_container, self.network,
                                                     ipv4_address=str(eni.address))
        with rtnl(self.sandbox) as s:
            for addr in s.get_addr(family=2, address=str(eni.address)):
                eni.index = addr["index"]
                eni.ifname = s.get_links(eni.index)[0].get("IFLA_IFNAME")
        eni.peer, eni.peer_index = "", 0  # the bridge end is Docker's, on the host
        self.enis[eni.ifname] = eni
        return eni

    def detach_eni(self, eni: Eni | None = None) -> Eni | None:
        eni = eni or self.current_eni()
        if eni is None:
            return None
        try:
            de.client().api.disconnect_container_from_network(self.sandbox_container, self.network, force=True)
        except Exception as exc:
            if "is not connected" not in str(exc):
                raise
        self.enis.pop(eni.ifname, None)
        return eni

    def bridge_end_up(self, eni: Eni) -> bool:
        return True  # the bridge end is Docker's, on the host: nothing of the lab's to wait for

    def set_peer_up(self, eni: Eni, up: bool) -> None:
        raise NotImplementedError("eni mode `network`: the bridge end of the ENI belongs to Docker "
                                  "(on the host); use eni mode netlink for this fault")

    def down(self) -> list[str]:
        problems = super().down()
        try:
            de.client().api.remove_network(self.network)
        except Exception as exc:
            if "not found" not in str(exc).lower():
                problems.append(f"remove network {self.network}: {de._short(exc)}")
                return problems
        self.run.forget("network", self.network)
        if not docker_cleanup.host_link_exists(self.bridge):  # Docker deletes it with the network
            self.run.forget("link", self.bridge)
        return problems


def make(eni_mode: str, **kwargs: Any) -> DockerLab:
    cls = DockerNetworkLab if eni_mode == "network" else DockerLab
    return cls(**kwargs)
