"""The book builds: a page for every _toc.yml entry, and, in a real browser with no network,
rendered maths, widgets that respond to input without a kernel, and pages that fit 1280 px.

The first build here does not execute chapters (``pytest --nbmake`` already runs every one of them);
the browser checks use an executed build that reuses the notebook cache of ``make book``.
"""

from __future__ import annotations

import html as html_lib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from book_toc import is_notebook, source_of, toc_entries  # noqa: E402
from check_book import missing_pages  # noqa: E402

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
VENDOR = ROOT / "book" / "_vendor"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # no network at all: every host lookup fails
    "--allow-file-access-from-files",
    "--virtual-time-budget=20000",
]


def _build(tmp: Path, execute: str, toc: dict | None = None, cache: Path | None = None) -> Path:
    subprocess.run([sys.executable, str(ROOT / "scripts/vendor_js.py"), str(VENDOR)], check=True)
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = execute
    if cache is not None:
        config["execute"]["cache"] = str(cache)
    # local extension folders are resolved against the config file's folder: make them absolute
    config["sphinx"]["local_extensions"] = {
        name: str(ROOT / path) for name, path in config["sphinx"]["local_extensions"].items()
    }
    (tmp / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))  # key order = script order
    args = [
        str(BIN / "jupyter-book"),
        "build",
        str(ROOT),
        "--path-output",
        str(tmp),
        "--config",
        str(tmp / "_config.yml"),
        "--warningiserror",
        "--nitpick",
    ]
    if toc is not None:
        (tmp / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
        args += ["--toc", str(tmp / "_toc.yml")]
    result = subprocess.run(args, capture_output=True, text=True, cwd=tmp)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return tmp / "_build" / "html"


def test_every_toc_entry_is_rendered(tmp_path):
    html = _build(tmp_path, execute="off")
    assert missing_pages(html) == []
    for entry in toc_entries():
        page = (html / f"{entry}.html").read_text()
        assert "<h1" in page, entry
        if is_notebook(source_of(entry)):  # the download menu offers the chapter as a notebook
            notebook = json.loads((html / "_sources" / f"{entry}.ipynb").read_text())
            assert notebook["cells"] and "download-notebook-button" in page, entry


def _chromium(*args: str, profile: Path) -> str:
    result = subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120
    )
    return result.stdout


HARNESS = """<!doctype html><html><body><div id="result">pending</div>
<iframe id="page" src="{page}" width="1200" height="1600"></iframe>
<script>
function report(text) {{ document.getElementById('result').textContent = text; }}
window.addEventListener('load', function () {{ setTimeout(function () {{
  try {{
    var doc = document.getElementById('page').contentDocument;
    var bar = doc.querySelector('.widget-hprogress .progress-bar');
    var handle = doc.querySelector('.widget-slider .noUi-handle');
    var before = bar.style.width;
    for (var i = 0; i < 8; i++) {{
      handle.dispatchEvent(new KeyboardEvent('keydown', {{key: 'ArrowRight', keyCode: 39, which: 39, bubbles: true}}));
    }}
    setTimeout(function () {{
      report('maths=' + doc.querySelectorAll('mjx-container').length + ' before=' + before + ' after=' + bar.style.width);
    }}, 1500);
  }} catch (e) {{ report('error ' + e); }}
}}, 6000); }});
</script></body></html>"""


@pytest.fixture(scope="module")
def executed_site(tmp_path_factory) -> Path:
    """The whole book, executed, reusing the notebook cache of `make book` (chapters whose code
    changed since, or all of them on a fresh clone, execute now)."""
    return _build(tmp_path_factory.mktemp("site"), execute="cache", cache=ROOT / "_build" / ".jupyter_cache")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_maths_and_widgets_work_offline_in_a_browser(executed_site, tmp_path):
    html = executed_site
    profile = tmp_path / "profile"
    # The preface's maths is typeset by the vendored MathJax (no CDN reachable).
    dom = _chromium("--dump-dom", (html / "book/intro.html").as_uri(), profile=profile)
    assert dom.count("<mjx-container") >= 3, "MathJax did not typeset the preface"
    # The first chapter's widget renders and its jslinked slider moves the progress bar.
    harness = html / "book" / "_widget_check.html"
    harness.write_text(HARNESS.format(page="first_steps.html"))
    result = _chromium("--dump-dom", harness.as_uri(), profile=profile)
    line = result.split('<div id="result">', 1)[1].split("<", 1)[0]
    assert line.startswith("maths="), f"widget check did not run: {line!r}"
    fields = dict(item.split("=", 1) for item in line.split())
    assert int(fields["maths"]) > 0, line
    assert fields["before"] == "51.6129%" and fields["after"] != fields["before"], line


