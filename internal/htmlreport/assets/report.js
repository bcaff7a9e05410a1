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

  // refRange is a y range around the values, the whiskers and ref (a ratio's 1), not from 0.
  function refRange(chart) {
    var lo = chart.y_ref, hi = chart.y_ref;
    chart.series.forEach(function (s) {
      [s.y, s.low || [], s.high || []].forEach(function (vs) {
        vs.forEach(function (v) {
          if (v == null) return;
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
        });
      });
    });
    var pad = (hi - lo) * 0.08 || 0.05;
    return function () { return [lo - pad, hi + pad]; };
  }

  // whiskers draws a series' intervals (low to high, with caps) as its path, so that hiding the
  // series in the legend hides them too.
  function whiskers(s) {
    return function (u, si, i0, i1) {
      var p = new Path2D(), cap = 4 * devicePixelRatio, xs = u.data[0];
      for (var i = i0; i <= i1; i++) {
        if (s.low[i] == null || s.high[i] == null) continue;
        var c = u.valToPos(xs[i], "x", true), a = u.valToPos(s.low[i], "y", true), b = u.valToPos(s.high[i], "y", true);
        if (u.scales.x.ori === 1) {
          p.moveTo(a, c); p.lineTo(b, c);
          p.moveTo(a, c - cap); p.lineTo(a, c + cap);
          p.moveTo(b, c - cap); p.lineTo(b, c + cap);
        } else {
          p.moveTo(c, a); p.lineTo(c, b);
          p.moveTo(c - cap, a); p.lineTo(c + cap, a);
          p.moveTo(c - cap, b); p.lineTo(c + cap, b);
        }
      }
      return { stroke: p, fill: null, clip: null, band: null, gaps: null, flags: 0 };
    };
  }

  // refLine draws a series as a line across the whole plot at its value, however few
  // categories the chart has (one category gives a line of no length otherwise).
  function refLine(v) {
    return function (u) {
      var p = new Path2D(), b = u.bbox, at = u.valToPos(v, "y", true);
      if (u.scales.x.ori === 1) {
        p.moveTo(at, b.top); p.lineTo(at, b.top + b.height);
      } else {
        p.moveTo(b.left, at); p.lineTo(b.left + b.width, at);
      }
      return { stroke: p, fill: null, clip: null, band: null, gaps: null, flags: 0 };
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
        paths: s.low ? whiskers(s) : s.ref != null ? refLine(s.ref) : s.points ? function () { return null; } : undefined,
        points: { show: !s.dash, size: 8, fill: s.color, stroke: s.color },
        value: function (u, v) { return fmt(v); },
      });
    });
    var ticks = chart.x_ticks;
    var opts = {
      width: width,
      height: ticks ? Math.max(300, 90 + 28 * ticks.length) : 300,
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
    if (chart.y_ref != null) opts.scales.y = { range: refRange(chart) };
    if (ticks) {
      // Categories: one tick per x value, named; drawn on the left, first at the top, when the
      // chart is horizontal (long knob names need the width).
      var longest = ticks.reduce(function (n, t) { return Math.max(n, t.length); }, 0);
      opts.scales.x = { time: false, range: function () { return [-0.5, ticks.length - 0.5]; } };
      opts.axes[0].splits = function () { return chart.x; };
      opts.axes[0].values = function (u, splits) { return splits.map(function (v) { return ticks[v] || ""; }); };
      if (chart.horizontal) {
        opts.scales.x.ori = 1;
        opts.scales.x.dir = -1;
        opts.scales.y.ori = 0;
        opts.axes[0].side = 3;
        opts.axes[0].size = Math.min(340, 32 + 7.5 * longest);
        opts.axes[1].side = 2;
        opts.axes[1].size = 40;
      }
    }
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
