"""HTML building blocks of the report: escaping, the page shell, tables, embedded figures, numbers with units.

Every value that reaches a page goes through :func:`cell` (escaped unless it is already :class:`Html`);
figure JSON inside ``<script>`` has ``<``, ``>`` and ``&`` written as ``\\u003c`` etc., so no string can
close the script. Pages load ``plotly.min.js`` from their own folder: they work offline from ``file://``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence

import plotly.graph_objects as go
import plotly.io as pio

from scalelab.units import si

PLOTLY_JS = "plotly.min.js"

_CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2330;
       margin: 0; background: #f6f7f9; }
main { max-width: 1100px; margin: 0 auto; padding: 1.5rem 2rem 3rem; background: #fff; min-height: 100vh; }
h1 { font-size: 1.7rem; margin: 0.2rem 0 0.6rem; }
h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #e3e6eb; padding-bottom: 0.2rem; }
nav { font-size: 0.9rem; }
a { color: #1f5fbf; }
dl.settings { display: grid; grid-template-columns: max-content 1fr; gap: 0.15rem 1rem; margin: 0.8rem 0;
              background: #f3f5f8; padding: 0.7rem 1rem; border-radius: 6px; }
dl.settings dt { font-weight: 600; color: #4a5263; }
dl.settings dd { margin: 0; }
p.how { color: #4a5263; font-size: 0.93rem; background: #fbfbf4; border-left: 3px solid #d9cf8c;
        padding: 0.4rem 0.8rem; }
p.note { color: #8a4b08; }
ul.answers li { margin-bottom: 0.3rem; }
.plotly-figure { width: 100%; height: 480px; }
table { border-collapse: collapse; margin: 0.6rem 0; font-size: 0.92rem; }
th, td { padding: 0.3rem 0.7rem; border-bottom: 1px solid #e3e6eb; text-align: left; vertical-align: top; }
th { background: #f3f5f8; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafbfc; }
td a { white-space: nowrap; }
#page-errors { background: #fde8e8; color: #8b1a1a; padding: 0.5rem 1rem; border-radius: 6px; }
"""

# Shows script errors and a missing plotly.min.js on the page itself instead of leaving blank figures.
_ERROR_BOX = """<div id="page-errors" hidden></div>
<script>(function () {
  var box = document.getElementById("page-errors");
  window.addEventListener("error", function (e) {
    var p = document.createElement("p");
    p.textContent = e.target && e.target.src
      ? "Could not load " + e.target.src + ": keep plotly.min.js in the same folder as this page."
      : "Script error: " + e.message;
    box.appendChild(p);
    box.hidden = false;
  }, true);
})();</script>"""


class Html(str):
    """A fragment that is already safe HTML; :func:`cell` leaves it as it is."""


def cell(value: object) -> Html:
    """``value`` as safe HTML: escaped unless it is :class:`Html`."""
    return value if isinstance(value, Html) else Html(html.escape(str(value), quote=True))


def tag(name: str, content: object = "", **attrs: str) -> Html:
    """``<name attrs>content</name>`` with escaped attribute values and content (unless :class:`Html`)."""
    text = "".join(f' {k.rstrip("_").replace("_", "-")}="{html.escape(v, quote=True)}"' for k, v in attrs.items())
    return Html(f"<{name}{text}>{cell(content)}</{name}>")


def join(parts: Iterable[object]) -> Html:
    return Html("\n".join(cell(p) for p in parts))


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], numeric: Sequence[int] = ()) -> Html:
    """A table; columns whose index is in ``numeric`` are right-aligned."""
    def row(cells: Sequence[object], name: str) -> Html:
        return tag("tr", join(tag(name, c, class_="num") if i in numeric else tag(name, c)
                              for i, c in enumerate(cells)))

    return tag("table", join([tag("thead", row(headers, "th")), tag("tbody", join(row(r, "td") for r in rows))]))


def figure(fig_id: str, fig: go.Figure) -> Html:
    """A plotly figure drawn into ``<div id=fig_id>`` by the page's shared plotly.min.js."""
    spec = script_json(pio.to_json(fig, validate=False, engine="json"))
    return Html(f'<div id="{html.escape(fig_id)}" class="plotly-figure"></div>\n<script>(function () {{\n'
                f'  var f = {spec};\n'
                f'  Plotly.newPlot("{html.escape(fig_id)}", f.data, f.layout, '
                '{responsive: true, displaylogo: false});\n})();</script>')


def script_json(text: str) -> str:
    """JSON text made safe inside ``<script>``: no ``</script>``, ``<!--`` or entity can appear."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def page(title: str, body: Html, *, nav: str = "") -> str:
    """A whole page: inline CSS, the error box, the shared plotly.min.js, then ``body``."""
    return (f'<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"{tag('title', title)}\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n{cell(nav)}\n{_ERROR_BOX}\n"
            f'<script src="{PLOTLY_JS}"></script>\n{body}\n</main>\n</body>\n</html>\n')


def slugs(names: Iterable[str]) -> dict[str, str]:
    """A distinct, file-name-safe slug for each name (``Sweep B0!`` -> ``sweep-b0``; repeats get -2, -3)."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for name in names:
        base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60].strip("-") or "study"
        slug, n = base, 1
        while slug in taken:
            n += 1
            slug = f"{base}-{n}"
        taken.add(slug)
        out[name] = slug
    return out


def pct(fraction: float, digits: int = 1) -> str:
    """0.8321 -> '83.2 %'."""
    return f"{100 * fraction:.{digits}f} %"


def points(diff: float, digits: int = 1) -> str:
    """An accuracy difference in percentage points: 0.0123 -> '+1.2 points'."""
    return f"{100 * diff:+.{digits}f} points"


def flops(value: float) -> str:
    """398085664 -> '398 M multiply-adds'."""
    return si(value, "multiply-adds")
