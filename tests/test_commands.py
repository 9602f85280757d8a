"""The ``jaxfuse`` command: the dispatcher, the shared exit codes, single-pair fusion,
interruptions, ``--keep-checkpoints``, concurrent fusion into one folder, the shipped
checkpoint.

Subcommands run in this process through :func:`jaxfuse.commands.main` where the
point is what they print and return; in subprocesses where the point is the
process itself (``python -m jaxfuse``, a real SIGINT, two processes at once).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, SCRIPT_ENV
from jaxfuse import cli, commands
from jaxfuse.errors import Interrupted, JaxfuseError

SUBCOMMANDS = ("train", "fuse", "evaluate", "convert", "reproduce", "bench")


def run(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, *map(str, args)], cwd=REPO, env=SCRIPT_ENV,
                       capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in r.stderr, r.stderr
    return r


@pytest.fixture
def jaxfuse(capfd):
    """``jaxfuse(*args)``: ``jaxfuse ARGS`` in this process -> CompletedProcess."""
    def call(*args) -> subprocess.CompletedProcess:
        argv = [str(a) for a in args]
        capfd.readouterr()
        code = commands.main(argv)
        out, err = capfd.readouterr()
        return subprocess.CompletedProcess(["jaxfuse", *argv], code, out, err)
    return call


def one_line_error(r, code: int) -> str:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


@pytest.fixture(scope="session")
def ckpt(tmp_path_factory) -> Path:
    """The 2-step ``--size 16`` training run the robustness tests use (trained once per session)."""
    from test_robustness import tiny_training_run
    return tiny_training_run(tmp_path_factory.getbasetemp()) / "checkpoints"


def write_pairs(folder: Path, n: int, shape=(16, 16), colour=False) -> Path:
    rng = np.random.default_rng(0)
    for sub in ("ir", "vis"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(folder / "ir" / f"{i:03d}.png")
        vis = rng.integers(0, 256, shape + ((3,) if colour else ()), dtype=np.uint8)
        Image.fromarray(vis).save(folder / "vis" / f"{i:03d}.png")
    return folder


# ----------------------------------------------------------------------------- dispatcher


def test_help_lists_every_subcommand_in_one_line_each(jaxfuse):
    r = jaxfuse("--help")
    assert r.returncode == 0 and r.stderr == ""
    listed = [l.split()[0] for l in r.stdout.splitlines() if l.startswith("  ")]
    assert listed == list(SUBCOMMANDS) == list(commands.COMMANDS)
    for name in SUBCOMMANDS:
        assert len([l for l in r.stdout.splitlines() if l.startswith(f"  {name} ")]) == 1
    assert "exit status: 0 done, 2 bad input or flags, 3 partial" in r.stdout


def test_help_does_not_import_jax():
    code = ("import sys; from jaxfuse.commands import main; rc = main(['--help']); "
            "assert 'jax' not in sys.modules, 'jax imported'; sys.exit(rc)")
    r = run("-c", code)
    assert r.returncode == 0, r.stderr
    assert "subcommands:" in r.stdout


@pytest.mark.parametrize("args,words", [
    (["frobnicate"], "error: unknown subcommand 'frobnicate'; choose one of train, fuse, evaluate, "
                     "convert, reproduce, bench (see jaxfuse --help)"),
    (["--frob"], "error: unknown flag '--frob'"),
], ids=["unknown subcommand", "unknown flag"])
def test_unknown_subcommand_is_one_line_exit_2(jaxfuse, args, words):
    assert one_line_error(jaxfuse(*args), 2).startswith(words)


def test_no_subcommand_prints_usage_exit_2(jaxfuse):
    r = jaxfuse()
    assert r.returncode == 2 and r.stdout == "" and "subcommands:" in r.stderr


def test_subcommand_flag_errors_are_one_line(jaxfuse):
    line = one_line_error(jaxfuse("fuse", "--strategy", "median", "--pairs", "x"), 2)
    assert "argument --strategy: invalid choice: 'median'" in line and line.endswith("(see --help)")


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_has_help_through_python_m_jaxfuse(name):
    if not (REPO / "jaxfuse" / "commands" / f"{name}.py").is_file():
        pytest.skip(f"jaxfuse/commands/{name}.py is not in this checkout")
    module = commands.command_module(name)
    assert callable(module.build_parser) and callable(module.main)
    r = run("-m", "jaxfuse", name, "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: ") and "--help" in r.stdout


def test_scripts_and_module_shims_are_the_commands():
    from jaxfuse import convert, evaluate
    for path in ("train.py", "fuse.py"):
        text = (REPO / path).read_text()
        assert f"from jaxfuse.commands.{path[:-3]} import main" in text and "run_main" in text
    assert callable(evaluate.main) and callable(convert.main)


# ----------------------------------------------------------------------------- exit codes


def test_exit_codes_are_one_set():
    assert (cli.EXIT_OK, cli.EXIT_UNEXPECTED, cli.EXIT_BAD_INPUT, cli.EXIT_PARTIAL,
            cli.EXIT_INTERRUPTED) == (0, 1, 2, 3, 130)
    doc = cli.__doc__
    for code in ("0", "1", "2", "3", "130"):
        assert re.search(rf"^ {code} ", doc, re.M), code
    readme = (REPO / "README.md").read_text()
    assert "## Exit codes" in readme


def _raises(exc):
    def main(argv):
        raise exc
    return main


@pytest.mark.parametrize("main,code,line", [
    (lambda argv: 0, 0, None),
    (lambda argv: 3, 3, None),
    (_raises(JaxfuseError("a.png", "exists", hint="overwrite")), 2,
     "error: a.png: exists; pass --overwrite to replace it"),
    (_raises(JaxfuseError(None, "{checkpoint_every} must be positive, got 0",
                          settings=("checkpoint_every",))), 2,
     "error: --checkpoint-every must be positive, got 0"),
    (_raises(JaxfuseError("o", "{out_dir} exists and is not a folder", settings=("out_dir",))), 2,
     "error: o: --out exists and is not a folder"),
    (_raises(Interrupted(None, "interrupted at step 7; x", hint="continue")), 130,
     "error: interrupted at step 7; x; continue with --resume"),
    (_raises(KeyboardInterrupt()), 130, "error: interrupted"),
    (_raises(PermissionError(13, "Permission denied", "/x/y")), 2, "error: /x/y: Permission denied"),
    (_raises(RuntimeError("boom\nmore")), 1,
     "error: unexpected RuntimeError: boom (set JAXFUSE_DEBUG=1 for details)"),
], ids=["ok", "partial", "hint", "setting", "out_dir", "interrupted", "ctrl-c", "oserror", "unexpected"])
def test_run_main_maps_failures_to_exit_codes(capsys, monkeypatch, main, code, line):
    monkeypatch.delenv("JAXFUSE_DEBUG", raising=False)
    assert cli.run_main(main, []) == code
    err = capsys.readouterr().err.strip()
    assert err == (line or "")


def test_library_words_settings_and_hints_without_flags():
    e = JaxfuseError("w/checkpoints", "already holds a training run", hint="resume")
    assert str(e) == ("w/checkpoints: already holds a training run; pass resume=True to continue "
                      "it or overwrite=True to start again")
    assert e.problem == "already holds a training run" and e.hint == "resume"
    assert cli.describe(e) == ("w/checkpoints: already holds a training run; pass --resume to "
                               "continue it or --overwrite to start again")
    e = JaxfuseError(None, "{steps} must be a positive integer, got 0", settings=("steps",))
    assert str(e) == e.problem == "steps must be a positive integer, got 0"
    e = JaxfuseError("x", "loss became nan", hint="try a lower {lr}", settings=("lr",))
    assert str(e) == "x: loss became nan; try a lower lr"
    assert cli.describe(e) == "x: loss became nan; try a lower --lr"


def test_library_messages_name_no_flags():
    """Flags are worded by the commands only: no ``--flag`` in a library module's strings."""
    import ast
    mine = ["checkpoint", "training", "pipeline", "evaluate", "comparison", "convert", "io",
            "xla", "assets", "errors"]
    for name in mine:
        tree = ast.parse((REPO / "jaxfuse" / f"{name}.py").read_text())
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                      and n.body and isinstance(n.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and id(node) not in docstrings:
                assert not re.search(r"(^|[\s(`])--[a-z]", node.value), (name, node.value)


# ----------------------------------------------------------------------------- fuse one pair


def test_fuse_one_pair(tmp_path, ckpt, jaxfuse):
    pairs = write_pairs(tmp_path / "p", 1, shape=(17, 23))
    ir, vis = pairs / "ir" / "000.png", pairs / "vis" / "000.png"
    out = tmp_path / "sub" / "f.png"
    r = jaxfuse("fuse", ir, vis, "--out", out, "--checkpoint", ckpt)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"fused {ir} + {vis} into {out}"
    with Image.open(out) as img:
        assert img.format == "PNG" and img.mode == "L" and img.size == (23, 17)
    # the same pair through a folder gives the same image
    r = jaxfuse("fuse", "--pairs", pairs, "--out", tmp_path / "folder", "--checkpoint", ckpt,
                "--no-progress")
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(np.asarray(Image.open(out)),
                                  np.asarray(Image.open(tmp_path / "folder" / "000.png")))
    # never over an existing file without --overwrite, checked before the model loads
    out.write_bytes(b"mine")
    r = jaxfuse("fuse", ir, vis, "--out", out, "--checkpoint", tmp_path / "absent")
    assert one_line_error(r, 2) == f"error: {out}: exists; pass --overwrite to replace it"
    assert out.read_bytes() == b"mine"
    r = jaxfuse("fuse", ir, vis, "--out", out, "--checkpoint", ckpt, "--overwrite")
    assert r.returncode == 0, r.stderr
    assert Image.open(out).size == (23, 17)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # atomic: no temporaries


def test_fuse_one_pair_colour_visible_is_rgb(tmp_path, ckpt, jaxfuse):
    pairs = write_pairs(tmp_path / "p", 1, colour=True)
    out = tmp_path / "f.jpg"
    r = jaxfuse("fuse", pairs / "ir" / "000.png", pairs / "vis" / "000.png", "--out", out,
                "--checkpoint", ckpt)
    assert r.returncode == 0, r.stderr
    with Image.open(out) as img:
        assert img.format == "JPEG" and img.mode == "RGB" and img.size == (16, 16)


@pytest.mark.parametrize("args,words", [
    (["{ir}"], "the following arguments are required: VIS (after IR)"),
    (["{ir}", "{vis}"], "with IR VIS, --out names the fused image file"),
    (["{ir}", "{vis}", "--pairs", "{p}", "--out", "x.png"], "give IR VIS or --pairs DIR, not both"),
    ([], "the following arguments are required: --pairs"),
    (["{ir}", "{vis}", "--out", "{tmp}"], "{tmp}: is a folder; with one pair --out names the fused image file"),
    (["{ir}", "{vis}", "--out", "{tmp}/f.txt"], "{tmp}/f.txt: the fused image's name must end in .png"),
    (["{ir}", "{vis}", "--out", "{ir}"], "{ir}: is an input image"),
    (["{ir}", "{tmp}/nope.png", "--out", "{tmp}/f.png"], "{tmp}/nope.png: no such file"),
], ids=["no vis", "no out", "both", "neither", "out is a folder", "out suffix", "out is input",
        "missing vis"])
def test_fuse_one_pair_bad_flags(tmp_path, jaxfuse, args, words):
    pairs = write_pairs(tmp_path / "p", 1)
    f = dict(ir=pairs / "ir" / "000.png", vis=pairs / "vis" / "000.png", p=pairs, tmp=tmp_path)
    # a checkpoint that does not exist: everything is refused before any model is read
    r = jaxfuse("fuse", *[a.format(**f) for a in args], "--checkpoint", tmp_path / "absent")
    assert words.format(**f) in one_line_error(r, 2)


# ----------------------------------------------------------------------------- concurrency


def test_two_fuse_processes_into_one_folder(tmp_path, ckpt):
    pairs = write_pairs(tmp_path / "p", 40)
    out = tmp_path / "out"
    cmd = [sys.executable, str(REPO / "fuse.py"), "--pairs", str(pairs), "--out", str(out),
           "--checkpoint", str(ckpt), "--no-progress"]
    procs = [subprocess.Popen(cmd, cwd=REPO, env=SCRIPT_ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
    for stdout, stderr, code in results:
        assert code == 0, stderr
        assert "Traceback" not in stderr and "error" not in stderr, stderr
    written = [int(re.match(r"fused (\d+) pair", s).group(1)) for s, _, _ in results]
    assert sum(written) >= 40  # between them every pair was fused (some perhaps twice)
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([f"{i:03d}.png" for i in range(40)] + ["_overview.png"])
    for i in range(40):
        with Image.open(out / f"{i:03d}.png") as img:
            img.load()
            assert img.size == (16, 16)


def test_output_another_process_finished_meanwhile_is_not_an_error(tmp_path, monkeypatch):
    """The race itself, made certain: the file appears between the check and the write."""
    from jaxfuse import pipeline
    pairs = write_pairs(tmp_path / "p", 3)
    out = tmp_path / "out"

    def fuse_while_another_process_finishes(params, ir, vis, strategy, fuse_fn):
        fused = np.zeros(ir.shape, np.uint8)
        if not (out / "001.png").exists():
            Image.fromarray(np.full(ir.shape, 7, np.uint8)).save(out / "001.png")
        return fused

    monkeypatch.setattr(pipeline, "_fuse", fuse_while_another_process_finishes)
    report = pipeline.fuse_folder(pairs, out, None, progress=False)
    assert not report.failed
    assert [n for n, _ in report.written] == ["000", "002"]
    assert [n for n, _ in report.skipped_existing] == ["001"]
    assert np.asarray(Image.open(out / "001.png")).max() == 7  # the other process's file is kept


# ----------------------------------------------------------------------------- training


def _steps(workdir: Path) -> list[int]:
    from jaxfuse.checkpoint import step_folders
    return [s for s, _ in step_folders(workdir / "checkpoints")]


def test_sigint_during_training_says_what_happened(tmp_path):
    w = tmp_path / "w"
    cmd = [sys.executable, str(REPO / "train.py"), "--workdir", str(w), "--size", "16",
           "--steps", "100000", "--checkpoint-every", "7", "--no-progress"]
    # SIGINT as a terminal delivers it, even when the tests run in the background (where
    # the shell starts them with SIGINT ignored, and the child would inherit that)
    proc = subprocess.Popen(cmd, cwd=REPO, env=SCRIPT_ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    t0 = time.monotonic()
    while not _steps(w):
        if proc.poll() is not None or time.monotonic() - t0 > 240:
            proc.kill()
            pytest.fail(f"no checkpoint appeared: {proc.communicate()}")
        time.sleep(0.01)
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    line = err.strip().splitlines()[-1]
    m = re.fullmatch(r"error: interrupted at step (\d+); (?:steps since the checkpoint at (\d+) will "
                     r"be redone|the checkpoint at (\d+) holds every step so far); continue with "
                     r"--resume", line)
    assert m, line
    step, saved = int(m.group(1)), int(m.group(2) or m.group(3))
    assert saved == max(_steps(w)) and saved % 7 == 0 and saved <= step
    assert (w / "loss_curves.png").stat().st_size > 0  # the interrupted run's curves
    assert not (w / "summary.json").exists()
    # the resumed run says where it starts, and finishes
    r = run("train.py", "--workdir", w, "--size", "16", "--steps", saved + 3, "--checkpoint-every",
            "7", "--no-progress", "--resume")
    assert r.returncode == 0, r.stderr
    assert f"resuming at step {saved} of {saved + 3} from {w / 'checkpoints' / str(saved)}" in r.stderr


def test_keep_checkpoints(tmp_path, jaxfuse):
    w = tmp_path / "w"
    r = jaxfuse("train", "--workdir", w, "--size", "16", "--steps", "6", "--checkpoint-every", "1",
                "--keep-checkpoints", "3", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert _steps(w) == [4, 5, 6]
    assert sorted(p.name for p in (w / "checkpoints").iterdir()) == ["4", "5", "6"]
    r = jaxfuse("train", "--workdir", w, "--size", "16", "--steps", "6", "--keep-checkpoints", "-1",
                "--resume", "--no-progress")
    assert one_line_error(r, 2) == "error: --keep-checkpoints must be 0 (keep all) or positive, got -1"


def test_keep_every_checkpoint_with_zero(tmp_path):
    from jaxfuse.training import TrainConfig, train_and_evaluate
    lines = []
    cfg = TrainConfig(size=16, steps=4, checkpoint_every=1)
    train_and_evaluate(cfg, tmp_path / "w", progress=False, keep_checkpoints=0)
    assert _steps(tmp_path / "w") == [1, 2, 3, 4]
    cfg = TrainConfig(size=16, steps=5, checkpoint_every=1)
    train_and_evaluate(cfg, tmp_path / "w", progress=False, resume=True, log=lines.append)
    assert lines == [f"resuming at step 4 of 5 from {tmp_path / 'w' / 'checkpoints' / '4'}"]
    assert _steps(tmp_path / "w") == [4, 5]  # the default keeps two


# ----------------------------------------------------------------------------- shipped checkpoint


def test_shipped_checkpoint():
    from jaxfuse import assets, checkpoint
    path = assets.shipped_checkpoint()
    assert path == assets.shipped_checkpoint("res2netfuse") and path.name == "res2netfuse"
    assert assets.shipped_models() == ["fusiongan", "res2netfuse", "res2netfuse_many"]
    step_dir, meta = checkpoint.latest_meta(path)
    assert step_dir == path / "2000" and meta["step"] == 2000
    with pytest.raises(JaxfuseError, match="no shipped checkpoint of this name") as e:
        assets.shipped_checkpoint("nope")
    assert "it has fusiongan, res2netfuse" in str(e.value)
    assert cli.describe(e.value).endswith("; train one and pass it as --checkpoint")


def test_cache_dir_follows_xdg(monkeypatch, tmp_path):
    from jaxfuse import assets
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert assets.cache_dir() == tmp_path / "jaxfuse" / "xla"
