"""The built book, opened in a real browser (headless Chromium from Debian's packages).

The fixture builds the whole book once with the ``smoke`` parameter profile (book/build.py: every
chapter notebook run by papermill, then jupyter-book with warnings as errors; ``smoke_book`` in
conftest.py, shared with tests/test_ledger.py and reused when nothing it reads has changed since).
Then every HTML page is opened: it must load, every figure must load with a non-zero size, math
must be rendered by the local MathJax, no internal link may point at a missing page or anchor
(``link_problems``), and no request may leave the machine.  The pages must also read clean
(``test_pages_read_clean``, at a 1280 px wide window): no unrendered ``$...$`` math outside code,
no ``PosixPath`` or ``NaN`` shown, no table cell cut with "...", nothing wider than the content
column unless it scrolls sideways (``clean_problems``), and no figure drawn so small that its text
falls under 8 px (``figure_text_problems``: the style's font size in pixels at the PNG's dpi,
scaled by the figure's drawn width over its natural width).  ``test_the_checks_catch_...`` runs
those checks on a page made to fail each of them.  A screenshot of the first chapter is saved to
_build/screenshots/.  The smoke book goes to _build/smoke/, so it never replaces the book that
``make book`` built.  ``ADABIT_BOOK_HTML=_build/html`` runs the same checks on that book instead.

Chromium: ``make test`` installs it when running as root.  If it is missing, the test fails under
CI (CI=true) and is skipped elsewhere with a message saying how to install it.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "smoke" / "_build" / "html"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SKIP_PAGES = {"genindex.html", "search.html"}


def _need_browser():
    if Path(CHROMIUM).exists():
        return
    message = ("headless Chromium not found at /usr/bin/chromium: install Debian's 'chromium' "
               "package (make test does so when run as root)")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def book(request) -> Path:
    """The smoke book; or, with ADABIT_BOOK_HTML set, the HTML folder it names (e.g. _build/html
    after ``make book``: the same checks on the default build)."""
    _need_browser()
    other = os.environ.get("ADABIT_BOOK_HTML")
    if other:
        html = (ROOT / other).resolve()
        assert (html / "index.html").exists(), f"ADABIT_BOOK_HTML={other}: no built book there"
        return html
    html, _ = request.getfixturevalue("smoke_book")  # tests/conftest.py: built once per session
    assert html == HTML and (HTML / "index.html").exists()
    return HTML


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    _need_browser()

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def _pages(html: Path) -> list[Path]:
    pages = [p for p in sorted(html.rglob("*.html"))
             if p.name not in SKIP_PAGES and "_static" not in p.parts and "_sources" not in p.parts]
    # index.html is only a redirect to the root page
    return [p for p in pages if p != html / "index.html"]


def test_every_page_loads_with_figures_math_links_and_no_outside_request(book, browser):
    pages = _pages(book)
    chapters = [p for p in pages if "chapters" in p.parts]
    assert chapters, "the book has no chapter pages"
    outside, problems = [], []
    page = browser.new_page()
    page.on("request", lambda r: outside.append(r.url) if urlparse(r.url).scheme not in ("file", "data", "blob") else None)
    for path in pages:
        response = page.goto(path.as_uri(), wait_until="load")
        assert response is None or response.ok, path
        name = path.relative_to(book).as_posix()
        if not page.title():
            problems.append(f"{name}: empty title")
        # figures: every <img> decoded with a non-zero size
        sizes = page.eval_on_selector_all(
            "article img", "els => els.map(e => [e.getAttribute('src'), e.complete, e.naturalWidth, e.naturalHeight])")
        for src, complete, w, h in sizes:
            if not (complete and w > 0 and h > 0):
                problems.append(f"{name}: figure {src} did not load")
        # math: every math node typeset by MathJax
        n_math = page.locator("article .math").count()
        if n_math:
            page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
            page.evaluate("() => MathJax.startup.promise")
            if page.locator("article mjx-container").count() == 0:
                problems.append(f"{name}: {n_math} math nodes but nothing rendered")
        problems += link_problems(page, path, name)
    page.close()
    assert not problems, "\n".join(problems)
    assert not outside, f"requests left the machine: {sorted(set(outside))[:10]}"


def link_problems(page, path: Path, name: str) -> list[str]:
    """Internal links (no scheme) of the open page ``path`` whose file does not exist, or whose
    ``#anchor`` names no ``id`` in an HTML target."""
    out = []
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
    for href in hrefs:
        parsed = urlparse(href)
        if parsed.scheme or href.startswith(("mailto:", "javascript:")) or href == "#":
            continue
        target = (path.parent / unquote(parsed.path)).resolve() if parsed.path else path
        if not target.exists():
            out.append(f"{name}: broken link {href}")
        elif parsed.fragment and target.suffix == ".html":
            text = target.read_text(errors="replace")
            if not re.search(r'\bid=["\']' + re.escape(unquote(parsed.fragment)) + r'["\']', text):
                out.append(f"{name}: link {href} names a missing anchor")
    return out


