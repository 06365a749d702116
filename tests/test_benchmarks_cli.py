"""The benchmark scripts' command lines: arguments checked before any work, the messages of
``python -m benchmarks`` when it stops, and the help texts."""

import signal
from pathlib import Path

import pytest

from benchmarks.__main__ import main
from benchmarks.harness import runner

ROOT = Path(__file__).resolve().parent.parent


def _record(algo="ppo", task="CartPole-v1", seed=0):
    """A finished run's record, as ``runner.run_job`` returns it (two evaluations)."""
    rows = [
        {
            "algo": algo,
            "env": task,
            "seed": seed,
            "env_steps": steps,
            "wall_s": steps / 100,
            "eval_mean": 10.0,
            "eval_std": 0.0,
        }
        for steps in (100, 200)
    ]
    protocol = {"budget": 200, "eval_every": 100, "eval_episodes": 2, "evaluations": [task]}
    return {
        "algo": algo,
        "task": task,
        "seed": seed,
        "protocol": protocol,
        "settings": {"source": "test"},
        "device": "cpu",
        "env_steps": 200,
        "train_s": 2.0,
        "eval_s": 1.0,
        "total_s": 3.0,
        "rows": rows,
    }


def _must_not_train(*args, **kwargs):
    pytest.fail("the run started")


def _run_args(out, *extra):
    return ["run", "--suite", "classic", "--out", str(out), "--no-progress", *extra]


@pytest.mark.parametrize("device, message", [("bogus", "not a torch device"), ("cuda", "0 CUDA device")])
def test_a_device_this_machine_lacks_is_refused_before_the_out_folder_is_made(
    tmp_path, monkeypatch, capsys, device, message
):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(runner, "run_suite", _must_not_train)
    with pytest.raises(SystemExit) as stop:
        main(_run_args(tmp_path / "out", "--device", device))
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert "argument --device" in error and message in error and "cpu" in error
    assert not (tmp_path / "out").exists()


def test_report_on_a_folder_without_finished_runs_says_why(tmp_path):
    (tmp_path / "runs").mkdir()
    with pytest.raises(SystemExit, match="holds no finished run"):
        main(["report", str(tmp_path)])
    (tmp_path / runner.PARTIAL / "ppo__CartPole-v1__seed0").mkdir(parents=True)
    with pytest.raises(SystemExit, match="are unfinished .* resume them"):
        main(["report", str(tmp_path)])


def test_report_keeps_the_suite_title_of_a_folder_named_otherwise(tmp_path, monkeypatch):
    def run_suite(suite, out, **options):
        runner.save_run(out, _record())
        return runner.collect_results(out)

    monkeypatch.setattr(runner, "run_suite", run_suite)
    out = tmp_path / "mine"
    main(_run_args(out))
    main(["report", str(out)])
    assert (out / "report.md").read_text().startswith("# Benchmark report: classic suite\n")


def _terminate(*args, **kwargs):
    signal.raise_signal(signal.SIGTERM)


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def _fail_on_sigterm(signum, frame):
    pytest.fail("SIGTERM reached the handler that was set before the run")


@pytest.mark.parametrize("stop, status", [(_interrupt, 130), (_terminate, 143)])
def test_sigterm_stops_a_run_as_ctrl_c_does(tmp_path, monkeypatch, capsys, stop, status):
    monkeypatch.setattr(runner, "run_suite", stop)
    before = signal.signal(signal.SIGTERM, _fail_on_sigterm)
    try:
        with pytest.raises(SystemExit) as stopped:
            main(_run_args(tmp_path))
        assert signal.getsignal(signal.SIGTERM) is _fail_on_sigterm  # set back after the run
    finally:
        signal.signal(signal.SIGTERM, before)
    assert stopped.value.code == status
    error = capsys.readouterr().err
    assert "interrupted" in error and "the same command resumes" in error


@pytest.mark.parametrize("option", ["--seeds", "--budget", "--jobs", "--eval-every", "--muzero-envs"])
def test_cartpole_refuses_counts_below_one(option, capsys, monkeypatch):
    from benchmarks import cartpole

    monkeypatch.setattr(cartpole, "worker_pool", _must_not_train)
    with pytest.raises(SystemExit) as stop:
        cartpole.main([option, "0"])
    assert stop.value.code == 2
    assert f"argument {option}: expected a positive integer, got 0" in capsys.readouterr().err


def test_search_help_shows_its_whole_first_paragraph(capsys):
    from benchmarks import search

    with pytest.raises(SystemExit):
        search.parse_args(["--help"])
    assert "and LightZero's C++ tree)." in " ".join(capsys.readouterr().out.split())


def test_the_readme_names_the_extra_the_benchmarks_need_in_an_own_environment():
    paragraphs = (ROOT / "README.md").read_text().split("\n\n")
    install = next(p for p in paragraphs if "environment of your own" in p and "pip install -e" in p)
    assert "`bench`" in install and "python -m benchmarks" in install
