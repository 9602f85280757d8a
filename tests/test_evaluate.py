"""Tests for jaxfuse.evaluate: the library functions and the command line."""

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
    assert r.returncode == 2
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
