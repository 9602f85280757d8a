"""The reproduction command: runs end to end, its report agrees with its CSVs.

The --quick runs train for 3 steps, so the numbers are meaningless; what is
checked is the machinery: every output exists, every number in the report's
tables is the CSV's number, the paper's rows are printed, and a second run
reuses the finished work.
"""

import csv
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import conftest
from conftest import REPO, SHARED_DATA, TNO21, needs_tno21
from jaxfuse import cli, reproduce
from jaxfuse.errors import JaxfuseError
from jaxfuse.reproduce import CALIBRATION, PAPER_BASELINES, PAPER_METRIC_ORDER, PAPER_SINGLE, fmt

OUTPUTS = ("report.md", "table4.csv", "table2.csv", "table3.csv", "seeds.csv", "per_pair.csv",
           "per_image.csv", "montage.png", "many_loss_curves.png")


# CPU and a compile cache shared by the scripts the tests run, where conftest offers one.
ENV = getattr(conftest, "SCRIPT_ENV", None)


def run(*args):
    return subprocess.run([sys.executable, "-m", "jaxfuse.reproduce", *args], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=300)


def markdown_tables(report: str) -> dict[str, list[list[str]]]:
    """Each Markdown table of the report, keyed by the CSV named after it."""
    tables, current, last = {}, None, None
    for line in report.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if current is None:
                current = []
            if not all(set(c) <= {"-"} for c in cells):  # skip the |---| rule
                current.append(cells)
            continue
        if current is not None:
            last, current = current, None
        m = re.match(r"CSV: `(\w+)\.csv`", line)
        if m:
            tables[m.group(1)] = last
    return tables


def assert_tables_match_csvs(folder, report: str) -> dict:
    """Every Markdown table of ``report`` shows exactly its CSV's numbers; returns the tables."""
    md = markdown_tables(report)
    for name, rows in md.items():
        with open(folder / f"{name}.csv", newline="") as f:
            want = list(csv.reader(f))
        assert rows[0] == want[0], name
        assert len(rows) == len(want), name
        for got_row, csv_row in zip(rows[1:], want[1:]):
            assert got_row[0] == csv_row[0]
            for got, cell in zip(got_row[1:], csv_row[1:]):
                try:
                    value = float(cell)
                except ValueError:
                    assert got == (cell or "–"), (name, got_row[0])
                else:
                    assert got == fmt(value), (name, got_row[0], got, cell)
    return md


def check_outputs(out, stdout, baselines=reproduce.BASELINES):
    for name in OUTPUTS:
        assert (out / name).stat().st_size > 0, name
    report = (out / "report.md").read_text()
    assert "python -m jaxfuse.reproduce --quick" in report and "## Timing and device" in report
    assert "Loss curves of the many-image model: `many_loss_curves.png`." in report
    md = assert_tables_match_csvs(out, report)
    assert {"table4", "table2", "table3", "seeds"} <= set(md)
    # The printed Table IV holds the paper's Res2NetFuse rows, in the paper's metric order.
    for s in ("l1", "mean"):
        line = next(x for x in stdout.splitlines() if x.startswith(f"paper {s} "))
        assert line.split()[2:] == [fmt(PAPER_SINGLE[s][m]) for m in PAPER_METRIC_ORDER]
        ours = next(x for x in stdout.splitlines() if x.startswith(f"ours {s} "))
        assert len(ours.split()) == 2 + len(PAPER_METRIC_ORDER)
    # The comparison networks' table: ours for each trained strategy, beside the paper's rows.
    networks = [b for b in baselines if reproduce.BASELINE_KINDS[b] == "network"]
    assert ("baselines" in md) == bool(networks)
    for arch in networks:
        for kind in ("single", "many"):
            for s in reproduce.baseline_strategies(arch):
                assert any(r[0] == f"ours {arch} {kind}-image {s}" for r in md["baselines"])
            assert any(r[0] == f"ours {arch} {kind}-image" for r in md["table3"])
        for s, want in PAPER_BASELINES[arch].items():
            label = f"paper {arch} {s or '(strategy not stated)'}"
            line = next(x for x in stdout.splitlines() if x.startswith(label + " "))
            assert line[len(label):].split() == [fmt(want[m]) for m in PAPER_METRIC_ORDER]
    check_comparison(md["comparison"], baselines)
    montage = np.asarray(Image.open(out / "montage.png"))
    assert montage.ndim == 3 and montage.shape[1] > montage.shape[0] > 0  # a row per pair


