/* The managers' dashboard charts (Chart.js 4, vendored: the global `Chart`).
 *
 * The numbers come from the JSON the page embeds with json_script (#dashboard-data); the
 * same numbers are in the tables beside each chart, so the charts add shape, not data.
 * The Chart instances are kept in window.dashboardCharts (the browser test checks them).
 */
(function () {
  "use strict";

  var BUCKET_COLORS = ["#16a34a", "#eab308", "#f97316", "#ef4444", "#b91c1c", "#7f1d1d"];

  // The rule of accounts/numbers.py (json_script): tooltips as the tables, axes abbreviated.
  function formatters(data) {
    var N = window.MorososNumbers, cfg = data.numbers;
    return {
      money: { format: function (v) { return N.money(cfg, v); } },
      axis: { format: function (v) { return N.abbreviate(cfg, v); } },
      number: { format: function (v) { return N.number(cfg, v, 1); } },
      percent: { format: function (v) { return N.percent(cfg, v, 1); } },
    };
  }

  function agingChart(canvas, data, fmt) {
    var money = fmt.money, axis = fmt.axis;
    return new Chart(canvas, {
      type: "bar",
      data: {
        labels: data.aging.labels,
        datasets: [
          {
            label: data.labels.amount,
            data: data.aging.amounts,
            backgroundColor: BUCKET_COLORS.slice(0, data.aging.labels.length),
            borderRadius: 4,
          },
        ],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              label: function (ctx) {
                return money.format(ctx.parsed.y) + " · " + data.aging.counts[ctx.dataIndex];
              },
            },
          },
        },
        scales: {
          y: { beginAtZero: true, ticks: { callback: function (v) { return axis.format(v); } } },
        },
      },
    });
  }

  // The options the charts of several series share: one tooltip line per series ("—" for a missing value,
  // else label(ctx, value)) and their own axes.
  function seriesOptions(label, scales) {
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      interaction: { mode: "index", intersect: false },
      plugins: {
        tooltip: {
          callbacks: {
            label: function (ctx) {
              var v = ctx.parsed.y;
              return v === null || v === undefined ? ctx.dataset.label + ": —" : label(ctx, v);
            },
          },
        },
      },
      scales: scales,
    };
  }

  // Cash expected per week: committed (promises, plans) and from each client's habit, stacked.
  function forecastChart(canvas, data, fmt) {
    var money = fmt.money, axis = fmt.axis;
    var fc = data.forecast;
    return new Chart(canvas, {
      type: "bar",
      data: {
        labels: fc.labels,
        datasets: [
          { label: fc.committed_label, data: fc.committed, backgroundColor: "#0f766e", borderRadius: 4, stack: "cash" },
          { label: fc.behaviour_label, data: fc.behaviour, backgroundColor: "#93c5fd", borderRadius: 4, stack: "cash" },
        ],
      },
      options: seriesOptions(
        function (ctx, v) {
          return ctx.dataset.label + ": " + money.format(v);
        },
        {
          x: { stacked: true },
          y: { stacked: true, beginAtZero: true, ticks: { callback: function (v) { return axis.format(v); } } },
        }
      ),
    });
  }

  function trendChart(canvas, data, fmt) {
    var money = fmt.money, axis = fmt.axis, number = fmt.number;
    return new Chart(canvas, {
      type: "line",
      data: {
        labels: data.trend.labels,
        datasets: [
          { label: data.labels.receivable, data: data.trend.receivable, borderColor: "#1d4ed8", backgroundColor: "#1d4ed8", yAxisID: "y", spanGaps: false },
          { label: data.labels.overdue, data: data.trend.overdue, borderColor: "#dc2626", backgroundColor: "#dc2626", yAxisID: "y", spanGaps: false },
          { label: data.labels.dso, data: data.trend.dso, borderColor: "#0f766e", backgroundColor: "#0f766e", borderDash: [6, 4], yAxisID: "y1", spanGaps: false },
          { label: data.labels.cei, data: data.trend.cei, borderColor: "#7c3aed", backgroundColor: "#7c3aed", borderDash: [2, 3], yAxisID: "y1", spanGaps: false },
        ],
      },
      options: seriesOptions(
        function (ctx, v) {
          return ctx.dataset.label + ": " + (ctx.dataset.yAxisID === "y" ? money.format(v) : number.format(v));
        },
        {
          y: { beginAtZero: true, position: "left", ticks: { callback: function (v) { return axis.format(v); } } },
          y1: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false }, ticks: { callback: function (v) { return number.format(v); } } },
        }
      ),
    });
  }

  // Roll rates between consecutive month-ends, one line per pair of buckets (percent, 0–100).
  function rollChart(canvas, data, fmt) {
    var percent = fmt.percent;
    return new Chart(canvas, {
      type: "line",
      data: {
        labels: data.roll.labels,
        datasets: data.roll.series.map(function (name, i) {
          var color = BUCKET_COLORS[i + 1] || "#64748b";
          return { label: name, data: data.roll.rates[i], borderColor: color, backgroundColor: color, spanGaps: false };
        }),
      },
      options: seriesOptions(
        function (ctx, v) {
          return ctx.dataset.label + ": " + percent.format(v);
        },
        {
          y: {
            beginAtZero: true,
            suggestedMax: 100,
            title: { display: true, text: data.roll.percent },
            ticks: { callback: function (v) { return percent.format(v); } },
          },
        }
      ),
    });
  }

  function init() {
    var source = document.getElementById("dashboard-data");
    if (!source || typeof Chart === "undefined" || !window.MorososNumbers) return;
    var data = JSON.parse(source.textContent);
    var fmt = formatters(data);
    var charts = [];
    var aging = document.getElementById("aging-chart");
    if (aging) charts.push(agingChart(aging, data, fmt));
    var forecast = document.getElementById("forecast-chart");
    if (forecast && data.forecast) charts.push(forecastChart(forecast, data, fmt));
    var trend = document.getElementById("trend-chart");
    if (trend) charts.push(trendChart(trend, data, fmt));
    var roll = document.getElementById("roll-chart");
    if (roll) charts.push(rollChart(roll, data, fmt));
    window.dashboardCharts = charts;

    if (window.bootstrap && window.bootstrap.Tooltip) {
      document.querySelectorAll("[data-kpi][data-bs-toggle='tooltip']").forEach(function (el) {
        window.bootstrap.Tooltip.getOrCreateInstance(el);
      });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
