// caifu console: draws the charts a page declares (data-chart, JSON written by the server) with
// the vendored ECharts, again after an htmx swap, and sends the page's CSRF token with every
// htmx request. No inline script anywhere (the pages' Content-Security-Policy forbids it).
(function () {
  "use strict";
  var FONT = '"Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", sans-serif';
  var COLORS = ["#2f6db5", "#e07b39", "#3a9e6f", "#c44e52", "#8172b3"];

  function fmt(format, v) {
    if (v === null || v === undefined) return "—";
    if (format === "ratio") return (100 * v).toFixed(2) + "%";
    return Number(v).toLocaleString("zh-CN", {maximumFractionDigits: format === "money" ? 2 : 4});
  }

  function option(spec) {
    var base = {color: COLORS, textStyle: {fontFamily: FONT}, animation: false};
    if (spec.type === "spark") {
      return Object.assign(base, {
        grid: {left: 2, right: 2, top: 4, bottom: 4},
        xAxis: {type: "category", data: spec.x, show: false},
        yAxis: {type: "value", show: false, scale: true},
        tooltip: {trigger: "axis", valueFormatter: function (v) { return fmt(spec.format, v); }},
        series: [{type: "line", data: spec.y, symbol: "none", connectNulls: false,
                  lineStyle: {width: 2}, areaStyle: {opacity: 0.12}}]
      });
    }
    if (spec.type === "line") {
      return Object.assign(base, {
        grid: {left: 60, right: 16, top: 24, bottom: 28, containLabel: true},
        xAxis: {type: "category", data: spec.x},
        yAxis: {type: "value", scale: true,
                axisLabel: {formatter: function (v) { return fmt(spec.format, v); }}},
        tooltip: {trigger: "axis", valueFormatter: function (v) { return fmt(spec.format, v); }},
        series: [{type: "line", name: spec.name, data: spec.y, connectNulls: false}]
      });
    }
    if (spec.type === "bar") {
      return Object.assign(base, {
        grid: {left: 8, right: 24, top: 8, bottom: 24, containLabel: true},
        xAxis: {type: "value", axisLabel: {formatter: function (v) { return fmt(spec.format, v); }}},
        yAxis: {type: "category", data: spec.x},
        tooltip: {trigger: "axis", valueFormatter: function (v) { return fmt(spec.format, v); }},
        series: [{type: "bar", name: spec.name, data: spec.y}]
      });
    }
    if (spec.type === "loads") {
      return Object.assign(base, {
        grid: {left: 8, right: 8, top: 36, bottom: 8, containLabel: true},
        legend: {top: 0},
        tooltip: {trigger: "axis"},
        xAxis: {type: "category", data: spec.x, axisLabel: {show: false}},
        yAxis: [{type: "value", name: "%", min: 0}, {type: "value", name: spec.names.age, min: 0}],
        series: [{type: "bar", name: spec.names.rate, data: spec.rate},
                 {type: "line", name: spec.names.age, yAxisIndex: 1, data: spec.age}]
      });
    }
    return null;
  }

  function draw(root) {
    if (!window.echarts) return;
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.dataset.drawn) return;
      var opt = option(JSON.parse(el.dataset.chart));
      if (!opt) return;
      var chart = window.echarts.init(el, null, {renderer: "svg"});
      chart.setOption(opt);
      el.dataset.drawn = "1";
    });
  }

  window.addEventListener("resize", function () {
    if (!window.echarts) return;
    document.querySelectorAll("[data-chart][data-drawn]").forEach(function (el) {
      var chart = window.echarts.getInstanceByDom(el);
      if (chart) chart.resize();
    });
  });
  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSettle", function (e) { draw(e.target); });
  document.addEventListener("htmx:configRequest", function (e) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) e.detail.headers["X-CSRF-Token"] = meta.content;
  });
})();