def check_comparison(rows, baselines):
    """The whole-Table-IV table: ours and the paper's row for every method asked for, and the
    percentage rows are computed from them."""
    table = {r[0]: r[1:] for r in rows}
    for name in list(baselines) + [reproduce.MAIN_ARCH]:
        title = reproduce.paper.title(name)
        strategies = reproduce.baseline_strategies(name) if name in reproduce.BASELINES \
            else reproduce.STRATEGIES
        paper = PAPER_BASELINES.get(name, PAPER_SINGLE)
        for s in strategies:
            label = title if len(strategies) == 1 else f"{title} {s}"
            want = paper.get(s, paper.get(None))
            plabel = f"paper {label}" if s in paper else f"paper {title}"
            assert table[plabel] == [fmt(want[m]) for m in PAPER_METRIC_ORDER], plabel
            ours = [float(v) for v in table[f"ours {label}"]]
            rel = [float(v) for v in table[f"(ours − paper)/paper % {label}"]]
            for o, r, m in zip(ours, rel, PAPER_METRIC_ORDER):
                # ours is printed to 5 decimals: allow that rounding in the recomputed percentage
                slack = 100 * 0.6e-5 / abs(want[m]) + 1e-3 * max(1.0, abs(r))
                assert abs(r - 100 * (o - want[m]) / want[m]) < slack, (label, m)
        if name in reproduce.PUBLISHED_RERUNS:
            assert f"published re-run {title}" in table


