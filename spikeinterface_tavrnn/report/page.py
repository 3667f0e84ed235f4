"""The report's HTML page: findings first, then the figures that show them, the model's diagnostics, and the
parameters actually used in an appendix."""

from __future__ import annotations

import html
from typing import Any, Mapping, Sequence

from .summary import _jsonable

__all__ = ["render_page"]

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222; margin: 0 auto;
       max-width: 1100px; padding: 1.5em 2em 4em; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
h3 { font-size: 1.05em; margin-top: 1.4em; }
p.meta { color: #666; font-size: 0.9em; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.7em; text-align: left; vertical-align: top; }
th { background: #f4f5f7; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafafa; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; margin-top: 0.3em; }
p.note { color: #8a5a00; background: #fff8e6; border-left: 3px solid #e0a800; padding: 0.4em 0.8em; }
div.scroll { max-height: 28em; overflow-y: auto; display: inline-block; }
div.findings { background: #f2f7fd; border: 1px solid #c9dcf2; border-radius: 6px; padding: 0.6em 1.2em; }
div.findings li { margin: 0.35em 0; }
div.findings li:first-child { font-weight: 600; }
figure.finding img { max-width: 760px; }
details { margin: 0.8em 0; }
summary { cursor: pointer; font-weight: 600; }
"""



def _plain(value: Any) -> str:
    """Text of a table value (not escaped)."""
    if value is None:
        return "\u2013"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return f"{value:.0f}"
        return f"{value:.1f}" if abs(value) >= 1000 else f"{value:.4g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_plain(v)}" for k, v in value.items()) or "\u2013"
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(v) for v in value) or "\u2013"
    return str(value)


def _format(value: Any) -> str:
    return html.escape(_plain(value))


def _cell(value: Any) -> str:
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return f'<td class="num">{_format(value)}</td>' if numeric else f"<td>{_format(value)}</td>"


def _key_value_table(rows: Mapping[str, Any]) -> str:
    body = "".join(f"<tr><th>{html.escape(str(k))}</th>{_cell(v)}</tr>" for k, v in rows.items())
    return f"<table>{body}</table>"


def _rows_table(rows: Sequence[Mapping[str, Any]], scroll: bool = False) -> str:
    columns: list[str] = []
    for row in rows:
        columns += [str(k) for k in row if str(k) not in columns]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(_cell({str(k): v for k, v in row.items()}.get(c)) for c in columns) + "</tr>" for row in rows
    )
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="scroll">{table}</div>' if scroll else table


def _extra_table_html(table: Any) -> str:
    if hasattr(table, "to_dict") and hasattr(table, "columns"):  # a pandas DataFrame
        table = table.to_dict("records")
    if isinstance(table, Mapping):
        return _key_value_table(_jsonable(table))
    rows = _jsonable(list(table))
    if not all(isinstance(row, Mapping) for row in rows):
        raise TypeError("Each extra table must be a dict (key -> value) or a list of dicts (one per row).")
    return _rows_table(rows)


def _figure_html(figure) -> str:
    kind = "finding" if figure.finding else "diagnostic"
    return (
        f'<figure class="{kind}"><h3>{html.escape(figure.heading)}</h3>'
        f'<img src="{html.escape(figure.file_name, quote=True)}" alt="{html.escape(figure.heading, quote=True)}">'
        f"<figcaption>{html.escape(figure.caption)}</figcaption></figure>"
    )


def _window_rows_used(connectivity: Mapping) -> dict:
    """The windows as they were used: lengths and steps measured on the windows, not the sliding-window
    parameters when the windows were given (behaviour-aligned)."""
    durations = [connectivity[f"window_duration_{k}_s"] for k in ("median", "min", "max")]
    rows = {
        "windows": "behaviour-aligned (given)" if connectivity["behaviour_aligned_windows"] else "sliding",
        "window length (s): median / min / max": " / ".join(_plain(d) for d in durations),
        "step between window starts (s, median)": connectivity["window_step_median_s"],
    }
    if not connectivity["behaviour_aligned_windows"]:
        rows["window length (s, parameter)"] = connectivity["window_s"]
        rows["step (s, parameter)"] = connectivity["step_s"]
    return rows


def render_page(
    title: str, summary: dict, findings, figures: Sequence, extra_tables: Mapping[str, Any] | None = None
) -> str:
    """The report's ``index.html`` text.

    Parameters
    ----------
    title : str
    summary : dict
        From :func:`~spikeinterface_tavrnn.report.report_summary`.
    findings : Findings
        Sentences shown first.
    figures : list of Figure
        Figures in display order; those marked ``finding`` follow the findings, the others go to "Diagnostics".
    extra_tables : dict or None
        Name -> list of row dicts, or name -> dict.

    Returns
    -------
    str
    """
    recording, connectivity, model = summary["recording"], summary["connectivity"], summary["model"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">Created {html.escape(summary["created"])} with '
        + html.escape(", ".join(f"{k} {v}" for k, v in summary["versions"].items()))
        + '. All numbers are also in <a href="summary.json">summary.json</a>.</p>',
        "<h2>What the recording shows</h2>",
        '<div class="findings"><ul>',
    ]
    parts += [f"<li>{html.escape(sentence)}</li>" for sentence in findings.sentences]
    parts.append("</ul></div>")
    if model is not None and model["stale"]:
        parts.append(
            '<p class="note">Units were merged or split after training: their embeddings are NaN. Recompute with '
            "analyzer.compute(&quot;tavrnn_embeddings&quot;, ...).</p>"
        )
    shown = [f for f in figures if f.finding]
    if shown:
        parts.append("<h2>Figures</h2>")
        parts += [_figure_html(f) for f in shown]
    diagnostics = [f for f in figures if not f.finding]
    if diagnostics:
        parts.append("<h2>Connectivity and model diagnostics</h2>")
        parts += [_figure_html(f) for f in diagnostics]

    for name, table in (extra_tables or {}).items():
        parts.append(f"<h2>{html.escape(str(name))}</h2>")
        parts.append(_extra_table_html(table))

    parts.append("<h2>Appendix: parameters actually used</h2>")
    overview = {
        "units": recording["n_units"],
        "windows": recording["n_windows"],
        "duration (s)": recording["duration_s"],
        "sampling frequency (Hz)": recording["sampling_frequency_hz"],
        "unit labels": recording["unit_label_counts"],
    }
    parts.append("<h3>Recording</h3>" + _key_value_table(overview))
    used = {
        "method": connectivity["method"],
        **{f"{key} (used)": value for key, value in (connectivity.get("method_params") or {}).items()},
        **_window_rows_used(connectivity),
        "edge rule": _edge_rule(connectivity),
        "mean edge density": connectivity["mean_edge_density"],
        "compute time (s)": connectivity["runtime_s"],
    }
    parts.append("<h3>Functional connectivity</h3>" + _key_value_table(used))
    parts.append(
        "<details><summary>All connectivity parameters as given</summary>"
        + _key_value_table(connectivity["params"])
        + "</details>"
    )
    if model is None:
        parts.append(
            '<p class="note">No tavrnn_embeddings extension: compute it with '
            "analyzer.compute(&quot;tavrnn_embeddings&quot;, ...).</p>"
        )
    else:
        trained = {
            "embeddings shape (windows, units, z_dim)": model["embeddings_shape"],
            "epochs run": model["epochs_run"],
            "final loss": model["final_loss"],
            "minimum loss": model["min_loss"],
            "training time (s)": model["training_time_s"],
        }
        parts.append("<h3>TAVRNN model</h3>" + _key_value_table(trained))
        parts.append("<details><summary>All model parameters</summary>" + _key_value_table(model["params"]))
        parts.append("</details>")
        if summary["link_scores"]:
            parts.append("<h3>Link scores</h3>" + _key_value_table(summary["link_scores"]))
    parts.append("<h3>Per-window numbers</h3>")
    parts.append(_rows_table(summary["windows"], scroll=len(summary["windows"]) > 20))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _edge_rule(connectivity: Mapping) -> str:
    if connectivity.get("significance") is not None:
        return f"pairs beating jitter surrogates at alpha = {_plain(connectivity['significance'])}"
    if connectivity.get("threshold") is not None:
        return f"|value| >= {_plain(connectivity['threshold'])}"
    density = connectivity.get("density")
    if density is not None:
        return f"strongest {_plain(density)} of pairs per window"
    return "the extension's default rule (see the mean edge density)"
