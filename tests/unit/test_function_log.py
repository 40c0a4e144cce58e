"""function.log and the history's head and tail, fed as the process backend's pump
feeds them: raw reads that cut lines anywhere."""

from __future__ import annotations

from harness.function.output import FunctionLog
from harness.function.spec import MAX_LINE_BYTES, split_complete
from harness.history.queries import load
from harness.history.recorder import HEAD_LOG_LINES, TAIL_LOG_LINES, History


def _feed(flog: FunctionLog, data: bytes, generation: int = 1, size: int = 7) -> None:
    """`data` in reads of `size` bytes (cutting lines and CRLFs apart), then the end."""
    for i in range(0, len(data), size):
        flog.chunk(generation, data[i:i + size])
    flog.chunk(generation, b"")


def _logs(history: History) -> list[str]:
    return [e["line"] for e in history.events if e["kind"] == "log"]


def test_lines_cut_across_reads_come_out_whole_and_prefixed(tmp_path):
    history = History(tmp_path / "history.jsonl")
    flog = FunctionLog(tmp_path / "function.log", history)
    flog.emulator("START RequestId: 1")
    _feed(flog, b"hello world\r\nsecond line\nno newline at the end")
    flog.close()
    assert (tmp_path / "function.log").read_text().splitlines() == [
        "[rie] START RequestId: 1", "[runtime-1] hello world", "[runtime-1] second line",
        "[runtime-1] no newline at the end"]
    assert _logs(history) == ["hello world", "second line", "no newline at the end"]
    assert flog.drain(0)


def test_awslambdarics_carriage_return_joined_traceback_is_split_into_lines(tmp_path):
    history = History(tmp_path / "history.jsonl")
    flog = FunctionLog(tmp_path / "function.log", history)
    traceback = b"[ERROR] Runtime.ImportModuleError: boom\rTraceback (most recent call last):\r  File \"x.py\""
    _feed(flog, traceback + b"\n")
    flog(2, traceback.decode())  # the docker backend's one line at a time
    flog.close()
    lines = ["[ERROR] Runtime.ImportModuleError: boom", "Traceback (most recent call last):", '  File "x.py"']
    assert (tmp_path / "function.log").read_text().splitlines() == (
        [f"[runtime-1] {line}" for line in lines] + [f"[runtime-2] {line}" for line in lines])
    assert _logs(history) == lines + lines


def test_an_endless_line_is_cut_so_memory_stays_bounded():
    complete, carry = split_complete(b"", b"x" * (MAX_LINE_BYTES - 1))
    assert (complete, len(carry)) == (b"", MAX_LINE_BYTES - 1)
    complete, carry = split_complete(carry, b"xx")
    assert carry == b"" and complete == b"x" * (MAX_LINE_BYTES + 1) + b"\n"


def test_a_flood_keeps_head_and_tail_and_counts_every_other_line(tmp_path):
    history = History(tmp_path / "history.jsonl")
    flog = FunctionLog(tmp_path / "function.log", history)
    total = 50_000
    _feed(flog, b"".join(b"line %d\n" % i for i in range(total)), size=65536)
    history.flush_log_tail()
    flog.close()
    history.close()
    lines = _logs(history)
    assert lines[:HEAD_LOG_LINES] == [f"line {i}" for i in range(HEAD_LOG_LINES)]
    assert lines[HEAD_LOG_LINES:] == [f"line {i}" for i in range(total - TAIL_LOG_LINES, total)]
    dropped = [e["lines"] for e in history.events if e["kind"] == "log_dropped"]
    assert dropped == [total - HEAD_LOG_LINES - TAIL_LOG_LINES]
    assert len(load(tmp_path / "history.jsonl")) == HEAD_LOG_LINES + TAIL_LOG_LINES + 1
    assert sum(1 for _ in (tmp_path / "function.log").open()) == total


def test_function_log_stops_at_its_cap_with_a_note(tmp_path):
    history = History()
    flog = FunctionLog(tmp_path / "function.log", history)
    flog.MAX_LOG_BYTES = 10_000
    _feed(flog, b"".join(b"noise %07d\n" % i for i in range(5_000)), size=4096)
    flog.emulator("END RequestId: 1")  # after the cap: dropped too
    flog.close()
    text = (tmp_path / "function.log").read_bytes()
    note = b"[enirace] function.log truncated at 10000 bytes\n"
    assert text.endswith(note)
    assert len(text) <= 10_000 + len(note)
    assert all(line.startswith(b"[runtime-1] noise ") for line in text[:-len(note)].splitlines())
    assert len(_logs(history)) == HEAD_LOG_LINES  # the history's share does not depend on the cap


def test_drain_waits_for_open_streams_and_close_drops_late_output(tmp_path):
    flog = FunctionLog(tmp_path / "function.log", History())
    flog.chunk(1, b"one\n")
    flog.chunk(2, b"two\n")
    flog.chunk(1, b"")
    assert not flog.drain(0.01)  # runtime 2's stream is still open
    flog.chunk(2, b"")
    assert flog.drain(0.01)
    flog.close()
    flog.chunk(3, b"after close\n")
    flog.emulator("after close")
    assert (tmp_path / "function.log").read_text() == "[runtime-1] one\n[runtime-2] two\n"
