"""Every kind of event the trial's history holds, defined once: its name, its
fields (required, then optional) and what it means. Producers record these
names, readers (triggers, nemesis, checker, timeline, plots) match them, and the
named groups below are the only lists of kinds. Every event also has `t_ms` and
`kind`. The README's history table is `markdown_table()`.

Stdlib only: the enirace-rie drop-in imports the recorder, and through it this."""

from __future__ import annotations

from collections.abc import Iterable, Set
from dataclasses import dataclass

# Recorded as trial_start's `schema`. Bump it when a kind or a required field
# changes meaning or goes away; adding a kind or an optional field does not.
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class EventKind:
    name: str
    fields: tuple[str, ...]
    optional: tuple[str, ...]
    doc: str


KINDS: dict[str, EventKind] = {}
# kind -> (required, allowed) as sets: the recorder checks every event against them.
_SETS: dict[str, tuple[frozenset[str], frozenset[str]]] = {}


def _kind(name: str, fields: str, optional: str, doc: str) -> str:
    spec = KINDS[name] = EventKind(name, tuple(fields.split()), tuple(optional.split()), doc)
    _SETS[name] = frozenset(spec.fields), frozenset(spec.fields + spec.optional)
    return name


# -- the trial and its lab ------------------------------------------------------------------
TRIAL_START = _kind("trial_start", "trial run subnet pid seed schema", "healthy_after",
                    "the trial began: its id, run id, the lab's /24, the harness pid, seed, schema version "
                    "(and expect.healthy_after, which the checker needs)")
CAPTURE_START = _kind("capture_start", "sandbox", "", "the packet capture inside the sandbox began")
INITIAL_STATE = _kind("initial_state", "eni resolv_conf aspects impairs verified state", "",
                      "the lab's network before any fault, read back from the kernel")
SCHEDULE = _kind("schedule", "seed entries", "", "the fault schedule as armed, with each drawn offset")
SANDBOX_READY = _kind("sandbox_ready", "sandbox vpc", "", "the namespaces are up and the nemesis is armed")
CONTAINMENT = _kind("containment", "user memory_mb tmp_mb cgroup", "",
                    "how the process backend contains the runtime (user, memory, /tmp, cgroup version)")

# -- the runtime's lifecycle ---------------------------------------------------------------------
_RIE_LAG = "log_lag_ms"  # docker backend: how late the harness read the RIE's log line
INIT_START = _kind("init_start", "generation phase pid command", f"rie_phase {_RIE_LAG}",
                   "a bootstrap was spawned (phase init: eager, invoke: inside an invocation)")
RUNTIME_READY = _kind("runtime_ready", "generation", _RIE_LAG, "the runtime's first /next: its init is done")
INIT_ERROR = _kind("init_error", "generation source error_type error_message", _RIE_LAG,
                   "an init failed (source: init/error, exit, timeout or rie-log)")
RUNTIME_EXIT = _kind("runtime_exit", "generation code during reason", f"oom {_RIE_LAG}",
                     "the runtime process exited, and in which state")
RESET = _kind("reset", "reason generation", f"pid {_RIE_LAG}",
              "the emulator killed the runtime (timeout, runtime_exit, init_timeout, ...)")
FREEZE = _kind("freeze", "generation verified method state took_ms", "detail",
               "the runtime waits on /next with nothing pending: frozen (method cgroup_v1, cgroup_v2, "
               "docker_pause or sigstop; state read back)")
THAW = _kind("thaw", "generation verified method state took_ms frozen_ms reason", "detail",
             "the frozen runtime was thawed (reason invoke or shutdown), before /next was answered")
SNAPSHOT = _kind("snapshot", "generation verified method", "detail",
                 "SnapStart: the runtime called restore/next after its before-snapshot hooks; the "
                 "environment is frozen for the snapshot (method: the restore strategy, snapstart.mode)")
RESTORE = _kind("restore", "generation method verified address changes waited_ms aspects blip_ms",
                "from_address detail",
                "SnapStart: the snapshot was restored (after waited_ms) onto the network changed as "
                "`changes` says (new_address, drop_flows; verified from the kernel); restore/next is "
                "answered now. The checker counts snapshot to restore as a transient fault (blip_ms)")
