"""The documentation says what the committed results say, and its commands exist.

* Every headline number of README.md and the study READMEs is written in a recognisable phrase;
  each phrase must appear once, and the numbers in it must equal the committed study results
  (``studies/*/summary.json``, ``accuracy.json``, ``speed.json``, ``validation/report.json``)
  rounded as printed. Editing either side alone fails here. The README states each once.
* Every ``magan`` command in the docs uses flags its parser has, every ``python scripts/...``
  command names a script with those flags, every ``pip install`` extra exists, and CI runs the
  README's test command.
* Every relative link (and its #anchor) in the docs points at something that exists.
* No development history ("this session", "at stop 11") in user docs: that is the git log's.

No training: it reads Markdown and JSON only.
"""

from __future__ import annotations

import json
import re
import shlex
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")),
        "studies/line/README.md", "studies/calorimeter/README.md"]


@cache
def _json(rel: str) -> dict:
    return json.loads((ROOT / rel).read_text())


@cache
def _text(rel: str) -> str:
    """The file with every run of whitespace made one space, so phrases may wrap anywhere."""
    return " ".join((ROOT / rel).read_text().split())


def _f(x: float, digits: int) -> str:
    return f"{x:.{digits}f}"


def _pct(fraction: float) -> str:
    return f"{100 * fraction:.0f}"


def _sig3(x: float) -> str:
    return f"{float(f'{x:.3g}'):.0f}"


def _accuracy(study: str) -> dict:
    """Counts from a study's accuracy.json: points, parameters within 5 % of range, the worst."""
    acc = _json(f"studies/{study}/accuracy.json")
    errors = [abs(e) for row in acc["rows"] for e in row["error_pct"]]
    return {"points": str(len(acc["rows"])),
            "near_bounds": str(sum(bool(row.get("near_bounds")) for row in acc["rows"])),
            "within_5": str(sum(e <= 5 for e in errors)), "params": str(len(errors)),
            "max": _f(acc["max_abs_error_pct"], 2)}


def _validation(study: str) -> dict:
    report = _json(f"studies/{study}/validation/report.json")
    clf, cal = report["checks"]["classifier"], report["checks"]["calibration"]["summary"]
    pulls = {name: p["pull_std"] for name, p in cal["per_parameter"].items()}
    return {"auc": _f(clf["auc"], 3), "auc_err": _f(clf["auc_stderr"], 3),
            "clf_status": report["status"]["classifier"],
            "cal_status": report["status"]["calibration"], "truths": str(cal["n_truths"]),
            "cov1": _pct(cal["coverage_1sigma"]), "cov2": _pct(cal["coverage_2sigma"]),
            "nom1": _pct(cal["nominal"]["1sigma"]), "nom2": _pct(cal["nominal"]["2sigma"]),
            "pulls": pulls}


def _speed() -> dict:
    row = next(r for r in _json("studies/calorimeter/speed.json")["rows"] if r["batch"] == 1000)
    return {"x": _f(row["speedup"], 1), "sim": _f(row["simulator_per_s"], 0),
            "emu": _f(row["emulator_per_s"], 0), "sim3": _sig3(row["simulator_per_s"]),
            "emu3": _sig3(row["emulator_per_s"])}


def _total_s(study: str) -> str:
    return _f(_json(f"studies/{study}/summary.json")["timings_s"]["total_s"], 0)


def _max_error(study: str) -> str:
    return _f(_json(f"studies/{study}/summary.json")["max_abs_error_pct_of_range"], 2)


NUM = r"(\d+(?:\.\d+)?)"
WORD = r"(\w+)"


