"""Containers, networks and host links of the docker backend, made so that cleanup
can prove they are ours: each is recorded in the run's manifest before it is
created, then proven by its engine id (and its run label), or for a host link by
its ifindex and an IFLA_IFALIAS "enirace <run id>" set at creation.

Cleanup removes one only while both still hold: the id in the manifest names an
object whose run label is the dead run's. A label alone proves nothing (anyone can
set one), and neither does a name.

A run killed while the engine creates a container never learns its id, yet the
engine finishes the creation. So before asking, the run draws a secret token,
proves the entry with it and puts it in a label: a container with that name whose
token label matches was made by that request (nobody else knows the token; the
manifest is root's). Cleanup removes it by name then.

Images are a cache shared by all runs, not a run's leftovers: `enirace images
prune` removes the outdated ones.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.backends.docker import engine as de

if TYPE_CHECKING:
    from harness.lab.netns import Manifest

ALIAS = "enirace {run_id}"
TOKEN_LABEL = "org.enirace.token"


def engine_configured() -> bool:
    """Is there an engine to ask? (Cheap: cleanup runs before every trial.)"""
    return bool(os.environ.get("DOCKER_HOST")) or Path("/var/run/docker.sock").exists()


def create_container(run: Manifest, **create_args: Any) -> str:
    """APIClient.create_container, recorded and proven by a token first, then by the new id."""
    name = create_args["name"]
    token = secrets.token_hex(16)
    create_args["labels"] = {**(create_args.get("labels") or {}), TOKEN_LABEL: token}
    run.record("container", name)
    run.prove("container", name, token=token)
    try:
        cid = str(de.client().api.create_container(**create_args)["Id"])
    except BaseException:
        run.forget("container", name)  # the engine made nothing (a name clash is someone else's)
        raise
    run.prove("container", name, id=cid)
    return cid


def create_network(run: Manifest, name: str, bridge: str, **create_args: Any) -> str:
    """APIClient.create_network of a bridge network named `bridge` on the host: both
    the network and its host link are recorded first, then proven."""
    run.record("link", bridge)
    run.record("network", name)
    api = de.client().api
    try:
        nid = str(api.create_network(name, **create_args)["Id"])
    except BaseException:
        run.forget("network", name)
        run.forget("link", bridge)
        raise
    run.prove("network", name, id=nid)
    run.prove("link", bridge, **mark_host_link(bridge, run.run_id))
    return nid


def mark_host_link(name: str, run_id: str) -> dict[str, Any]:
    """Set the alias of our host link (Docker's bridge for our network) and return
    the proof: its ifindex and that alias. A link attribute, not an address or route."""
    from pyroute2 import IPRoute

    alias = ALIAS.format(run_id=run_id)
    with IPRoute() as ipr:
        index = ipr.link_lookup(ifname=name)[0]
        ipr.link("set", index=index, ifalias=alias)
    return {"ifindex": index, "alias": alias}


def host_link_exists(name: str) -> bool:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        return bool(ipr.link_lookup(ifname=name))


# -- the removers cleanup calls ------------------------------------------------
# Each returns (outcome, why): "removed", "gone" (nothing left to remove) or "kept".


def _inspect(kind: str, oid: str) -> dict[str, Any] | None:
    import docker

    api = de.client().api
    try:
        return api.inspect_container(oid) if kind == "container" else api.inspect_network(oid)
    except docker.errors.NotFound:
        return None


def remove_docker(kind: str, ident: str, run_id: str, proof: dict[str, Any], dry_run: bool) -> tuple[str, str]:
    """A container or network: only while the recorded id still carries our run label."""
    if not engine_configured():
        raise RuntimeError("no Docker engine to ask; start it and run `enirace cleanup` again")
    by_token = "id" not in proof  # the run died before the engine told it the id
    found = _inspect(kind, ident if by_token else str(proof["id"]))
    if found is None:
        return "gone", ""
    labels = ((found.get("Config") or {}).get("Labels") if kind == "container" else found.get("Labels")) or {}
    oid = str(found.get("Id") or proof.get("id"))
    if labels.get(de.RUN_LABEL) != run_id:
        return "kept", f"{oid[:12]} no longer carries label {de.RUN_LABEL}={run_id}"
    if by_token and (not proof.get("token") or labels.get(TOKEN_LABEL) != proof["token"]):
        return "kept", f"{ident} does not carry the token its run recorded before creating it"
    if not dry_run:
        api = de.client().api
        if kind == "container":
            api.remove_container(oid, force=True)
        else:
            api.remove_network(oid)
    return "removed", ""


def remove_host_link(ident: str, run_id: str, proof: dict[str, Any], dry_run: bool) -> tuple[str, str]:
    """A host link: only while its name, ifindex and alias are all still the recorded ones."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=ident)
        if not found:
            return "gone", ""
        link = ipr.get_links(found[0])[0]
        alias = link.get("IFLA_IFALIAS")
        if found[0] != proof.get("ifindex") or alias != proof.get("alias"):
            return "kept", f"ifindex {found[0]} alias {alias!r}, recorded {proof.get('ifindex')} {proof.get('alias')!r}"
        if not dry_run:
            ipr.link("del", index=found[0])
    return "removed", ""
