// unlearn-bench leaderboard page. Plain DOM, no libraries, no network: data comes from data.js.
// Every piece of data goes into the page through textContent or setAttribute, never innerHTML.
(function () {
  "use strict";
  var DATA = window.UBENCH_DATA;
  var SVG_NS = "http://www.w3.org/2000/svg";
  var state = { tab: null, sortKey: null, sortDir: 1, visible: [], rowCache: null, cols: null, limit: PAGE_ROWS,
                worstCase: {} };  // worstCase: tab -> Pareto forget axis at the worst case over attacks
  var ATTACK_AXES = DATA.attack_axes || {};  // benchmark -> {knowledge_metric, attacks}; absent: no attacks
  // The metric meta-evaluation (leaderboard/metric_tables.py): benchmark -> its table, and benchmark ->
  // metric -> {faithfulness, ci_low, ci_high, headline, low, split} for the column headers. Absent in
  // builds without tables: no Metrics tab, plain headers.
  var METRIC_TABLES = DATA.metric_tables || {};
  var METRIC_NOTES = DATA.metric_notes || {};
  var HAS_MATCHED = DATA.columns.indexOf("utility_at_matched") >= 0;  // table format 3 and later
  var NONE = "—";  // a column this table has no value for (older table formats, reference rows)
  var FILTER_DELAY_MS = 120;  // the search box waits for a pause in typing before filtering
  // The table shows this many rows at first (more on request): laying out a wide table costs the
  // browser time in proportion to its rows, so filtering and sorting stay instant at any size.
  var PAGE_ROWS = 100;

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
  function fmtInterval(lo, hi) {
    return (lo === null || lo === undefined) ? "" : " [" + fmt(lo) + ", " + fmt(hi) + "]";
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
  // The filter controls' values, read once per render rather than once per row.
  function currentFilters() {
    return {
      want: FILTERS.map(function (f) { return document.getElementById("filter-" + f).value; }),
      q: document.getElementById("filter-text").value.trim().toLowerCase()
    };
  }
  function matches(row, searchText, f) {
    for (var i = 0; i < FILTERS.length; i++) {
      var want = f.want[i];
      if (want && row[FILTERS[i]] !== undefined && row[FILTERS[i]] !== want) return false;
    }
    if (f.q && searchText.toLowerCase().indexOf(f.q) < 0) return false;
    return true;
  }
  function rowText(r) {
    return [r.row_id, r.display_name, r.method, r.rectifier, r.parametrization, r.model, r.split,
            r.role, r.submitter || "", r.flags, r.evaluator_variant, r.matched_status].join(" ");
  }
  function visibleRows() {
    var comparableOnly = document.getElementById("filter-comparable").checked;
    var f = currentFilters();
    return tabRows().filter(function (r) {
      return matches(r, rowText(r), f) && (!comparableOnly || r.comparable);
    });
  }
  function visiblePublished() {
    var f = currentFilters();
    return tabPublished().filter(function (p) {
      return matches(p, [p.label, p.method, p.rectifier, p.model, p.split, p.cite, p.note].join(" "), f);
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
      { key: "n_seeds", label: "Seeds" }, { key: "pareto_rank", label: "Pareto rank" },
      { key: "utility_at_matched", label: "Utility @ matched forgetting", matched: true },
      { key: "forget_group", label: "Forget group", letters: true },
      { key: "utility_group", label: "Utility group", letters: true }
    ];
    var forgetMetric = null;
    rows.forEach(function (r) { forgetMetric = forgetMetric || r.forget_metric; });
    metricNames(rows).forEach(function (m) {
      var col = { key: "metric:" + m, label: m + arrow(m), metric: m };
      col.faith = faithNote(m, m === forgetMetric);
      if (col.faith) col.title = col.faith.title;
      cols.push(col);
    });
    // attacks (leaderboard/attacks.py): recovery per attack, OU's relearning ratio R per relearn
    // attack, the worst case over them, and the attacks that undo at least half of the row's
    // forgetting (marked, never hidden)
    function attackColumns(suffix) {
      var pattern = new RegExp("^attack:[^:]+:" + suffix + "$");
      return uniq([].concat.apply([], rows.map(function (r) {
        return Object.keys(r).filter(function (k) { return pattern.test(k) && !missing(r[k]); });
      }))).sort();
    }
    var recoveries = attackColumns("recovery");
    recoveries.forEach(function (k) {
      cols.push({ key: k, label: "Recovery " + k.split(":")[1], interval: true });
    });
    attackColumns("R").forEach(function (k) {
      cols.push({ key: k, label: "R " + k.split(":")[1], interval: true,
                  title: "min(Δ retain / Δ unlearned, 1): 1 = relearning restored no more than in the retain model" });
    });
    if (recoveries.length) {
      cols.push({ key: "worst_case_knowledge", label: "Worst-case knowledge" },
                { key: "worst_case_attack", label: "Worst-case attack" },
                { key: "undone_by", label: "Forgetting undone by" });
    }
    cols.push({ key: "cost:train_seconds", label: "Train s" },
              { key: "cost:backward_passes", label: "Backward passes" },
              { key: "evaluator_variant", label: "Evaluator" }, { key: "flags", label: "Flags" });
    return cols;
  }
  // What a metric column's header says about the metric's faithfulness on this tab's benchmark:
  // the value beside the headline forget metric (and the meta-evaluation's own headline metrics), and
  // a marker on any metric the build flagged (`low`: faithfulness below DATA.low_faithfulness).
  function faithNote(metric, isForgetHeadline) {
    var note = (METRIC_NOTES[state.tab] || {})[metric];
    if (!note) return null;
    var show = isForgetHeadline || note.headline;
    var where = state.tab + " " + note.split;
    if (missing(note.faithfulness)) {  // the headline still says so, and why
      return show ? { show: true, low: false, value: null,
                      title: "faithfulness not computable on " + where + (note.note ? ": " + note.note : "") } : null;
    }
    if (!show && !note.low) return null;
    var title = "faithfulness " + fmt(note.faithfulness) + fmtInterval(note.ci_low, note.ci_high) + " on " + where +
      ": AUC-ROC of this metric separating models that hold the forget knowledge from models that never saw it" +
      " (1 = always, 0.5 = chance; Metrics tab).";
    if (note.low) {
      title += "\nFlagged: below " + fmt(DATA.low_faithfulness) + ", so this metric tells knowing and " +
        "never-trained models apart poorly here; differences between rows in it say little about forgetting.";
    }
    return { show: show, low: note.low, value: note.faithfulness, title: title };
  }
  function missing(v) { return v === null || v === undefined; }
  function compare(a, b, key) {
    var x = a[key], y = b[key];
    if (missing(x)) return missing(y) ? 0 : 1;
    if (missing(y)) return -1;
    if (typeof x === "number" && typeof y === "number") return (x - y) * state.sortDir;
    return String(x).localeCompare(String(y)) * state.sortDir;
  }
  // Rows whose every seed reached the level come first, then partly reached ones, then the rest
  // (not reached, no trajectory, no level, reference rows): missing values always sort last.
  function reachedOrder(r) {
    if (missing(r.utility_at_matched)) return 2;
    return r.matched_status === "reached" ? 0 : 1;
  }
  function compareRows(a, b) {
    var key = state.sortKey;
    var c = key === "utility_at_matched" ? (reachedOrder(a) - reachedOrder(b)) || compare(a, b, key)
                                         : compare(a, b, key);
    return c || (a.row_id < b.row_id ? -1 : a.row_id > b.row_id ? 1 : 0);
  }
  // A tab that compares rectifiers (two or more among its unlearned rows) opens sorted by utility at
  // matched forgetting, best first; other tabs, and tables without that column, keep row-id order.
  function defaultSort() {
    var rects = uniq(tabRows().filter(function (r) { return r.role === "unlearned"; })
                              .map(function (r) { return r.rectifier; }));
    return HAS_MATCHED && rects.length > 1 ? { key: "utility_at_matched", dir: -1 } : { key: null, dir: 1 };
  }
  function levelText(r) {
    if (missing(r.matched_metric)) return "";
    var d = DATA.headlines.directions[r.matched_metric];
    var op = d === "higher" ? " ≥ " : " ≤ ";
    return r.matched_metric + (missing(r.matched_level) ? " (level unknown)" : op + fmt(r.matched_level)) +
      (r.matched_text ? ": " + r.matched_text : "");
  }
  function matchedCell(td, r) {
    td.className = "num";
    var status = r.matched_status;
    if (!missing(r.utility_at_matched)) {
      td.textContent = fmt(r.utility_at_matched);
      td.appendChild(el("span", { "class": "ci" }, fmtInterval(r.utility_at_matched_ci_low, r.utility_at_matched_ci_high)));
      if (status && status !== "reached") td.appendChild(el("span", { "class": "status" }, " " + status));
    } else {
      td.textContent = status || NONE;
      if (status) td.className = "status-only";
    }
    var title = levelText(r);
    if (!missing(r.matched_rank)) title += (title ? "\n" : "") + "rank " + r.matched_rank + " among rows that reached it";
    if (title) td.setAttribute("title", title);
  }
  function cell(c, r) {
    var td = el("td");
    if (c.key === "role") {
      td.appendChild(el("span", { "class": "badge " + (r.role === "unlearned" ? "ours" : "ref") }, r.role));
    } else if (c.key === "method") {
      // a submission's row names its submitter, so it never reads as one of the suite's own rows
      td.textContent = (r.display_name || r.method) + (r.submitter ? " (submitted by " + r.submitter + ")" : "");
      td.setAttribute("title", r.row_id);
    } else if (c.matched) {
      matchedCell(td, r);
    } else if (c.letters) {
      td.textContent = missing(r[c.key]) ? NONE : r[c.key];
      td.className = "letters";
    } else if (c.metric || c.interval) {
      td.textContent = fmt(r[c.key]);
      td.appendChild(el("span", { "class": "ci" }, fmtInterval(r[c.key + ":ci_low"], r[c.key + ":ci_high"])));
      td.className = "num";
    } else if (c.key === "flags") {
      td.textContent = r.flags || "";
      if (r.flags) td.className = "flags";
    } else {
      td.textContent = fmt(r[c.key]);
      if (typeof r[c.key] === "number") td.className = "num";
    }
    return td;
  }
  // Each row's <tr> is built once per tab; filtering and sorting only re-order those nodes.
  function rowNode(r) {
    var node = state.rowCache[r.row_id];
    if (node) return node;
    node = el("tr", { "data-row-id": r.row_id, "class": "role-" + r.role + (r.comparable ? "" : " not-comparable") });
    state.cols.forEach(function (c) { node.appendChild(cell(c, r)); });
    state.rowCache[r.row_id] = node;
    return node;
  }
  function renderHead() {
    var table = document.getElementById("results");
    table.textContent = "";
    var thead = el("thead"), tr = el("tr");
    state.cols.forEach(function (c) {
      var th = el("th", { scope: "col", "data-key": c.key, tabindex: "0" }, c.label);
      if (c.title) th.setAttribute("title", c.title);
      if (c.faith && c.faith.show) {
        th.appendChild(el("span", { "class": "faith" }, " F " + (missing(c.faith.value) ? NONE : fmt(c.faith.value))));
      }
      if (c.faith && c.faith.low) {
        th.classList.add("low-faithfulness");
        th.appendChild(el("span", { "class": "low-faith-mark", "aria-label": "low faithfulness" }, " ⚠"));
      }
      th.addEventListener("click", function () { sortBy(c.key); });
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") sortBy(c.key); });
      tr.appendChild(th);
    });
    thead.appendChild(tr);
    table.appendChild(thead);
    table.appendChild(el("tbody"));
  }
  function sortedVisible() {
    return state.sortKey ? state.visible.slice().sort(compareRows) : state.visible;
  }
  function renderResults() {
    var started = performance.now();
    var table = document.getElementById("results");
    Array.prototype.forEach.call(table.querySelectorAll("thead th"), function (th) {
      if (state.sortKey === th.getAttribute("data-key")) th.setAttribute("aria-sort", state.sortDir > 0 ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    });
    var rows = sortedVisible();
    var fragment = document.createDocumentFragment();
    rows.slice(0, state.limit).forEach(function (r) { fragment.appendChild(rowNode(r)); });
    var tbody = el("tbody");
    tbody.appendChild(fragment);
    table.replaceChild(tbody, table.tBodies[0]);
    document.getElementById("results-empty").hidden = rows.length > 0;
    renderMore(rows.length);
    table.setAttribute("data-render-ms", (performance.now() - started).toFixed(2));
  }
  function renderMore(total) {
    var shown = Math.min(total, state.limit);
    var line = document.getElementById("results-more");
    line.hidden = shown >= total;
    document.getElementById("results-count").textContent = "Showing " + shown + " of " + total + " rows.";
  }
  function showMore(all) {
    var rows = sortedVisible();
    var from = Math.min(rows.length, state.limit);
    state.limit = all ? rows.length : state.limit + PAGE_ROWS;
    var fragment = document.createDocumentFragment();
    rows.slice(from, state.limit).forEach(function (r) { fragment.appendChild(rowNode(r)); });
    document.getElementById("results").tBodies[0].appendChild(fragment);
    renderMore(rows.length);
  }
  function sortBy(key) {
    state.sortDir = state.sortKey === key ? -state.sortDir : (key === "utility_at_matched" ? -1 : 1);
    state.sortKey = key;
    renderResults();  // plots do not depend on the order: left as they are
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
    // a paper's numbers after an attack, in the columns our rows use (leaderboard/published_attacks.py):
    // the knowledge metric after each attack, its recovery against the same source's target, the worst case
    var labels = [], knowledge = null;
    rows.forEach(function (p) {
      Object.keys(p.attacks || {}).forEach(function (a) { if (labels.indexOf(a) < 0) labels.push(a); });
      knowledge = knowledge || p.knowledge_metric;
    });
    labels.sort();
    var attackCols = [];
    labels.forEach(function (a) {
      if (knowledge) attackCols.push({ key: "attack:" + a + ":" + knowledge, label: knowledge + " after " + a });
      attackCols.push({ key: "attack:" + a + ":recovery", label: "Recovery " + a });
    });
    if (labels.length) {
      attackCols.push({ key: "worst_case_knowledge", label: "Worst-case knowledge" },
                      { key: "worst_case_attack", label: "Worst-case attack" },
                      { key: "undone_by", label: "Forgetting undone by" });
    }
    var tr = el("tr");
    ["Source", "Model", "Split", "Method (as published)"].concat(names.map(function (m) { return m + arrow(m); }))
      .concat(attackCols.map(function (c) { return c.label; }))
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
      attackCols.forEach(function (c) {
        var value = p[c.key];
        row.appendChild(el("td", typeof value === "number" ? { "class": "num", "data-key": c.key } : { "data-key": c.key },
                           fmt(value)));
      });
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
    var groups = groupRows(state.visible);
    var fragment = document.createDocumentFragment();
    Object.keys(groups).sort().forEach(function (key) { fragment.appendChild(plot(key, groups[key])); });
    host.appendChild(fragment);
    if (!Object.keys(groups).length) host.appendChild(el("p", { "class": "empty" }, "No results to plot."));
  }
  // The frame both kinds of plot share: axes fitted to the values (x on a log scale for a
  // forget_quality that spans decades), grid, ticks and labels. Returns the scales.
  var W = 460, H = 300, L = 56, R = 14, T = 12, B = 42;
  function frame(xvals, yvals, fx, fy, cls, xprefix) {
    var positive = xvals.length > 0 && xvals.every(function (v) { return v > 0; });
    var minX = Math.min.apply(null, xvals);
    var logX = fx === "forget_quality" && positive && minX < 1e-3;
    var tx = function (v) { return logX ? Math.log10(v) : v; };
    var xs = xvals.map(tx);
    var x0 = Math.min.apply(null, xs.concat(logX ? [] : [0])), x1 = Math.max.apply(null, xs.concat(logX ? [0] : [1]));
    var y0 = Math.min.apply(null, yvals.concat([0])), y1 = Math.max.apply(null, yvals.concat([1]));
    if (x1 - x0 < 1e-12) { x0 -= 0.5; x1 += 0.5; }
    if (y1 - y0 < 1e-12) { y0 -= 0.5; y1 += 0.5; }
    var sx = function (v) { return L + (tx(v) - x0) / (x1 - x0) * (W - L - R); };
    var sy = function (v) { return H - B - (v - y0) / (y1 - y0) * (H - T - B); };
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img",
                            "aria-label": fy + " versus " + fx, "class": cls });
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
                         (xprefix || "") + fx + arrow(fx) + (logX ? " (log scale)" : "")));
    root.appendChild(svg("text", { x: 12, y: (T + H - B) / 2, "text-anchor": "middle", "class": "axis",
                                   transform: "rotate(-90 12 " + (T + H - B) / 2 + ")" }, fy + arrow(fy)));
    return { root: root, sx: sx, sy: sy };
  }
  function groupRows(rows) {
    var groups = {};
    rows.forEach(function (r) {
      var key = [r.benchmark, r.split, r.model, r.evaluator_variant].join(" · ");
      (groups[key] = groups[key] || []).push(r);
    });
    return groups;
  }
  // The forget axis of the current tab's Pareto plots: the headline forget metric of the unattacked
  // models, or (switched on, tabs with attack results only) each row's worst-case knowledge over
  // the unattacked model and its attacks, in the benchmark's knowledge metric.
  function forgetAxis(rows) {
    var axis = ATTACK_AXES[state.tab];
    if (axis && state.worstCase[state.tab]) {
      return { worst: true, name: axis.knowledge_metric, value: function (r) { return r.worst_case_knowledge; },
               note: "Forget axis: worst case of " + axis.knowledge_metric + " over the unattacked model and the attacks (" +
                     axis.attacks.join(", ") + "); rows without attack results are not drawn." };
    }
    var fx = null;
    rows.forEach(function (r) { fx = fx || r.forget_metric; });
    return { worst: false, name: fx, value: function (r) { return r["metric:" + fx]; },
             note: axis ? "Forget axis: " + fx + " of the unattacked models (headline)." : null };
  }
  function plot(title, rows) {
    var axis = forgetAxis(rows), fx = axis.name, fy = null;
    rows.forEach(function (r) { fy = fy || r.utility_metric; });
    var figure = el("figure", { "class": "plot", "data-forget-axis": axis.worst ? "worst_case" : "headline" });
    figure.appendChild(el("figcaption", {}, title));
    if (axis.note) figure.appendChild(el("p", { "class": "axis-note" }, axis.note));
    if (!fx || !fy) { figure.appendChild(el("p", { "class": "empty" }, "No headline metrics for this benchmark.")); return figure; }
    var pts = rows.filter(function (r) { return typeof axis.value(r) === "number" && typeof r["metric:" + fy] === "number"; })
      .map(function (r) { return { row: r, x: axis.value(r), y: r["metric:" + fy] }; });
    var f = frame(pts.map(function (p) { return p.x; }), pts.map(function (p) { return p.y; }), fx, fy, "pareto",
                  axis.worst ? "worst case: " : "");
    var root = f.root, sx = f.sx, sy = f.sy;
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
        " (" + r.role + ")\n" + (axis.worst ? "worst-case " : "") + fx + " = " + fmt(p.x) +
        (axis.worst && r.worst_case_attack ? " (" + r.worst_case_attack + ")" : "") + ", " + fy + " = " + fmt(p.y) +
        (r.undone_by ? "\nforgetting undone by: " + r.undone_by : "") + (r.flags ? "\nflags: " + r.flags : "")));
      root.appendChild(mark);
    });
    figure.appendChild(root);
    figure.appendChild(el("p", { "class": "plot-legend" },
      "● comparable  ○ flagged (not ranked)  ■ reference model  — Pareto front (" + front.length + " of " + rankable.length + " ranked)"));
    return figure;
  }

  // ---- trade-off curves: each run's trajectory, target (step 0) -> final model, in (forget, utility).
  // `curve` is JSON text [[step, forget, utility], ...] in the row's headline forget metric. When a
  // benchmark's matched metric is another metric (TOFU: forget_prob, while the forget axis is
  // forget_quality), the level cannot be drawn on this axis and the caption states it instead; if
  // the points carry a 4th value (the matched metric at that step) the curve is drawn in
  // (matched metric, utility) with the level as a dashed line.
  var PALETTE = ["#2f6fdf", "#d9480f", "#0f9d58", "#9c36b5", "#e8a200", "#1098ad", "#c2255c", "#5c940d"];
  var curveCache = {};  // row_id -> parsed points (the data never changes while the page is open)
  function parseCurve(r) {
    if (typeof r.curve !== "string" || !r.curve) return null;
    if (r.row_id in curveCache) return curveCache[r.row_id];
    var points = null;
    try {
      points = JSON.parse(r.curve);
      if (!Array.isArray(points) || !points.length || !points.every(Array.isArray)) points = null;
    } catch (e) { points = null; }
    curveCache[r.row_id] = points;
    return points;
  }
  function curvePlot(title, rows, colours) {
    var withCurves = rows.map(function (r) { return { row: r, points: parseCurve(r) }; })
      .filter(function (c) { return c.points; });
    var figure = el("figure", { "class": "plot" });
    figure.appendChild(el("figcaption", {}, title));
    var first = withCurves[0].row;
    var fx = first.forget_metric, fy = first.utility_metric, mm = first.matched_metric;
    var level = first.matched_level;
    var onMatched = !missing(mm) && mm !== fx && withCurves.every(function (c) {
      return c.points.every(function (p) { return typeof p[3] === "number"; });
    });
    var xi = onMatched ? 3 : 1, xname = onMatched ? mm : fx;
    var drawLevel = !missing(level) && xname === mm;
    var xvals = [], yvals = [];
    withCurves = withCurves.map(function (c) {
      return { row: c.row, points: c.points.filter(function (p) { return typeof p[xi] === "number" && typeof p[2] === "number"; }) };
    }).filter(function (c) { return c.points.length; });
    withCurves.forEach(function (c) { c.points.forEach(function (p) { xvals.push(p[xi]); yvals.push(p[2]); }); });
    if (drawLevel) xvals.push(level);
    var f = frame(xvals, yvals, xname, fy, "curves");
    var root = f.root, sx = f.sx, sy = f.sy;
    if (drawLevel) {
      root.appendChild(svg("line", { x1: sx(level), x2: sx(level), y1: T, y2: H - B, "class": "level" },
                           null)).appendChild(svg("title", {}, "matched level: " + levelText(first)));
    }
    var start = null;
    withCurves.forEach(function (c) {
      var r = c.row, colour = colours[r.rectifier] || PALETTE[0];
      var g = svg("g", { "class": "curve", "data-row-id": r.row_id });
      var last = c.points[c.points.length - 1];
      g.appendChild(svg("title", {}, (r.display_name || r.method) + " + " + r.rectifier + " + " + r.parametrization +
        "\n" + c.points.length + " points, final step " + last[0] + ": " + xname + " = " + fmt(last[xi]) + ", " + fy + " = " + fmt(last[2]) +
        (missing(r.utility_at_matched) ? (r.matched_status ? "\nutility @ matched: " + r.matched_status : "")
                                        : "\nutility @ matched: " + fmt(r.utility_at_matched))));
      g.appendChild(svg("polyline", { points: c.points.map(function (p) { return sx(p[xi]) + "," + sy(p[2]); }).join(" "),
                                      stroke: colour, "class": "path" }));
      c.points.forEach(function (p) {
        if (p[0] === 0) { start = start || p; return; }  // the shared target point, drawn once below
        g.appendChild(svg("circle", { cx: sx(p[xi]), cy: sy(p[2]), r: p === last ? 3.5 : 2.2, fill: colour }));
      });
      root.appendChild(g);
    });
    if (start) {
      var tx = sx(start[xi]), ty = sy(start[2]);
      root.appendChild(svg("rect", { x: tx - 5, y: ty - 5, width: 10, height: 10, "class": "point ref target" }))
        .appendChild(svg("title", {}, "target model (step 0): " + xname + " = " + fmt(start[xi]) + ", " + fy + " = " + fmt(start[2])));
    }
    figure.appendChild(root);
    var legend = el("p", { "class": "plot-legend" });
    Object.keys(colours).forEach(function (rect) {
      if (!withCurves.some(function (c) { return c.row.rectifier === rect; })) return;
      var swatch = svg("svg", { width: 18, height: 8, "class": "swatch", "aria-hidden": "true" });
      swatch.appendChild(svg("line", { x1: 0, x2: 18, y1: 4, y2: 4, stroke: colours[rect], "stroke-width": 2.5 }));
      legend.appendChild(swatch);
      legend.appendChild(document.createTextNode(" " + rect + "   "));
    });
    legend.appendChild(document.createTextNode("■ target (step 0)  ● final model" + (drawLevel ? "  ┆ matched level" : "")));
    figure.appendChild(legend);
    if (!drawLevel && !missing(mm)) {
      figure.appendChild(el("p", { "class": "plot-legend level-note" },
        "Matched level " + levelText(first) + (mm !== xname ? " — on " + mm + ", not on this axis; the table's utility @ matched forgetting is read there." : "")));
    }
    return figure;
  }
  function renderCurves() {
    var started = performance.now();
    var host = document.getElementById("curves");
    host.textContent = "";
    var rows = state.visible.filter(function (r) { return r.role !== "target" && r.role !== "retain" && parseCurve(r); });
    var colours = {};
    uniq(tabRows().map(function (r) { return r.rectifier; })).forEach(function (rect, i) { colours[rect] = PALETTE[i % PALETTE.length]; });
    var groups = groupRows(rows);
    var fragment = document.createDocumentFragment();
    Object.keys(groups).sort().forEach(function (key) { fragment.appendChild(curvePlot(key, groups[key], colours)); });
    host.appendChild(fragment);
    document.getElementById("curves-empty").hidden = rows.length > 0;
    host.setAttribute("data-render-ms", (performance.now() - started).toFixed(2));
  }

  // ---- Metrics tab: per benchmark, metric × (faithfulness, Q, R, HM) with bootstrap intervals, the
  // model pools behind them and the replication checks against the published reference
  var SCORES = [["faithfulness", "Faithfulness"], ["Q", "Q (quantization)"], ["R", "R (relearning)"], ["HM", "HM"]];
  function scoreCell(score, why) {
    var td = el("td", { "class": "num" });
    if (missing(score) || missing(score.value)) {
      td.textContent = NONE;
      if (why) td.setAttribute("title", why);
      return td;
    }
    td.textContent = fmt(score.value);
    td.appendChild(el("span", { "class": "ci" }, fmtInterval(score.ci_low, score.ci_high)));
    return td;
  }
  function metricTableNode(table) {
    var notes = METRIC_NOTES[table.benchmark] || {};
    var node = el("article", { "class": "metric-table", "data-benchmark": table.benchmark });
    node.appendChild(el("h3", {}, table.benchmark + " · " + table.split));
    var pools = el("ul", { "class": "pools" });
    [["P", "P (holds the forget knowledge)"], ["N", "N (never had it)"]].forEach(function (pair) {
      var pool = table.pools[pair[0]];
      pools.appendChild(el("li", {}, pair[1] + ": " + pool.models + " models — " + pool.description));
    });
    var b = table.bootstrap;
    pools.appendChild(el("li", {}, "Q and R over " + table.robustness_models + " unlearned models; intervals: " +
      fmt(b.level * 100) + "% bootstrap over " + b.over + " (" + b.samples + " samples, seed " + b.seed + ")"));
    node.appendChild(pools);
    var grid = el("table", { "class": "metric-scores" });
    var head = el("tr");
    ["Metric"].concat(SCORES.map(function (s) { return s[1]; })).concat(["Models (F / Q / R)"]).forEach(function (h) {
      head.appendChild(el("th", { scope: "col" }, h));
    });
    var thead = el("thead"); thead.appendChild(head); grid.appendChild(thead);
    var tbody = el("tbody");
    table.metrics.forEach(function (m) {
      var note = notes[m.metric] || {};
      var tr = el("tr", { "data-metric": m.metric, "class": note.low ? "low-faithfulness" : "" });
      var name = el("td", {}, m.metric + arrow(m.metric));
      if (m.headline) name.appendChild(el("span", { "class": "badge ours" }, "headline"));
      if (note.low) {
        name.appendChild(el("span", { "class": "low-faith-mark", title: "faithfulness below " + fmt(DATA.low_faithfulness) }, " ⚠"));
      }
      tr.appendChild(name);
      SCORES.forEach(function (s) { tr.appendChild(scoreCell(m[s[0]], m.note)); });
      if (m.note) name.setAttribute("title", m.note);
      tr.appendChild(el("td", { "class": "num" }, m.n.faithfulness + " / " + m.n.Q + " / " + m.n.R));
      tbody.appendChild(tr);
    });
    grid.appendChild(tbody);
    var scroll = el("div", { "class": "scroll" }); scroll.appendChild(grid);
    node.appendChild(scroll);
    var defs = el("dl", { "class": "definitions" });
    Object.keys(table.definitions).sort().forEach(function (k) {
      defs.appendChild(el("dt", {}, k)); defs.appendChild(el("dd", {}, table.definitions[k]));
    });
    node.appendChild(defs);
    var rep = table.replication;
    if (rep) {
      node.appendChild(el("h4", {}, "Replication of " + rep.reference));
      var checks = el("ul", { "class": "replication" });
      rep.checks.forEach(function (c) {
        var verdict = c.holds === true ? "holds" : c.holds === false ? "does not hold" : "undecided";
        var li = el("li", { "class": "check " + verdict.replace(/ /g, "-") });
        li.appendChild(el("span", { "class": "verdict" }, verdict));
        li.appendChild(document.createTextNode(" " + c.claim + (c.detail ? " — " + c.detail : "")));
        checks.appendChild(li);
      });
      if (!rep.checks.length) checks.appendChild(el("li", { "class": "empty" }, "no checks"));
      node.appendChild(checks);
    }
    return node;
  }
  var metricsRendered = false;
  function renderMetrics() {
    if (metricsRendered) return;  // the tables never change while the page is open
    var host = document.getElementById("metric-tables");
    document.getElementById("metric-threshold").textContent = fmt(DATA.low_faithfulness);
    Object.keys(METRIC_TABLES).sort().forEach(function (name) { host.appendChild(metricTableNode(METRIC_TABLES[name])); });
    metricsRendered = true;
  }
  function selectMetrics() {
    Array.prototype.forEach.call(document.querySelectorAll("#tabs button"), function (b) {
      b.setAttribute("aria-selected", b.id === "tab-metrics" ? "true" : "false");
    });
    document.querySelector("main").setAttribute("data-view", "metrics");
    renderMetrics();
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
  // Filters change which rows show: plots and table. Sorting changes only the table (sortBy).
  function renderAll() {
    state.visible = visibleRows();
    state.limit = PAGE_ROWS;
    renderPlots(); renderCurves(); renderResults(); renderPublished();
  }
  var filterTimer = null;
  function renderAllSoon() {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(renderAll, FILTER_DELAY_MS);
  }
  function selectTab(name) {
    state.tab = name;
    Array.prototype.forEach.call(document.querySelectorAll("#tabs button"), function (b) {
      b.setAttribute("aria-selected", b.getAttribute("data-tab") === name ? "true" : "false");
    });
    document.querySelector("main").setAttribute("data-view", "board");
    state.cols = columnsFor(tabRows());
    state.rowCache = {};
    document.getElementById("pareto-axis").hidden = !ATTACK_AXES[name];
    document.getElementById("pareto-worst-case").checked = !!state.worstCase[name];
    var sort = defaultSort();
    state.sortKey = sort.key; state.sortDir = sort.dir;
    refreshFilterOptions();
    renderHead();
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
    if (Object.keys(METRIC_TABLES).length) {
      var metrics = el("button", { role: "tab", id: "tab-metrics", type: "button" }, "Metrics");
      metrics.addEventListener("click", selectMetrics);
      nav.appendChild(metrics);
    }
    FILTERS.forEach(function (f) { document.getElementById("filter-" + f).addEventListener("change", renderAll); });
    document.getElementById("filter-text").addEventListener("input", renderAllSoon);
    document.getElementById("filter-comparable").addEventListener("change", renderAll);
    document.getElementById("pareto-worst-case").addEventListener("change", function (e) {
      state.worstCase[state.tab] = e.target.checked;
      renderPlots();  // only the Pareto plots change axis; table and curves stay as they are
    });
    document.getElementById("results-more-rows").addEventListener("click", function () { showMore(false); });
    document.getElementById("results-all-rows").addEventListener("click", function () { showMore(true); });
    renderChanges();
    var first = tabs()[0];
    if (first) selectTab(first);
    else if (Object.keys(METRIC_TABLES).length) selectMetrics();
  }
  init();
})();