# JavaScript run on each page (after MathJax): what a reader would see as a mistake.
CLEAN_JS = r"""() => {
  const article = document.querySelector("article") || document.body;
  const visible = (root, drop) => {
    const copy = root.cloneNode(true);
    copy.querySelectorAll(drop).forEach(e => e.remove());
    return copy.textContent;
  };
  // text outside code, code cells' inputs and typeset math
  const prose = visible(article, "pre, code, script, style, mjx-container, .math, .cell_input, .MathJax");
  // what the chapters show a reader (printed output included), not code: cell inputs, code
  // blocks outside cell outputs, API signatures
  const copy = article.cloneNode(true);
  copy.querySelectorAll("script, style, .cell_input, mjx-container, .math, .MathJax, .sig")
    .forEach(e => e.remove());
  copy.querySelectorAll("pre, code").forEach(e => { if (!e.closest(".cell_output")) e.remove(); });
  const shown = copy.textContent;
  const math = prose.match(/\$[^$\n]{1,80}\$/g) || [];
  const cut = [...article.querySelectorAll("td, th")].map(e => e.textContent.trim())
    .filter(t => t.endsWith("...") || t.endsWith("\u2026"));
  const right = article.getBoundingClientRect().right + 2;
  const wide = [];
  const kinds = "table, pre, img, svg, figure, video, iframe, canvas, div, p, ul, ol, dl, details, " +
                "blockquote, mjx-container";
  for (const e of article.querySelectorAll(kinds)) {
    const box = e.getBoundingClientRect();
    if (box.right <= right || !e.checkVisibility()) continue;  // inside the column, or not shown
    if (e.parentElement && e.parentElement.closest(kinds) &&
        e.parentElement.closest(kinds).getBoundingClientRect().right > right &&
        article.contains(e.parentElement.closest(kinds))) continue;  // its container is reported
    let ok = false;
    for (let a = e.parentElement; a && a !== article.parentElement; a = a.parentElement) {
      const ox = getComputedStyle(a).overflowX;
      if ((ox === "auto" || ox === "scroll") && a.getBoundingClientRect().right <= right) { ok = true; break; }
    }
    if (!ok) wide.push(e.tagName.toLowerCase() + "." + (e.className || "") + " " + e.textContent.slice(0, 40));
  }
  return {math: math.slice(0, 5), n_math: math.length, posix: (shown.match(/PosixPath/g) || []).length,
          nan: (shown.match(/\bNaN\b/g) || []).length, cut: cut.slice(0, 5), n_cut: cut.length,
          wide: wide.slice(0, 5), n_wide: wide.length};
}"""


def clean_problems(page, name: str) -> list[str]:
    """What reads wrong on the open page (``CLEAN_JS``), one line per kind of problem."""
    if page.locator("article .math").count():
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
        page.evaluate("() => MathJax.startup.promise")
    r = page.evaluate(CLEAN_JS)
    out = []
    if r["n_math"]:
        out.append(f"{name}: {r['n_math']} unrendered $ math, e.g. {r['math']}")
    if r["posix"]:
        out.append(f"{name}: {r['posix']} PosixPath shown")
    if r["nan"]:
        out.append(f"{name}: {r['nan']} NaN shown")
    if r["n_cut"]:
        out.append(f"{name}: {r['n_cut']} table cells cut with '...', e.g. {r['cut']}")
    if r["n_wide"]:
        out.append(f"{name}: {r['n_wide']} elements wider than the column that do not scroll, e.g. {r['wide']}")
    return out


MIN_TEXT_PX = 8.0  # the smallest text a figure may show on the page
# every figure of the page: its src, natural width and drawn width (0 when folded away)
FIGURES_JS = """() => [...(document.querySelector("article") || document.body).querySelectorAll("img")]
  .map(e => [e.getAttribute("src"), e.naturalWidth, e.checkVisibility() ? e.getBoundingClientRect().width : 0])"""


