"""The RIE's log-line formats: what enirace-rie writes is what the harness parses."""

from harness.backends.docker.image_rie import classify_response, parse_docker_timestamp
from harness.emulator import rie_log as rie_log


def test_rapid_line_format():
    line = rie_log.rapid_line("info", "INIT START(type: on-demand, phase: init)", epoch=0.5)
    assert line.endswith(" [INFO] (rapid) INIT START(type: on-demand, phase: init)")
    assert rie_log.RAPID_RE.match(line).group("ts").endswith(",500")
    assert " [WARNING] " in rie_log.rapid_line("warn", "x")


def test_report_line_matches_the_rie():
    line = rie_log.report_line("abc", 12.345, "3008", init_ms=0.04)
    assert line == ("REPORT RequestId: abc\tInit Duration: 0.04 ms\tDuration: 12.35 ms\tBilled Duration: 13 ms\t"
                    "Memory Size: 3008 MB\tMax Memory Used: 3008 MB\t")


def test_classify_the_real_rie_lines():
    # Lines as the real RIE prints them (research/rie.md §1.9).
    samples = {
        "11 Jun 2024 05:38:34,443 [INFO] (rapid) INIT START(type: on-demand, phase: invoke)":
            ("init_start", {"phase": "invoke"}),
        "11 Jun 2024 05:38:36,643 [INFO] (rapid) INIT RTDONE(status: success)": ("init_done", {"status": "success"}),
        "11 Jun 2024 05:38:36,643 [INFO] (rapid) INIT REPORT(durationMs: 2200.017000)":
            ("init_report", {"ms": "2200.017000"}),
        "11 Jun 2024 05:38:41,103 [INFO] (rapid) INVOKE RTDONE(status: success, produced bytes: 0, "
        "duration: 4459.703000ms)": ("invoke_done", {"bytes": "0"}),
        "11 Jun 2024 05:38:41,103 [WARNING] (rapid) Process runtime-1 exited: Runtime exited with error: "
        "exit status 1": ("process_exit", {"name": "runtime-1", "reason": "Runtime exited with error: exit status 1"}),
        "11 Jun 2024 05:38:41,103 [INFO] (rapid) Reset initiated: Timeout": ("reset", {"reason": "Timeout"}),
        "11 Jun 2024 05:38:12,877 [INFO] (rapid) exec '/var/runtime/bootstrap' (cwd=/var/task, handler=)":
            ("exec", {"cmd": "/var/runtime/bootstrap", "handler": ""}),
    }
    for text, (event, fields) in samples.items():
        got = rie_log.classify_line(text)
        assert (got.kind, got.event) == ("rapid", event), text
        assert fields.items() <= got.fields.items()
    assert rie_log.classify_line("START RequestId: 0aa0cd01-a398 Version: $LATEST").kind == "start"
    assert rie_log.classify_line("END RequestId: 0aa0cd01-a398").kind == "end"
    assert rie_log.classify_line("hello from the handler").kind == "output"


def test_docker_timestamps():
    ns, text = parse_docker_timestamp("2026-01-02T03:04:05.123456789Z hello world")
    assert text == "hello world" and ns % 1_000_000_000 == 123456789
    assert parse_docker_timestamp("no stamp") == (None, "no stamp")


def test_rie_responses():
    assert classify_response(200, b'{"ok": 1}', False).status == "ok"
    err = classify_response(200, b'{"errorMessage": "boom", "errorType": "ValueError"}', False)
    assert (err.status, err.error_type) == ("error", "ValueError")
    assert classify_response(200, b"Task timed out after 3.00 seconds", False).status == "timeout"
    assert classify_response(502, b"", True).status == "init_error"
    crash = classify_response(502, b'{"errorType":"Runtime.ExitError","errorMessage":"RequestId: x Error: '
                                    b'Runtime exited with error: exit status 1"}', False)
    assert (crash.status, crash.error_type) == ("crash", "Runtime.ExitError")