def _readme_headlines() -> list[tuple]:
    """(file, phrase with groups, expected group values, which values the README states once)."""
    la, ca = _accuracy("line"), _accuracy("calorimeter")
    lv, cv = _validation("line"), _validation("calorimeter")
    noise = _f(cv["pulls"]["noise_mev"], 1)
    return [
        ("README.md", rf"the line-image study, default preset \({NUM} s on a 2-core CPU\)",
         [_total_s("line")], [0]),
        ("README.md", rf"showers at 10-100 GeV \({NUM} s on the same CPU\)",
         [_total_s("calorimeter")], [0]),
        ("README.md", rf"Line: at {NUM} truths \({NUM} near the bounds\), {NUM} of {NUM} "
                      rf"parameters within 5 % of their range; the worst, {NUM} %,",
         [la["points"], la["near_bounds"], la["within_5"], la["params"], la["max"]], [4]),
        ("README.md", rf"Calorimeter: at {NUM} truths every parameter within {NUM} % of its range",
         [ca["points"], ca["max"]], [1]),
        ("README.md", rf"makes {NUM}x the simulator's showers per second at batch 1000",
         [_speed()["x"]], [0]),
        ("README.md", rf"over {NUM} line truths {NUM} % / {NUM} % of the errors were within 1 / 2 "
                      rf"reported standard deviations \({NUM} % / {NUM} % expected\); over {NUM} "
                      rf"calorimeter truths {NUM} % / {NUM} %",
         [lv["truths"], lv["cov1"], lv["cov2"], lv["nom1"], lv["nom2"], cv["truths"], cv["cov1"],
          cv["cov2"]], [1, 2, 6, 7]),
        ("README.md", rf"\(`noise_mev`\) it was {NUM}x too small", [noise], [0]),
        ("README.md", rf"held-out AUC {NUM} for the line, {NUM} for the calorimeter",
         [lv["auc"], cv["auc"]], [0, 1]),
    ]


def _study_headlines() -> list[tuple]:
    la, ca, sp = _accuracy("line"), _accuracy("calorimeter"), _speed()
    out = []
    for study, v in (("line", _validation("line")), ("calorimeter", _validation("calorimeter"))):
        rel = f"studies/{study}/README.md"
        out += [
            (rel, rf"\| \*\*total\*\* \(\d+-minute budget\) \| \*\*{NUM} s\*\* inside the run",
             [_total_s(study)], []),
            (rel, rf"\| classifier \| {WORD} \| AUC {NUM} \+- {NUM}",
             [v["clf_status"], v["auc"], v["auc_err"]], []),
            (rel, rf"\| calibration \| {WORD} \| {NUM} truths[^|]*?: {NUM} % / {NUM} % of the "
                  rf"parameter errors within 1 / 2 reported sigma \(nominal {NUM} / {NUM} %\)",
             [v["cal_status"], v["truths"], v["cov1"], v["cov2"], v["nom1"], v["nom2"]], []),
        ]
    pulls = _validation("calorimeter")["pulls"]
    others = [p for name, p in pulls.items() if name != "noise_mev"]
    calo = "studies/calorimeter/README.md"
    return out + [
        ("studies/line/README.md", rf"\*\*Max error {NUM} % of range\*\*", [_max_error("line")],
         []),
        ("studies/line/README.md", rf"\*\*{NUM} of {NUM} within 5 %; max \|error\| {NUM} %",
         [la["within_5"], la["params"], la["max"]], []),
        (calo, rf"\| default preset end to end on this 2-core CPU <= 30 min \| {NUM} s inside",
         [_total_s("calorimeter")], []),
        (calo, rf"main run's truth: max {NUM} %; `calorimeter_accuracy.py` \({NUM} points, other "
               rf"test-beam seeds\): max \*\*{NUM} %\*\*",
         [_max_error("calorimeter"), ca["points"], ca["max"]], []),
        (calo, rf"\*\*Max \|error\| {NUM} % of range: the 5 % target is met\.\*\*",
         [ca["max"]], []),
        (calo, rf"speed-up at batch 1000 \| {NUM}x \({NUM} vs {NUM} showers/s\)",
         [sp["x"], sp["emu3"], sp["sim3"]], []),
        (calo, rf"\| 1000 \| {NUM} \| {NUM} \| \*\*{NUM}x\*\* \|", [sp["sim"], sp["emu"], sp["x"]],
         []),
        (calo, rf"finds it right within {NUM}-{NUM}x for three parameters and {NUM}x too small "
               r"for noise_mev",
         [_f(min(others), 1), _f(max(others), 1), _f(pulls["noise_mev"], 1)], []),
        (calo, rf"\(pull std {NUM}-{NUM}\) and {NUM}x too small for noise_mev",
         [_f(min(others), 1), _f(max(others), 1), _f(pulls["noise_mev"], 1)], []),
    ]


HEADLINES = _readme_headlines() + _study_headlines()


