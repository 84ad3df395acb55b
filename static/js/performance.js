/* Morosos: charts of the manager performance pages. Each <canvas data-chart="ID"> reads the
   chart from the json_script element ID: {type, labels, currency, datasets: [{label, data,
   axis: "money"|"percent", type?}]}. The numbers are always in the table beside the chart;
   the chart only draws them (Chart.js 4, vendored, global `Chart`). */
(function () {
  "use strict";

  const COLORS = ["#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2"];

  function toNumber(value) {
    return value === null || value === undefined || value === "" ? null : Number(value);
  }

  function build(canvas) {
    const source = document.getElementById(canvas.dataset.chart);
    if (!source || typeof Chart === "undefined" || !window.MorososNumbers) return;
    const spec = JSON.parse(source.textContent);
    // The rule of accounts/numbers.py: tooltips as the table, the money axis abbreviated.
    const N = window.MorososNumbers, cfg = spec.numbers;
    const money = { format: (v) => N.money(cfg, v) };
    const axis = { format: (v) => N.abbreviate(cfg, v) };
    const percent = { format: (v) => N.percent(cfg, v, 1) };
    const axes = new Set(spec.datasets.map((d) => d.axis));
    const datasets = spec.datasets.map((d, i) => ({
      label: d.label,
      type: d.type || spec.type,
      data: d.data.map(toNumber),
      yAxisID: d.axis,
      backgroundColor: COLORS[i % COLORS.length] + (d.type === "line" ? "" : "cc"),
      borderColor: COLORS[i % COLORS.length],
      borderWidth: d.type === "line" ? 2 : 0,
      spanGaps: true,
      order: d.type === "line" ? 0 : 1,
    }));
    const scales = {};
    if (axes.has("money")) {
      scales.money = { type: "linear", position: "left", beginAtZero: true, ticks: { callback: (v) => axis.format(v) } };
    }
    if (axes.has("percent")) {
      scales.percent = {
        type: "linear",
        position: axes.has("money") ? "right" : "left",
        min: 0,
        max: 100,
        grid: { drawOnChartArea: !axes.has("money") },
        ticks: { callback: (v) => percent.format(v) },
      };
    }
    const chart = new Chart(canvas, {
      type: spec.type,
      data: { labels: spec.labels, datasets: datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        scales: scales,
        plugins: {
          legend: { position: "bottom" },
          tooltip: {
            callbacks: {
              label: (ctx) => {
                const v = ctx.parsed.y;
                if (v === null || v === undefined) return ctx.dataset.label + ": —";
                const shown = ctx.dataset.yAxisID === "money" ? money.format(v) : percent.format(v);
                return ctx.dataset.label + ": " + shown;
              },
            },
          },
        },
      },
    });
    canvas.dataset.rendered = String(chart.data.labels.length);
  }

  function init() {
    document.querySelectorAll("canvas[data-chart]").forEach(build);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
