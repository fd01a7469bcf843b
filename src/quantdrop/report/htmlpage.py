"""The self-contained report.html: inline CSS, tables, figures embedded as base64 data URIs."""

from __future__ import annotations

import base64
import html

from quantdrop.report.tables import Table

STYLE = """
body{font-family:-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:2rem auto;max-width:1180px;
     color:#1d2329;padding:0 1rem;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}
h2{margin-top:2.2rem;border-bottom:1px solid #d0d7de;padding-bottom:.3rem}
h3{font-size:1.05rem;margin:1.4rem 0 .5rem}
.sub{color:#57606a;margin-top:0}
table{border-collapse:collapse;margin:.4rem 0;font-size:.88rem;font-variant-numeric:tabular-nums}
th,td{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:right;white-space:nowrap}
thead th{background:#f3f5f7} thead th:first-child{text-align:left}
tbody th{text-align:left;font-weight:600;background:#fafbfc}
tbody tr:nth-child(even) td{background:#fbfcfd}
td.strong{font-weight:700;color:#b42318} td.bad{color:#b42318;background:#fdecea !important}
#recommendations td,#recommendations thead th{white-space:normal;text-align:left}
#recommendations td.strong{color:#0b6e35;font-size:1rem}
.scroll{overflow-x:auto;max-width:100%} .ci{font-size:.78rem;color:#57606a}
td.strong .ci{color:#b42318}
.caption{color:#57606a;font-size:.82rem;max-width:1100px;margin-top:.2rem}
figure{margin:1rem 0} figure img{max-width:100%;border:1px solid #e1e4e8}
figcaption{color:#57606a;font-size:.82rem}
ul.notes li{margin:.2rem 0}
"""


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def page(
    model: str,
    note: str,
    sections: list[tuple[str, list[Table | tuple[str, bytes, str]]]],
    notes: list[str],
    generated: str,
) -> str:
    """sections: (heading, [Table | (figure id, png bytes, caption)]) in order; `generated`: the time
    stamp report.json records."""
    sub = " · ".join(s for s in (note, f"generated {generated}" if generated else "") if s)
    parts = [f"<h1>quantdrop report: {html.escape(model)}</h1>", f"<p class='sub'>{html.escape(sub)}</p>"]
    for heading, blocks in sections:
        if not blocks:
            continue
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        for block in blocks:
            if isinstance(block, Table):
                slug = block.title.split(":")[0].lower().replace(" ", "-")
                parts.append(block.html(slug if heading != "Recommendations" else "recommendations"))
            else:
                fig_id, png, caption = block
                cap = html.escape(caption)
                parts.append(
                    f'<figure id="{html.escape(fig_id)}"><img alt="{cap}" src="{data_uri(png)}">'
                    f"<figcaption>{cap}</figcaption></figure>"
                )
    if notes:
        parts.append(
            "<h2>Notes</h2><ul class='notes'>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>"
        )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>quantdrop report: {html.escape(model)}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(parts)}</body></html>\n"
    )
