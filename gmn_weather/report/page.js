// gmn-weather experiment report: inlined into report.html (no network, no framework).
// Renders the error gallery from the embedded JSON (filters, pages), keeps the reviewer's
// labels (in localStorage, so a reload keeps them) and exports them as label_overrides.csv,
// the file `train.py data.label_overrides=...` reads. Also the PR-curve hover and table sort.
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("report-data").textContent);
  // Pages opened from disk share one storage origin: the key names this page's file.
  var STORE_KEY = "gmn-weather-review:" + window.location.pathname;
  var KIND_NAMES = { fp: "false positive", fn: "false negative", tp: "true positive",
                     tn: "true negative" };
  var state = { station: "", kind: "all", page: 0 };
  var reviews = loadReviews();

  function loadReviews() {
    try {
      var saved = JSON.parse(window.localStorage.getItem(STORE_KEY) || "{}");
      return saved && typeof saved === "object" ? saved : {};
    } catch (e) {
      return {};  // storage disabled: reviews live as long as the page
    }
  }

  function saveReviews() {
    try {
      window.localStorage.setItem(STORE_KEY, JSON.stringify(reviews));
    } catch (e) {
      // storage disabled or full: the export button still has every review
    }
  }

  // A click moves the reviewed label along: none -> the other label (the likely fix)
  // -> remove -> the same label (checked, kept) -> none.
  function nextReview(label, current) {
    var other = label === "clear" ? "cloudy" : "clear";
    var order = [null, other, "remove", label];
    var i = order.indexOf(current === undefined ? null : current);
    return order[(i + 1) % order.length];
  }

  function fmt(value, digits) {
    return value === null || value === undefined ? "\u2013" : Number(value).toFixed(digits);
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function tile(item) {
    var fig = el("figure", { "class": "tile " + item.cell, "tabindex": "0", "role": "button",
                             "data-file": item.image_filename, "data-cell": item.cell,
                             "data-station": item.station });
    var frame = el("div", { "class": "frame" });
    if (item.thumb) {
      frame.appendChild(el("img", { src: item.thumb, loading: "lazy", alt: item.image_filename,
                                    width: String(item.thumb_width),
                                    height: String(item.thumb_height) }));
    } else {
      frame.textContent = "no image";
    }
    fig.appendChild(frame);
    fig.appendChild(el("span", { "class": "review" }));
    var cap = el("figcaption");
    cap.appendChild(el("div", { "class": "kind" }, KIND_NAMES[item.cell] + " \u00b7 prob_clear " +
                                                   fmt(item.prob_clear, 3)));
    cap.appendChild(el("div", {}, item.image_filename));
    cap.appendChild(el("div", { "class": "muted" },
      item.station + " \u00b7 night " + item.night + " \u00b7 fold " + item.fold));
    cap.appendChild(el("div", { "class": "muted" }, item.timestamp + " \u00b7 edge " +
      item.edge_text + " \u00b7 label " + item.label));
    fig.appendChild(cap);
    fig.addEventListener("click", function () { cycle(item); });
    fig.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); cycle(item); }
    });
    showReview(fig);
    return fig;
  }

  function showReview(fig) {
    var value = reviews[fig.getAttribute("data-file")];
    if (value) fig.setAttribute("data-review", value); else fig.removeAttribute("data-review");
    fig.querySelector(".review").textContent = value ? "reviewed: " + value : "not reviewed";
  }

  function cycle(item) {
    var next = nextReview(item.label, reviews[item.image_filename]);
    if (next === null) delete reviews[item.image_filename];
    else reviews[item.image_filename] = next;
    saveReviews();
    document.querySelectorAll(".tile").forEach(function (fig) {
      if (fig.getAttribute("data-file") === item.image_filename) showReview(fig);
    });
    updateReviewCount();
  }

  function matches(item, useKind) {
    if (state.station && item.station !== state.station) return false;
    return !useKind || state.kind === "all" || item.cell === state.kind;
  }

  function renderErrors() {
    var shown = DATA.gallery.errors.filter(function (item) { return matches(item, true); });
    var size = DATA.page_size;
    var pages = Math.max(1, Math.ceil(shown.length / size));
    state.page = Math.min(state.page, pages - 1);
    var start = state.page * size;
    var grid = document.getElementById("gallery-errors");
    grid.replaceChildren.apply(grid, shown.slice(start, start + size).map(tile));
    document.getElementById("page-info").textContent = shown.length ?
      "images " + (start + 1) + "\u2013" + Math.min(start + size, shown.length) + " of " +
      shown.length + " \u00b7 page " + (state.page + 1) + " of " + pages : "no image matches";
    document.getElementById("page-prev").disabled = state.page === 0;
    document.getElementById("page-next").disabled = state.page >= pages - 1;
    document.getElementById("shown-count").textContent = String(shown.length);
  }

  function renderUncertain() {
    var grid = document.getElementById("gallery-uncertain");
    var shown = DATA.gallery.uncertain.filter(function (item) { return matches(item, false); });
    grid.replaceChildren.apply(grid, shown.map(tile));
  }

  function updateReviewCount() {
    var n = Object.keys(reviews).length;
    document.getElementById("review-count").textContent = String(n);
    document.getElementById("export").disabled = n === 0;
    document.getElementById("review-clear").disabled = n === 0;
  }

  function csvField(text) {
    return /[",\r\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
  }

  function exportOverrides() {
    var names = Object.keys(reviews).sort();
    var lines = ["image_filename,label"].concat(names.map(function (name) {
      return csvField(name) + "," + reviews[name];
    }));
    var blob = new Blob([lines.join("\n") + "\n"], { type: "text/csv" });
    var link = el("a", { href: URL.createObjectURL(blob), download: "label_overrides.csv" });
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(link.href); }, 10000);
  }

  function setUpGallery() {
    var station = document.getElementById("filter-station");
    var kind = document.getElementById("filter-kind");
    station.addEventListener("change", function () {
      state.station = station.value; state.page = 0; renderErrors(); renderUncertain();
    });
    kind.addEventListener("change", function () {
      state.kind = kind.value; state.page = 0; renderErrors();
    });
    document.getElementById("page-prev").addEventListener("click", function () {
      state.page -= 1; renderErrors();
    });
    document.getElementById("page-next").addEventListener("click", function () {
      state.page += 1; renderErrors();
    });
    document.getElementById("export").addEventListener("click", exportOverrides);
    document.getElementById("review-clear").addEventListener("click", function () {
      if (!window.confirm("Forget every review made on this page?")) return;
      reviews = {}; saveReviews(); renderErrors(); renderUncertain(); updateReviewCount();
    });
    renderErrors();
    renderUncertain();
    updateReviewCount();
  }

  function setUpCurveHover() {
    var svg = document.getElementById("pr-curve");
    if (!svg || !DATA.curve.points.length) return;
    var box = DATA.curve.box;  // plot area in viewBox units
    var dot = document.getElementById("pr-hover-dot");
    var text = document.getElementById("pr-hover-text");
    function xy(point) {
      return [box.left + point[2] * box.width, box.top + (1 - point[1]) * box.height];
    }
    svg.addEventListener("mousemove", function (ev) {
      var m = svg.getScreenCTM();
      if (!m) return;
      var p = svg.createSVGPoint();
      p.x = ev.clientX; p.y = ev.clientY;
      p = p.matrixTransform(m.inverse());
      var best = null, bestD = Infinity;
      DATA.curve.points.forEach(function (point) {
        var q = xy(point), d = (q[0] - p.x) * (q[0] - p.x) + (q[1] - p.y) * (q[1] - p.y);
        if (d < bestD) { bestD = d; best = point; }
      });
      var q = xy(best);
      dot.setAttribute("cx", q[0]); dot.setAttribute("cy", q[1]);
      dot.setAttribute("visibility", "visible");
      text.textContent = "threshold " + fmt(best[0], 4) + " \u00b7 precision " + fmt(best[1], 3) +
        " \u00b7 recall " + fmt(best[2], 3);
    });
    svg.addEventListener("mouseleave", function () {
      dot.setAttribute("visibility", "hidden");
    });
  }

  function sortKey(cell) {
    var text = cell.getAttribute("data-sort");
    if (text === null || text === "") return null;
    var number = Number(text);
    return isNaN(number) ? text : number;
  }

  function setUpSorting() {
    document.querySelectorAll("table.sortable").forEach(function (table) {
      table.querySelectorAll("th").forEach(function (th, col) {
        th.addEventListener("click", function () {
          var dir = th.getAttribute("data-dir") === "asc" ? "desc" : "asc";
          table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("data-dir"); });
          th.setAttribute("data-dir", dir);
          var body = table.tBodies[0];
          var rows = Array.prototype.slice.call(body.rows);
          rows.sort(function (a, b) {
            var x = sortKey(a.cells[col]), y = sortKey(b.cells[col]);
            if (x === null || y === null) return (x === null) - (y === null);  // blanks last
            var c = typeof x === "number" && typeof y === "number" ? x - y :
              String(x).localeCompare(String(y));
            return dir === "asc" ? c : -c;
          });
          rows.forEach(function (row) { body.appendChild(row); });
        });
      });
    });
  }

  setUpGallery();
  setUpCurveHover();
  setUpSorting();
}());
