/* danerelay console: draws the charts the pages describe in
 * <script type="application/json"> elements (the Content-Security-Policy
 * allows no inline script), sorts tables and asks before destructive
 * actions. Plain JavaScript, no build step. */
"use strict";
(function () {
  var palette = ["#1b6ac9", "#1e7d45", "#d98a00", "#8e44ad", "#b3261e",
    "#16a2b8", "#7f8c8d", "#e377c2"];

  function dataset(d, i, type) {
    var col = d.color || palette[i % palette.length];
    return {
      label: d.label, data: d.data || [], backgroundColor: col,
      borderColor: col, fill: false, tension: 0.15,
      pointRadius: type === "line" ? 2 : 0, borderWidth: 2
    };
  }

  function draw(canvas) {
    var el = document.getElementById(canvas.getAttribute("data-chart"));
    var spec, type, round, opts;
    if (!el || typeof Chart === "undefined") return;
    spec = JSON.parse(el.textContent);
    type = spec.type || "line";
    round = type === "pie" || type === "doughnut";
    opts = {
      animation: false, responsive: true, maintainAspectRatio: false,
      plugins: { legend: { position: "bottom" },
        title: { display: !!spec.title, text: spec.title || "" } }
    };
    if (!round) {
      opts.scales = {
        x: { stacked: !!spec.stacked },
        y: { stacked: !!spec.stacked, beginAtZero: true,
          ticks: { precision: 0 } }
      };
    }
    new Chart(canvas, {
      type: type,
      data: { labels: spec.labels || [],
        datasets: (spec.datasets || []).map(function (d, i) {
          return dataset(d, i, type);
        }) },
      options: opts
    });
  }

  function cellValue(row, i) {
    var c = row.cells[i], t = c ? (c.getAttribute("data-sort") ||
      c.textContent.trim()) : "";
    var n = Number(t.replace(/[,%]/g, ""));
    return t !== "" && !isNaN(n) ? n : t.toLowerCase();
  }

  function sortable(table) {
    var heads = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(heads, function (th, i) {
      th.addEventListener("click", function () {
        var body = table.tBodies[0], asc = th.getAttribute("aria-sort") !==
          "ascending";
        var rows = Array.prototype.slice.call(body.rows);
        Array.prototype.forEach.call(heads, function (h) {
          h.removeAttribute("aria-sort");
        });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        rows.sort(function (a, b) {
          var x = cellValue(a, i), y = cellValue(b, i);
          return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("canvas[data-chart]").forEach(draw);
    document.querySelectorAll("table.sortable").forEach(sortable);
    document.querySelectorAll("form[data-confirm]").forEach(function (f) {
      f.addEventListener("submit", function (e) {
        if (!window.confirm(f.getAttribute("data-confirm")))
          e.preventDefault();
      });
    });
    document.querySelectorAll("input[data-select-all]").forEach(
      function (box) {
        box.addEventListener("change", function () {
          document.querySelectorAll("input[name='" +
            box.getAttribute("data-select-all") + "']").forEach(
            function (b) { b.checked = box.checked; });
        });
      });
  });
})();
