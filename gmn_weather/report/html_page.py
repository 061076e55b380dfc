"""Render :class:`~gmn_weather.report.page_data.PageData` as one self-contained HTML page.

Pure: text in, text out. The page needs no server and no network: CSS and JavaScript
(``page.css``, ``page.js`` beside this module) are inlined, the precision-recall curve is an
inline SVG, thumbnails are relative links to files beside the page, and the gallery's data
ride along as JSON that ``page.js`` renders (filters, pages, review, export). Summary and
tables are plain HTML, readable with scripts off.
"""

from __future__ import annotations

import json
import math
import numbers
from html import escape
from importlib import resources
from urllib.parse import quote

import pandas as pd

from gmn_weather.pooled_metrics import Interval, Spread
from gmn_weather.report.page_data import CELLS, GalleryItem, PageData

# The curve's plot area inside its SVG viewBox (units are CSS pixels at 100 %).
SVG_WIDTH, SVG_HEIGHT = 460, 360
PLOT = {"left": 48, "top": 14, "width": 396, "height": 300}


def _asset(name: str) -> str:
    return resources.files("gmn_weather.report").joinpath(name).read_text(encoding="utf-8")


def fmt(value, digits: int = 3) -> str:
    """A number for the page; an undefined one (None, NaN) is a dash, never a made-up 0."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "\u2013"
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return str(value)
    return f"{float(value):.{digits}f}"


def _sort_key(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _dl(rows: list[tuple[str, str]]) -> str:
    return "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def _spread(spread: Spread) -> str:
    return (f"{fmt(spread.mean)} \u00b1 {fmt(spread.std)} "
            f"(min {fmt(spread.min)}, max {fmt(spread.max)})")


def _interval(ci: Interval) -> str:
    return f"[{fmt(ci.low)}, {fmt(ci.high)}]"


def _overrides_html(page: PageData) -> str:
    o = page.overrides
    if not o.recorded:
        return ("<p class='muted'>No <code>.hydra/overrides.yaml</code> in the fold folders "
                "(folds not started from the command line): see each fold's "
                "<code>config.yaml</code>.</p>")
    chips = " ".join(f"<code>{escape(x)}</code>" for x in o.common) or \
        "<span class='muted'>none: the defaults of conf/train.yaml</span>"
    partial = "".join(f"<li><code>{escape(x)}</code> only in fold(s) "
                      f"{', '.join(map(str, folds))}</li>" for x, folds in o.partial.items())
    return f"<p id='overrides'>{chips}</p>" + (f"<ul>{partial}</ul>" if partial else "")


def _summary(page: PageData, links: list[tuple[str, str]]) -> str:
    m, op = page.metrics, page.operating_point
    data_rows = [
        ("images", f"{m.n_images}"),
        ("clear", f"{m.n_clear} ({fmt(100 * m.n_clear / m.n_images, 1)} %)"),
        ("groups", f"{m.n_groups} ({escape(m.grouping)})"),
        ("stations / nights", f"{len(page.by_station)} / {len(page.by_night)}"),
        ("folds", f"{m.n_folds}"),
        ("labels file", f"<code>{escape(str(page.data.labels_csv))}</code>"),
        ("image folder", f"<code>{escape(str(page.data.image_dir))}</code>"),
    ]
    if page.data.label_overrides:
        data_rows.append(("label overrides", f"<code>{escape(page.data.label_overrides)}</code>"))
    metric_rows = [
        ("pooled AP", f"<span class='big' id='pooled-ap'>{fmt(m.ap)}</span>"),
        ("pooled AUROC", f"<span class='big'>{fmt(m.auroc)}</span>"),
        ("fold AP", _spread(m.fold_ap)),
        ("fold AUROC", _spread(m.fold_auroc)),
        (f"recall at precision \u2265 {fmt(m.min_precision, 2)}", fmt(m.recall_at_min_precision)),
    ]
    ci = f"{int(100 * m.confidence)} % group-bootstrap interval"
    op_rows = [
        ("threshold", f"<span class='big' id='threshold'>{fmt(m.threshold, 4)}</span>"),
        ("precision", f"{fmt(m.precision)} <span class='muted'>{_interval(m.precision_ci)}</span>"),
        ("recall", f"{fmt(m.recall)} <span class='muted'>{_interval(m.recall_ci)}</span>"),
        ("TP / FP / TN / FN", f"{m.tp} / {m.fp} / {m.tn} / {m.fn}"),
        ("rule", escape(str(op.get("rule", "")))),
    ]
    warn = "" if op.get("met", True) else \
        "<p class='warning'>The requested precision was not reached (see the rule).</p>"
    folds = "".join(f"<tr><td>{f.fold}</td><td>{f.n_images}</td><td>{f.n_clear}</td>"
                    f"<td>{fmt(f.ap)}</td><td>{fmt(f.auroc)}</td></tr>" for f in m.folds)
    link_html = " \u00b7 ".join(f"<a href='{quote(href)}'>{escape(text)}</a>"
                                for text, href in links)
    return (
        "<section id='summary'><h2>Summary</h2><h3>Overrides that define the experiment</h3>"
        f"{_overrides_html(page)}<div class='cards'>"
        f"<div class='card'><h3>Data</h3>{_dl(data_rows)}</div>"
        f"<div class='card'><h3>Pooled out-of-fold</h3>{_dl(metric_rows)}</div>"
        f"<div class='card'><h3>Operating point</h3>{_dl(op_rows)}"
        f"<p class='muted'>Intervals: {ci}, {m.bootstrap_resamples} resamples.</p></div></div>"
        f"{warn}<h3>Per fold</h3><table class='data'><thead><tr><th>fold</th><th>images</th>"
        f"<th>clear</th><th>AP</th><th>AUROC</th></tr></thead><tbody>{folds}</tbody></table>"
        f"<p>Files: {link_html}</p></section>")


def _xy(recall: float, precision: float) -> tuple[float, float]:
    return (PLOT["left"] + recall * PLOT["width"], PLOT["top"] + (1 - precision) * PLOT["height"])


def _curve_svg(page: PageData) -> str:
    parts = [(f"<svg id='pr-curve' class='pr' viewBox='0 0 {SVG_WIDTH} {SVG_HEIGHT}' "
              f"width='{SVG_WIDTH}' height='{SVG_HEIGHT}' role='img' "
              "aria-label='precision-recall curve of the pooled out-of-fold predictions'>")]
    for tick in (0, 0.2, 0.4, 0.6, 0.8, 1.0):
        x, y = _xy(tick, tick)
        parts.append(f"<line class='grid' x1='{x:.1f}' y1='{PLOT['top']}' x2='{x:.1f}' "
                     f"y2='{PLOT['top'] + PLOT['height']}'/><line class='grid' "
                     f"x1='{PLOT['left']}' y1='{y:.1f}' x2='{PLOT['left'] + PLOT['width']}' "
                     f"y2='{y:.1f}'/><text x='{x:.1f}' y='{PLOT['top'] + PLOT['height'] + 14}' "
                     f"text-anchor='middle'>{tick:.1f}</text><text x='{PLOT['left'] - 6}' "
                     f"y='{y + 4:.1f}' text-anchor='end'>{tick:.1f}</text>")
    bottom = PLOT["top"] + PLOT["height"]
    parts.append(f"<text x='{PLOT['left'] + PLOT['width'] / 2}' y='{bottom + 32}' "
                 "text-anchor='middle'>recall (clear)</text><text transform='rotate(-90)' "
                 f"x='{-(PLOT['top'] + PLOT['height'] / 2)}' y='14' text-anchor='middle'>"
                 "precision (clear)</text>")
    points = [_xy(r, p) for p, r in zip(page.curve["precision"], page.curve["recall"])
              if not math.isnan(p)]
    if points:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(f"<polyline class='curve' points='{path}'/>")
    m = page.metrics
    if not (math.isnan(m.precision) or math.isnan(m.recall)):
        x, y = _xy(m.recall, m.precision)
        parts.append(f"<circle class='op' cx='{x:.1f}' cy='{y:.1f}' r='5'><title>operating point: "
                     f"threshold {fmt(m.threshold, 4)}</title></circle>")
    parts.append("<circle id='pr-hover-dot' class='hover' r='5' cx='0' cy='0' "
                 "visibility='hidden'/></svg>")
    return "".join(parts)


def _threshold_table(page: PageData) -> str:
    table = page.threshold_table
    columns = [c for c in table.columns if c != "optimistic"]
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    threshold = page.metrics.threshold
    below = table["threshold"][table["threshold"] <= threshold]
    nearest = below.idxmax() if len(below) else None
    rows = []
    for index, row in table.iterrows():
        cls = " class='at-threshold'" if index == nearest else ""
        cells = "".join(f"<td>{fmt(row[c], 2 if c == 'threshold' else 3)}</td>"
                        if c in ("threshold", "precision", "recall", "f1")
                        else f"<td>{int(row[c])}</td>" for c in columns)
        rows.append(f"<tr{cls}>{cells}</tr>")
    return (f"<div class='scroll'><table class='data' id='threshold-table'><thead><tr>{head}"
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def breakdown_table(frame: pd.DataFrame, column: str, table_id: str) -> str:
    """A per-station or per-night table (one row per value), sortable by any column."""
    spec = [(column, column, None), ("n_images", "images", None),
            ("clear_share", "clear share", 3), ("ap", "AP", 3), ("precision", "precision", 3),
            ("recall", "recall", 3), ("tp", "TP", None), ("fp", "FP", None), ("fn", "FN", None)]
    head = "".join(f"<th>{escape(title)}</th>" for _, title, _ in spec)
    rows = []
    for row in frame.to_dict("records"):
        cells = "".join(
            f"<td data-sort='{escape(_sort_key(row[key]))}'>"
            f"{escape(str(row[key])) if digits is None else fmt(row[key], digits)}</td>"
            for key, _, digits in spec)
        rows.append(f"<tr>{cells}</tr>")
    return (f"<div class='scroll'><table class='data sortable' id='{table_id}'><thead><tr>{head}"
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def _cap_note(page: PageData) -> str:
    g = page.gallery
    hidden = [(kind, total - shown) for kind, total, shown in
              (("false positives", g.n_fp, g.shown_fp), ("false negatives", g.n_fn, g.shown_fn))
              if total > shown]
    if not hidden:
        return ""
    parts = "; ".join(f"{n} {kind}" for kind, n in hidden)
    return (f"<p class='note' id='cap-note'>The gallery holds at most the "
            f"{g.max_per_kind} most confident of each kind: {parts} are not shown (every image "
            "is in <a href='oof_predictions.csv'>oof_predictions.csv</a>).</p>")


def _station_options(page: PageData) -> str:
    options = ["<option value=''>all stations</option>"]
    for row in page.by_station.to_dict("records"):
        station = escape(str(row["station"]))
        options.append(f"<option value='{station}'>{station} ({row['fp']} FP, "
                       f"{row['fn']} FN)</option>")
    return "".join(options)


def _gallery(page: PageData) -> str:
    g = page.gallery
    return (
        "<section id='gallery'><h2>Error gallery</h2><p>Images the model gets wrong at the "
        f"operating point (threshold {fmt(page.metrics.threshold, 4)}): false positives "
        "(labelled cloudy, predicted clear) with the highest <code>prob_clear</code> first, "
        "then false negatives (labelled clear, predicted cloudy) with the lowest first. "
        "Click an image to review its label (see the bar at the bottom).</p>"
        f"<p class='counts'><span>false positives: <b id='n-fp'>{g.n_fp}</b></span>"
        f"<span>false negatives: <b id='n-fn'>{g.n_fn}</b></span>"
        "<span>matching the filters: <b id='shown-count'>0</b></span></p>"
        f"{_cap_note(page)}<div class='controls'><label>station <select id='filter-station'>"
        f"{_station_options(page)}</select></label><label>error type <select id='filter-kind'>"
        "<option value='all'>false positives and negatives</option>"
        "<option value='fp'>false positives</option><option value='fn'>false negatives</option>"
        "</select></label><span class='pager'><button id='page-prev'>previous</button>"
        "<span id='page-info'></span><button id='page-next'>next</button></span></div>"
        "<noscript><p class='warning'>The gallery needs JavaScript.</p></noscript>"
        "<div class='grid-tiles' id='gallery-errors'></div></section>"
        "<section id='uncertain'><h2>Most uncertain images</h2><p>The "
        f"{len(g.uncertain)} images whose <code>prob_clear</code> lies nearest the threshold, "
        "right or wrong (the station filter applies here too).</p>"
        "<div class='grid-tiles' id='gallery-uncertain'></div></section>")


_REVIEWBAR = (
    "<div class='reviewbar' id='reviewbar'><span><b id='review-count'>0</b> reviewed</span>"
    "<button id='export'>export label_overrides.csv</button>"
    "<button id='review-clear'>forget reviews</button><span>A click cycles an image through "
    "the other label, remove, its own label, not reviewed. Retrain with "
    "<code>data.label_overrides=label_overrides.csv name=&lt;new name&gt;</code></span></div>")


def _item_json(item: GalleryItem) -> dict:
    data = item.to_dict()
    data["prob_clear"] = round(item.prob_clear, 6)
    return data


def page_json(page: PageData) -> dict:
    """What page.js reads: the gallery, the curve's points and plot area, the page size."""
    curve = page.curve
    points = [[round(float(t), 6), round(float(p), 6), round(float(r), 6)]
              for t, p, r in zip(curve["threshold"], curve["precision"], curve["recall"])
              if not math.isnan(p)]
    return {"name": page.name, "page_size": page.limits.page_size,
            "curve": {"points": points, "box": PLOT},
            "gallery": {"errors": [_item_json(i) for i in page.gallery.errors],
                        "uncertain": [_item_json(i) for i in page.gallery.uncertain]}}


