"""The built book, opened in a real browser (headless Chromium from Debian's packages).

The fixture builds the whole book once with the ``smoke`` parameter profile (book/build.py: every
chapter notebook run by papermill, then jupyter-book with warnings as errors; ``smoke_book`` in
conftest.py, shared with tests/test_ledger.py and reused when nothing it reads has changed since).
Then every HTML page is opened: it must load, every figure must load with a non-zero size, math
must be rendered by the local MathJax, no internal link may be broken, and no request may leave
the machine.  A screenshot of the first chapter is saved to _build/screenshots/.  The smoke book
goes to _build/smoke/, so it never replaces the book that ``make book`` built.

Chromium: ``make test`` installs it when running as root.  If it is missing, the test fails under
CI (CI=true) and is skipped elsewhere with a message saying how to install it.
"""

from __future__ import annotations

import os
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
    _need_browser()
    html, _ = request.getfixturevalue("smoke_book")  # tests/conftest.py: built once per session
    assert html == HTML and (HTML / "index.html").exists()
    return HTML


@pytest.fixture(scope="session")
def browser(book):
    from playwright.sync_api import sync_playwright

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
        # internal links: the target file exists (and its anchor, when one is named)
        hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
        for href in hrefs:
            parsed = urlparse(href)
            if parsed.scheme or href.startswith(("mailto:", "javascript:")):
                continue
            target = (path.parent / unquote(parsed.path)).resolve() if parsed.path else path
            if not target.exists():
                problems.append(f"{name}: broken link {href}")
            elif parsed.fragment and target.suffix == ".html":
                text = target.read_text(errors="replace")
                if f'id="{parsed.fragment}"' not in text:
                    problems.append(f"{name}: link {href} names a missing anchor")
    page.close()
    assert not problems, "\n".join(problems)
    assert not outside, f"requests left the machine: {sorted(set(outside))[:10]}"


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
