"""User mistakes get one line and exit code 2, never a traceback (no root needed)."""

from click.testing import CliRunner

from harness.cli.main import main


def test_bad_scenario_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("workload: {invocations: many}\n")
    result = CliRunner().invoke(main, ["run", str(bad)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1
    assert str(bad) in lines[0] and "workload.invocations" in lines[0]


def test_bad_override_is_one_line_exit_2():
    result = CliRunner().invoke(main, ["run", "scenarios/late-eni-attach.yaml", "--set", "nonsense"])
    assert result.exit_code == 2
    assert "--set 'nonsense'" in result.output


def test_unknown_handler_is_named(tmp_path):
    result = CliRunner().invoke(main, ["run", "scenarios/late-eni-attach.yaml",
                                       "--set", "function.handler=nosuch"])
    assert result.exit_code == 2
    assert "function.handler: no module 'nosuch'" in result.output
    assert "naive_cached" in result.output  # the fix: the names that do exist


def test_an_interrupt_message_says_what_is_left(tmp_path, monkeypatch):
    from harness import ownership
    from harness.cli import common

    monkeypatch.setattr(ownership, "STATE_DIR", tmp_path / "state")
    folder = tmp_path / "trial"
    folder.mkdir()
    (folder / "history.jsonl").write_text('{"t_ms": 1.0, "kind": "trial_start"}\n')
    (folder / "verdict.json").write_text("{}")
    with ownership.Run.register("t") as run:
        assert common.interrupt_summary(run, folder) == \
            f"the lab was torn down; the trial so far is in {folder} (verdict.json)"
        assert common.interrupt_summary(run, None) == "before the lab was built; nothing was left behind"
        run.record("netns", run.netns_name(1, "sbx"))  # as if its removal had failed
        said = common.interrupt_summary(run, folder)
    assert said.startswith(f"teardown did not finish: left behind netns enr-{run.run_id}-1-sbx; "
                           "`enirace cleanup` removes it")
    assert "torn down" not in said