@needs_tno21
def test_quick_on_tno21(tmp_path, monkeypatch):
    out = tmp_path / "r"
    r = run("--quick", "--pairs", str(TNO21), "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    check_outputs(out, r.stdout)
    monkeypatch.chdir(REPO)  # where run() runs it
    assert f"`{reproduce.shown(TNO21)}`, 2 pair(s)" in (out / "report.md").read_text()


def test_quick_on_its_own_pairs_and_rerun_reuses(tmp_path):
    # No --pairs: --quick writes three small synthetic pairs into <out>/pairs.
    out = tmp_path / "r"
    args = ("--quick", "--out", str(out), "--max-pairs", "3", "--baselines", "densefuse")
    r = run(*args)
    assert r.returncode == 0, r.stderr[-2000:]
    check_outputs(out, r.stdout, baselines=("densefuse",))
    assert sorted(p.name for p in (out / "pairs" / "ir").iterdir()) == ["p0.png", "p1.png", "p2.png"]
    report = (out / "report.md").read_text()
    assert "3 pair(s)" in report and "l1, 2 of 3 pairs: highest" in report  # leave-one-out rows
    first = (out / "table4.csv").read_text()
    # Run again: nothing is retrained or refused, and the numbers are the same.
    r = run(*args)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("reusing the finished run") == 4 and "fused 0 new of 3" in r.stdout
    assert (out / "table4.csv").read_text() == first


def test_a_many_image_checkpoint_is_described_by_its_own_record(tmp_path):
    # --many-checkpoint: the report states the checkpoint's recipe (steps, batch, data), not
    # the --many-* settings, and draws its loss curves from the checkpoint's history.
    ck = tmp_path / "many"
    r = subprocess.run([sys.executable, "train.py", "--images", "bundled", "--steps", "3",
                        "--batch", "2", "--size", "64", "--workdir", str(ck), "--no-progress"],
                       cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    out = tmp_path / "r"
    r = run("--quick", "--out", str(out), "--max-pairs", "2", "--baselines", "--compare-loss",
            "none", "--many-steps", "7", "--many-checkpoint", str(ck / "checkpoints"))
    assert r.returncode == 0, r.stderr[-2000:]
    report = (out / "report.md").read_text()
    many = next(line for line in report.splitlines() if line.startswith("- many-image training"))
    assert "--many-checkpoint" in many and ", 3 steps, batch 2, Adam lr 0.0001," in many, many
    assert "the 20 bundled natural images (20 images, 0 skipped, 0.3 epochs)" in many, many
    assert "64×64" in many and "7 steps" not in report
    assert "ours sees 3 batches of 2 (6 samples)" in report
    curve = np.asarray(Image.open(out / "many_loss_curves.png"))
    assert curve.ndim == 3 and curve.shape[1] > curve.shape[0]
    assert "Loss curves of the many-image model: `many_loss_curves.png`." in report


def test_missing_pairs_is_one_line_error(tmp_path):
    r = run("--quick", "--pairs", str(tmp_path / "nope"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and r.stderr.startswith("error:") and r.stderr.count("\n") == 1
    assert "does not exist" in r.stderr
    # No pairs folder and no --quick: the command says which flag to pass, the library which setting.
    r = run("--out", str(tmp_path / "o"))
    assert r.returncode == 2 and r.stderr.startswith("error:") and r.stderr.count("\n") == 1
    assert "pass --pairs DIR" in r.stderr
    with pytest.raises(JaxfuseError, match="no TNO pairs folder") as e:
        reproduce.reproduce(reproduce.Settings(), tmp_path / "o")
    assert "--" not in str(e.value) and "pass --pairs DIR" in cli.describe(e.value)


def test_bad_settings_name_the_setting_and_the_flag():
    for settings, name, flag in ((reproduce.Settings(steps=0), "steps", "--steps"),
                                 (reproduce.Settings(many_steps=0), "many_steps", "--many-steps"),
                                 (reproduce.Settings(crop=5), "crop", "--crop"),
                                 (reproduce.Settings(seeds=(1, 1)), "seeds", "--seeds")):
        with pytest.raises(JaxfuseError) as e:
            settings.validate()
        assert str(e.value).startswith(name + " ") and "--" not in str(e.value)
        assert cli.describe(e.value).startswith(flag + " ")


@pytest.mark.skipif(not (SHARED_DATA.parent / "SPEC.md").is_file(), reason="needs ../shared/SPEC.md")
def test_embedded_paper_rows_match_spec():
    spec = (SHARED_DATA.parent / "SPEC.md").read_text()
    header = next(x for x in spec.splitlines() if x.startswith("| method | SSIM_a"))
    cols = [c.strip() for c in header.strip("|").split("|")][1:]
    assert cols == ["SSIM_a", "EN", "MI", "Q_abf", "FMI_dct", "FMI_w", "SCD", "MS_SSIM"]
    for label, table, s in (("Res2NetFuse l1", PAPER_SINGLE, "l1"), ("Res2NetFuse mean", PAPER_SINGLE, "mean"),
                            ("l1", CALIBRATION, "l1"), ("mean", CALIBRATION, "mean"),
                            ("DenseFuse", PAPER_BASELINES["densefuse"], None),
                            ("MSDNet l1", PAPER_BASELINES["msdnet"], "l1"),
                            ("MSDNet mean", PAPER_BASELINES["msdnet"], "mean")):
        line = next(x for x in spec.splitlines() if x.startswith(f"| {label} |"))
        values = [float(c) for c in line.strip("|").split("|")[1:]]
        assert values == [table[s][m] for m in PAPER_METRIC_ORDER], label


DOCS = REPO / "docs" / "reproduction"


def test_committed_report_is_whole_and_consistent():
    """The report under docs/ is the command's own output: tables = CSVs, README's command."""
    report = (DOCS / "report.md").read_text()
    md = assert_tables_match_csvs(DOCS, report)
    assert {"table4", "baselines", "table2", "table3", "seeds"} <= set(md)
    command = next(line for line in report.splitlines() if line.startswith("python -m jaxfuse.reproduce"))
    readme = (REPO / "README.md").read_text()
    assert command in readme.replace("\\\n    ", "")
    assert "--quick" not in command
    for s in ("l1", "mean"):  # the paper's rows are the embedded ones
        row = next(r for r in md["table4"] if r[0] == f"paper {s}")
        assert row[1:] == [fmt(PAPER_SINGLE[s][m]) for m in PAPER_METRIC_ORDER]
    # both comparison networks trained single-image (and many-image unless the command says
    # not), beside the paper's rows
    names = [r[0] for r in md["baselines"]]
    kinds = ("single-image",) + (() if "--no-baseline-many" in command else ("many-image",))
    words = command.split()
    asked = reproduce.BASELINES  # the methods the command ran (default: all)
    if "--baselines" in words:
        rest = words[words.index("--baselines") + 1:]
        asked = tuple(w for w in rest[:next((i for i, w in enumerate(rest) if w.startswith("--")),
                                             len(rest))])
    for arch in (a for a in reproduce.paper.NETWORK_BASELINES if a in asked):
        for kind in kinds:
            for strategy in reproduce.baseline_strategies(arch):
                assert f"ours {arch} {kind} {strategy}" in names
        for s, values in PAPER_BASELINES[arch].items():
            label = f"paper {arch} {s or '(strategy not stated)'}"
            row = next(r for r in md["baselines"] if r[0] == label)
            assert row[1:] == [fmt(values[m]) for m in PAPER_METRIC_ORDER]
    check_comparison(md["comparison"], asked)  # every method run, beside the paper's row
    # the many-image model of Tables II–III comes from the folder pipeline
    many = next(line for line in report.splitlines() if line.startswith("- many-image training"))
    assert "(`jaxfuse.data`)" in many and "images, " in many
    if "--many-checkpoint" in words:  # a committed model: the report states its own record
        from jaxfuse import checkpoint
        folder = REPO / words[words.index("--many-checkpoint") + 1]
        _, meta = checkpoint.latest_meta(folder)
        assert f"`--many-checkpoint {words[words.index('--many-checkpoint') + 1]}`" in many
        assert f", {meta['step']} steps, batch {meta['train']['batch']}," in many
        assert (DOCS / "many_loss_curves.png").is_file()
    assert np.asarray(Image.open(DOCS / "montage.png")).ndim == 3


def test_report_shows_nearby_paths_relative(tmp_path, monkeypatch):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    assert reproduce.shown(tmp_path / "a" / "data") == "../data"
    assert reproduce.shown(work / "pairs") == "pairs"
    far = tmp_path / "elsewhere" / "pairs"  # two levels up: printed as given
    assert reproduce.shown(far) == str(far)


def test_montage_has_one_column_per_label():
    values = (0, 60, 120, 180, 240)
    cells = [np.full((40, 60), v, np.uint8) for v in values]
    img = reproduce.montage([cells, cells], [f"c{v}" for v in values], height=30)
    w, gap, header = 45, 6, 22  # 60 px wide at 40 rows → 45 at 30
    assert img.shape == (header + 2 * (30 + gap), len(values) * w + (len(values) - 1) * gap, 3)
    first_row = img[header:header + 30]
    for i, v in enumerate(values):
        assert np.all(first_row[:, i * (w + gap):i * (w + gap) + w] == v)
