/* The dashboard's own script: draws each chart from the table beside it (so a chart can only
   show what its table holds), applies the browser's zone on a first visit, and makes the
   filters, sortable tables and confirmations work. No network calls, no storage.
   Plain ES2017, no build step; uPlot (vendor/uplot/) is loaded before it. */
(function () {
  'use strict';

  // Okabe-Ito, then two more that stay distinguishable for colour-blind readers.
  var PALETTE = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00',
    '#F0E442', '#000000', '#7F7F7F', '#8C564B'];
  var EN = 'en-US';
  var HOUR = 3600, DAY = 86400, MONTH = DAY * 30, YEAR = DAY * 365;
  // The x axis' tick steps (seconds); those finer than the data's own step are dropped.
  var TIME_STEPS = [60, 300, 600, 900, 1800, HOUR, 2 * HOUR, 3 * HOUR, 4 * HOUR, 6 * HOUR,
    8 * HOUR, 12 * HOUR, DAY, 2 * DAY, 3 * DAY, 4 * DAY, 5 * DAY, 7 * DAY, 10 * DAY, 15 * DAY,
    MONTH, 2 * MONTH, 3 * MONTH, 6 * MONTH, YEAR, 2 * YEAR, 5 * YEAR, 10 * YEAR];
  // Whole-number tick steps for counts (1, 2, 5, 10, 20, 50, …).
  var WHOLE_STEPS = [];
  for (var e = 0; e <= 15; e++) {
    WHOLE_STEPS.push(Math.pow(10, e), 2 * Math.pow(10, e), 5 * Math.pow(10, e));
  }
  var each = function (list, fn) { Array.prototype.forEach.call(list, fn); };

  /* Legend values: exact, with the unit. */
  function formatter(unit) {
    if (unit === 'usd-cents') {
      return function (v) {
        return v == null ? '–' : '$' + (v / 100).toLocaleString(EN,
          {minimumFractionDigits: 2, maximumFractionDigits: 2});
      };
    }
    if (unit === 'percent') {
      return function (v) { return v == null ? '–' : (v * 100).toFixed(2) + ' %'; };
    }
    if (unit === 'ms') {
      return function (v) { return v == null ? '–' : Math.round(v).toLocaleString(EN) + ' ms'; };
    }
    return function (v) { return v == null ? '–' : Math.round(v).toLocaleString(EN); };
  }

  /* Axis ticks: short (10 s, $1.2k, 3.4M) so that they fit; the legend and tables keep the
     full values. */
  function compact(n) {
    var abs = Math.abs(n);
    if (abs >= 1e9) { return +(n / 1e9).toFixed(1) + 'G'; }
    if (abs >= 1e6) { return +(n / 1e6).toFixed(1) + 'M'; }
    if (abs >= 1e3) { return +(n / 1e3).toFixed(1) + 'k'; }
    return n.toLocaleString(EN, {maximumFractionDigits: 2});
  }

  function axisFormatter(unit) {
    if (unit === 'usd-cents') { return function (v) { return '$' + compact(v / 100); }; }
    if (unit === 'ms') {
      return function (v) { return v >= 1000 ? compact(v / 1000) + ' s' : Math.round(v) + ' ms'; };
    }
    if (unit === 'percent') { return function (v) { return +(v * 100).toFixed(2) + ' %'; }; }
    return function (v) { return compact(v); };
  }

  function alpha(hex, a) {
    var n = parseInt(hex.slice(1), 16);
    return 'rgba(' + (n >> 16) + ',' + ((n >> 8) & 255) + ',' + (n & 255) + ',' + a + ')';
  }

  /* The page's zone if the browser knows it, else UTC (so that a chart is never lost). */
  function usableZone(tz) {
    try {
      new Intl.DateTimeFormat(EN, {timeZone: tz});
      return tz;
    } catch (e) {
      return 'UTC';
    }
  }

  /* [labels, xs, columns]: x = the row's data-t, one column per value header, null gaps. */
  function readTable(table) {
    var labels = Array.prototype.slice.call(table.querySelectorAll('thead th'), 1)
      .map(function (th) { return th.textContent.trim(); });
    var xs = [];
    var columns = labels.map(function () { return []; });
    each(table.querySelectorAll('tbody tr'), function (tr) {
      var head = tr.querySelector('th[data-t]');
      if (!head || head.dataset.t === '' || !isFinite(Number(head.dataset.t))) { return; }
      xs.push(Number(head.dataset.t));
      var cells = tr.querySelectorAll('td');
      columns.forEach(function (col, i) {
        var text = cells[i] ? cells[i].dataset.v : '';
        var value = text === '' || text == null ? null : Number(text);
        col.push(value == null || !isFinite(value) ? null : value);
      });
    });
    return [labels, xs, columns];
  }

  /* The smallest gap between two x values (the data's step), or 0 for a single row. */
  function stepOf(xs) {
    var step = 0;
    for (var i = 1; i < xs.length; i++) {
      var gap = xs[i] - xs[i - 1];
      if (gap > 0 && (!step || gap < step)) { step = gap; }
    }
    return step;
  }

  /* Cumulative sums of the shown columns (a hidden one adds nothing) and the bands that fill
     each shown series down to the shown one below it. */
  function stack(columns, shown) {
    var sums = columns.length ? columns[0].map(function () { return 0; }) : [];
    var below = 0;
    var bands = [];
    var data = columns.map(function (col, i) {
      if (shown[i]) {
        col.forEach(function (v, j) { sums[j] += v || 0; });
        if (below) { bands.push({series: [i + 1, below]}); }
        below = i + 1;
      }
      return sums.slice();
    });
    return {data: data, bands: bands};
  }

  /* From 0 (or below, for negative values) to a little above the largest value. */
  function fromZero(u, min, max) {
    var lo = min < 0 ? uPlot.rangeNum(min, 0, 0.1, true)[0] : 0;
    var hi = max > 0 ? uPlot.rangeNum(0, max, 0.1, true)[1] : (lo < 0 ? 0 : 1);
    return [lo, hi];
  }

  function chartHeight(width) { return width < 600 ? 200 : 260; }

  function canvasWidth(target) { return Math.max(Math.floor(target.clientWidth), 240); }

  function draw(figure, tz) {
    var table = figure.querySelector('table.chart-data');
    var target = figure.querySelector('.chart-canvas');
    if (!table || !target || typeof uPlot === 'undefined') { return null; }
    var read = readTable(table);
    var labels = read[0], xs = read[1], columns = read[2];
    if (!xs.length || !labels.length) { return null; }
    var kind = figure.dataset.chart;
    var unit = figure.dataset.unit;
    var fmt = formatter(unit);
    var tick = axisFormatter(unit);
    var stacked = kind === 'stacked';
    var bars = kind === 'bars' && uPlot.paths && uPlot.paths.bars;
    var step = stepOf(xs);
    var toDate = function (ts) { return uPlot.tzDate(new Date(ts * 1e3), tz); };
    var first = toDate(xs[0]);
    var daily = step ? step >= DAY - HOUR : !first.getHours() && !first.getMinutes();
    var xStamp = uPlot.fmtDate(daily ? '{YYYY}-{MM}-{DD}' : '{YYYY}-{MM}-{DD} {HH}:{mm}');

    var last = xs.length - 1;
    // Off the chart, the legend shows the latest row (its time says which).
    var series = [{
      label: figure.dataset.xLabel || 'Time',
      value: function (u, v, si, di) { return xStamp(toDate(xs[di == null ? last : di])); }
    }];
    var group = step * 0.72, barSize = group / labels.length;
    labels.forEach(function (label, i) {
      var colour = PALETTE[i % PALETTE.length];
      var s = {
        label: label, stroke: colour, width: stacked ? 1 : 2,
        points: {show: stacked ? xs.length === 1 : xs.length < 60, size: 5},
        // The legend shows each series' own value, never a stacked sum.
        value: function (u, v, si, di) { return fmt(columns[si - 1][di == null ? last : di]); }
      };
      if (stacked) { s.fill = alpha(colour, 0.6); }
      if (bars) {
        s.fill = alpha(colour, 0.85);
        s.width = 0;
        s.points = {show: false};
        if (labels.length > 1 && step) {
          // Side by side: each series gets its slot of the group around the row's time.
          var x0 = xs.map(function (x) { return x - group / 2 + i * barSize; });
          s.paths = uPlot.paths.bars({size: [1, Infinity], disp: {
            x0: {unit: 1, values: function () { return x0; }},
            size: {unit: 1, values: function () { return [barSize]; }}
          }});
        } else {
          s.paths = uPlot.paths.bars({size: [0.6, 64]});
        }
      }
      series.push(s);
    });

    var shown = labels.map(function () { return true; });
    var stacking = stacked ? stack(columns, shown) : null;
    var plotted = stacked ? stacking.data : columns;
    var xScale = {time: true};
    if (bars && step) {
      xScale.range = function (u, min, max) { return [min - step / 2, max + step / 2]; };
    } else if (!step) {
      // One row: a day around it (uPlot's own guess, in seconds, spans years).
      xScale.range = function () { return [xs[0] - DAY / 2, xs[0] + DAY / 2]; };
    }
    var width = canvasWidth(target);
    var opts = {
      width: width, height: chartHeight(width),
      tzDate: function (ts) { return toDate(ts); },
      series: series,
      bands: stacked ? stacking.bands : [],
      scales: {x: xScale, y: {range: fromZero}},
      axes: [
        {stroke: '#5b6470', grid: {stroke: '#eceef1', width: 1}, ticks: {stroke: '#dde1e6', width: 1},
          incrs: step ? TIME_STEPS.filter(function (s) { return s >= step * 0.9; }) : undefined},
        {stroke: '#5b6470', grid: {stroke: '#eceef1', width: 1}, ticks: {show: false},
          size: 64, incrs: unit === 'count' ? WHOLE_STEPS : undefined,
          values: function (u, vals) { return vals.map(tick); }}
      ],
      legend: {live: true},
      // Lines: the one nearest the pointer stands out; areas and bars stay as they are.
      cursor: {y: false, focus: {prox: kind === 'line' ? 16 : -1}},
      hooks: {}
    };
    if (stacked) {
      // Hiding a series from the legend restacks the others, with no hole where it was.
      opts.hooks.setSeries = [function (u, si, change) {
        if (!change || change.show == null || !si) { return; }
        shown[si - 1] = change.show;
        var again = stack(columns, shown);
        u.delBand(null);
        again.bands.forEach(function (b) { u.addBand(b); });
        u.setData([xs].concat(again.data));
      }];
    }
    var chart = new uPlot(opts, [xs].concat(plotted), target);
    figure.dataset.drawn = '1';
    return chart;
  }

  function watchSizes(drawn) {
    var fit = function (pair) {
      var target = pair[0];
      var width = canvasWidth(target);
      if (width !== pair[1].width) {
        pair[1].setSize({width: width, height: chartHeight(width)});
      }
    };
    if (typeof ResizeObserver === 'function') {
      var frame = 0;
      var observer = new ResizeObserver(function () {
        // Next frame, so that resizing never happens inside the observer's own callback.
        cancelAnimationFrame(frame);
        frame = requestAnimationFrame(function () { drawn.forEach(fit); });
      });
      drawn.forEach(function (pair) { observer.observe(pair[0]); });
      return;
    }
    var pending = null;
    window.addEventListener('resize', function () {
      clearTimeout(pending);
      pending = setTimeout(function () { drawn.forEach(fit); }, 120);
    });
  }

  function drawAll() {
    var tz = usableZone(document.body.dataset.tz || 'UTC');
    var drawn = [];
    each(document.querySelectorAll('figure.chart[data-chart]'), function (figure) {
      var chart = null;
      try {
        chart = draw(figure, tz);
      } catch (err) {
        // One bad chart must not take the others (or the page's controls) with it.
        if (window.console) { console.error('chart', figure.id, err); }
      }
      if (chart) {
        drawn.push([figure.querySelector('.chart-canvas'), chart]);
        if (drawn.length === 1) {
          if (window.performance && performance.mark) { performance.mark('first-chart'); }
          document.body.dataset.firstChart = '1';
        }
      }
    });
    document.body.dataset.chartsReady = String(drawn.length);
    if (drawn.length) { watchSizes(drawn); }
  }

  /* First visit without ?tz=: show the page in the browser's own zone. */
  function applyBrowserZone() {
    if (document.body.dataset.tzDefault !== '1') { return false; }
    var url = new URL(window.location.href);
    if (url.searchParams.has('tz')) { return false; }
    var zone = '';
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ''; } catch (e) { zone = ''; }
    if (!zone) { return false; }
    url.searchParams.set('tz', zone);
    window.location.replace(url.toString());
    return true;
  }

  function wireFilters() {
    each(document.querySelectorAll('form.filters'), function (form) {
      var range = form.querySelector('select[name=range]');
      var custom = form.querySelector('fieldset.custom-range');
      var zone = form.querySelector('select[name=tz]');
      var sync = function () {
        if (custom && range) {
          var hide = range.value !== 'custom';
          custom.classList.toggle('hidden', hide);
          custom.disabled = hide;  // so that hidden dates are not submitted
        }
      };
      var submit = function () {
        if (typeof form.requestSubmit === 'function') { form.requestSubmit(); } else { form.submit(); }
      };
      sync();
      if (range) {
        range.addEventListener('change', function () {
          sync();
          if (range.value !== 'custom') { submit(); }
        });
      }
      if (zone) { zone.addEventListener('change', submit); }
    });
  }

  function sortKey(cell) {
    if (!cell) { return ''; }
    var text = cell.dataset.sort != null ? cell.dataset.sort : cell.textContent.trim();
    var number = Number(text);
    return text.trim() !== '' && !isNaN(number) ? number : text.toLowerCase();
  }

  function compare(x, y) {
    if (typeof x === 'number' && typeof y === 'number') { return x - y; }
    // Numbers before text (and so blanks last when ascending).
    if (typeof x !== typeof y) { return typeof x === 'number' ? -1 : 1; }
    return x.localeCompare(y, undefined, {numeric: true});
  }

  function wireSorting() {
    each(document.querySelectorAll('table.sortable'), function (table) {
      var heads = table.querySelectorAll('thead th');
      var body = table.tBodies[0];
      if (!body) { return; }
      each(heads, function (th, index) {
        var button = document.createElement('button');
        button.type = 'button';
        button.className = 'sort';
        button.textContent = th.textContent.trim();
        th.textContent = '';
        th.appendChild(button);
        th.setAttribute('aria-sort', 'none');
        button.addEventListener('click', function () {
          var ascending = th.getAttribute('aria-sort') !== 'ascending';
          each(heads, function (h) { h.setAttribute('aria-sort', 'none'); });
          th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
          var rows = Array.prototype.slice.call(body.rows).map(function (row, i) {
            return [sortKey(row.cells[index]), i, row];
          });
          rows.sort(function (a, b) {
            var order = compare(a[0], b[0]);
            return (ascending ? order : -order) || a[1] - b[1];
          });
          rows.forEach(function (r) { body.appendChild(r[2]); });
        });
      });
    });
  }

  function wireConfirmations() {
    each(document.querySelectorAll('form[data-confirm]'), function (form) {
      form.addEventListener('submit', function (event) {
        if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
      });
    });
  }

  function start() {
    if (applyBrowserZone()) { return; }
    wireFilters();
    wireSorting();
    wireConfirmations();
    drawAll();
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
}());