@pytest.mark.parametrize(("rel", "phrase", "expected", "once"), HEADLINES,
                         ids=[f"{h[0]}:{h[1][:40]}" for h in HEADLINES])
def test_headline_numbers_equal_the_committed_results(rel, phrase, expected, once):
    found = re.findall(phrase, _text(rel))
    assert len(found) == 1, (f"{rel}: the phrase /{phrase}/ should appear exactly once, found "
                             f"{len(found)}; keep the wording the test reads, or update the test")
    got = [found[0]] if isinstance(found[0], str) else list(found[0])
    assert got == expected, (f"{rel}: /{phrase}/ reads {got}, the committed study results say "
                             f"{expected}; rerun the command beside the number or fix the text")


def test_readme_states_each_headline_number_once():
    text = _text("README.md")
    for rel, _, expected, once in HEADLINES:
        if rel != "README.md":
            continue
        for i in once:  # a number, not a digit run inside another or a row range "40-52"
            n = len(re.findall(rf"(?<![\w.-]){re.escape(expected[i])}(?!\d|\.\d|-\d)", text))
            assert n == 1, f"README.md states {expected[i]} {n} times; say a number in one place"



def test_readme_cache_table_equals_the_measurements_in_speed_md():
    """The README's compilation-cache rows are the range of docs/speed.md's measured runs."""
    rows = re.findall(r"^\| (\S+) \| (off|filled by on-cold) \| ([\d.]+) \|",
                      (ROOT / "docs/speed.md").read_text(), re.M)
    off = [float(w) for _, cache, w in rows if cache == "off"]
    warm = [float(w) for _, cache, w in rows if cache != "off"]
    assert len(off) >= 2 and warm, "docs/speed.md's compilation-cache table is not found"
    text = _text("README.md")
    for label, walls in (("without the cache", off), ("a later run with the cache", warm)):
        phrase = f"| {label} ({len(walls)} runs) | {min(walls):.1f}-{max(walls):.1f} s |"
        assert phrase in text, f"README.md should say {phrase!r} (docs/speed.md)"


def test_readme_fault_table_equals_docs_faults_md():
    """Each README row 'a-b | k of n' counts docs/faults.md's rows a..b and their ok verdicts."""
    verdicts = dict(re.findall(r"^\| (\d+) \|.*\| (ok|FAIL) \|$",
                               (ROOT / "docs/faults.md").read_text(), re.M))
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"\| (\d+)-(\d+) \| (\d+) of (\d+) \|", readme)
    assert rows, "README.md's fault table is not found"
    covered = []
    for a, b, k, n in rows:
        ids = [str(i) for i in range(int(a), int(b) + 1)]
        assert all(i in verdicts for i in ids), f"docs/faults.md lacks rows {a}-{b}"
        assert (int(k), int(n)) == (sum(verdicts[i] == "ok" for i in ids), len(ids)), (a, b)
        covered += ids
    assert sorted(covered, key=int) == sorted(verdicts, key=int), "README misses fault rows"
    assert f"sends {len(verdicts)} bad inputs" in " ".join(readme.split())

# ------------------------------------------------------------------------------ commands
def _code(rel: str) -> list[str]:
    """Command lines of a Markdown file: lines of fenced blocks and `inline spans`."""
    raw = (ROOT / rel).read_text()
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", raw, re.S | re.M)
    lines = [ln for b in blocks for ln in b.splitlines()]
    prose = re.sub(r"^```[^\n]*\n.*?^```", "", raw, flags=re.S | re.M)
    return lines + re.findall(r"`([^`\n]+)`", prose)


def _commands(prefix: str) -> list[tuple[str, list[str]]]:
    """(file, words) of each command that starts with ``prefix`` (``scripts/x.py`` counts as
    ``python scripts/x.py``), environment settings and ``srun`` dropped."""
    out = []
    for rel in DOCS:
        for line in _code(rel):
            for part in re.split(r"&&|;", line):
                try:
                    words = shlex.split(part, comments=True)
                except ValueError:  # an unbalanced quote: prose, not a command
                    continue
                while words and (re.fullmatch(r"[A-Z_]+=\S*", words[0]) or words[0] == "srun"):
                    words = words[1:]
                if words and words[0].startswith("scripts/") and words[0].endswith(".py"):
                    words = ["python", *words]
                if words and words[0] == prefix:
                    out.append((rel, words))
    return out


