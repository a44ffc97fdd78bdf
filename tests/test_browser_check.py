"""The browser check sees what a reader sees: overflow, cut-off outputs and tables, raw TeX, external scripts."""
from __future__ import annotations

import pytest

from faceopt.browser_check import Problem, book_pages, check_pages, find_browser

pytest.importorskip("selenium", reason="the browser check needs selenium (requirements.txt)")
try:
    find_browser()
except FileNotFoundError as exc:  # pragma: no cover - CI installs it (make browser)
    pytest.skip(str(exc), allow_module_level=True)

PAGE = """<!doctype html><html><head><meta name="viewport" content="width=device-width, initial-scale=1">
<style>body {{ margin: 0 }} article {{ max-width: 700px; margin: 0 auto; overflow-wrap: break-word }}
.cell_output pre {{ overflow-x: auto; white-space: pre }} .wrap {{ overflow-x: auto }}</style>{head}</head>
<body><article class="bd-article">{body}</article></body></html>"""


def _page(tmp_path, name, body, head=""):
    path = tmp_path / name
    path.write_text(PAGE.format(head=head, body=body))
    return path


def _kinds(problems: list[Problem]) -> set[tuple[str, int, str]]:
    return {(p.page, p.width, p.kind) for p in problems}


def test_a_clean_page_has_no_problems_and_each_defect_is_found(tmp_path):
    clean = _page(tmp_path, "clean.html", "<p>Costs 5 dollars, or $ 4 on sale.</p><div class='cell_output'><pre>short</pre></div>"
                  "<div class='wrap'><table><tr><td>a</td><td>b</td></tr></table></div>")
    wide_out = _page(tmp_path, "wide_output.html", "<div class='cell_output'><pre>" + "x" * 400 + "</pre></div>")
    wide_table = _page(tmp_path, "wide_table.html", "<div class='wrap'><table><tr>"
                       + "<td>column&nbsp;of&nbsp;text</td>" * 30 + "</tr></table></div>")
    tex = _page(tmp_path, "tex.html", "<p>the loss is $L = -\\log p$ here</p>")
    wide_page = _page(tmp_path, "wide_page.html", "<div style='width: 900px'>a fixed-width block</div>")
    external = _page(tmp_path, "external.html", "<p>text</p>", head="<script src='http://127.0.0.1:9/x.js'></script>")
    shots = tmp_path / "shots"
    problems, _ = check_pages([clean, wide_out, wide_table, tex, wide_page, external], root=tmp_path, screenshots=shots)
    found = _kinds(problems)
    assert not [p for p in problems if p.page == "clean.html"], problems
    assert ("wide_output.html", 1280, "cut-off output") in found
    assert ("wide_output.html", 390, "cut-off output") not in found  # a phone may scroll an output
    assert {("wide_table.html", w, "cut-off table") for w in (1280, 390)} <= found
    assert ("tex.html", 1280, "raw TeX") in found
    assert {("wide_page.html", w, "overflow") for w in (1280, 390)} <= found  # wider than the 700 px column too
    assert ("external.html", 1280, "external script") in found
    assert len(list(shots.glob("*.png"))) == 12  # every page at both widths


def test_book_pages_names_the_fix_when_nothing_is_built(tmp_path):
    with pytest.raises(FileNotFoundError, match="make book-full"):
        book_pages(tmp_path)


def test_redirect_pages_are_left_out_whatever_the_case_of_refresh(tmp_path):
    # Sphinx writes index.html as <meta http-equiv="Refresh" ...>: a page without content, which the
    # browser leaves while the check measures it
    html = tmp_path / "html"
    html.mkdir()
    (html / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=book/intro.html" />')
    (html / "old.html").write_text('<meta http-equiv="refresh" content="0; url=new.html" />')
    _page(html, "intro.html", "<p>text</p>")
    assert [p.name for p in book_pages(html)] == ["intro.html"]
