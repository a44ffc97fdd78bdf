"""Read the built book in a real browser (headless Chromium) and report what a reader would see wrong.

Every HTML page of a built book is opened at a desktop and a phone width (1,280 and 390 px);
after MathJax has typeset, the page is measured in the browser:

* **overflow**: the page, or the content column, is wider than the window, so part of the text is
  off screen;
* **cut-off output**: at the desktop width a notebook output (printed text or a table) is wider
  than its box, so its right end is hidden behind a scroll bar (on a phone wide outputs may scroll);
* **cut-off table**: a table of the prose (the scorecard's) wider than the column, at any width;
* **raw TeX**: ``$...$``, ``\\(`` or ``\\[`` left in the rendered prose (a formula MathJax did not set);
* **external script**: a script or stylesheet loaded from another site (the book must read offline).

A screenshot of every page at every width is saved for a maintainer to look at. The browser is
Debian's ``chromium`` driven through ``chromedriver`` with Selenium; nothing is downloaded.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

#: Window widths in CSS pixels: a laptop and a phone.
WIDTHS = (1280, 390)

#: Pages that are Sphinx's own machinery, not the book's.
SKIPPED_PAGES = ("genindex.html", "search.html", "py-modindex.html")

_MEASURE = r"""
const out = {problems: []};
const add = (kind, detail) => out.problems.push([kind, detail]);
const doc = document.documentElement;
if (doc.scrollWidth > window.innerWidth + 1)
  add("overflow", `page is ${doc.scrollWidth} px wide in a ${window.innerWidth} px window`);
const article = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
if (article.scrollWidth > article.clientWidth + 1)
  add("overflow", `content column needs ${article.scrollWidth} px, has ${article.clientWidth}`);
const label = (e) => (e.innerText || "").trim().split("\n")[0].slice(0, 70);
if (arguments[0]) {
  for (const e of article.querySelectorAll(".cell_output pre, .cell_output table, .output pre, .output table")) {
    if (e.scrollWidth > e.clientWidth + 1)
      add("cut-off output", `${e.scrollWidth - e.clientWidth} px hidden: "${label(e)}"`);
    const box = e.closest(".output, .cell_output");
    if (box && box !== e && box.scrollWidth > box.clientWidth + 1 && e.scrollWidth <= e.clientWidth + 1)
      add("cut-off output", `${box.scrollWidth - box.clientWidth} px hidden: "${label(e)}"`);
  }
}
for (const t of article.querySelectorAll("table")) {
  if (t.closest(".cell_output, .output")) continue;
  const box = t.parentElement;
  const hidden = Math.max(t.scrollWidth - t.clientWidth, box.scrollWidth - box.clientWidth,
                          t.getBoundingClientRect().right - article.getBoundingClientRect().right);
  if (hidden > 1) add("cut-off table", `${Math.round(hidden)} px hidden: "${label(t)}"`);
}
const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
const tex = /\$[^$\s][^$]*\$|\\\(|\\\[/;
for (let n = walker.nextNode(); n; n = walker.nextNode()) {
  const p = n.parentElement;
  if (!p || p.closest("pre, code, script, style, mjx-container, .cell_input, .highlight")) continue;
  if (tex.test(n.textContent)) add("raw TeX", `"${n.textContent.trim().slice(0, 70)}"`);
}
for (const s of document.querySelectorAll("script[src], link[rel=stylesheet][href]")) {
  const url = s.src || s.href;
  if (/^https?:/.test(url)) add("external script", url);
}
out.formulas = document.querySelectorAll("mjx-container").length;
return out;
"""

_WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1];
const p = window.MathJax && MathJax.startup && MathJax.startup.promise;
(p ? p : Promise.resolve()).then(() => done(true), (e) => done(String(e)));
"""


@dataclass(frozen=True)
class Problem:
    """One defect a reader would see: which page, at which width, what kind, and where."""

    page: str
    width: int
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.page} at {self.width} px: {self.kind}: {self.detail}"


def find_browser() -> tuple[str, str]:
    """Paths of the ``chromium`` binary and its ``chromedriver``.

    Raises:
        FileNotFoundError: naming the Debian packages that provide them.
    """
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        raise FileNotFoundError("the browser check needs Chromium and its driver: "
                                "apt-get install chromium chromium-driver (Debian)")
    return browser, driver


def _driver(window_height: int = 900) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = find_browser()
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--hide-scrollbars", f"--window-size={WIDTHS[0]},{window_height}"):
        options.add_argument(arg)
    options.binary_location = browser
    return webdriver.Chrome(service=Service(driver), options=options)  # an explicit driver: nothing is fetched


def book_pages(html_root: str | Path) -> list[Path]:
    """The book's HTML pages under a built site's ``_build/html`` (Sphinx's index and search pages and
    redirects left out)."""
    root = Path(html_root)
    pages = [p for p in sorted(root.rglob("*.html"))
             if p.name not in SKIPPED_PAGES and "_static" not in p.parts and "_sources" not in p.parts
             and 'http-equiv="refresh"' not in p.read_text(errors="replace")[:2000].lower()]  # redirects: no content
    if not pages:
        raise FileNotFoundError(f"{root}: no HTML pages; build the book first (make book-full)")
    return pages


def check_pages(pages: Iterable[str | Path], *, root: str | Path | None = None, widths: Sequence[int] = WIDTHS,
                screenshots: str | Path | None = None) -> tuple[list[Problem], dict[str, int]]:
    """Open every page at every width; return the problems found and the number of typeset formulas per page.

    ``root`` only shortens the page names in the report; ``screenshots`` is a folder for one
    full-height PNG per page and width.
    """
    paths = [Path(p).resolve() for p in pages]
    base = Path(root).resolve() if root is not None else None
    shots = Path(screenshots) if screenshots is not None else None
    if shots is not None:
        shots.mkdir(parents=True, exist_ok=True)
    problems: list[Problem] = []
    formulas: dict[str, int] = {}
    driver = _driver()
    try:
        driver.set_script_timeout(30)
        for page in paths:
            name = str(page.relative_to(base)) if base is not None else page.name
            for width in widths:
                driver.set_window_size(width, 900)
                driver.get(page.as_uri())
                driver.execute_async_script(_WAIT_FOR_MATHJAX)
                found = driver.execute_script(_MEASURE, width == max(widths))
                problems += [Problem(name, width, kind, detail) for kind, detail in found["problems"]]
                formulas[name] = int(found["formulas"])
                if shots is not None:
                    height = driver.execute_script("return document.documentElement.scrollHeight")
                    driver.set_window_size(width, min(int(height), 20000))
                    driver.save_screenshot(str(shots / f"{name.replace('/', '__')}-{width}.png"))
    finally:
        driver.quit()
    return problems, formulas
