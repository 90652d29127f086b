"""Render the report dictionary (see :mod:`multissl.report.build`) as one plain HTML page.

No framework and no script: tables, headings, ``<details>`` for long run lists and ``<img>`` tags that
point at ``img/`` beside the page, so it opens from disk with no server and no network. Every number
cell carries its exact value in ``data-value`` (and its run and key), which the tests read back.
"""

from __future__ import annotations

from html import escape
from typing import Any

from multissl.report.metrics import fmt

OPEN_RUNS = 12  # recipe tables with more runs start folded (the mean +- std row stays in the summary)

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1300px;
padding:0 18px 40px;color:#1d232a;background:#fff}
h1{margin:18px 0 4px;font-size:24px}h2{margin-top:34px;border-bottom:2px solid #d6dde4;padding-bottom:4px}
h3{margin:22px 0 6px;font-size:16px}nav a{margin-right:12px}.meta{color:#5b6670;font-size:13px}
table{border-collapse:collapse;margin:6px 0 10px;font-size:13px}th,td{border:1px solid #d6dde4;
padding:3px 7px;text-align:right;white-space:nowrap}th{background:#f1f4f7;font-weight:600}
td.t,th.t{text-align:left;white-space:normal;max-width:420px}tr.mean td{background:#f6f9fc;font-weight:600}
.scroll{overflow-x:auto}.lose{background:#fde3e1;color:#9b1c13;font-weight:600}.ok{color:#16632f}
.flag{color:#9b1c13;font-weight:600}.ci{color:#5b6670;font-size:12px}.base{color:#5b6670}
figure{display:inline-block;margin:6px 14px 6px 0;vertical-align:top}figcaption{font-size:12px;color:#5b6670}
img{max-width:100%;border:1px solid #e3e8ed}figure.pic img{max-height:460px;max-width:640px}details>summary{cursor:pointer;color:#2456a4}
.note{background:#fff8e0;border:1px solid #f1dc9c;padding:6px 10px;margin:8px 0}
"""


def _e(x: Any) -> str:
    return escape(str(x), quote=True)


def _num(value: Any, **attrs: Any) -> str:
    """A number cell with its exact value in data-value (no data-value when missing)."""
    cls = attrs.pop("cls", "")
    title = attrs.pop("title", "")
    extra = attrs.pop("extra", "")
    data = "".join(f' data-{k.replace("_", "-")}="{_e(v)}"' for k, v in attrs.items() if v is not None)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        data += f' data-value="{value!r}"'
    c = f' class="{cls}"' if cls else ""
    t = f' title="{_e(title)}"' if title else ""
    return f"<td{c}{t}{data}>{_e(fmt(value) if not isinstance(value, str) else value)}{extra}</td>"


def _pm(s: dict[str, Any] | None) -> str:
    if not s:
        return "-"
    if s.get("std") is None:
        return f"{fmt(s['mean'])} (n={s['n']})"
    return f"{fmt(s['mean'])} &plusmn; {fmt(s['std'])} (n={s['n']})"


def _seconds(v: Any, estimated: bool = False) -> str:
    if not isinstance(v, (int, float)):
        return "-"
    pre = "&asymp;" if estimated else ""
    if v >= 3600:
        return f"{pre}{v / 3600:.2f} h"
    if v >= 120:
        return f"{pre}{v / 60:.1f} min"
    return f"{pre}{v:.1f} s"


def _interval(iv: dict[str, float] | None) -> str:
    if not iv:
        return ""
    if "low" in iv and "high" in iv:
        return f' <span class="ci">[{fmt(iv["low"])}, {fmt(iv["high"])}]</span>'
    if "std" in iv:
        return f' <span class="ci">&plusmn; {fmt(iv["std"])}</span>'
    return ""


def _overview(report: dict[str, Any]) -> str:
    rows = []
    for row in report["overview"]:
        h = row["headline"]
        link = f'<a href="#{_e(row["anchor"])}">{_e(row["modality"])}</a>'
        if h:
            base = "; ".join(f'{_e(b["label"])} {fmt(b["mean"])}' for b in h["baselines"]) or "none reported"
            lost = any(b["floor"] and b["mean"] is not None and _worse(h, b) for b in h["baselines"])
            ours = (f'<td class="{"lose" if lost else ""}" data-key="{_e(h["metric"])}" data-value="{h["mean"]!r}"'
                    f' data-modality="{_e(row["modality"])}">{_pm(h)}{" &#9888; below floor" if lost else ""}</td>')
            head = (f'<td class="t">{_e(h["metric"])}</td>{ours}<td class="t base">{base}</td>'
                    f'<td class="t"><a href="#{_e(h["group_anchor"])}">{_e(h["recipe"])}</a>'
                    f'{" (best on validation of " + str(h["of_recipes"]) + ")" if h["of_recipes"] > 1 else ""}</td>')
        else:
            head = '<td class="t">-</td><td>-</td><td class="t">-</td><td class="t">-</td>'
        p = row["peer"]
        peer = (f'{_e(p["what"])}: {fmt(p["ours"])} vs {fmt(p["peer"])} {_e(p["unit"])} ({_e(p["peer_name"])}), '
                f'ratio {fmt(p["ratio"])} ({"higher" if p["higher_is_better"] else "lower"} is better)'
                if p else "no bench record")
        flagged = (f'<span class="flag">{row["flagged_runs"]}</span>' if row["flagged_runs"] else "0")
        rows.append(f'<tr><td class="t">{link}</td>{head}<td class="t">{peer}</td><td>{row["recipes"]}</td>'
                    f'<td>{row["runs"]}</td><td>{flagged}</td></tr>')
    return ('<section id="overview"><h2>Overview</h2><p class="meta">Each modality\'s headline test metric '
            '(mean &plusmn; std over seeds) for its recipe with the best mean validation score, beside its '
            'baselines and the '
            'latest peer benchmark. Runs whose test metric loses to their own floor are counted and marked '
            'red below.</p><div class="scroll"><table><tr><th class="t">modality</th><th class="t">headline '
            'metric</th><th>ours</th><th class="t">baselines</th><th class="t">recipe</th><th class="t">peer '
            '(bench)</th><th>recipes</th><th>runs</th><th>runs below floor</th></tr>'
            + "".join(rows) + "</table></div></section>")


def _worse(h: dict[str, Any], b: dict[str, Any]) -> bool:
    from multissl.report.metrics import loses

    return loses(h["mean"], b["mean"], h["metric"])


def _group(g: dict[str, Any]) -> str:
    cols = g["columns"]
    head = ['<th class="t">run</th><th>seed</th><th>steps</th><th>epochs</th><th>wall</th><th>CPU</th>',
            f'<th class="t">selected checkpoint ({_e(g["select_metric"] or "last")})</th>']
    for k in cols:
        head.append(f"<th>{_e(k)}</th>")
        for b in g["baselines"].get(k, []):
            head.append(f'<th class="base">{_e(b["label"])}<br><small>{_e(b["key"])}</small></th>')
    ncols = 7 + sum(1 + len(g["baselines"].get(k, [])) for k in cols)
    body = []
    if len(g["runs"]) > 1:
        s = g["summary"]
        cells = [f'<td class="t">mean &plusmn; std</td><td>{len(g["runs"])} runs</td>',
                 _num(s.get("steps", {}).get("mean"), cls=""), "<td></td>",
                 f'<td>{_seconds(s.get("wall_s", {}).get("mean"))}</td>',
                 f'<td>{_seconds(s.get("cpu_s", {}).get("mean"))}</td>']
        cells.append(_mean_cell(s.get("selected"), "selected"))
        for k in cols:
            cells.append(_mean_cell(s.get(k), k, lost=any(f["metric"] == k for f in g["group_flags"])))
            cells += [_mean_cell(s.get(b["key"]), b["key"], cls="base") for b in g["baselines"].get(k, [])]
        body.append('<tr class="mean">' + "".join(cells) + "</tr>")
    for r in g["runs"]:
        if r["problem"] and not r["test"]:
            body.append(f'<tr><td class="t">{_e(r["run"])}</td><td>{_e(r["seed"])}</td>'
                        f'<td class="t flag" colspan="{ncols - 2}">{_e(r["problem"])}</td></tr>')
            continue
        b = r["budget"]
        sel = r["selected"]
        sel_txt = (f'{_e(sel["checkpoint"])} @ step {_e(sel["step"])}: {fmt(sel["value"])}'
                   if sel["value"] is not None else _e(sel["checkpoint"] or "-"))
        if sel["metric"] in r["start"]:  # the starting model's validation score (train.eval_at_start)
            sel_txt += f' <span class="base">(step 0: {fmt(r["start"][sel["metric"]])})</span>'
        links = "".join(f' <a class="meta" href="{_e(href)}">{_e(name)}</a>' for name, href in r["links"].items())
        cells = [f'<td class="t">{_e(r["run"])}{links}</td>', _num(r["seed"], run=r["run"], key="seed"),
                 _num(b["steps"], run=r["run"], key="steps"), _num(b["epochs"], run=r["run"], key="epochs"),
                 f'<td>{_seconds(b["wall_s"], r["wall_estimated"])}</td><td>{_seconds(b["cpu_s"])}</td>',
                 f'<td class="t" data-run="{_e(r["run"])}" data-key="selected"'
                 + (f' data-value="{sel["value"]!r}"' if isinstance(sel["value"], (int, float)) else "")
                 + f">{sel_txt}</td>"]
        flagged = {f["metric"]: f for f in r["flags"]}
        for k in cols:
            v = r["metrics"].get(k)
            f = flagged.get(k)
            cells.append(_num(v, run=r["run"], key=k, cls="lose" if f else "",
                              title=f"below its {f['label']} ({fmt(f['floor'])})" if f else "",
                              extra=_interval(r["intervals"].get(k)) + (" &#9888;" if f else "")))
            for bl in g["baselines"].get(k, []):
                cells.append(_num(r["metrics"].get(bl["key"]), run=r["run"], key=bl["key"], cls="base"))
        body.append("<tr>" + "".join(cells) + "</tr>")
    n = len(g["runs"])
    table = (f'<div class="scroll"><table class="runs" data-group="{_e(g["key"])}"><tr>{"".join(head)}</tr>'
             + "".join(body) + "</table></div>")
    more = (f'<p class="meta">{g["hidden_columns"]} more test metrics are in report.json.</p>'
            if g["hidden_columns"] else "")
    if n > OPEN_RUNS:
        table = f"<details><summary>all {n} runs (the first row is the mean &plusmn; std)</summary>{table}</details>"
    flags = ""
    if g["flagged_runs"] or g["group_flags"]:
        what = "; ".join(f'mean {_e(f["metric"])} {fmt(f["mean"])} &lt; {_e(f["label"])} {fmt(f["floor"])}'
                         for f in g["group_flags"])
        flags = (f'<p class="note flag" data-flagged-runs="{g["flagged_runs"]}">&#9888; {g["flagged_runs"]} of {n} '
                 f'runs lose to their own floor on a test metric{": " + what if what else ""}.</p>')
    figs = []
    if g["curves"]:
        figs.append(f'<figure><img src="{_e(g["curves"])}" alt="training curves of {_e(g["title"])}">'
                    f"<figcaption>train loss and validation curves, {n} run(s) overlaid</figcaption></figure>")
    for p in g["pictures"]:
        figs.append(f'<figure class="pic"><img src="{_e(p["src"])}" alt="{_e(p["caption"])}">'
                    f'<figcaption>{_e(p["caption"])} ({_e(p["run"])})</figcaption></figure>')
    seeds = ", ".join(str(s) for s in g["seeds"][:20]) + (" ..." if len(g["seeds"]) > 20 else "")
    return (f'<article id="{_e(g["anchor"])}"><h3>{_e(g["title"])}</h3>'
            f'<p class="meta">{_e(g["description"])}<br>method <b>{_e(g["method"])}</b> (task {_e(g["task"])}); '
            f'data: {_e(g["data"])}; seeds: {_e(seeds)}; headline: {_e(g["headline"] or "-")}</p>'
            f"{flags}{table}{more}<div>{''.join(figs)}</div></article>")


def _mean_cell(s: dict[str, Any] | None, key: str, cls: str = "", lost: bool = False) -> str:
    if not s:
        return "<td>-</td>"
    c = " ".join(x for x in (cls, "lose" if lost else "") if x)
    std = f' data-std="{s["std"]!r}"' if s.get("std") is not None else ""
    return (f'<td{" class=" + chr(34) + c + chr(34) if c else ""} data-mean-key="{_e(key)}" data-mean="{s["mean"]!r}"'
            f'{std} data-n="{s["n"]}">{_pm(s)}</td>')


def _bench(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return '<p class="meta">No bench records for this modality.</p>'
    body = "".join(
        f'<tr><td class="t">{_e(b["bench"])}</td><td class="t">{_e(b["what"])}</td>'
        f'{_num(b["ours"], key="ours")}{_num(b["peer"], key="peer")}<td class="t">{_e(b["unit"])}</td>'
        f'{_num(b["ratio"], key="ratio")}<td class="t">{_e(b["peer_name"])}</td>'
        f'<td class="t">{"higher" if b["higher_is_better"] else "lower"}</td><td class="t">{_e(b["machine"])}</td>'
        f'<td class="t">{_e(b["time"])}</td><td>{b["records"]}</td></tr>' for b in rows)
    return ('<div class="scroll"><table class="bench"><tr><th class="t">bench</th><th class="t">what</th>'
            '<th>ours</th><th>peer</th><th class="t">unit</th><th>ratio ours/peer</th><th class="t">peer</th>'
            '<th class="t">better</th><th class="t">machine</th><th class="t">date</th><th>records</th></tr>'
            + body + "</table></div>")


def _recipes_table(groups: list[dict[str, Any]]) -> str:
    rows = []
    for g in groups:
        h = g["headline"]
        s = g["summary"].get(h) if h else None
        floors = [b for b in g["baselines"].get(h, [])] if h else []
        base = "; ".join(f'{_e(b["label"])} {fmt(g["summary"].get(b["key"], {}).get("mean"))}' for b in floors)
        lost = any(f["metric"] == h for f in g["group_flags"])
        rows.append(f'<tr><td class="t"><a href="#{_e(g["anchor"])}">{_e(g["title"])}</a></td>'
                    f'<td class="t">{_e(g["method"])}</td><td class="t">{_e(g["data"])}</td><td>{len(g["runs"])}</td>'
                    f'<td>{fmt(g["summary"].get("steps", {}).get("mean"))}</td>'
                    f'<td>{_seconds(g["summary"].get("wall_s", {}).get("mean"))}</td>'
                    f'<td class="t">{_e(h or "-")}</td><td class="{"lose" if lost else ""}">{_pm(s)}</td>'
                    f'<td class="t base">{base or "-"}</td><td>{g["flagged_runs"]}</td></tr>')
    return ('<div class="scroll"><table><tr><th class="t">recipe</th><th class="t">method</th><th class="t">data'
            '</th><th>runs</th><th>steps</th><th>wall</th><th class="t">headline</th><th>mean &plusmn; std</th>'
            '<th class="t">baselines</th><th>below floor</th></tr>' + "".join(rows) + "</table></div>")


def render(report: dict[str, Any]) -> str:
    """The whole page as a string."""
    nav = " ".join(f'<a href="#mod-{_e(m)}">{_e(m)}</a>' for m in report["modalities"])
    sections = []
    for m, mod in report["modalities"].items():
        parts = [f'<section id="mod-{_e(m)}"><h2>{_e(m)}</h2>']
        if mod["groups"]:
            parts.append(_recipes_table(mod["groups"]))
            parts += [_group(g) for g in mod["groups"]]
        parts.append(f"<h3>Benchmarks ({_e(m)})</h3>{_bench(mod['bench'])}</section>")
        sections.append("".join(parts))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<title>multissl report</title><style>{CSS}</style></head><body>"
            f'<header><h1>multissl report</h1><p class="meta">{report["runs"]} runs and {report["bench_records"]} '
            f'bench records from {_e(", ".join(report["inputs"]))}; generated {_e(report["generated"])} by multissl '
            f'{_e(report["multissl"])}. The numbers are in report.json beside this page.</p>'
            f"<nav>{nav}</nav></header>{_overview(report)}{''.join(sections)}</body></html>\n")
