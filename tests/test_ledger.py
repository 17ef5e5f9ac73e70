"""The claims ledger (adabit_lite/ledger.py, nb/ledger.ipynb): its verdict rule on constructed
numbers, and its rows against the records of a smoke build of the book.

The smoke book (``smoke_book`` in conftest.py, the same build as tests/test_book.py's, made once per
session) runs every chapter with the ``smoke`` profile, writing their records into
_build/smoke/_build/records, and the ledger page last.  The checks: every row's numbers are the
values in the records (looked up here by a separate walk of the record files), every verdict
follows from those numbers, the built page shows them, and every link of the page points at a
page and an anchor that exist in the built book.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from adabit_lite import ledger, paper, theory
from adabit_lite.ledger import (NO_DIFFERENCE, NOT_RUN, REPRODUCES, REVERSED, SMALLER, UNTESTABLE, VERDICTS,
                                verdict)

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- the rule, on constructed numbers
CASES = [  # (paper, book, keyword arguments, expected)
    (2.0, 1.5, dict(p=0.01), REPRODUCES),  # same sign, significant, >= half the paper's
    (2.0, 3.0, dict(p=0.01), REPRODUCES),  # larger than the paper's
    (20.0, 2.0, dict(p=0.001), SMALLER),  # same sign, significant, < half
    (1.0, 0.8, dict(p=0.2), NO_DIFFERENCE),
    (1.0, 0.8, dict(p=0.05), NO_DIFFERENCE),  # p = alpha is not below alpha
    (1.0, 0.8, dict(p=None, tested=True), NO_DIFFERENCE),  # runs compared, no test possible
    (0.6, 0.0, dict(zero=0.01), NO_DIFFERENCE),  # a computed effect of size 0
    (0.5, -1.2, dict(p=0.02), REVERSED),
    (-2.37, 0.5, dict(p=0.01), REVERSED),  # a negative paper effect, a positive book one
    (-2.37, -0.5, dict(p=0.01), SMALLER),
    (1.0, None, {}, NOT_RUN),
    (1.0, math.nan, dict(p=0.01), NOT_RUN),
    (None, 2.2, dict(reference=1.0, direction=1), REPRODUCES),  # a direction only (ratio above 1)
    (None, 0.9, dict(reference=1.0, direction=1), REVERSED),
    (None, 0.1399, dict(reference=0.1336, direction=1, tolerance=ledger.EXACT), REPRODUCES),  # a bound
    (None, 0.1336, dict(reference=0.1336, direction=1), NO_DIFFERENCE),  # exactly on the bound
    (12.5, 20.0, dict(stronger="smaller"), REPRODUCES),  # "within the first eighth": 20 <= 25
    (12.5, 40.0, dict(stronger="smaller"), SMALLER),
    (0.3173, 0.1336, dict(tolerance=ledger.EXACT), SMALLER),
    (165.58, 165.583, dict(tolerance=ledger.EXACT), REPRODUCES),
    (100.0, 99.0, dict(tolerance=ledger.EXACT, zero=None), REPRODUCES),
    (100.0, 0.0, dict(tolerance=ledger.EXACT, zero=None), REVERSED),  # a share of none
    (0.0, 0.0, dict(kind="identity"), REPRODUCES),
    (0.0, 1e-3, dict(kind="identity"), REVERSED),
    (0.0, 1e-3, dict(kind="identity", zero=1e-2), REPRODUCES),
    (35.7, 0.0, dict(p=None, tested=True, testable=False), UNTESTABLE),  # full precision at chance
    (35.7, 9.0, dict(p=0.001, testable=False), UNTESTABLE),  # even a significant effect
    (35.7, None, dict(testable=False), NOT_RUN),  # no number: not run, whatever the setting
]


@pytest.mark.parametrize("paper_number, book, kwargs, expected", CASES)
def test_the_verdict_rule_on_constructed_numbers(paper_number, book, kwargs, expected):
    kwargs = dict(kwargs)
    p = kwargs.pop("p", None)
    assert verdict(paper_number, book, p, **kwargs) == expected


def test_every_verdict_is_reachable_and_bad_arguments_are_refused():
    assert {expected for *_, expected in CASES} == set(VERDICTS)
    with pytest.raises(ValueError, match="direction"):
        verdict(None, 1.0)
    with pytest.raises(ValueError, match="stronger"):
        verdict(1.0, 1.0, stronger="bigger")


def test_the_rule_text_states_the_constants():
    text = ledger.rule_text()
    for v in VERDICTS:
        assert v in text
    assert f"{ledger.ALPHA:g}" in text and "$" not in text


def test_a_chapter_with_runs_still_to_come_makes_its_rows_provisional():
    assert ledger.provisional({"runs_found": 66, "runs_wanted": 121}) == \
        "; provisional: 66 of 121 runs stored (sweep in progress)"
    assert ledger.provisional({"runs_found": 5, "runs_wanted": 5}) == ""
    assert ledger.provisional({}) == ""


@pytest.mark.parametrize("full_precision, fixed, expected, why", [
    (50.0, 45.0, UNTESTABLE, "at chance"), (55.0, 45.0, UNTESTABLE, "at chance"),  # chance is 50 %
    (55.1, 45.0, REVERSED, ""),  # reads the order, and the fixed split loses 10.1 points
    (100.0, 95.0, UNTESTABLE, "loses nothing"), (100.0, 94.9, REVERSED, "")])  # a ceiling: 5 points
def test_an_event_row_where_the_claim_cannot_show_is_not_judged(full_precision, fixed, expected, why):
    (claim,) = [c for c in ledger.CLAIMS if c.key == "dvs-learned-vs-fixed-T2"]
    comparison = {"T": 2, "learned": fixed - 2.0, "fixed": fixed, "learned - fixed": -2.0, "p": 0.01,
                  "split": "1/4/2", "full precision": full_precision}
    row = ledger.row(claim, {"08_temporal": {"comparison": [comparison]}}, ROOT / "nb")
    assert row["verdict"] == expected
    assert (why in row["book detail"]) if why else ("nothing" not in row["book detail"]
                                                    and "chance" not in row["book detail"])


def test_the_fall_over_time_steps_is_judged_where_full_precision_reads_the_order():
    (claim,) = [c for c in ledger.CLAIMS if c.key == "events-time-steps"]
    rows = [(8, 93.0, 8.0, 100.0), (4, 99.9, 0.2, 100.0), (2, 50.0, 0.0, 50.0), (1, 50.0, 0.0, 50.0)]
    records = {"08_temporal": {
        "comparison": [{"T": T, "full precision": fp} for T, _, _, fp in rows],
        "parameters": {"bins": [8, 4, 2, 1]},
        "table": [{"T": T, "method": "fixed", "accuracy": acc, "std": sd, "runs": 5,
                   "split": f"1/{8 // T}/{T}"} for T, acc, sd, _ in rows]}}
    row = ledger.row(claim, records, ROOT / "nb")
    assert row["book number"] == pytest.approx(93.0 - 99.9)  # T = 8 against T = 4, not against T = 1
    assert "1/2/4 99.9" in row["book detail"] and "below T = 4 even full precision is at chance" in row["book detail"]
    assert row["verdict"] == NO_DIFFERENCE  # the spread of 8 points over 5 seeds


def test_the_claims_follow_the_chapters_of_the_table_of_contents():
    toc = [Path(f).name for f in re.findall(r"file: book/chapters/(\S+)", (ROOT / "book" / "_toc.yml").read_text())]
    chapters = [c.chapter for c in ledger.CLAIMS]
    assert chapters == sorted(chapters, key=toc.index)  # a reader meets the rows in reading order
    assert list(ledger.CHAPTERS) == sorted(set(chapters), key=toc.index)


def test_every_claim_names_its_source_and_links_to_a_section_that_exists():
    keys = [c.key for c in ledger.CLAIMS]
    assert len(keys) == len(set(keys))
    for claim in ledger.CLAIMS:
        assert claim.paper in ("Yao et al.", "Shen et al.")
        source = claim.source() if callable(claim.source) else claim.source
        statement = claim.statement() if callable(claim.statement) else claim.statement
        assert source and statement and "$" not in source + statement + claim.measure
        if claim.paper == "Yao et al.":  # their table numbers are not known here: captions only
            assert not re.search(r"\bTables? \d", source), source
        ledger.anchor(ROOT / "nb" / f"{claim.chapter}.ipynb", claim.section)  # exactly one heading
    assert paper.table_citation("shen_table1") == "Table 1"
    assert paper.table_citation("yao_ablation").startswith('the table "Ablations on learnable bit width')


def test_the_papers_printed_statements_agree_with_the_formulas_they_state():
    statements = paper.paper_statements()
    assert set(statements["paper"]) <= {"Yao et al.", "Shen et al."}
    assert statements.loc["lemma_1", "number"] == round(theory.lemma_bound(), 4)
    assert statements.loc["fig3_bit_reduction", "number"] == 100 / 8  # "the first eighth"


def test_the_ledger_runs_last_but_opens_the_book():
    spec = importlib.util.spec_from_file_location("build_for_test", ROOT / "book" / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    names = build.toc_chapters()
    assert names[0] == "ledger"  # the first page of the toc ("Start here")
    order = build.run_order(names)
    assert order[-1] == "ledger" and sorted(order) == sorted(names)
    params = build.record_parameters(order, ROOT / "elsewhere" / "records")
    assert params["ledger"]["records_dir"] == str(ROOT / "elsewhere" / "records")
    assert params["01_cost"]["record_path"] == str(ROOT / "elsewhere" / "records" / "01_cost.json")
    assert build.record_parameters(order, build.DEFAULT_RECORDS) == {}


# ---------------------------------------------------------------- against the smoke build
def _walk(obj, path, records):
    """A separate walk of ledger.Rec paths over the record files (not ledger.value)."""
    for i, step in enumerate(path):
        if step == ledger.ALL:
            match = {k: _resolve(v, records) for k, v in path[i + 1].items()}
            return [_walk(r, path[i + 2:], records) for r in obj
                    if all(r.get(k) == v for k, v in match.items())]
        if isinstance(step, dict):
            match = {k: _resolve(v, records) for k, v in step.items()}
            (obj,) = [r for r in obj if all(r.get(k) == v for k, v in match.items())]
        else:
            obj = obj[step]
    return obj


def _resolve(spec, records):
    if isinstance(spec, ledger.Rec):
        return _walk(records[spec.chapter], spec.path, records)
    if isinstance(spec, ledger.Fn):
        return spec.fn(*(_resolve(a, records) for a in spec.args))
    if isinstance(spec, ledger.Pap):
        df = paper.paper_table(spec.table)
        for k, v in spec.match.items():
            df = df[df[k] == _resolve(v, records)]
        (got,) = df[spec.column].tolist()
        return got
    if isinstance(spec, ledger.Stmt):
        return float(paper.paper_statements().loc[spec.id, "number"])
    return spec


def _expected(spec, records):
    if spec is None:
        return None
    try:
        got = _resolve(spec, records)
    except (KeyError, ValueError, TypeError, IndexError, ledger.Missing):
        return None
    return None if got is None or (isinstance(got, float) and math.isnan(got)) else float(got)


@pytest.fixture(scope="module")
def built(smoke_book):
    html, records_dir = smoke_book
    records = {p.stem: json.loads(p.read_text()) for p in records_dir.glob("*.json")}
    page = html / "book" / "chapters" / "ledger.html"
    assert page.exists()
    return html, records, page


def _same(a, b):
    if a is None or b is None:
        return a is None and b is None
    return a == pytest.approx(b, rel=1e-12, abs=1e-12)


def test_every_row_is_the_value_in_its_record(built):
    _, records, _ = built
    shown = records["ledger"]["rows"]  # what the ledger page computed in the build
    assert [r["key"] for r in shown] == [c.key for c in ledger.CLAIMS]
    chapters = {c for c in records if c != "ledger"}
    assert set(ledger.CHAPTERS) <= chapters, "the smoke build left a chapter's record out"
    ran = 0
    for claim, row in zip(ledger.CLAIMS, shown):
        book = _expected(claim.book, records)
        assert _same(row["book number"], book), claim.key
        assert _same(row["paper number"], _expected(claim.paper_number, records)), claim.key
        assert _same(row["p"], _expected(claim.p, records)), claim.key
        assert [_same(a, _expected(s, records)) for a, s in zip(row["spread"], claim.spread)] == \
            [True] * len(claim.spread), claim.key
        assert [_same(a, _expected(s, records)) for a, s in zip(row["seeds"], claim.seeds)] == \
            [True] * len(claim.seeds), claim.key
        ran += book is not None
    assert ran >= len(ledger.CLAIMS) // 2  # the smoke build gives most claims a number


def test_every_verdict_follows_from_the_row_numbers(built):
    _, records, _ = built
    for claim, row in zip(ledger.CLAIMS, records["ledger"]["rows"]):
        reference = _expected(claim.reference, records)
        zero = None if claim.zero is None else (_expected(claim.zero, records) or 0.0)
        expected = verdict(row["paper number"], row["book number"], row["p"],
                           reference=0.0 if reference is None else reference, direction=claim.direction,
                           tolerance=claim.tolerance, zero=zero, stronger=claim.stronger, kind=claim.kind,
                           tested=claim.tested, testable=_expected(claim.testable, records) != 0.0)
        assert row["verdict"] == expected, claim.key
        assert (row["verdict"] == NOT_RUN) == (row["book number"] is None), claim.key


class _Table(HTMLParser):
    """The rows of the page's claims table as {class of the cell: its text} (the table's cells and
    the folded details under each claim) and every href on the page."""

    CELLS = ("td", "dd")

    def __init__(self):
        super().__init__()
        self.rows, self.hrefs, self._open, self._in_table = [], [], [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href"):
            self.hrefs.append(attrs["href"])
        if tag == "div" and "claims-ledger" in (attrs.get("class") or ""):
            self._in_table = 1
        elif self._in_table and tag == "tr":
            self.rows.append({})
        elif self._in_table and tag in self.CELLS:
            self._open.append((tag, attrs.get("class") or "", []))
        elif tag == "br":  # a line break reads as a space
            self.handle_data(" ")

    def handle_endtag(self, tag):
        if self._in_table and tag in self.CELLS and self._open and self._open[-1][0] == tag:
            _, cls, text = self._open.pop()
            self.rows[-1][cls] = " ".join("".join(text).split())
        elif tag == "table" and self._in_table:
            self._in_table = 0

    def handle_data(self, data):
        for _, _, text in self._open:
            text.append(data)


def test_the_built_page_shows_the_rows_and_no_raw_markup(built):
    _, records, page = built
    page_text = page.read_text(encoding="utf-8")
    table = _Table()
    table.feed(page_text)
    cells = [r for r in table.rows if r]
    shown = records["ledger"]["rows"]
    assert len(cells) == len(shown)
    for i, (claim, cell, row) in enumerate(zip(ledger.CLAIMS, cells, shown), 1):
        # the compact table: number, verdict, claim, paper, book, section; the rest folded
        assert list(cell)[:2] == ["n", "verdict"] and cell["n"] == str(i)
        assert cell["verdict"] == row["verdict"]
        assert cell["paper"].startswith(row["paper text"]) and cell["book"].startswith(row["book text"])
        assert cell["claim"].startswith(f"{row['paper']}: ")
        assert ledger.DETAILS_SUMMARY in cell["claim"] and cell["source"] and cell["setting"]
        for number, text in ((row["paper number"], row["paper text"]), (row["book number"], row["book text"])):
            if number is None:
                assert text in ("-",) or text[0] in "<>", claim.key
            else:  # the number as printed, to the claim's fixed decimals
                assert float(text.replace("\u2212", "-")) == pytest.approx(number, abs=0.51 * 10 ** -claim.decimals)
        if row["book number"] is None:
            assert cell["book"] == "-" and cell["spread"] == "-" and cell["seeds"] == "-" and cell["p"] == "-"
    # the verdict column sits in the first fifth of the table's width: seen without scrolling
    widths = [float(w) for w in re.findall(r'<col style="width:([\d.]+)%">', page_text)]
    assert len(widths) == 6 and sum(widths) == pytest.approx(100) and sum(widths[:2]) <= 20
    # what the page shows a reader: no scripts, styles or (folded) code cells
    article = re.sub(r"<script.*?</script>|<style.*?</style>|<pre.*?</pre>", "", page_text, flags=re.S)
    article = re.sub(r"<[^>]+>", " ", article)
    for bad in ("$", "PosixPath", "NaN", "None"):
        assert bad not in article, bad
    assert "$" not in page_text and "PosixPath" not in page_text  # nor anywhere in the file


def test_the_page_table_on_a_constructed_row():
    row = {"paper": "Yao et al.", "claim": "a claim", "measure": "accuracy", "source": "the table \"X\"",
           "paper text": "0.50", "paper detail": "a vs b", "book text": "-", "book detail": "",
           "spread text": "-", "seeds text": "-", "p text": "-", "setting": "small CNN",
           "verdict": NOT_RUN, "href": "06_ablations.html#one", "chapter": "06_ablations",
           "section title": "1. One"}
    table = _Table()
    table.feed(ledger.render_html([row, {**row, "verdict": REVERSED, "book text": "-0.20"}]))
    first, second = [r for r in table.rows if r]  # the header row has no td
    assert list(first)[:2] == ["n", "verdict"]  # the verdict second, before the long claim
    assert set(first) == {"n", "verdict", "claim", "source", "spread", "seeds", "p", "setting",
                          "paper", "book", "section"}
    assert (first["verdict"], second["verdict"], second["book"]) == (NOT_RUN, REVERSED, "-0.20")
    assert first["source"] == 'the table "X"' and first["setting"] == "small CNN"
    assert first["section"] == "06_ablations 1. One" and table.hrefs == ["06_ablations.html#one"] * 2


def test_every_link_of_the_page_exists_in_the_built_book(built):
    html, _, page = built
    table = _Table()
    table.feed(page.read_text(encoding="utf-8"))
    ledger_links = [h for h in table.hrefs if re.match(r"^\d\d\w*\.html#", h)]
    assert len(ledger_links) >= len(ledger.CLAIMS)
    for href in table.hrefs:
        if re.match(r"^[a-z]+:", href) or href.startswith("#") and href == "#":
            continue
        path, _, fragment = href.partition("#")
        target = (page.parent / path).resolve() if path else page
        assert target.exists(), href
        if fragment and target.suffix == ".html":
            assert f'id="{fragment}"' in target.read_text(encoding="utf-8"), href
    intro = (html / "book" / "intro.html").read_text(encoding="utf-8")
    assert 'href="chapters/ledger.html"' in intro and "chapters/ledger.html#ledger-summary" in intro


def test_the_two_stages_side_by_side_name_the_changed_verdicts():
    def row(key, title, verdict, text):
        return {"key": key, "title": title, "verdict": verdict, "book text": text}

    rows = [row("abl-act-renewal", "activation renewal helps", REVERSED, "−1.20"),
            row("fashion-act-renewal", "activation renewal helps, deeper stage", REPRODUCES, "+2.64"),
            row("lbw-vs-uquant-3/4/1", "learned bits beat U-quant at 3/4/1", NO_DIFFERENCE, "−1.00"),
            row("fashion-lbw-vs-uquant-3/4/1", "learned bits beat U-quant at 3/4/1, deeper stage",
                NO_DIFFERENCE, "−0.51"),
            row("fig3-early", "the bits fall early", SMALLER, "33")]  # its deeper row is missing
    assert ledger.stage_rows(rows) == [
        {"claim": "learned bits beat U-quant at 3/4/1", "small stage": "no significant difference (−1.00)",
         "deeper stage": "no significant difference (−0.51)", "changed": "no"},
        {"claim": "activation renewal helps", "small stage": "reversed (−1.20)",
         "deeper stage": "reproduces (+2.64)", "changed": "yes"}]
    assert ledger.stage_sentence(rows) == (
        "Of the 2 claims that both training stages test, the deeper stage changes the verdict of 1: "
        "activation renewal helps (reversed on the small stage, reproduces on the deeper one).")
    assert ledger.stage_sentence(rows[2:]) == \
        "Of the 1 claim that both training stages test, the deeper stage changes the verdict of 0."
    keys = {c.key for c in ledger.CLAIMS}
    assert all(a in keys and b in keys for a, b in ledger.STAGE_PAIRS)  # every pair names real claims