# Every page at 1280 px: nothing sticks out of the article column or scrolls inside it, and every
# widget control changes something else in its output (a jslink that works without a kernel).
PAGES_HARNESS = """<!doctype html><html><body><pre id="result">pending</pre>
<iframe id="page" width="1280" height="900"></iframe>
<script>
var pages = {pages}, results = {{}}, frame = document.getElementById('page');
function describe(el) {{
  var text = (el.textContent || '').replace(/\\s+/g, ' ').trim().slice(0, 60);
  return el.tagName.toLowerCase() + '.' + String(el.className || '').split(' ').slice(0, 2).join('.') + ' "' + text + '"';
}}
function overflow(doc) {{
  var article = doc.querySelector('article.bd-article') || doc.querySelector('main');
  var right = article.getBoundingClientRect().right, bad = [], seen = [];
  article.querySelectorAll('*').forEach(function (el) {{
    if (seen.some(function (s) {{ return s.contains(el); }})) return;
    var r = el.getBoundingClientRect(), style = doc.defaultView.getComputedStyle(el);
    if (r.width === 0 || r.height === 0 || style.visibility === 'hidden') return;
    var sticks = r.right > right + 2, scrolls;
    if (el.tagName === 'MJX-CONTAINER') {{
      // a typeset formula: its rendered maths (not MathJax's hidden assistive copy) must fit the box
      var maths = el.querySelector('mjx-math');
      scrolls = el.getAttribute('display') === 'true' && maths && maths.getBoundingClientRect().width > el.clientWidth + 2;
    }} else if (el.closest('mjx-container') || el.classList.contains('math')) {{
      return;  // inside a formula, or the span/div around one: judged by the formula itself
    }} else {{
      scrolls = ['auto', 'scroll', 'hidden'].indexOf(style.overflowX) >= 0 && el.scrollWidth > el.clientWidth + 2;
    }}
    if (scrolls || sticks) {{ seen.push(el); bad.push(describe(el) + (scrolls ? ' scrolls ' + el.scrollWidth + '>' + el.clientWidth : ' ends at ' + Math.round(r.right) + '>' + Math.round(right))); }}
  }});
  return bad;
}}
function ownText(el) {{  // the element's own text, not its children's: '<b>IoU</b> = 0.33' gives ' = 0.33'
  return [].map.call(el.childNodes, function (n) {{ return n.nodeType === 3 ? n.textContent : ''; }}).join('');
}}
function snapshot(container, control) {{
  var parts = [];
  container.querySelectorAll('*').forEach(function (e) {{
    if (control.contains(e) || e.contains(control)) return;
    parts.push(e.tagName + '|' + e.className + '|' + e.hidden + '|' + (e.getAttribute('style') || '') + '|' + (e.getAttribute('src') || '') + '|' + ownText(e));
  }});
  return parts.join('\\n');
}}
function act(el) {{
  if (el.tagName === 'SELECT') {{ el.selectedIndex = (el.selectedIndex + 1) % el.options.length; el.dispatchEvent(new Event('change', {{bubbles: true}})); return; }}
  if (el.tagName === 'BUTTON') {{ el.click(); return; }}
  for (var i = 0; i < 3; i++) el.dispatchEvent(new KeyboardEvent('keydown', {{key: 'ArrowRight', keyCode: 39, which: 39, bubbles: true}}));
}}
function checkWidgets(doc, done) {{
  var controls = [].slice.call(doc.querySelectorAll('.widget-slider .noUi-handle, .widget-dropdown select, .widget-toggle-buttons button:not(.mod-active)'));
  var dead = [], total = controls.length;
  (function next() {{
    if (!controls.length) return done(total, dead);
    var control = controls.shift(), root = control.closest('.widget-slider, .widget-dropdown, .widget-toggle-buttons');
    if (control.disabled || root.querySelector('[disabled]')) {{ total -= 1; return next(); }}  // a read-only display
    var container = control.closest('.cell_output') || doc.body, before = snapshot(container, root);
    act(control);
    setTimeout(function () {{ if (snapshot(container, root) === before) dead.push(describe(root)); next(); }}, 700);
  }})();
}}
(function load(i) {{
  if (i >= pages.length) {{ document.getElementById('result').textContent = JSON.stringify(results); return; }}
  frame.onload = function () {{ setTimeout(function () {{
    var doc = frame.contentDocument;
    try {{
      var bad = overflow(doc);
      checkWidgets(doc, function (total, dead) {{ results[pages[i]] = {{overflow: bad, widgets: total, dead: dead}}; load(i + 1); }});
    }} catch (e) {{ results[pages[i]] = {{error: String(e)}}; load(i + 1); }}
  }}, 5000); }};
  frame.src = pages[i];
}})(0);
</script></body></html>"""


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_every_page_fits_1280_pixels_and_every_widget_responds(executed_site, tmp_path):
    html = executed_site
    pages = [f"{entry}.html" for entry in toc_entries()]
    harness = html / "_pages_check.html"
    harness.write_text(PAGES_HARNESS.format(pages=json.dumps(pages)))
    result = subprocess.run(
        [
            CHROMIUM,
            *[f for f in CHROMIUM_FLAGS if not f.startswith("--virtual-time-budget")],
            f"--virtual-time-budget={12000 * len(pages) + 60000}",
            "--window-size=1400,1000",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            harness.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    ).stdout
    report = json.loads(html_lib.unescape(result.split('<pre id="result">', 1)[1].split("</pre>", 1)[0]))
    assert sorted(report) == sorted(pages), f"pages not checked: {sorted(set(pages) - set(report))}"
    problems = {page: r for page, r in report.items() if r.get("error") or r["overflow"] or r["dead"]}
    assert problems == {}, json.dumps(problems, indent=1)
    assert sum(r["widgets"] for r in report.values()) >= 3  # the check saw the book's widgets