def _subparsers(parser) -> dict:
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}


def _options(parser) -> set[str]:
    """The option strings of a parser and, for a placeholder subcommand, of all below it."""
    below = [_options(p) for p in _subparsers(parser).values()]
    return {s for a in parser._actions for s in a.option_strings}.union(*below)


def _flags(words: list[str]) -> list[str]:
    return [w.strip("[]").split("=")[0] for w in words if w.strip("[").startswith("-")
            and w.strip("[]") not in ("-", "--") and not re.fullmatch(r"-?\d.*", w.strip("[]"))]


def test_magan_commands_in_the_docs_use_flags_that_exist():
    from magan.cli import build_parser

    checked = 0
    for rel, words in _commands("magan"):
        parser, rest = build_parser(), words[1:]
        while rest and _subparsers(parser) and not rest[0].startswith("-"):
            if rest[0] in ("COMMAND", "STUDY", "..."):  # a placeholder: any subcommand's flags
                rest = rest[1:]
                break
            assert rest[0] in _subparsers(parser), f"{rel}: `{' '.join(words)}`: no {rest[0]!r}"
            parser, rest = _subparsers(parser)[rest[0]], rest[1:]
        known = _options(parser)
        missing = [f for f in _flags(rest) if f not in known]
        assert not missing, f"{rel}: `{' '.join(words)}`: {missing} not in its --help"
        checked += 1
    assert checked >= 10


def test_script_commands_in_the_docs_exist_with_their_flags():
    checked = 0
    for rel, words in _commands("python"):
        if len(words) < 2 or not words[1].startswith("scripts/"):
            continue
        script = ROOT / words[1]
        assert script.is_file(), f"{rel}: `{' '.join(words)}`: no {words[1]}"
        source = script.read_text()
        missing = [f for f in _flags(words[2:]) if f'"{f}"' not in source]
        assert not missing, f"{rel}: `{' '.join(words)}`: {words[1]} has no {missing}"
        checked += 1
    assert checked >= 10


def test_pip_extras_exist_and_ci_runs_the_readme_test_command():
    tomllib = pytest.importorskip("tomllib")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = set(extras.get("optional-dependencies", {}))
    readme = (ROOT / "README.md").read_text()
    for rel in DOCS:
        for wanted in re.findall(r"pip install \"(?:\.|magan)\[([\w,-]+)\]\"",
                                 (ROOT / rel).read_text()):
            assert set(wanted.split(",")) <= extras, f"{rel}: extra {wanted!r} not in pyproject"
    test_command = re.search(r"^(pip install \"\.\[test\]\".*)$", readme, re.M).group(1).strip()
    ci = [ln.strip() for ln in (ROOT / ".ci/run").read_text().splitlines() if ln.strip()]
    assert ci[-1] == test_command, "CI must run exactly the README's test command"


# ------------------------------------------------------------------------------ links
def _anchors(rel: str) -> set[str]:
    raw = re.sub(r"^```.*?^```", "", (ROOT / rel).read_text(), flags=re.S | re.M)
    heads = re.findall(r"^#+ (.+)$", raw, re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


@pytest.mark.parametrize("rel", DOCS)
def test_relative_links_resolve(rel):
    raw = re.sub(r"^```.*?^```", "", (ROOT / rel).read_text(), flags=re.S | re.M)
    for target in re.findall(r"\]\(([^)\s]+)\)", raw):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        dest = (ROOT / rel).parent / path if path else ROOT / rel
        assert dest.exists(), f"{rel}: link to {target} names nothing"
        if anchor and dest.suffix == ".md":
            there = str(dest.resolve().relative_to(ROOT))
            assert anchor in _anchors(there), f"{rel}: no heading #{anchor} in {there}"


HISTORY = r"this session|previous session|earlier sessions|sessions? ago|\b(?:at|since) stop \d+"


@pytest.mark.parametrize("rel", DOCS)
def test_no_development_history_in_user_docs(rel):
    found = re.findall(HISTORY, _text(rel), re.I)
    assert not found, f"{rel}: {found}: development history belongs in the git log"