def _script_json(data: dict) -> str:
    # No "<" inside the <script> element at all ("</script>" or "<!--" would end or change
    # it); JSON reads the escaped form back as the same character.
    return json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def render_page(page: PageData, links: list[tuple[str, str]], generated: str) -> str:
    """The whole page; ``links`` are (text, relative href) of the experiment's files."""
    optimistic = "" if not page.operating_point.get("optimistic") else (
        "<p class='warning'>OPTIMISTIC: the out-of-fold predictions used the best epoch chosen "
        "on each validation fold itself; every figure here is optimistic.</p>")
    notes = "".join(f"<p class='note'>{escape(n)}</p>" for n in page.notes)
    cells = ", ".join(f"{k.upper()} = {v}" for k, v in CELLS.items())
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(page.name)} \u00b7 gmn-weather report</title>"
        f"<link rel='icon' href='data:,'><style>{_asset('page.css')}</style></head><body>"
        f"<header><h1>Experiment <code>{escape(page.name)}</code></h1><p class='muted'>"
        f"Pooled out-of-fold report, written {escape(generated)}. Clear is the positive "
        f"class ({cells}).</p><nav><a href='#summary'>summary</a><a href='#curve'>PR curve</a>"
        "<a href='#stations'>stations</a><a href='#nights'>nights</a>"
        "<a href='#gallery'>error gallery</a><a href='#uncertain'>uncertain</a></nav></header>"
        f"{optimistic}{notes}{_summary(page, links)}"
        "<section id='curve'><h2>Precision-recall curve</h2><div class='curve-row'><div>"
        f"{_curve_svg(page)}<p id='pr-hover-text' class='muted'>Hover the curve for threshold, "
        f"precision and recall ({page.curve_total_points} thresholds, {len(page.curve)} "
        "drawn).</p></div><div><h3>Threshold table</h3>"
        f"{_threshold_table(page)}</div></div></section>"
        "<section id='stations'><h2>Per station</h2><p class='muted'>At the operating point; "
        "click a column to sort.</p>"
        f"{breakdown_table(page.by_station, 'station', 'station-table')}</section>"
        "<section id='nights'><h2>Per night</h2><p class='muted'>Night id: the UTC date the "
        f"capture session started.</p>{breakdown_table(page.by_night, 'night', 'night-table')}"
        f"</section>{_gallery(page)}{_REVIEWBAR}"
        f"<script type='application/json' id='report-data'>{_script_json(page_json(page))}"
        f"</script><script>{_asset('page.js')}</script></body></html>\n")