RESTORE_ERROR = _kind("restore_error", "generation source error_type error_message", "",
                      "SnapStart: the restore failed (source restore/error: an after-restore hook raised; "
                      "timeout: over snapstart.restore_timeout; exit: the runtime exited)")
EXTENSION_NEXT = _kind("extension_next", "generation name", "",
                       "an extension called event/next: it waits for its next event (the environment "
                       "freezes only when the runtime and every extension wait)")

# -- invocations ----------------------------------------------------------------------------------
INVOKE_START = _kind("invoke_start", "n request_id", "", "invocation n was sent")
TIMEOUT = _kind("timeout", "n request_id", "", "invocation n ran past the function timeout")
INVOKE_END = _kind("invoke_end",
                   "n request_id status error_type error_message reinit init_starts body duration_ms",
                   "http_status",
                   "invocation n's outcome (status ok, error, timeout, crash or init_error)")

# -- faults ------------------------------------------------------------------------------------------
FAULT = _kind("fault", "fault index step action trigger offset_ms seed planned_ms error_ms verified impairs",
              "detail state apply_ms aspects blip_ms error",
              "a fault step fired: planned and actual time, the state read back, the aspects it impairs")
FAULT_STEP_CANCELLED = _kind("fault_step_cancelled", "fault index step planned_ms why", "",
                             "a pending fault step (e.g. a revert) never ran: the trial ended first")
FAULT_SKIPPED = _kind("fault_skipped", "fault trigger why", "", "a schedule entry's trigger event never occurred")

# -- the lab's services ---------------------------------------------------------------------------
RESOLVER_QUERY = _kind("resolver_query", "name qtype rcode", "", "the vpc's resolver got a query, and its answer")
SERVICE_REQUEST = _kind("service_request", "client path", "port server",
                        "the internal service got an HTTP request (from client:port, at its address server)")
SERVICE_CLOSE = _kind("service_close", "client port server how idle_ms", "",
                      "the service closed an idle keep-alive connection (lab.service.keepalive_timeout), "
                      "with a FIN or a RST")
NAT = _kind("nat", "address idle_timeout_s on_expired", "namespace service_namespace",
            "the lab's NAT (lab.nat): its address, how long an idle flow is remembered, and what the "
            "next packet of a forgotten flow gets (rst or drop)")

# -- packet evidence (decoded from the capture when the trial ends) ----------------------------------
_DNS = "iface src dst id name qtype"
DNS_QUERY = _kind("dns_query", f"{_DNS} sent answered", "rcode answer_ms",
                  "a DNS query seen in the sandbox, and whether and how fast it was answered")
DNS_ANSWER = _kind("dns_answer", f"{_DNS} rcode answers", "", "a DNS answer that reached the sandbox")
TCP_SYN = _kind("tcp_syn", "flow dst answered retransmits iface", "",
                "a connection attempt (first SYN) and whether a SYN-ACK came")
TCP_RETRANSMIT = _kind("tcp_retransmit", "what flow dst count iface", "bytes",
                       "a SYN or a data segment sent again")
TCP_RST = _kind("tcp_rst", "flow sent iface", "idle_ms",
                "a TCP reset, either way (idle_ms: how long the flow had been silent before the "
                "sandbox's packet that drew it)")
TCP_FIN = _kind("tcp_fin", "flow sent iface", "", "a TCP FIN, either way: one side closed the connection")
TCP_SEND_AFTER_FIN = _kind("tcp_send_after_fin", "flow dst after_ms bytes iface", "",
                           "the sandbox sent data on a connection the peer had closed (after_ms after its FIN)")
ICMP_UNREACHABLE = _kind("icmp_unreachable", "reason about sent iface", "",
                         "an ICMP destination unreachable, and what it was about")
CAPTURE = _kind("capture", "", "file packets kernel_drops over_limit events events_left_out error",
                "the capture's summary (or why it failed)")

# -- the function's own network attempts (eBPF at its cgroup's connect/sendmsg hooks) ---------------
NET_PROBE = _kind("net_probe", "generation method", "cgroup error",
                  "the probe of the runtime's network attempts was attached to its cgroup (or why not)")
NET_ATTEMPT = _kind("net_attempt", "generation syscall proto dst pid", "",
                    "the function tried the network: a connect (TCP, or the UDP connect of a DNS lookup) "
                    "or a sendmsg, seen in the kernel even with no route; dst is address:port")

