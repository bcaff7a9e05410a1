// fuze report: draws every chart of the embedded data (script#fuze-data) with uPlot.
// window.fuzeCharts maps a chart id to {series, points}; window.fuzeReady is set when done.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("fuze-data").textContent);
  window.fuzeCharts = {};

  function fmt(v) {
    if (v == null) return "–";
    var a = Math.abs(v);
    return a >= 100 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toPrecision(3);
  }

  function linearRange(zero) {
    return function (u, min, max) {
      if (min == null || max == null) return [0, 1];
      if (zero) min = Math.min(0, min);
      var pad = (max - min) * 0.06 || Math.abs(max) * 0.1 || 1;
      return [zero && min >= 0 ? 0 : min - pad, max + pad];
    };
  }

  function draw(chart) {
    var el = document.getElementById("chart-" + chart.id);
    if (!el) throw new Error("no element for chart " + chart.id);
    var width = Math.max(320, Math.floor(el.getBoundingClientRect().width) || 560);
    var series = [{ label: chart.x_label, value: function (u, v) { return fmt(v); } }];
    var points = 0;
    chart.series.forEach(function (s) {
      s.y.forEach(function (v) { if (v != null) points++; });
      series.push({
        label: s.label,
        stroke: s.color,
        width: 2,
        dash: s.dash ? [6, 4] : undefined,
        spanGaps: true,
        paths: s.points ? function () { return null; } : undefined,
        points: { show: !s.dash, size: 8, fill: s.color, stroke: s.color },
        value: function (u, v) { return fmt(v); },
      });
    });
    var opts = {
      width: width,
      height: 300,
      series: series,
      legend: { show: true, live: false },
      cursor: { points: { size: 9 } },
      scales: {
        x: chart.x_log ? { time: false, distr: 3, log: 2 } : { time: false, range: linearRange(false) },
        y: chart.y_log ? { distr: 3, log: 10 } : { range: linearRange(true) },
      },
      axes: [
        { label: chart.x_label, labelSize: 24, size: 36 },
        { label: chart.y_label, labelSize: 24, size: 56 },
      ],
    };
    var plot = new uPlot(opts, [chart.x].concat(chart.series.map(function (s) { return s.y; })), el);
    window.fuzeCharts[chart.id] = { series: plot.series.length - 1, points: points, plot: plot };
  }

  (data.models || []).forEach(function (m) {
    (m.charts || []).forEach(function (c) {
      try {
        draw(c);
      } catch (e) {
        console.error("chart " + c.id + ": " + (e && e.stack ? e.stack : e));
      }
    });
  });
  window.fuzeReady = true;
})();
