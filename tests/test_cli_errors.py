"""Bad input: one clear error line on stderr and exit code 2, nothing half-written."""

import pytest

from tests.conftest import error_lines

BASE = ["run", "--weak", "minilm-l6", "--strong", "minilm-l6", "--methods", "naive"]


@pytest.fixture
def data_files(tmp_path):
    (tmp_path / "ok.csv").write_text("text,label\n" + "".join(f"t{i},{i % 2}\n" for i in range(20)))
    (tmp_path / "nocol.csv").write_text("sentence,label\na,0\nb,1\n")
    (tmp_path / "oneclass.csv").write_text("text,label\na,1\nb,1\nc,1\n")
    (tmp_path / "nan.csv").write_text("text,label\na,1\nb,\nc,0\n")
    (tmp_path / "bad.yaml").write_text(
        "task: sentiment\nweak: minilm-l6\nstrong: minilm-l6\nbogus: 1\n"
    )
    return tmp_path


@pytest.mark.parametrize(
    "args, message",
    [
        (["--task", "no-such-task"], "unknown task 'no-such-task'"),
        (["--task", "bigbench:no_such_task"], "unknown BIG-bench task"),
        (["--task", "file:{d}/missing.csv"], "file not found"),
        (["--task", "file:{d}/nocol.csv"], "no column 'text'"),
        (["--task", "file:{d}/oneclass.csv"], "one class only"),
        (["--task", "file:{d}/nan.csv"], "NaN"),
        (["--task", "file:{d}/ok.csv", "--set", "data.n_val=0"], "empty split"),
        (["--task", "file:{d}/ok.csv", "--set", "data.n_test=100"], "larger than the data"),
        (["--task", "file:{d}/ok.csv", "--methods", "naive,nope"], "unknown method 'nope'"),
        (["--task", "file:{d}/ok.csv", "--set", "data.n_tset=5"], "data.n_tset"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(w2s_cli, data_files, tmp_path, args, message):
    args = [a.replace("{d}", str(data_files)) for a in args]
    out = tmp_path / "run"
    proc = w2s_cli(*BASE, *args, "--out", str(out))
    lines = error_lines(proc)
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert message in lines[0]
    assert not (out / "metrics.json").exists()


def test_unknown_model_names_the_zoo(w2s_cli, data_files):
    proc = w2s_cli(
        "run",
        "--task",
        f"file:{data_files}/ok.csv",
        "--weak",
        "not-a-model",
        "--strong",
        "minilm-l6",
    )
    lines = error_lines(proc)
    assert proc.returncode == 2 and len(lines) == 1
    assert "unknown model 'not-a-model'" in lines[0] and "smollm2-135m" in lines[0]


def test_bad_config_files(w2s_cli, data_files):
    proc = w2s_cli("run", str(data_files / "bad.yaml"))
    assert proc.returncode == 2 and "bogus" in error_lines(proc)[0]
    proc = w2s_cli("run", str(data_files / "absent.yaml"))
    assert proc.returncode == 2 and "config file not found" in error_lines(proc)[0]


def test_list_commands(w2s_cli):
    models = w2s_cli("list", "models").stdout.splitlines()
    assert [m.split()[0] for m in models] == [
        "smollm2-135m",
        "gemma3-270m",
        "qwen2.5-1.5b",
        "minilm-l6",
        "mpnet-base",
        "static-64d",
        "e5-small",
    ]
    methods = {ln.split()[0] for ln in w2s_cli("list", "methods").stdout.splitlines()}
    assert {"naive", "naive_hard", "logconf", "product"} <= methods
    tasks = w2s_cli("list", "tasks").stdout.splitlines()
    assert tasks[0].startswith("sentiment") and any(t.startswith("bigbench:winowhy") for t in tasks)
    assert w2s_cli("list", "bogus").returncode == 2


@pytest.mark.parametrize(
    "make, args, message",
    [
        (lambda d: (d / "out.txt").write_text("x"), ["--out", "{d}/out.txt"], "is a file"),
        (lambda d: None, ["--out", "/proc/w2s-run"], "cannot write"),
        (lambda d: None, ["--seed", "-1"], "seed"),
        (lambda d: None, ["--set", "seed=99999999999999"], "seed"),
        (lambda d: None, ["--set", "data.n_test=[1"], "--set data.n_test"),
        (lambda d: None, ["--set", "=3"], "--set expects key=value"),
        (lambda d: None, ["--set", "methods=[{name: logconf, aux_max: abc}]"], "aux_max"),
        (lambda d: None, ["--strong", "smollm2-135m", "--set", "strong.layer=99"], "out of range"),
        (lambda d: None, ["--set", "strong.pooling=last"], "sentence encoder"),
        (lambda d: None, ["--set", "bootstrap.n_resamples=100000000"], "n_resamples"),
        (lambda d: None, ["--set", "generation.k=2"], "not used by classification"),
    ],
)
def test_bad_run_options_are_one_line(w2s_cli, data_files, tmp_path, make, args, message):
    make(tmp_path)
    args = [a.replace("{d}", str(tmp_path)) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "run")]
    proc = w2s_cli(*BASE, "--task", f"file:{data_files}/ok.csv", *args)
    lines = error_lines(proc)
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert message in lines[0]
    assert not (tmp_path / "run").exists()


def test_bad_config_file_kinds(w2s_cli, tmp_path):
    (tmp_path / "latin1.yaml").write_bytes("task: caf\xe9\n".encode("latin-1"))
    (tmp_path / "folder.yaml").mkdir()
    for name, message in (("latin1.yaml", "not UTF-8"), ("folder.yaml", "is a folder")):
        proc = w2s_cli("run", str(tmp_path / name))
        lines = error_lines(proc)
        assert proc.returncode == 2 and len(lines) == 1 and message in lines[0], proc.stderr


def test_output_folders_of_analyze_and_simulate(w2s_cli, tmp_path):
    (tmp_path / "f").write_text("x")
    proc = w2s_cli("simulate", "coverage", "--quick", "--out", str(tmp_path / "f"))
    assert proc.returncode == 2 and "is a file" in error_lines(proc)[0]
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text('{"task": "x", "meth')  # truncated
    (run / "predictions.parquet").write_bytes(b"PAR1")
    proc = w2s_cli("analyze", "misfit", str(run), "--out", str(tmp_path / "mf"))
    lines = error_lines(proc)
    assert proc.returncode == 2 and len(lines) == 1 and "damaged" in lines[0], proc.stderr


def test_ctrl_c_prints_the_resume_hint_and_exits_130(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    cmd = [sys.executable, "-m", "w2s.cli", "simulate", "feature-learning", "--out", str(tmp_path)]
    # a shell's background job inherits SIGINT as ignored; a user's terminal does not
    restore = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, preexec_fn=restore)
    time.sleep(6)  # inside the simulation (imports take a few seconds)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines == ["error: interrupted (finished stages are saved; rerun to resume)"]


def test_bad_input_fails_before_the_heavy_libraries_load(data_files):
    """A config error must not wait for torch, scikit-learn or transformers (5 s of
    imports): every method and model module imports them where it uses them."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from w2s.cli import main\n"
        "sys.argv = ['w2s', *sys.argv[1:]]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as e:\n"
        "    assert e.code == 2, e.code\n"
        "heavy = ('torch', 'sklearn', 'transformers', 'scipy')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    args = [*BASE, "--task", f"file:{data_files}/ok.csv", "--methods", "naive,nope"]
    # explicit dtypes: `auto` asks torch whether CUDA is there when torch has CUDA built in
    args += ["--set", "weak.dtype=float32", "--set", "strong.dtype=float32"]
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300
    )
    assert "unknown method 'nope'" in proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stdout
