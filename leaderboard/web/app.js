// unlearn-bench leaderboard page. Plain DOM, no libraries, no network: data comes from data.js.
// Every piece of data goes into the page through textContent or setAttribute, never innerHTML.
(function () {
  "use strict";
  var DATA = window.UBENCH_DATA;
  var SVG_NS = "http://www.w3.org/2000/svg";
  var state = { tab: null, sortKey: null, sortDir: 1 };

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function fmt(x) {
    if (x === null || x === undefined) return "";
    if (typeof x !== "number") return String(x);
    if (x === 0) return "0";
    var a = Math.abs(x);
    if (a >= 1e5 || a < 1e-3) return x.toExponential(2);
    return (Math.round(x * 1e4) / 1e4).toString();
  }
  function uniq(values) {
    return values.filter(function (v, i) { return v !== null && values.indexOf(v) === i; }).sort();
  }

  // ---- tabs: one per benchmark we have results for, plus families only published numbers cover
  function familyOf(benchmark) {
    var fams = Object.keys(DATA.headlines.axes);
    for (var i = 0; i < fams.length; i++) {
      var f = fams[i];
      if (benchmark === f || benchmark.indexOf(f + "-") === 0 || benchmark.indexOf(f + "_") === 0) return f;
    }
    return benchmark;
  }
  function tabs() {
    var list = uniq(DATA.rows.map(function (r) { return r.benchmark; }));
    var covered = list.map(familyOf);
    uniq(DATA.published.map(function (p) { return p.benchmark; })).forEach(function (fam) {
      if (covered.indexOf(fam) < 0) list.push(fam);
    });
    return list;
  }
  function tabRows() { return DATA.rows.filter(function (r) { return r.benchmark === state.tab; }); }
  function tabPublished() {
    var fam = familyOf(state.tab);
    return DATA.published.filter(function (p) { return p.benchmark === fam; });
  }

  // ---- filters
  var FILTERS = ["method", "rectifier", "parametrization", "model"];
  function fillSelect(id, values) {
    var select = document.getElementById(id);
    var previous = select.value;
    select.textContent = "";
    select.appendChild(el("option", { value: "" }, "all"));
    values.forEach(function (v) { select.appendChild(el("option", { value: v }, v)); });
    select.value = values.indexOf(previous) >= 0 ? previous : "";
  }
  function refreshFilterOptions() {
    var rows = tabRows(), pub = tabPublished();
    FILTERS.forEach(function (f) {
      var values = rows.map(function (r) { return r[f]; });
      if (f !== "parametrization") values = values.concat(pub.map(function (p) { return p[f]; }));
      fillSelect("filter-" + f, uniq(values));
    });
  }
  function matches(row, searchText) {
    for (var i = 0; i < FILTERS.length; i++) {
      var want = document.getElementById("filter-" + FILTERS[i]).value;
      if (want && row[FILTERS[i]] !== undefined && row[FILTERS[i]] !== want) return false;
    }
    var q = document.getElementById("filter-text").value.trim().toLowerCase();
    if (q && searchText.toLowerCase().indexOf(q) < 0) return false;
    return true;
  }
  function rowText(r) {
    return [r.row_id, r.display_name, r.method, r.rectifier, r.parametrization, r.model, r.split,
            r.role, r.flags, r.evaluator_variant].join(" ");
  }
  function visibleRows() {
    var comparableOnly = document.getElementById("filter-comparable").checked;
    return tabRows().filter(function (r) {
      return matches(r, rowText(r)) && (!comparableOnly || r.comparable);
    });
  }
  function visiblePublished() {
    return tabPublished().filter(function (p) {
      return matches(p, [p.label, p.method, p.rectifier, p.model, p.split, p.cite, p.note].join(" "));
    });
  }

  // ---- results table
  function metricNames(rows) {
    var names = [];
    rows.forEach(function (r) {
      Object.keys(r).forEach(function (k) {
        if (k.indexOf("metric:") === 0 && k.split(":").length === 2 && r[k] !== null && names.indexOf(k.slice(7)) < 0)
          names.push(k.slice(7));
      });
    });
    var axes = DATA.headlines.axes[familyOf(state.tab)] || { forget: [], utility: [] };
    var head = axes.forget.concat(axes.utility).filter(function (n) { return names.indexOf(n) >= 0; });
    return head.concat(names.filter(function (n) { return head.indexOf(n) < 0; }).sort());
  }
  function arrow(name) {
    var d = DATA.headlines.directions[name];
    return d === "higher" ? " ↑" : d === "lower" ? " ↓" : d === "zero" ? " →0" : d === "half" ? " →0.5" : "";
  }
  function columnsFor(rows) {
    var cols = [
      { key: "role", label: "Kind" }, { key: "method", label: "Objective" },
      { key: "rectifier", label: "Rectifier" }, { key: "parametrization", label: "Param." },
      { key: "model", label: "Model" }, { key: "split", label: "Split" },
      { key: "n_seeds", label: "Seeds" }, { key: "pareto_rank", label: "Pareto rank" }
    ];
    metricNames(rows).forEach(function (m) {
      cols.push({ key: "metric:" + m, label: m + arrow(m), metric: m });
    });
    cols.push({ key: "cost:train_seconds", label: "Train s" },
              { key: "cost:backward_passes", label: "Backward passes" },
              { key: "evaluator_variant", label: "Evaluator" }, { key: "flags", label: "Flags" });
    return cols;
  }
  function compare(a, b, key) {
    var x = a[key], y = b[key];
    if (x === null || x === undefined) return (y === null || y === undefined) ? 0 : 1;
    if (y === null || y === undefined) return -1;
    if (typeof x === "number" && typeof y === "number") return (x - y) * state.sortDir;
    return String(x).localeCompare(String(y)) * state.sortDir;
  }
  function renderResults() {
    var table = document.getElementById("results");
    table.textContent = "";
    var rows = visibleRows();
    var cols = columnsFor(tabRows());
    if (state.sortKey) {
      rows = rows.slice().sort(function (a, b) { return compare(a, b, state.sortKey) || a.row_id.localeCompare(b.row_id); });
    }
    var thead = el("thead"), tr = el("tr");
    cols.forEach(function (c) {
      var th = el("th", { scope: "col", "data-key": c.key, tabindex: "0" }, c.label);
      if (state.sortKey === c.key) th.setAttribute("aria-sort", state.sortDir > 0 ? "ascending" : "descending");
      th.addEventListener("click", function () { sortBy(c.key); });
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") sortBy(c.key); });
      tr.appendChild(th);
    });
    thead.appendChild(tr);
    table.appendChild(thead);
    var tbody = el("tbody");
    rows.forEach(function (r) {
      var row = el("tr", { "data-row-id": r.row_id, "class": "role-" + r.role + (r.comparable ? "" : " not-comparable") });
      cols.forEach(function (c) {
        var td = el("td");
        if (c.key === "role") {
          td.appendChild(el("span", { "class": "badge " + (r.role === "unlearned" ? "ours" : "ref") }, r.role));
        } else if (c.key === "method") {
          td.textContent = r.display_name || r.method;
          td.setAttribute("title", r.row_id);
        } else if (c.metric) {
          td.textContent = fmt(r[c.key]);
          var lo = r[c.key + ":ci_low"], hi = r[c.key + ":ci_high"];
          if (lo !== null && lo !== undefined) td.appendChild(el("span", { "class": "ci" }, " [" + fmt(lo) + ", " + fmt(hi) + "]"));
          td.className = "num";
        } else if (c.key === "flags") {
          td.textContent = r.flags || "";
          if (r.flags) td.className = "flags";
        } else {
          td.textContent = fmt(r[c.key]);
          if (typeof r[c.key] === "number") td.className = "num";
        }
        row.appendChild(td);
      });
      tbody.appendChild(row);
    });
    table.appendChild(tbody);
    document.getElementById("results-empty").hidden = rows.length > 0;
  }
  function sortBy(key) {
    state.sortDir = state.sortKey === key ? -state.sortDir : 1;
    state.sortKey = key;
    renderResults();
  }

  // ---- published table
  function renderPublished() {
    var table = document.getElementById("published");
    table.textContent = "";
    var rows = visiblePublished();
    document.getElementById("published-empty").hidden = rows.length > 0;
    if (!rows.length) return;
    var names = [];
    rows.forEach(function (p) { Object.keys(p.metrics).forEach(function (m) { if (names.indexOf(m) < 0) names.push(m); }); });
    names.sort();
    var tr = el("tr");
    ["Source", "Model", "Split", "Method (as published)"].concat(names.map(function (m) { return m + arrow(m); }))
      .concat(["Note"]).forEach(function (h) { tr.appendChild(el("th", { scope: "col" }, h)); });
    var thead = el("thead"); thead.appendChild(tr); table.appendChild(thead);
    var tbody = el("tbody");
    rows.forEach(function (p) {
      var row = el("tr", { "class": "published role-" + p.role });
      var src = el("td");
      var link = el("a", { href: p.url, title: p.source_title + " — " + p.protocol, rel: "noreferrer noopener", target: "_blank" }, p.cite);
      src.appendChild(link);
      if (p.second_hand) src.appendChild(el("span", { "class": "badge second" }, "second-hand"));
      row.appendChild(src);
      row.appendChild(el("td", {}, p.model));
      row.appendChild(el("td", {}, p.split));
      var label = el("td", {}, p.label + " ");
      if (p.role !== "unlearned") label.appendChild(el("span", { "class": "badge ref" }, p.role));
      row.appendChild(label);
      names.forEach(function (m) { row.appendChild(el("td", { "class": "num" }, fmt(p.metrics[m]))); });
      row.appendChild(el("td", { "class": "note" }, p.note || ""));
      tbody.appendChild(row);
    });
    table.appendChild(tbody);
  }

  // ---- Pareto plots: one per (benchmark, split, model, evaluator variant) group of the current tab:
  // rows of another benchmark or evaluator variant are never drawn on, or ranked by, the same front
  function goodness(v, dir) {
    return dir === "higher" ? v : dir === "lower" ? -v : dir === "half" ? -Math.abs(v - 0.5) : -Math.abs(v);
  }
  function paretoFront(points) {
    return points.filter(function (p) {
      return !points.some(function (q) {
        return q !== p && q.gx >= p.gx && q.gy >= p.gy && (q.gx > p.gx || q.gy > p.gy);
      });
    });
  }
  function renderPlots() {
    var host = document.getElementById("plots");
    host.textContent = "";
    var rows = visibleRows();
    var groups = {};
    rows.forEach(function (r) {
      var key = [r.benchmark, r.split, r.model, r.evaluator_variant].join(" · ");
      (groups[key] = groups[key] || []).push(r);
    });
    Object.keys(groups).sort().forEach(function (key) { host.appendChild(plot(key, groups[key])); });
    if (!Object.keys(groups).length) host.appendChild(el("p", { "class": "empty" }, "No results to plot."));
  }
  function plot(title, rows) {
    var fx = null, fy = null;
    rows.forEach(function (r) { fx = fx || r.forget_metric; fy = fy || r.utility_metric; });
    var figure = el("figure", { "class": "plot" });
    figure.appendChild(el("figcaption", {}, title));
    if (!fx || !fy) { figure.appendChild(el("p", { "class": "empty" }, "No headline metrics for this benchmark.")); return figure; }
    var pts = rows.filter(function (r) { return typeof r["metric:" + fx] === "number" && typeof r["metric:" + fy] === "number"; })
      .map(function (r) { return { row: r, x: r["metric:" + fx], y: r["metric:" + fy] }; });
    var positive = pts.every(function (p) { return p.x > 0; });
    var minX = Math.min.apply(null, pts.map(function (p) { return p.x; }));
    var logX = fx === "forget_quality" && positive && pts.length && minX < 1e-3;
    var tx = function (v) { return logX ? Math.log10(v) : v; };
    var W = 460, H = 300, L = 56, R = 14, T = 12, B = 42;
    var xs = pts.map(function (p) { return tx(p.x); }), ys = pts.map(function (p) { return p.y; });
    var x0 = Math.min.apply(null, xs.concat(logX ? [] : [0])), x1 = Math.max.apply(null, xs.concat(logX ? [0] : [1]));
    var y0 = Math.min.apply(null, ys.concat([0])), y1 = Math.max.apply(null, ys.concat([1]));
    if (x1 - x0 < 1e-12) { x0 -= 0.5; x1 += 0.5; }
    if (y1 - y0 < 1e-12) { y0 -= 0.5; y1 += 0.5; }
    var sx = function (v) { return L + (tx(v) - x0) / (x1 - x0) * (W - L - R); };
    var sy = function (v) { return H - B - (v - y0) / (y1 - y0) * (H - T - B); };
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img",
                            "aria-label": fy + " versus " + fx, "class": "pareto" });
    root.appendChild(svg("rect", { x: L, y: T, width: W - L - R, height: H - T - B, "class": "frame" }));
    for (var i = 0; i <= 4; i++) {
      var gx = x0 + (x1 - x0) * i / 4, gy = y0 + (y1 - y0) * i / 4;
      var px = L + (W - L - R) * i / 4, py = H - B - (H - T - B) * i / 4;
      root.appendChild(svg("line", { x1: px, x2: px, y1: T, y2: H - B, "class": "grid" }));
      root.appendChild(svg("line", { x1: L, x2: W - R, y1: py, y2: py, "class": "grid" }));
      root.appendChild(svg("text", { x: px, y: H - B + 14, "text-anchor": "middle", "class": "tick" },
                           logX ? "1e" + Math.round(gx) : fmt(gx)));
      root.appendChild(svg("text", { x: L - 6, y: py + 4, "text-anchor": "end", "class": "tick" }, fmt(gy)));
    }
    root.appendChild(svg("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle", "class": "axis" },
                         fx + arrow(fx) + (logX ? " (log scale)" : "")));
    root.appendChild(svg("text", { x: 12, y: (T + H - B) / 2, "text-anchor": "middle", "class": "axis",
                                   transform: "rotate(-90 12 " + (T + H - B) / 2 + ")" }, fy + arrow(fy)));
    var dx = DATA.headlines.directions[fx], dy = DATA.headlines.directions[fy];
    var rankable = pts.filter(function (p) { return p.row.comparable && p.row.role === "unlearned"; });
    rankable.forEach(function (p) { p.gx = goodness(p.x, dx); p.gy = goodness(p.y, dy); });
    var front = dx && dy ? paretoFront(rankable) : [];
    front.sort(function (a, b) { return sx(a.x) - sx(b.x); });
    if (front.length > 1) {
      root.appendChild(svg("polyline", { points: front.map(function (p) { return sx(p.x) + "," + sy(p.y); }).join(" "),
                                         "class": "front" }));
    }
    pts.forEach(function (p) {
      var r = p.row, cx = sx(p.x), cy = sy(p.y), mark;
      var onFront = front.indexOf(p) >= 0;
      if (r.role === "target" || r.role === "retain") {
        mark = svg("rect", { x: cx - 6, y: cy - 6, width: 12, height: 12, "class": "point ref " + r.role });
        var nearRight = cx > W - R - 50;  // keep the label inside the plot
        root.appendChild(svg("text", { x: nearRight ? cx - 8 : cx + 8, y: cy - 8, "class": "ref-label",
                                       "text-anchor": nearRight ? "end" : "start" }, r.role));
      } else {
        mark = svg("circle", { cx: cx, cy: cy, r: onFront ? 6 : 4.5,
                               "class": "point " + (r.comparable ? "ours" : "flagged") + (onFront ? " on-front" : "") });
      }
      mark.setAttribute("data-row-id", r.row_id);
      mark.appendChild(svg("title", {}, (r.display_name || r.method) + " + " + r.rectifier + " + " + r.parametrization +
        " (" + r.role + ")\n" + fx + " = " + fmt(p.x) + ", " + fy + " = " + fmt(p.y) + (r.flags ? "\nflags: " + r.flags : "")));
      root.appendChild(mark);
    });
    figure.appendChild(root);
    figure.appendChild(el("p", { "class": "plot-legend" },
      "● comparable  ○ flagged (not ranked)  ■ reference model  — Pareto front (" + front.length + " of " + rankable.length + " ranked)"));
    return figure;
  }

  // ---- page
  function renderChanges() {
    var list = document.getElementById("changes");
    list.textContent = "";
    var c = DATA.changes;
    var items = c.added.map(function (id) { return "added " + id; })
      .concat(Object.keys(c.changed).map(function (id) { return "changed " + id + (c.changed[id].length ? ": " + c.changed[id].join(", ") : ""); }))
      .concat(c.removed.map(function (id) { return "removed " + id; }));
    if (!items.length) items = ["no changes"];
    items.forEach(function (t) { list.appendChild(el("li", {}, t)); });
  }
  function renderAll() { renderPlots(); renderResults(); renderPublished(); }
  function selectTab(name) {
    state.tab = name;
    Array.prototype.forEach.call(document.querySelectorAll("#tabs button"), function (b) {
      b.setAttribute("aria-selected", b.getAttribute("data-tab") === name ? "true" : "false");
    });
    refreshFilterOptions();
    renderAll();
  }
  function init() {
    document.getElementById("version-line").textContent =
      "version " + DATA.meta.version + " · " + DATA.rows.length + " rows · content hash " + DATA.meta.content_hash.slice(0, 19) + "…";
    var nav = document.getElementById("tabs");
    tabs().forEach(function (name) {
      var b = el("button", { role: "tab", "data-tab": name, type: "button" }, name);
      b.addEventListener("click", function () { selectTab(name); });
      nav.appendChild(b);
    });
    FILTERS.forEach(function (f) { document.getElementById("filter-" + f).addEventListener("change", renderAll); });
    document.getElementById("filter-text").addEventListener("input", renderAll);
    document.getElementById("filter-comparable").addEventListener("change", renderAll);
    renderChanges();
    var first = tabs()[0];
    if (first) selectTab(first);
  }
  init();
})();