def figure_text_problems(page, path: Path, name: str) -> list[str]:
    """Figures (PNG) of the open page drawn so much smaller than their natural size that their
    text falls under ``MIN_TEXT_PX``: the book's font size (``plotting.STYLE``) in pixels at the
    PNG's dpi (its pHYs record; the style's figure dpi where it has none) times drawn / natural
    width.  Text that a figure sets smaller than the style's size is smaller still."""
    from PIL import Image

    from adabit_lite.plotting import STYLE

    out = []
    for src, natural, drawn in page.evaluate(FIGURES_JS):
        if not src or not natural or not drawn:
            continue  # not loaded (reported elsewhere) or not shown (folded)
        file = (path.parent / unquote(urlparse(src).path)).resolve()
        if urlparse(src).scheme not in ("", "file") or file.suffix.lower() != ".png" or not file.exists():
            continue
        with Image.open(file) as im:
            dpi = float((im.info.get("dpi") or (STYLE["figure.dpi"],))[0])
        px = STYLE["font.size"] / 72 * dpi * drawn / natural
        if px < MIN_TEXT_PX:
            out.append(f"{name}: figure {src} ({natural} px wide at {dpi:.0f} dpi, drawn {drawn:.0f} px) "
                       f"shows its {STYLE['font.size']:g} pt text at {px:.1f} px, under {MIN_TEXT_PX:g} px")
    return out


def open_folds(page) -> None:
    """Open every folded block (``<details>``: hidden code, folded tables) as a reader may."""
    page.evaluate("() => document.querySelectorAll('details').forEach(d => { d.open = true; })")


def test_pages_read_clean(book, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = []
    for path in _pages(book):
        page.goto(path.as_uri(), wait_until="load")
        open_folds(page)
        name = path.relative_to(book).as_posix()
        problems += clean_problems(page, name) + figure_text_problems(page, path, name)
    page.close()
    assert not problems, "\n".join(problems)


def test_the_checks_catch_what_they_are_meant_to(browser, tmp_path):
    """A page made to fail every check: a wide table that does not scroll (one that does is fine),
    a figure drawn at a third of its width, a link to a missing page and one to a missing anchor."""
    import matplotlib

    matplotlib.use("Agg")
    from adabit_lite import plotting

    fig, ax = plotting.figure()  # the book's style: 6.4 in at figure.dpi
    ax.plot([0, 1], [0, 1])
    fig.savefig(tmp_path / "fig.png", dpi=plotting.STYLE["figure.dpi"])
    from PIL import Image

    with Image.open(tmp_path / "fig.png") as im:
        natural = im.size[0]
    (tmp_path / "other.html").write_text('<html><body><h1 id="here">x</h1></body></html>')
    cells = "".join(f"<td>column {i}</td>" for i in range(60))
    (tmp_path / "bad.html").write_text(f"""<html><head><title>t</title></head><body>
<article style="width: 600px">
  <div style="overflow-x: auto; max-width: 100%"><table id="ok"><tr>{cells}</tr></table></div>
  <table id="wide"><tr>{cells}</tr></table>
  <img src="fig.png" style="width: {natural // 3}px">
  <img src="fig.png" style="width: {natural // 2 + 20}px">
  <details><summary>folded</summary><img src="fig.png" style="width: 50px"></details>
  <a href="other.html#here">fine</a> <a href="#ok">fine too</a>
  <a href="missing.html">broken</a> <a href="other.html#gone">no anchor</a>
</article></body></html>""")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto((tmp_path / "bad.html").as_uri(), wait_until="load")
    assert figure_text_problems(page, tmp_path / "bad.html", "bad.html")[-1].endswith("under 8 px")
    hidden = len(figure_text_problems(page, tmp_path / "bad.html", "bad.html"))
    open_folds(page)  # the folded figure counts once opened
    wide = [p for p in clean_problems(page, "bad.html") if "wider than the column" in p]
    small = figure_text_problems(page, tmp_path / "bad.html", "bad.html")
    links = link_problems(page, tmp_path / "bad.html", "bad.html")
    page.close()
    assert len(wide) == 1 and "1 elements wider" in wide[0] and "column 0" in wide[0]  # not the one that scrolls
    assert hidden == 1 and len(small) == 2  # the third and, once opened, the folded one; the half is readable
    assert f"drawn {natural // 3} px" in small[0] and "drawn 50 px" in small[1]
    assert links == ["bad.html: broken link missing.html", "bad.html: link other.html#gone names a missing anchor"]


def test_screenshot_of_the_first_chapter(book, browser):
    first = sorted(p for p in _pages(book) if "chapters" in p.parts)[0]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(first.as_uri(), wait_until="load")
    if page.locator("article .math").count():
        page.evaluate("() => MathJax.startup.promise")
    out = ROOT / "_build" / "screenshots" / "first_chapter.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out))
    page.close()
    assert out.stat().st_size > 20_000  # a rendered page, not a blank one
