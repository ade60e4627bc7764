/* The dashboard's own script: draws each chart from the table beside it (so a chart can only
   show what its table holds), applies the browser's zone on a first visit, and makes the
   filters, sortable tables and confirmations work. No network calls, no storage. */
(function () {
  'use strict';

  // Okabe-Ito, then two more that stay distinguishable for colour-blind readers.
  var PALETTE = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00',
    '#F0E442', '#000000', '#7F7F7F', '#8C564B'];
  var EN = 'en-US';

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
    if (abs >= 1e4) { return +(n / 1e3).toFixed(1) + 'k'; }
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

  /* [labels, xs, columns]: x = the row's data-t, one column per value header, null gaps. */
  function readTable(table) {
    var labels = Array.prototype.slice.call(table.querySelectorAll('thead th'), 1)
      .map(function (th) { return th.textContent.trim(); });
    var xs = [];
    var columns = labels.map(function () { return []; });
    Array.prototype.forEach.call(table.querySelectorAll('tbody tr'), function (tr) {
      var head = tr.querySelector('th[data-t]');
      if (!head) { return; }
      xs.push(Number(head.dataset.t));
      var cells = tr.querySelectorAll('td');
      columns.forEach(function (col, i) {
        var text = cells[i] ? cells[i].dataset.v : '';
        col.push(text === '' || text == null ? null : Number(text));
      });
    });
    return [labels, xs, columns];
  }

  function stack(columns) {
    var sums = [];
    return columns.map(function (col) {
      return col.map(function (v, j) {
        sums[j] = (sums[j] || 0) + (v || 0);
        return sums[j];
      });
    });
  }

  function chartHeight(width) { return width < 600 ? 200 : 260; }

  function draw(figure, tz) {
    var table = figure.querySelector('table.chart-data');
    var target = figure.querySelector('.chart-canvas');
    if (!table || !target || typeof uPlot === 'undefined') { return null; }
    var read = readTable(table);
    var labels = read[0], xs = read[1], columns = read[2];
    if (!xs.length) { return null; }
    var kind = figure.dataset.chart;
    var fmt = formatter(figure.dataset.unit);
    var tick = axisFormatter(figure.dataset.unit);
    var stacked = kind === 'stacked';
    var plotted = stacked ? stack(columns) : columns;
    var series = [{}];
    var bands = [];
    labels.forEach(function (label, i) {
      var colour = PALETTE[i % PALETTE.length];
      var s = {
        label: label, stroke: colour, width: 1.5, points: {show: xs.length < 60},
        value: function (u, v, si, di) {
          return fmt(di == null ? null : columns[si - 1][di]);
        }
      };
      if (stacked) {
        if (i === 0) { s.fill = alpha(colour, 0.55); } else {
          bands.push({series: [i + 1, i], fill: alpha(colour, 0.55)});
        }
      }
      if (kind === 'bars' && uPlot.paths && uPlot.paths.bars) {
        s.paths = uPlot.paths.bars({size: [0.6, 64]});
        s.fill = alpha(colour, 0.8);
      }
      series.push(s);
    });
    var width = Math.max(target.clientWidth, 240);
    var opts = {
      width: width, height: chartHeight(width),
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), tz); },
      series: series, bands: bands,
      scales: {x: {time: true}},
      axes: [{}, {size: 64, values: function (u, vals) { return vals.map(tick); }}],
      legend: {live: true},
      cursor: {focus: {prox: 16}}
    };
    var chart = new uPlot(opts, [xs].concat(plotted), target);
    figure.dataset.drawn = '1';
    return chart;
  }

  function drawAll() {
    var tz = document.body.dataset.tz || 'UTC';
    var drawn = [];
    Array.prototype.forEach.call(document.querySelectorAll('figure.chart[data-chart]'),
      function (figure) {
        var chart = draw(figure, tz);
        if (chart) {
          drawn.push([figure, chart]);
          if (drawn.length === 1) {
            performance.mark('first-chart');
            document.body.dataset.firstChart = '1';
          }
        }
      });
    document.body.dataset.chartsReady = String(drawn.length);
    var resize = function () {
      drawn.forEach(function (pair) {
        var width = Math.max(pair[0].querySelector('.chart-canvas').clientWidth, 240);
        if (width !== pair[1].width) {
          pair[1].setSize({width: width, height: chartHeight(width)});
        }
      });
    };
    var pending = null;
    window.addEventListener('resize', function () {
      clearTimeout(pending);
      pending = setTimeout(resize, 120);
    });
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
    Array.prototype.forEach.call(document.querySelectorAll('form.filters'), function (form) {
      var range = form.querySelector('select[name=range]');
      var custom = form.querySelector('fieldset.custom-range');
      var zone = form.querySelector('select[name=tz]');
      var sync = function () {
        if (custom && range) { custom.classList.toggle('hidden', range.value !== 'custom'); }
      };
      sync();
      if (range) {
        range.addEventListener('change', function () {
          sync();
          if (range.value !== 'custom') { form.submit(); }
        });
      }
      if (zone) { zone.addEventListener('change', function () { form.submit(); }); }
    });
  }

  function sortKey(cell) {
    var text = cell.dataset.sort != null ? cell.dataset.sort : cell.textContent.trim();
    var number = Number(text);
    return text !== '' && !isNaN(number) ? number : text.toLowerCase();
  }

  function wireSorting() {
    Array.prototype.forEach.call(document.querySelectorAll('table.sortable'), function (table) {
      var heads = table.querySelectorAll('thead th');
      Array.prototype.forEach.call(heads, function (th, index) {
        var button = document.createElement('button');
        button.type = 'button';
        button.className = 'sort';
        button.textContent = th.textContent;
        th.textContent = '';
        th.appendChild(button);
        th.setAttribute('aria-sort', 'none');
        button.addEventListener('click', function () {
          var ascending = th.getAttribute('aria-sort') !== 'ascending';
          Array.prototype.forEach.call(heads, function (h) { h.setAttribute('aria-sort', 'none'); });
          th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
          var body = table.tBodies[0];
          var rows = Array.prototype.slice.call(body.rows);
          rows.sort(function (a, b) {
            var x = sortKey(a.cells[index]), y = sortKey(b.cells[index]);
            if (typeof x !== typeof y) { x = String(x); y = String(y); }
            var order = x < y ? -1 : x > y ? 1 : 0;
            return ascending ? order : -order;
          });
          rows.forEach(function (row) { body.appendChild(row); });
        });
      });
    });
  }

  function wireConfirmations() {
    Array.prototype.forEach.call(document.querySelectorAll('form[data-confirm]'), function (form) {
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