# -- fleets (enirace fleet: the fleet's own history; each environment's is a trial's) -----------------
FLEET_START = _kind("fleet_start", "mitigation source messages max_environments seed run subnet", "",
                    "a fleet run began under one mitigation, with its event source and message count")
ENVIRONMENT_START = _kind("environment_start", "environment n eni_late init took_ms", "delay_ms",
                          "cold start n built an execution environment: its drawn network timing (a late "
                          "ENI and its delay after init_start) and its init's outcome")
ENVIRONMENT_ENI = _kind("environment_eni", "environment delay_ms verified", "address error",
                        "a late cold start's ENI was attached, delay_ms after its init began (verified as an "
                        "attach_eni fault; its own history has the fault event)")
ENVIRONMENT_RETIRE = _kind("environment_retire", "environment idle_ms invocations", "",
                           "an environment idle for fleet.idle_retire was retired (runtime killed, sandbox removed)")
MESSAGE_SENT = _kind("message_sent", "id", "", "the producer sent message id (to the fleet or to the queue)")
QUEUE_DRAIN = _kind("queue_drain", "drained waited_s left dlq", "batches failed_batches deleted redelivered errors",
                    "the sqs source's queue drained (or drain_timeout passed): what was left in it, how many "
                    "messages the DLQ holds, and what the event source mapping did")
FLEET_INVOKE = _kind("fleet_invoke", "environment cold ok error_type duration_ms", "ids error_class item_failures",
                     "one invocation of the fleet returned: which environment, cold or warm, and how it ended "
                     "(item_failures: the records an SQS batch handler reported failed)")

# -- output and the harness itself ------------------------------------------------------------------
LOG = _kind("log", "source line", "", "a line of the function's output (the first and last 200 of them)")
LOG_DROPPED = _kind("log_dropped", "lines", "", "how many output lines were left out between head and tail")
HARNESS_ERROR = _kind("harness_error", "error", "", "the harness itself failed (or was interrupted)")

# -- groups -------------------------------------------------------------------------------------------
# What a fault's trigger may name (in this order in its error message).
LIFECYCLE = (TRIAL_START, SANDBOX_READY, INIT_START, RUNTIME_READY, INVOKE_START,
             INVOKE_END, INIT_ERROR, RUNTIME_EXIT, TIMEOUT, RESET, FREEZE, THAW, SNAPSHOT, RESTORE)
INVOCATION = (INVOKE_START, TIMEOUT, INVOKE_END)
FAULTS = (FAULT, FAULT_STEP_CANCELLED, FAULT_SKIPPED)
# The events carrying `aspects`: replayed in order, they give the impaired windows.
NETWORK_STATE = (INITIAL_STATE, FAULT)
PACKET = (DNS_QUERY, DNS_ANSWER, TCP_SYN, TCP_RETRANSMIT, TCP_RST, TCP_FIN, TCP_SEND_AFTER_FIN,
          ICMP_UNREACHABLE)
OUTPUT = (LOG, LOG_DROPPED)


class HistorySchemaError(ValueError):
    """An event the schema does not describe: a bug in its producer."""


def problem(kind: str, fields: Iterable[str]) -> str | None:
    """What is wrong with an event of `kind` with these fields, or None."""
    sets = _SETS.get(kind)
    if sets is None:
        return f"unknown event kind {kind!r} (define it in harness/history/schema.py)"
    required, allowed = sets
    given = fields if isinstance(fields, Set) else set(fields)  # a dict's keys() is a Set
    if not required <= given:
        missing = [f for f in KINDS[kind].fields if f not in given]
        return f"{kind} event without {', '.join(missing)}"
    if not given <= allowed:
        unknown = ", ".join(sorted(given - allowed))
        return f"{kind} event with undeclared field(s) {unknown} (add them in harness/history/schema.py)"
    return None


def markdown_table() -> str:
    """The README's table of event kinds."""
    rows = ["| kind | fields (optional in brackets) | meaning |", "|---|---|---|"]
    for spec in KINDS.values():
        fields = " ".join([*spec.fields, *(f"[{f}]" for f in spec.optional)])
        rows.append(f"| `{spec.name}` | {fields} | {spec.doc} |")
    return "\n".join(rows)
