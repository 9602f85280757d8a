"""Tests for jaxfuse.evaluate and jaxfuse.comparison (the library) and ``jaxfuse evaluate`` (the command)."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxfuse import evaluate as E
from jaxfuse import metrics as M
from jaxfuse.io import find_pairs

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
REF_FILE = DATA / "reference_metrics" / "tno21.json"
NO_DATA = f"reference data absent: {REF_FILE} not found (expected ../shared/data beside the repo)"

REF_TO_OURS = {"EN": "EN", "MI_2EN": "MI", "SCD": "SCD", "SSIM_a": "SSIM_a", "MS_SSIM": "MS_SSIM",
               "FMI_dct": "FMI_dct", "FMI_w": "FMI_w", "Qabf": "Qabf"}


def run_cli(*args, cwd=ROOT):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "jaxfuse.evaluate", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def _img(seed, shape=(48, 56)):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[: shape[0], : shape[1]]
    a = 120 + 70 * np.sin(x / 4 + seed) * np.cos(y / 6) + rng.normal(0, 15, shape)
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


@pytest.fixture
def synthetic(tmp_path):
    """pairs/ir, pairs/vis with a, b, c; fused/ with a.png, b.jpg (c missing)."""
    for sub in ("ir", "vis"):
        (tmp_path / "pairs" / sub).mkdir(parents=True)
    (tmp_path / "fused").mkdir()
    for i, name in enumerate("abc"):
        Image.fromarray(_img(3 * i)).save(tmp_path / "pairs" / "ir" / f"{name}.png")
        Image.fromarray(_img(3 * i + 1)).save(tmp_path / "pairs" / "vis" / f"{name}.png")
    Image.fromarray(_img(100)).save(tmp_path / "fused" / "a.png")
    Image.fromarray(_img(101)).save(tmp_path / "fused" / "b.bmp")
    return tmp_path


def test_evaluate_pairs_library(synthetic):
    pairs, problems = find_pairs(synthetic / "pairs")
    assert not problems
    res = E.evaluate_pairs(pairs, synthetic / "fused", metrics=["EN", "mi", "SCD"],
                           convention="standard", progress=False)
    assert res["metrics"] == ["EN", "MI", "SCD"]
    assert list(res["per_pair"]) == ["a", "b"]
    assert [p.name for p, _ in res["skipped"]] == ["c"]
    ir = np.asarray(Image.open(synthetic / "pairs" / "ir" / "b.png"))
    vis = np.asarray(Image.open(synthetic / "pairs" / "vis" / "b.png"))
    fu = np.asarray(Image.open(synthetic / "fused" / "b.bmp"))
    assert res["per_pair"]["b"]["MI"] == M.mi(ir, vis, fu)  # standard: real MI
    for n in res["metrics"]:
        assert res["mean"][n] == pytest.approx((res["per_pair"]["a"][n] + res["per_pair"]["b"][n]) / 2)
    table = E.format_table(res)
    assert "mean (2)" in table and table.splitlines()[0].split() == ["pair", "EN", "MI", "SCD"]


def test_evaluate_pairs_rejects_unknown_metric(synthetic):
    pairs, _ = find_pairs(synthetic / "pairs")
    with pytest.raises(ValueError, match="unknown metric 'XYZ'"):
        E.evaluate_pairs(pairs, synthetic / "fused", metrics=["XYZ"], progress=False)


def test_find_fused_ambiguous(tmp_path):
    Image.fromarray(_img(1)).save(tmp_path / "01.png")
    Image.fromarray(_img(1)).save(tmp_path / "01.jpg")
    Image.fromarray(_img(1)).save(tmp_path / "02.tif")
    found, problems = E.find_fused(tmp_path, ["01", "02", "03"])
    assert list(found) == ["02"]
    assert [("several" in m, "no fused" in m) for _, m in problems] == [(True, False), (False, True)]


def test_write_result_json_csv_and_no_overwrite(tmp_path):
    res = {"convention": "paper", "metrics": ["EN", "MI"], "per_pair": {"x": {"EN": 1.5, "MI": 3.0}},
           "mean": {"EN": 1.5, "MI": 3.0}, "skipped": []}
    j = E.write_result(res, tmp_path / "r.json")
    assert json.loads(j.read_text())["per_pair"] == {"x": {"EN": 1.5, "MI": 3.0}}
    c = E.write_result(res, tmp_path / "r.csv")
    rows = list(csv.reader(c.open()))
    assert rows == [["pair", "EN", "MI"], ["x", "1.5", "3.0"], ["mean", "1.5", "3.0"]]
    with pytest.raises(Exception, match="exists"):
        E.write_result(res, tmp_path / "r.json")
    E.write_result(res, tmp_path / "r.json", overwrite=True)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


# ---------------------------------------------------------------------------
# The command line.

@pytest.mark.skipif(not REF_FILE.exists(), reason=NO_DATA)
def test_cli_paper_convention_reproduces_reference(tmp_path):
    ref = json.loads(REF_FILE.read_text())["methods"]["rfnnest"]
    names = ["01", "05", "11"]  # three small pairs
    for sub in ("ir", "vis"):
        (tmp_path / "pairs" / sub).mkdir(parents=True)
        for n in names:
            os.symlink(DATA / "tno21" / sub / f"{n}.png", tmp_path / "pairs" / sub / f"{n}.png")
    out = tmp_path / "x.json"
    r = run_cli("--pairs", tmp_path / "pairs", "--fused", DATA / "tno21_fused" / "rfnnest",
                "--convention", "paper", "--out", out)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    doc = json.loads(out.read_text())
    assert list(doc["per_pair"]) == names
    assert list(doc["mean"]) == list(M.PAPER_METRICS)
    for n in names:
        for key, ours in REF_TO_OURS.items():
            want, got = ref["per_pair"][n][key], doc["per_pair"][n][ours]
            tol = 1e-8 if key == "Qabf" else 1e-6 * abs(want)  # rfnnest's Qabf came from Octave
            assert abs(got - want) <= tol, (n, key, got, want)
    for m in M.PAPER_METRICS:
        assert doc["mean"][m] == pytest.approx(sum(doc["per_pair"][n][m] for n in names) / 3, rel=1e-12)
    # The printed table carries the per-pair rows and the mean, to 5 decimals.
    assert f"{doc['mean']['MI']:.5f}" in r.stdout and "mean (3)" in r.stdout
    # CSV, and the refusal to overwrite.
    r2 = run_cli("--pairs", tmp_path / "pairs", "--fused", DATA / "tno21_fused" / "rfnnest",
                 "--metrics", "EN,Qabf", "--out", out)
    assert r2.returncode == 2 and r2.stderr.strip() == f"error: {out}: exists; pass --overwrite to replace it"
    r3 = run_cli("--pairs", tmp_path / "pairs", "--fused", DATA / "tno21_fused" / "rfnnest",
                 "--metrics", "EN", "Qabf", "--out", tmp_path / "y.csv", "--no-progress")
    assert r3.returncode == 0, r3.stderr
    rows = list(csv.reader((tmp_path / "y.csv").open()))
    assert rows[0] == ["pair", "EN", "Qabf"] and [r[0] for r in rows[1:]] == names + ["mean"]
    assert float(rows[1][1]) == doc["per_pair"]["01"]["EN"]


def test_cli_standard_convention_and_bad_pair(synthetic):
    # a corrupt fused image and a size mismatch: both reported, the good pair still scored.
    (synthetic / "fused" / "b.bmp").write_bytes(b"not an image")
    Image.fromarray(_img(7, (40, 40))).save(synthetic / "fused" / "c.png")
    out = synthetic / "res.json"
    r = run_cli("--pairs", synthetic / "pairs", "--fused", synthetic / "fused",
                "--convention", "standard", "--out", out)
    assert r.returncode == 3  # partial: some pairs scored, the others reported
    assert "Traceback" not in r.stderr
    err = [l for l in r.stderr.splitlines() if l.startswith("error:")]
    assert any("b.bmp" in l and "not an image" in l for l in err), r.stderr
    assert any("c.png" in l and "does not match" in l for l in err), r.stderr
    assert "summary: scored 1 pair(s); skipped 2 item(s)" in r.stderr
    doc = json.loads(out.read_text())
    assert list(doc["per_pair"]) == ["a"]
    assert list(doc["per_pair"]["a"]) == list(M.STANDARD_METRICS)
    assert all(math.isfinite(v) for v in doc["mean"].values())
    assert len(doc["skipped"]) == 2


@pytest.mark.parametrize("args,needle", [
    (["--pairs", "{tmp}/nope", "--fused", "{tmp}/fused"], "nope: folder does not exist"),
    (["--pairs", "{tmp}/pairs", "--fused", "{tmp}/nofused"], "nofused: folder does not exist"),
    (["--pairs", "{tmp}/pairs", "--fused", "{tmp}/fused", "--metrics", "EN,BOGUS"], "unknown metric 'BOGUS'"),
    (["--pairs", "{tmp}/pairs", "--fused", "{tmp}/fused", "--convention", "kit"], "invalid choice: 'kit'"),
    (["--pairs", "{tmp}/pairs", "--fused", "{tmp}/fused", "--out", "{tmp}/r.txt"], "must end in .json or .csv"),
    (["--pairs", "{tmp}/pairs", "--fused", "{tmp}/fused", "--out", "{tmp}/no/dir/r.json"], "output folder does not exist"),
    (["--fused", "{tmp}/fused"], "required: --pairs"),
])
def test_cli_errors_are_one_line(synthetic, args, needle):
    r = run_cli(*[a.format(tmp=synthetic) for a in args])
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], r.stderr
    assert r.stdout == ""


def test_cli_no_pair_scored(synthetic):
    for p in (synthetic / "fused").iterdir():
        p.unlink()
    Image.fromarray(_img(5)).save(synthetic / "fused" / "zzz.png")
    r = run_cli("--pairs", synthetic / "pairs", "--fused", synthetic / "fused", "--metrics", "EN")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "no pair could be scored" in r.stderr.splitlines()[-1]


# ---------------------------------------------------------------------------
# Several methods in one run.

METHODS = ("alpha", "beta", "gamma")


@pytest.fixture
def three_methods(tmp_path):
    """pairs/ with a, b (48x56); fused/<method>/ for three methods of clearly different quality."""
    for sub in ("ir", "vis"):
        (tmp_path / "pairs" / sub).mkdir(parents=True)
    dirs = {}
    for m in METHODS:
        dirs[m] = tmp_path / "fused" / m
        dirs[m].mkdir(parents=True)
    rng = np.random.default_rng(7)
    for i, name in enumerate("ab"):
        ir, vis = _img(5 * i), _img(5 * i + 2)
        Image.fromarray(ir).save(tmp_path / "pairs" / "ir" / f"{name}.png")
        Image.fromarray(vis).save(tmp_path / "pairs" / "vis" / f"{name}.png")
        avg = (ir.astype(np.float64) + vis) / 2
        noisy = np.clip(avg + rng.normal(0, 40, avg.shape), 0, 255)
        Image.fromarray(np.rint(avg).astype(np.uint8)).save(dirs["alpha"] / f"{name}.png")
        Image.fromarray(ir).save(dirs["beta"] / f"{name}.png")
        Image.fromarray(np.rint(noisy).astype(np.uint8)).save(dirs["gamma"] / f"{name}.png")
    return tmp_path, dirs


def _expected_ranks(means: dict, metric: str, higher: bool) -> dict:
    """Rank 1 = best; ties share the mean of their places (computed independently of the code)."""
    vals = {m: means[m][metric] for m in means}
    out = {}
    for m, v in vals.items():
        better = sum((w > v) if higher else (w < v) for w in vals.values())
        tied = sum(w == v for w in vals.values())  # includes m itself
        out[m] = better + (tied + 1) / 2
    return out


def _md_rows(text: str, first_header: str = "method") -> list[list[str]]:
    """The first Markdown table in ``text`` (header row first, the alignment row dropped)."""
    lines = [l for l in text.splitlines() if l.startswith("| ")]
    start = next(i for i, l in enumerate(lines) if l.startswith(f"| {first_header} |"))
    rows = []
    for l in lines[start:]:
        if rows and l.startswith(f"| {first_header} |"):
            break
        cells = [c.strip() for c in l.strip("|").split(" | ")]
        if not set("".join(cells)) <= set(":- "):
            rows.append(cells)
    return rows


@pytest.mark.parametrize("convention", ["paper", "standard"])
def test_cli_several_methods(three_methods, convention):
    tmp, dirs = three_methods
    out = tmp / "runs" / "cmp"  # not there yet: created
    r = run_cli("--pairs", tmp / "pairs", "--fused", *dirs.values(), "--convention", convention,
                "--out", out, "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    conv = M.get_convention(convention)
    names = list(conv.defaults)
    want = [f"{m}.{s}" for m in METHODS for s in ("json", "csv")] + list(E.COMPARISON_FILES)
    assert sorted(p.name for p in out.iterdir()) == sorted(want)

    # Per-method files are the one-method format.
    means = {}
    for m in METHODS:
        doc = json.loads((out / f"{m}.json").read_text())
        assert list(doc["per_pair"]) == ["a", "b"] and doc["convention"] == convention
        assert list(doc["mean"]) == names
        means[m] = doc["mean"]
        rows = list(csv.reader((out / f"{m}.csv").open()))
        assert rows[0] == ["pair"] + names and [x[0] for x in rows[1:]] == ["a", "b", "mean"]
    assert means["beta"] != means["alpha"] != means["gamma"]

    # comparison.csv: the same means, the ranks and the best row.
    rows = list(csv.DictReader((out / "comparison.csv").open()))
    assert [x["method"] for x in rows] == list(METHODS) + ["best"]
    by = {x["method"]: x for x in rows}
    lower = [n for n in names if not conv.higher_is_better(n)]
    if convention == "standard":
        assert lower == ["Nabf"]  # a lower-is-better column is checked below
    ranks = {n: _expected_ranks(means, n, conv.higher_is_better(n)) for n in names}
    for m in METHODS:
        assert by[m]["pairs"] == "2"
        for n in names:
            assert float(by[m][n]) == means[m][n]  # exactly the per-method mean
            assert float(by[m][f"rank_{n}"]) == ranks[n][m], (m, n)
        assert float(by[m]["mean_rank"]) == pytest.approx(sum(ranks[n][m] for n in names) / len(names))
    for n in names:
        best = [m for m in METHODS if ranks[n][m] == min(ranks[n].values())]
        assert by["best"][n].split(";") == best, n
        pick = max if conv.higher_is_better(n) else min
        assert pick(means, key=lambda m: means[m][n]) in best
    mean_ranks = {m: float(by[m]["mean_rank"]) for m in METHODS}
    assert by["best"]["mean_rank"].split(";") == [m for m in METHODS
                                                  if mean_ranks[m] == min(mean_ranks.values())]

    # comparison.md: bold exactly on the best cells; arrows give the direction.
    md = (out / "comparison.md").read_text(encoding="utf-8")
    table = _md_rows(md)
    header = table[0]
    assert header[:2] == ["method", "pairs"]
    for n in names:
        assert f"{n} {'↑' if conv.higher_is_better(n) else '↓'}" in header
    for cells in table[1:]:
        m = cells[0]
        for j, n in enumerate(names, start=2):
            bold = cells[j].startswith("**")
            assert bold == (m in by["best"][n].split(";")), (m, n, cells[j])
            assert float(cells[j].strip("*")) == pytest.approx(means[m][n], abs=1e-4)
    assert "## Ranks" in md

    # The chart.
    with Image.open(out / "comparison.png") as im:
        assert im.format == "PNG"
        im.verify()
    with Image.open(out / "comparison.png") as im:
        w, h = im.size
    assert 600 <= w <= 4000 and 200 <= h <= 4000, (w, h)

    # stdout: the comparison table, the best marked.
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"convention: {convention}")
    assert lines[1].split()[:2] == ["method", "pairs"]
    row = {l.split()[0]: l.split() for l in lines[3:6]}
    for j, n in enumerate(names, start=2):
        for m in METHODS:
            assert row[m][j].endswith("*") == (m in by["best"][n].split(";"))
            assert float(row[m][j].rstrip("*")) == pytest.approx(means[m][n], abs=1e-4)
    assert "ranks (1 = best" in r.stdout
    if lower:
        assert "Nabf (lower is better)" in r.stdout


def test_cli_several_methods_refuses_to_overwrite(three_methods):
    tmp, dirs = three_methods
    out = tmp / "cmp"
    out.mkdir()
    (out / "beta.csv").write_text("keep\n")
    args = ["--pairs", tmp / "pairs", "--fused", *dirs.values(), "--metrics", "EN", "SD",
            "--convention", "standard", "--out", out, "--no-progress"]
    r = run_cli(*args)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip() == f"error: {out / 'beta.csv'}: exists; pass --overwrite to replace it"
    assert [p.name for p in out.iterdir()] == ["beta.csv"]  # checked before any work
    assert (out / "beta.csv").read_text() == "keep\n"
    r = run_cli(*args, "--overwrite")
    assert r.returncode == 0, r.stderr
    assert list(csv.reader((out / "beta.csv").open()))[0] == ["pair", "EN", "SD"]
    assert len(list(out.iterdir())) == 2 * len(METHODS) + len(E.COMPARISON_FILES)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_cli_mi_base_nats(three_methods):
    tmp, dirs = three_methods
    r = run_cli("--pairs", tmp / "pairs", "--fused", dirs["alpha"], dirs["gamma"],
                "--convention", "standard", "--mi-base", "nats", "--metrics", "MI", "EN",
                "--out", tmp / "nats", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "convention: standard (MI in nats)"
    pairs, _ = find_pairs(tmp / "pairs")
    bits = E.evaluate_methods(pairs, {m: dirs[m] for m in ("alpha", "gamma")}, convention="standard",
                              metrics=["MI", "EN"], progress=False)
    for m in ("alpha", "gamma"):
        doc = json.loads((tmp / "nats" / f"{m}.json").read_text())
        for p in ("a", "b"):
            want = bits.results[m]["per_pair"][p]
            assert doc["per_pair"][p]["MI"] == pytest.approx(want["MI"] * math.log(2), rel=1e-12)
            assert doc["per_pair"][p]["EN"] == want["EN"]  # only MI changes


def _main_in_process(monkeypatch, capsys, *args):
    monkeypatch.setenv("JAXFUSE_NO_CACHE", "1")
    rc = E.main([str(a) for a in args])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.mark.parametrize("convention", ["paper", "cddfuse", "vifb"])
def test_cli_mi_base_needs_standard(three_methods, monkeypatch, capsys, convention):
    tmp, dirs = three_methods
    rc, out, err = _main_in_process(monkeypatch, capsys, "--pairs", tmp / "pairs", "--fused",
                                    dirs["alpha"], "--convention", convention, "--mi-base", "nats")
    assert rc == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "--mi-base is only valid with --convention standard" in lines[0], err


def test_cli_duplicate_method_names(three_methods, monkeypatch, capsys):
    tmp, dirs = three_methods
    other = tmp / "other" / "alpha"
    other.mkdir(parents=True)
    out = tmp / "cmp"
    rc, so, err = _main_in_process(monkeypatch, capsys, "--pairs", tmp / "pairs", "--fused",
                                   dirs["alpha"], dirs["beta"], other, "--out", out)
    assert rc == 2 and so == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {other}: ")
    assert str(dirs["alpha"]) in lines[0] and "'alpha'" in lines[0]
    assert not out.exists()


def test_cli_several_methods_bad_out(three_methods, monkeypatch, capsys):
    tmp, dirs = three_methods
    rc, _, err = _main_in_process(monkeypatch, capsys, "--pairs", tmp / "pairs", "--fused",
                                  dirs["alpha"], dirs["beta"], "--out", tmp / "r.json")
    assert rc == 2 and err.strip() == (f"error: {tmp / 'r.json'}: with several methods --out is "
                                       "a folder, not a .json file")
    comparison = tmp / "fused2" / "comparison"
    comparison.mkdir(parents=True)
    rc, _, err = _main_in_process(monkeypatch, capsys, "--pairs", tmp / "pairs", "--fused",
                                  dirs["alpha"], comparison, "--out", tmp / "cmp")
    assert rc == 2 and "clashes with the comparison files" in err


def test_evaluate_methods_library(three_methods):
    tmp, dirs = three_methods
    (dirs["gamma"] / "b.png").unlink()  # gamma scored on one pair only
    ev = E.evaluate_methods(tmp / "pairs", dirs, convention="standard", metrics=["EN", "Nabf"],
                            progress=False)
    assert list(ev.results) == list(METHODS)
    for m in ("alpha", "beta"):
        single = E.evaluate_pairs(find_pairs(tmp / "pairs")[0], dirs[m], convention="standard",
                                  metrics=["EN", "Nabf"], progress=False)
        assert ev.results[m]["per_pair"] == single["per_pair"]
        assert ev.results[m]["mean"] == single["mean"]
    assert [p.name for p, _ in ev.results["gamma"]["skipped"]] == ["b"]
    comp = ev.comparison
    assert comp.methods == list(METHODS) and comp.pairs == {"alpha": 2, "beta": 2, "gamma": 1}
    assert not comp.same_pairs
    assert comp.higher_is_better == {"EN": True, "Nabf": False}
    means = {m: ev.results[m]["mean"] for m in METHODS}
    assert comp.means == means
    assert comp.ranks == {m: {k: _expected_ranks(means, k, comp.higher_is_better[k])[m]
                              for k in ("EN", "Nabf")} for m in METHODS}
    assert "different pairs" in E.format_comparison(comp)


def test_compare_ties_and_nan():
    def res(en, nabf):
        return {"convention": "standard", "metrics": ["EN", "Nabf"], "note": "",
                "per_pair": {"a": {"EN": en, "Nabf": nabf}}, "mean": {"EN": en, "Nabf": nabf},
                "skipped": []}
    comp = E.compare({"p": res(7.0, 0.2), "q": res(7.0, float("nan")), "r": res(6.0, 0.1),
                      "s": {**res(0, 0), "per_pair": {}, "mean": {}}}, "standard")
    assert comp.methods == ["p", "q", "r"]  # s scored nothing: left out
    assert comp.ranks["p"]["EN"] == comp.ranks["q"]["EN"] == 1.5 and comp.ranks["r"]["EN"] == 3
    assert comp.best["EN"] == ["p", "q"]
    assert comp.best["Nabf"] == ["r"] and comp.ranks["q"]["Nabf"] == 3  # NaN ranks last
    assert comp.mean_rank == {"p": 1.75, "q": 2.25, "r": 2.0} and comp.best_mean_rank == ["p"]
    text = E.comparison_csv(comp)
    assert text.splitlines()[-1] == "best,,p;q,r,,,p"


def test_tables_formats():
    from jaxfuse import tables
    assert tables.format_markdown(["a", "b|c"], [["x", 1.5]]) == (
        "| a | b\\|c |\n| :--- | ---: |\n| x | 1.5 |")
    assert tables.format_csv(["a", "b"], [["x,y", 0.1], ["z", None]]) == 'a,b\n"x,y",0.1\nz,\n'
    with pytest.raises(ValueError, match="cells"):
        tables.format_text(["a"], [["x", "y"]])


@pytest.mark.skipif(not (DATA / "vifb_dev").is_dir(),
                    reason=f"VIFB dev set absent: {DATA / 'vifb_dev'} not found")
def test_find_pairs_vifb_dev():
    pairs, problems = find_pairs(DATA / "vifb_dev")
    assert not problems
    assert [p.name for p in pairs] == ["carShadow", "elecbike", "kettle", "labMan", "snow", "walking"]
    assert all(p.ir.parent.name == "ir" and p.vis.parent.name == "vis" for p in pairs)


VIFB_DEV = DATA / "vifb_dev"


def _vifb_available() -> bool:
    try:
        M.get_convention("vifb")
    except ModuleNotFoundError as e:
        if e.name == "jaxfuse.metrics.vifb":
            return False
        raise
    return True


needs_vifb = pytest.mark.skipif(not _vifb_available(), reason="the vifb convention is not available")


@needs_vifb
def test_vifb_colour_visible_beside_grey_infrared(tmp_path):
    # VIFB keeps colour: a grey infrared image with a colour visible and fused image is normal.
    for sub in ("ir", "vis", "fused/m"):
        (tmp_path / sub).mkdir(parents=True)
    grey = _img(1)
    colour = np.stack([_img(2), _img(3), _img(4)], axis=-1)
    Image.fromarray(grey).save(tmp_path / "ir" / "p.png")
    Image.fromarray(colour).save(tmp_path / "vis" / "p.png")
    Image.fromarray(((colour.astype(np.uint16) + grey[..., None]) // 2).astype(np.uint8)).save(
        tmp_path / "fused" / "m" / "p.png")
    conv = M.get_convention("vifb")
    assert conv.load(tmp_path / "ir" / "p.png").shape == grey.shape
    assert conv.load(tmp_path / "vis" / "p.png").shape == colour.shape
    ev = E.evaluate_methods(tmp_path, {"m": tmp_path / "fused" / "m"}, convention="vifb",
                            progress=False)
    res = ev.results["m"]
    assert not res["skipped"] and list(res["per_pair"]) == ["p"]
    assert list(res["mean"]) == list(conv.defaults)
    # A fused image of another height and width is still refused.
    Image.fromarray(colour[:40]).save(tmp_path / "fused" / "m" / "p.png")
    res = E.evaluate_pairs(find_pairs(tmp_path)[0], tmp_path / "fused" / "m", convention="vifb",
                           progress=False)
    assert not res["per_pair"] and "does not match" in res["skipped"][0][1]


@needs_vifb
@pytest.mark.skipif(not VIFB_DEV.is_dir(), reason=f"VIFB dev set absent: {VIFB_DEV} not found")
def test_cli_vifb_dev_three_methods(tmp_path):
    methods = ["ADF", "CBF", "SeAFusion"]
    out = tmp_path / "vifb"
    r = run_cli("--pairs", VIFB_DEV, "--fused", *[VIFB_DEV / "fused" / m for m in methods],
                "--convention", "vifb", "--out", out, "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    ref = json.loads((VIFB_DEV / "reference.json").read_text())
    conv = M.get_convention("vifb")
    names = list(conv.defaults)
    assert names == ref["metrics"]
    rows = {x["method"]: x for x in csv.DictReader((out / "comparison.csv").open())}
    assert list(rows) == methods + ["best"]
    ref_means = {}
    for m in methods:
        doc = json.loads((out / f"{m}.json").read_text())
        assert list(doc["per_pair"]) == ref["pairs"] and not doc["skipped"]
        # VIFB's own MATLAB values, printed with 5 significant digits.
        for p in ref["pairs"]:
            for n in names:
                want = ref["per_method"][m][p][n]
                assert doc["per_pair"][p][n] == pytest.approx(want, rel=1e-4), (m, p, n)
        for n in names:
            assert float(rows[m][n]) == doc["mean"][n]
        ref_means[m] = {n: sum(ref["per_method"][m][p][n] for p in ref["pairs"]) / len(ref["pairs"])
                        for n in names}
    for n in names:  # the best method agrees with VIFB's values (where they are not a near-tie)
        vals = sorted(ref_means[m][n] for m in methods)
        if abs(vals[-1] - vals[-2]) > 1e-3 * abs(vals[-1]) and abs(vals[1] - vals[0]) > 1e-3 * abs(vals[0]):
            pick = max if conv.higher_is_better(n) else min
            assert rows["best"][n] == pick(methods, key=lambda m: ref_means[m][n]), n
    assert set(conv.lower_is_better) >= {"Rmse", "Cross_entropy"}
    with Image.open(out / "comparison.png") as im:
        assert im.format == "PNG" and im.size[0] >= 600
