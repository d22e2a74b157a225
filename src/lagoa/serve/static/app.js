// Lagoa serve: the few behaviours the pages add to plain HTML (they work without them).
(function () {
  "use strict";
  var csrf = document.querySelector('meta[name="csrf-token"]');

  // htmx requests carry the CSRF token like the forms do.
  document.body.addEventListener("htmx:configRequest", function (event) {
    if (csrf) event.detail.headers["X-CSRF-Token"] = csrf.content;
  });

  // Filter boxes: hide the rows whose name does not contain the text.
  document.querySelectorAll("input[data-filter]").forEach(function (input) {
    input.addEventListener("input", function () {
      var text = input.value.toLowerCase();
      document.querySelectorAll(input.dataset.filter).forEach(function (row) {
        var name = (row.dataset.name || row.textContent).toLowerCase();
        row.hidden = text !== "" && name.indexOf(text) < 0;
      });
    });
  });

  // The SQL editor: CodeMirror over the textarea; Ctrl/Cmd-Enter runs the query.
  var sql = document.getElementById("sql");
  if (sql && window.CodeMirror) {
    var editor = window.CodeMirror.fromTextArea(sql, {
      mode: "text/x-sql", lineNumbers: true, lineWrapping: true, viewportMargin: Infinity,
      extraKeys: {
        "Ctrl-Enter": function () { editor.save(); sql.form.requestSubmit(document.getElementById("run-query")); },
        "Cmd-Enter": function () { editor.save(); sql.form.requestSubmit(document.getElementById("run-query")); }
      }
    });
    sql.form.addEventListener("submit", function () { editor.save(); });
  }

  // Charts of the overview, with uPlot.
  var source = document.getElementById("chart-data");
  if (source && window.uPlot) {
    var data = JSON.parse(source.textContent);
    var palette = ["#0f6e78", "#b3261e", "#1d5fa8", "#9a6400", "#4d9460", "#7a3fa0", "#a8713b", "#5b7fb0"];

    var series = function (rows, key, value, x) {
      var names = [];
      rows.forEach(function (r) { if (names.indexOf(r[key]) < 0) names.push(r[key]); });
      var xs = [];
      rows.forEach(function (r) { var t = x(r); if (xs.indexOf(t) < 0) xs.push(t); });
      xs.sort(function (a, b) { return a - b; });
      var columns = names.map(function () { return xs.map(function () { return null; }); });
      rows.forEach(function (r) { columns[names.indexOf(r[key])][xs.indexOf(x(r))] = r[value]; });
      return { names: names, data: [xs].concat(columns) };
    };

    // The x range comes from the data (uPlot widens a single time point by 1000 days on its
    // own): padded by 5%, and by at least `least` seconds each side.
    var day = function (seconds) { return new Date(seconds * 1000).toISOString().slice(0, 10); };

    var draw = function (element, built, unit, bars, least, daily) {
      if (!element) return;
      var xs = built.data[0];
      if (xs.length === 0) { element.textContent = "No data yet."; return; }
      var first = xs[0], last = xs[xs.length - 1];
      var pad = Math.max((last - first) * 0.05, least);
      var width = Math.max(element.clientWidth - 10, 260);
      var options = {
        width: width, height: 220,
        scales: { x: { time: true, range: function () { return [first - pad, last + pad]; } } },
        axes: [daily ? {
          // Days (UTC, as the data counts them), one tick a day at least: no hours on a daily chart.
          incrs: [86400, 2 * 86400, 7 * 86400, 14 * 86400, 28 * 86400],
          values: function (u, splits) { return splits.map(day); }
        } : {}, { label: unit, size: 60 }],
        series: [daily ? { value: function (u, v) { return v == null ? "--" : day(v); } } : {}].concat(built.names.map(function (name, i) {
          var s = { label: name, stroke: palette[i % palette.length], width: 1.5, spanGaps: false };
          if (bars && window.uPlot.paths && window.uPlot.paths.bars) {
            s.paths = window.uPlot.paths.bars({ size: [0.6, 40] });
            s.fill = palette[i % palette.length] + "88";
          } else {
            s.points = { show: true, size: 5 };
            s.paths = function () { return null; };
          }
          return s;
        }))
      };
      if (daily) options.tzDate = function (ts) { return window.uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); };
      new window.uPlot(options, built.data, element);
    };

    draw(document.querySelector('[data-chart="durations"]'),
      series(data.durations, "pipeline", "seconds", function (r) { return Date.parse(r.started_at) / 1000; }), "seconds", false, 600, false);
    draw(document.querySelector('[data-chart="landed"]'),
      series(data.landed, "pipeline", "rows", function (r) { return Date.parse(r.day + "T00:00:00Z") / 1000; }), "rows", true, 43200, true);
  }
})();
