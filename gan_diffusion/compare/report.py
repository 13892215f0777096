"""One self-contained HTML page: context, tables and figures (PNG embedded as base64 data
URIs, CSS inline, no scripts and no external resources), readable offline and in a browser
screenshot (tests/compare/test_compare.py renders it in headless Chromium)."""
from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from gan_diffusion.compare.plots import Figure
from gan_diffusion.compare.tables import Table

TITLE = "gan_diffusion comparison report"

CSS = """
body { font-family: 'DejaVu Sans', Arial, sans-serif; margin: 24px auto; max-width: 1200px;
       color: #1d1d1f; background: #ffffff; line-height: 1.4; padding: 0 16px; }
h1 { font-size: 26px; margin-bottom: 4px; } h2 { font-size: 20px; margin-top: 32px;
     border-bottom: 2px solid #ddd; padding-bottom: 4px; } h3 { font-size: 16px; }
.meta { color: #444; font-size: 13px; } .note { color: #444; font-size: 13px; max-width: 1100px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border: 1px solid #c8c8c8; padding: 4px 8px; text-align: right; }
th { background: #eef1f5; } td:first-child, td:nth-child(2) { text-align: left; white-space: nowrap; }
tr:nth-child(even) td { background: #fafafa; }
.warn { background: #fff4d6; border: 1px solid #e6c35c; padding: 8px 12px; font-size: 13px; }
figure { margin: 12px 0 24px; } figure img { max-width: 100%; border: 1px solid #e0e0e0; }
figcaption { font-size: 13px; color: #444; }
code { background: #f2f2f2; padding: 1px 4px; }
"""


def _table_html(t: Table) -> str:
    head, rows = t.header_and_cells()
    out = [f"<h3>{html.escape(t.title)}</h3>"]
    if t.note:
        out.append(f"<p class='note'>{html.escape(t.note)}</p>")
    out.append("<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head)
               + "</tr></thead><tbody>")
    out += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows]
    out.append("</tbody></table>")
    return "\n".join(out)


def _figure_html(f: Figure) -> str:
    data = base64.b64encode(Path(f.path).read_bytes()).decode("ascii")
    return (f"<figure><img alt='{html.escape(f.title)}' src='data:image/png;base64,{data}'>"
            f"<figcaption><b>{html.escape(f.title)}.</b> {html.escape(f.caption)}</figcaption></figure>")


def _dl(items: dict[str, Any]) -> str:
    return "<ul class='meta'>" + "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(str(v))}</li>"
                                         for k, v in items.items()) + "</ul>"


def render(tables: list[Table], figures: list[Figure], context: dict[str, Any],
           notes: list[str]) -> str:
    """The page as a string.

    Args:
        tables: in display order (Table.header_and_cells gives the formatted cells).
        figures: PNG figures to embed.
        context: key -> value lines shown under the title (command, machine, versions, mode).
        notes: paragraphs shown in a highlighted box (e.g. the stand-in extractor warning).
    """
    body = [f"<h1>{TITLE}</h1>", _dl(context)]
    body += [f"<p class='warn'>{html.escape(n)}</p>" for n in notes]
    body.append("<h2>Tables</h2>")
    body += [_table_html(t) for t in tables]
    body.append("<h2>Figures</h2>")
    body += [_figure_html(f) for f in figures] or ["<p>No finished runs yet.</p>"]
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{TITLE}</title><style>{CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def write_report(path: Path, tables: list[Table], figures: list[Figure], context: dict[str, Any],
                 notes: list[str]) -> Path:
    """Write the page atomically; returns its path."""
    from gan_diffusion.utils.io import atomic_write_text

    atomic_write_text(path, render(tables, figures, context, notes))
    return Path(path)
