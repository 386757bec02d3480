// The otelop web UI's script. The pages are rendered on the server and
// work without it; the script shows times in the viewer's time zone, keeps
// running runs up to date, draws the activity charts, and invokes and
// replays operations through the JSON API. Data from the server is put in
// the page with textContent only.
(function () {
  'use strict';

  const body = document.body;
  const prefix = body.dataset.prefix || '';
  const TOKEN_KEY = 'otelop.token';
  const POLL_MS = 2000;
  const FINAL = new Set(['SUCCESS', 'FAILED']);
  const SVG_NS = 'http://www.w3.org/2000/svg';

  // ---- helpers -----------------------------------------------------------

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.from((root || document).querySelectorAll(sel)); }

  function pad(n, w) { return String(n).padStart(w || 2, '0'); }

  // fmtTime renders a date in the viewer's time zone as
  // 2026-01-02 15:04:05 (with milliseconds when precise).
  function fmtTime(d, precise) {
    let s = d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) +
      ' ' + pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
    if (precise) s += '.' + pad(d.getMilliseconds(), 3);
    return s;
  }

  // fmtMS mirrors formatMS in ui.go.
  function fmtMS(ms) {
    if (ms < 0 || !isFinite(ms)) return '—';
    if (ms < 0.01) return '<0.01 ms';
    if (ms < 1) return ms.toFixed(2) + ' ms';
    if (ms < 100) return ms.toFixed(1) + ' ms';
    if (ms < 1000) return ms.toFixed(0) + ' ms';
    if (ms < 60000) return (ms / 1000).toFixed(2) + ' s';
    if (ms < 3600000) {
      const s = Math.floor(ms / 1000);
      return Math.floor(s / 60) + 'm ' + pad(s % 60) + 's';
    }
    const m = Math.floor(ms / 60000);
    return Math.floor(m / 60) + 'h ' + pad(m % 60) + 'm';
  }

  // fmtSpan names a period given in seconds: "5 minutes", "1 hour".
  function fmtSpan(seconds) {
    const units = [[86400, 'day'], [3600, 'hour'], [60, 'minute'], [1, 'second']];
    for (const [size, name] of units) {
      if (seconds >= size && Math.abs(seconds / size - Math.round(seconds / size)) < 1e-9) {
        const n = Math.round(seconds / size);
        return n + ' ' + name + (n === 1 ? '' : 's');
      }
    }
    return fmtMS(seconds * 1000);
  }

  function shortID(id) {
    return id.length <= 12 ? id : '…' + id.slice(-8);
  }

  function runURL(id) { return prefix + '/runs/' + encodeURIComponent(id); }

  const timeZone = (function () {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone || ''; } catch (e) { return ''; }
  })();

  function localizeTimes(root) {
    for (const t of $all('time[datetime]', root)) {
      const d = new Date(t.getAttribute('datetime'));
      if (isNaN(d)) continue;
      t.textContent = fmtTime(d, t.hasAttribute('data-precise'));
      t.title = d.toISOString() + ' (UTC)';
    }
  }

  function setTime(t, iso) {
    t.setAttribute('datetime', iso);
    localizeTimes(t.parentNode);
  }

  // api calls the JSON API and resolves to {ok, status, data}; data is the
  // parsed body, or an error object when the server could not be reached.
  async function api(method, path, opts) {
    opts = opts || {};
    const headers = { Accept: 'application/json' };
    if (opts.token) headers.Authorization = 'Bearer ' + opts.token;
    if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
    let res;
    try {
      res = await fetch(prefix + path, { method: method, headers: headers, body: opts.body, credentials: 'same-origin' });
    } catch (e) {
      return { ok: false, status: 0, data: { code: 'network_error', message: 'The server could not be reached: ' + e.message } };
    }
    let data = null;
    try {
      data = await res.json();
    } catch (e) {
      data = { code: 'bad_response', message: 'The server answered ' + res.status + ' without JSON.' };
    }
    return { ok: res.ok, status: res.status, data: data };
  }

  function setStatus(badge, status) {
    badge.className = 'status status-' + (status ? status.toLowerCase() : 'unknown');
    badge.textContent = status;
  }

  // every runs fn now and then every ms milliseconds while the page is
  // visible, never two at a time.
  function every(ms, fn) {
    let busy = false;
    async function tick() {
      if (busy || document.hidden) return;
      busy = true;
      try { await fn(); } catch (e) { /* the next tick tries again */ }
      busy = false;
    }
    tick();
    return setInterval(tick, ms);
  }

  // ---- token -------------------------------------------------------------

  function initToken(onChange) {
    const input = $('#token-input');
    if (!input) return null;
    const status = $('#token-status');
    try { input.value = sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { /* storage disabled */ }
    let timer = 0;
    async function check() {
      const token = input.value.trim();
      try {
        if (token) sessionStorage.setItem(TOKEN_KEY, token); else sessionStorage.removeItem(TOKEN_KEY);
      } catch (e) { /* storage disabled */ }
      if (!status) return;
      if (!token) { status.textContent = ''; status.className = 'hint'; return; }
      const res = await api('GET', '/api/auth', { token: token });
      if (input.value.trim() !== token) return;
      if (res.ok && res.data.authenticated) {
        const perms = (res.data.permissions || []).join(', ') || 'none';
        status.textContent = 'Token of ' + res.data.user_id + ' · permissions: ' + perms;
        status.className = 'hint ok';
      } else if (res.ok || res.status === 401) {
        status.textContent = 'This token is not known to the server.';
        status.className = 'hint bad';
      } else {
        status.textContent = '';
        status.className = 'hint';
      }
      if (onChange) onChange();
    }
    input.addEventListener('input', function () {
      clearTimeout(timer);
      timer = setTimeout(check, 350);
    });
    if (input.value) check();
    return function () { return input.value.trim(); };
  }

  // showResult renders an invoke or replay response in the result block
  // named by kind ("invoke" or "replay").
  function showResult(kind, res) {
    const box = $('#' + kind + '-result');
    const badge = $('#' + kind + '-result-status');
    const msg = $('#' + kind + '-result-message');
    const link = $('#' + kind + '-run-link');
    const out = $('#' + kind + '-output');
    box.hidden = false;
    const d = res.data || {};
    if (res.ok) {
      setStatus(badge, 'SUCCESS');
      msg.textContent = '';
      out.textContent = JSON.stringify(d.output, null, 2);
      out.hidden = false;
      box.dataset.state = 'ok';
    } else {
      badge.className = 'status status-failed';
      badge.textContent = d.code || String(res.status);
      msg.textContent = d.message || '';
      out.textContent = '';
      out.hidden = true;
      box.dataset.state = 'error';
    }
    if (d.task_run_id) {
      link.href = runURL(d.task_run_id);
      link.dataset.runId = d.task_run_id;
      link.textContent = 'Open the TaskRun ' + shortID(d.task_run_id) + ' →';
      link.hidden = false;
    } else {
      link.hidden = true;
      link.removeAttribute('href');
      delete link.dataset.runId;
    }
  }

  // ---- runs tables ---------------------------------------------------------

  // fillRow puts run into a row of a runs table; keep it in step with the
  // "runrow" template.
  function fillRow(tr, run) {
    tr.dataset.runId = run.id;
    tr.dataset.status = run.status;
    tr.dataset.started = run.started_at;
    setStatus($('.status', tr), run.status);
    const link = $('.run-link', tr);
    link.href = runURL(run.id);
    link.textContent = run.operation_name;
    const err = $('.run-error', tr);
    err.textContent = run.error_message || '';
    err.hidden = !(run.status === 'FAILED' && run.error_message);
    const started = $('.c-started', tr);
    let t = $('time', started);
    if (!t) {
      started.textContent = '';
      t = document.createElement('time');
      started.appendChild(t);
    }
    setTime(t, run.started_at);
    const dur = $('.c-duration', tr);
    dur.textContent = '';
    if (run.finished_at) {
      dur.textContent = fmtMS(run.duration_ms);
    } else {
      const span = document.createElement('span');
      span.className = 'muted elapsed';
      span.dataset.since = run.started_at;
      dur.appendChild(span);
    }
    $('.c-user', tr).textContent = (run.actor && run.actor.user_id) || '';
    $('.c-channel', tr).textContent = (run.actor && run.actor.channel) || '';
    const flags = $('.c-flags', tr);
    flags.textContent = '';
    const md = run.metadata || {};
    for (const [key, label, cls] of [['dry_run', 'dry run', 'flag-dry-run'], ['test_mode', 'test', 'flag-test-mode'],
      ['verbose', 'verbose', 'flag-verbose'], ['replay_of', 'replay', 'flag-replay']]) {
      if (md[key]) {
        const s = document.createElement('span');
        s.className = 'flag ' + cls;
        s.textContent = label;
        flags.appendChild(s);
      }
    }
    const idLink = $('.run-id', tr);
    idLink.href = runURL(run.id);
    idLink.title = run.id;
    idLink.textContent = shortID(run.id);
  }

  function tickElapsed(root) {
    const now = Date.now();
    for (const el of $all('[data-since]', root)) {
      const since = Date.parse(el.dataset.since);
      if (!isNaN(since)) el.textContent = 'running ' + fmtMS(Math.max(0, now - since));
    }
  }

  // initRunsTable keeps a runs table live: every two seconds it updates
  // the rows of runs that are not final and, on the newest page, adds the
  // runs that started since the page loaded.
  function initRunsTable(table) {
    const tbody = table.tBodies[0];
    const tmpl = $('#run-row-template');
    const liveQuery = table.dataset.liveQuery;
    const max = parseInt(table.dataset.liveMax || '0', 10);
    const indicator = $('#live-indicator');
    if (indicator && liveQuery !== undefined) indicator.hidden = false;

    function rowOf(id) {
      return $all('tr.run-row', tbody).find(function (tr) { return tr.dataset.runId === id; });
    }

    function addRow(run) {
      const frag = tmpl.content.cloneNode(true);
      const tr = $('tr', frag);
      fillRow(tr, run);
      tr.classList.add('fresh');
      const empty = $('.empty-row', tbody);
      if (empty) empty.remove();
      tbody.insertBefore(tr, tbody.firstChild);
      if (max > 0) {
        const rows = $all('tr.run-row', tbody);
        for (const old of rows.slice(max)) old.remove();
      }
    }

    async function poll() {
      const seen = new Set();
      if (liveQuery !== undefined && tmpl) {
        const res = await api('GET', '/api/taskruns?' + liveQuery);
        if (res.ok) {
          const runs = res.data.taskruns || [];
          const top = $('tr.run-row', tbody);
          const topStarted = top ? Date.parse(top.dataset.started) : -Infinity;
          for (const run of runs.slice().reverse()) {
            seen.add(run.id);
            const tr = rowOf(run.id);
            if (tr) {
              if (tr.dataset.status !== run.status || !FINAL.has(run.status)) fillRow(tr, run);
            } else if (Date.parse(run.started_at) >= topStarted) {
              addRow(run);
            }
          }
        }
      }
      const pending = $all('tr.run-row', tbody).filter(function (tr) {
        return tr.dataset.runId && !FINAL.has(tr.dataset.status) && !seen.has(tr.dataset.runId);
      });
      await Promise.all(pending.slice(0, 20).map(async function (tr) {
        const res = await api('GET', '/api/taskruns/' + encodeURIComponent(tr.dataset.runId));
        if (res.ok) fillRow(tr, res.data);
      }));
      tickElapsed(tbody);
    }

    tickElapsed(tbody);
    setInterval(function () { tickElapsed(tbody); }, 1000);
    if (liveQuery !== undefined || $all('tr.run-row', tbody).some(function (tr) { return !FINAL.has(tr.dataset.status); })) {
      every(POLL_MS, poll);
    }
    return poll;
  }

  // ---- pages ---------------------------------------------------------------

  function localInputValue(d) {
    let v = d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) +
      'T' + pad(d.getHours()) + ':' + pad(d.getMinutes());
    if (d.getSeconds()) v += ':' + pad(d.getSeconds());
    return v;
  }

  function initRunFilters() {
    const form = $('#run-filters');
    if (!form) return;
    // The time fields show local time; the hidden fields carry RFC 3339.
    for (const local of $all('input[type="datetime-local"][data-for]', form)) {
      const hidden = document.getElementById(local.dataset.for);
      const d = new Date(hidden.value);
      if (hidden.value && !isNaN(d)) local.value = localInputValue(d);
    }
    const status = $('#filter-status');
    status.addEventListener('change', function () { form.requestSubmit(); });
    form.addEventListener('submit', function () {
      for (const local of $all('input[type="datetime-local"][data-for]', form)) {
        const hidden = document.getElementById(local.dataset.for);
        const d = local.value ? new Date(local.value) : null;
        hidden.value = d && !isNaN(d) ? d.toISOString() : '';
      }
      // Empty fields are left out of the URL.
      for (const f of $all('input[name], select[name]', form)) {
        if (!f.value) f.disabled = true;
      }
      setTimeout(function () { for (const f of $all('[disabled]', form)) f.disabled = false; }, 0);
    });
  }

  function initRunsPage() {
    initRunFilters();
    const table = $('#runs-table');
    if (table) initRunsTable(table);
  }

  function initRunPage() {
    const holder = $('#run-status');
    const id = holder.dataset.runId;
    const elapsed = $('#run-elapsed');
    if (elapsed && !FINAL.has(holder.dataset.status)) {
      const tick = function () {
        const since = Date.parse(elapsed.dataset.since);
        if (!isNaN(since)) elapsed.textContent = 'for ' + fmtMS(Math.max(0, Date.now() - since));
      };
      tick();
      setInterval(tick, 1000);
      // Poll until the run is final, then show it whole.
      every(POLL_MS, async function () {
        const res = await api('GET', '/api/taskruns/' + encodeURIComponent(id));
        if (!res.ok) return;
        if (res.data.status !== holder.dataset.status) {
          if (FINAL.has(res.data.status)) { location.reload(); return; }
          holder.dataset.status = res.data.status;
          setStatus($('.status', holder), res.data.status);
        }
      });
    }
    const form = $('#replay-form');
    if (form) {
      const token = initToken();
      form.addEventListener('submit', async function (e) {
        e.preventDefault();
        const button = $('#replay-button');
        button.disabled = true;
        button.textContent = 'Replaying…';
        const res = await api('POST', '/api/taskruns/' + encodeURIComponent(form.dataset.runId) + '/replay',
          { token: token(), body: '' });
        button.disabled = false;
        button.textContent = 'Replay';
        showResult('replay', res);
      });
    }
  }

  function initOperationsPage() {
    const form = $('#op-filters');
    const search = $('#op-search');
    const selects = $all('select', form);
    const rows = $all('tr.op-row');
    const empty = $('#ops-empty');
    const count = $('#ops-count');
    function apply() {
      const q = search.value.trim().toLowerCase();
      const category = ($('#op-category') || {}).value || '';
      const tag = ($('#op-tag') || {}).value || '';
      const stage = ($('#op-stage') || {}).value || '';
      let shown = 0;
      for (const tr of rows) {
        let tags = [];
        try { tags = JSON.parse(tr.dataset.tags || '[]') || []; } catch (e) { tags = []; }
        const ok = (!q || tr.dataset.search.includes(q)) &&
          (!category || tr.dataset.category === category) &&
          (!tag || tags.includes(tag)) &&
          (!stage || tr.dataset.stage === stage);
        tr.hidden = !ok;
        if (ok) shown++;
      }
      empty.hidden = shown > 0;
      count.textContent = shown + ' of ' + rows.length + ' operation' + (rows.length === 1 ? '' : 's');
      const params = new URLSearchParams();
      if (q) params.set('q', search.value.trim());
      if (category) params.set('category', category);
      if (tag) params.set('tag', tag);
      if (stage) params.set('stage', stage);
      const qs = params.toString();
      history.replaceState(null, '', location.pathname + (qs ? '?' + qs : ''));
    }
    search.addEventListener('input', apply);
    for (const s of selects) s.addEventListener('change', apply);
    form.addEventListener('submit', function (e) { e.preventDefault(); apply(); });
  }

  function initOperationPage() {
    const stats = $('#op-stats');
    const name = stats.dataset.operation;
    const reloadStats = initStats(stats, name);
    const table = $('#runs-table');
    const pollRuns = table ? initRunsTable(table) : null;
    const form = $('#invoke-form');
    if (!form) return;
    const token = initToken();
    const input = $('#invoke-input');
    form.addEventListener('submit', async function (e) {
      e.preventDefault();
      const button = $('#invoke-button');
      if (button.disabled) return;
      const text = input.value.trim() || '{}';
      try {
        JSON.parse(text);
      } catch (err) {
        showResult('invoke', { ok: false, status: 0, data: { code: 'invalid_json', message: 'The input is not valid JSON: ' + err.message } });
        return;
      }
      button.disabled = true;
      button.textContent = 'Invoking…';
      const res = await api('POST', '/api/operations/' + encodeURIComponent(name) + '/invoke',
        { token: token ? token() : '', body: text });
      button.disabled = false;
      button.textContent = 'Invoke';
      showResult('invoke', res);
      if (pollRuns) pollRuns();
      reloadStats();
    });
  }

  // ---- charts ----------------------------------------------------------------

  const RANGES = {
    '1h': { ms: 3600e3, buckets: 12 },
    '24h': { ms: 86400e3, buckets: 24 },
    '7d': { ms: 7 * 86400e3, buckets: 28 },
    '30d': { ms: 30 * 86400e3, buckets: 30 },
  };

  function initStats(section, name) {
    let range = '24h';
    const buttons = $all('button[data-range]', section);
    async function load() {
      const r = RANGES[range];
      const step = r.ms / r.buckets;
      // Buckets start on round times: the end is the next step boundary.
      const until = new Date(Math.ceil(Date.now() / step) * step);
      const since = new Date(until.getTime() - r.ms);
      const qs = new URLSearchParams({ since: since.toISOString(), until: until.toISOString(), buckets: String(r.buckets) });
      const res = await api('GET', '/api/operations/' + encodeURIComponent(name) + '/stats?' + qs.toString());
      const note = $('#stats-note');
      if (!res.ok) {
        note.textContent = 'The statistics could not be loaded: ' + ((res.data && res.data.message) || res.status);
        return;
      }
      renderStats(res.data);
      section.dataset.loaded = range;
    }
    for (const b of buttons) {
      b.addEventListener('click', function () {
        range = b.dataset.range;
        for (const o of buttons) o.setAttribute('aria-pressed', String(o === b));
        load();
      });
    }
    every(15000, load);
    return load;
  }

  function renderStats(s) {
    $('#stat-runs').textContent = String(s.runs);
    $('#stat-failed').textContent = String(s.failed);
    const finished = s.runs - s.running;
    $('#stat-failure-rate').textContent = finished > 0 ? (s.failure_rate * 100).toFixed(1) + ' %' : '–';
    $('#stat-failed').classList.toggle('bad', s.failed > 0);
    $('#stat-failure-rate').classList.toggle('bad', s.failed > 0);
    $('#stat-running').textContent = String(s.running);
    $('#stat-p50').textContent = finished > 0 ? fmtMS(s.p50_ms) : '–';
    $('#stat-p95').textContent = finished > 0 ? fmtMS(s.p95_ms) : '–';
    const note = $('#stats-note');
    note.textContent = 'From ' + fmtTime(new Date(s.since)) + ' to ' + fmtTime(new Date(s.until)) +
      ', in buckets of ' + fmtSpan(s.bucket_seconds) + '.' +
      (s.truncated ? ' Only the newest runs of this period are counted.' : '');
    drawCalls($('#chart-calls'), s);
    drawDurations($('#chart-duration'), s);
  }

  const CH = { w: 560, h: 200, left: 48, right: 10, top: 12, bottom: 26 };

  function svgEl(tag, attrs, text) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // niceMax rounds v up to 1, 2 or 5 times a power of ten.
  function niceMax(v) {
    if (v <= 0) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function bucketLabel(start, bucketSeconds, spanMS) {
    const d = new Date(start);
    if (bucketSeconds >= 86400) return pad(d.getMonth() + 1) + '-' + pad(d.getDate());
    if (spanMS > 86400e3) return pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + pad(d.getHours()) + ':' + pad(d.getMinutes());
    return pad(d.getHours()) + ':' + pad(d.getMinutes());
  }

  // frame draws the grid, the y labels and the x labels of a chart and
  // returns its geometry.
  function frame(svg, s, yMax, yFmt) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const n = s.buckets.length;
    const pw = CH.w - CH.left - CH.right;
    const ph = CH.h - CH.top - CH.bottom;
    const g = { n: n, pw: pw, ph: ph, bw: n ? pw / n : pw };
    g.x = function (i) { return CH.left + i * g.bw; };
    g.y = function (v) { return CH.top + ph - (v / yMax) * ph; };
    for (let i = 0; i <= 4; i++) {
      const v = (yMax * i) / 4;
      const y = g.y(v);
      svg.appendChild(svgEl('line', { class: 'grid', x1: CH.left, x2: CH.w - CH.right, y1: y, y2: y }));
      svg.appendChild(svgEl('text', { class: 'axis', x: CH.left - 6, y: y + 3, 'text-anchor': 'end' }, yFmt(v)));
    }
    const spanMS = Date.parse(s.until) - Date.parse(s.since);
    const labelEvery = Math.max(1, Math.ceil(n / 6));
    for (let i = 0; i < n; i += labelEvery) {
      svg.appendChild(svgEl('text', { class: 'axis', x: g.x(i) + g.bw / 2, y: CH.h - 8, 'text-anchor': 'middle' },
        bucketLabel(s.buckets[i].start, s.bucket_seconds, spanMS)));
    }
    return g;
  }

  function bucketTitle(s, b) {
    const start = new Date(b.start);
    const end = new Date(start.getTime() + s.bucket_seconds * 1000);
    let t = fmtTime(start) + ' – ' + fmtTime(end) + '\n' + b.count + ' call' + (b.count === 1 ? '' : 's') + ', ' + b.failed + ' failed';
    if (b.p50_ms > 0 || b.p95_ms > 0) t += '\np50 ' + fmtMS(b.p50_ms) + ', p95 ' + fmtMS(b.p95_ms);
    return t;
  }

  function noData(svg) {
    svg.appendChild(svgEl('text', { class: 'empty', x: CH.left + (CH.w - CH.left - CH.right) / 2, y: CH.top + (CH.h - CH.top - CH.bottom) / 2, 'text-anchor': 'middle' },
      'No runs in this period'));
  }

  function drawCalls(svg, s) {
    const max = niceMax(Math.max(0, ...s.buckets.map(function (b) { return b.count; })));
    const g = frame(svg, s, max, function (v) { return Number.isInteger(v) ? String(v) : ''; });
    const gap = Math.min(4, g.bw * 0.2);
    s.buckets.forEach(function (b, i) {
      const grp = svgEl('g', { class: 'bucket' });
      grp.appendChild(svgEl('title', {}, bucketTitle(s, b)));
      grp.appendChild(svgEl('rect', { class: 'hover', x: g.x(i), y: CH.top, width: g.bw, height: g.ph }));
      const ok = b.count - b.failed;
      const x = g.x(i) + gap / 2;
      const w = Math.max(1, g.bw - gap);
      if (ok > 0) {
        grp.appendChild(svgEl('rect', { class: 'bar-ok', x: x, y: g.y(ok), width: w, height: g.y(0) - g.y(ok) }));
      }
      if (b.failed > 0) {
        grp.appendChild(svgEl('rect', { class: 'bar-fail', x: x, y: g.y(b.count), width: w, height: g.y(ok) - g.y(b.count) }));
      }
      svg.appendChild(grp);
    });
    svg.appendChild(svgEl('line', { class: 'baseline', x1: CH.left, x2: CH.w - CH.right, y1: g.y(0), y2: g.y(0) }));
    if (s.runs === 0) noData(svg);
  }

  function drawDurations(svg, s) {
    // p50 and p95 are 0 in buckets without a finished run.
    const has = function (b) { return b.p50_ms > 0 || b.p95_ms > 0; };
    const max = niceMax(Math.max(0, ...s.buckets.filter(has).map(function (b) { return b.p95_ms; })));
    const g = frame(svg, s, max, function (v) { return v === 0 ? '0' : fmtMS(v).replace(' ', ''); });
    s.buckets.forEach(function (b, i) {
      const grp = svgEl('g', { class: 'bucket' });
      grp.appendChild(svgEl('title', {}, bucketTitle(s, b)));
      grp.appendChild(svgEl('rect', { class: 'hover', x: g.x(i), y: CH.top, width: g.bw, height: g.ph }));
      svg.appendChild(grp);
    });
    for (const [key, cls] of [['p95_ms', 'line-p95'], ['p50_ms', 'line-p50']]) {
      let d = '';
      let pen = false;
      s.buckets.forEach(function (b, i) {
        if (!has(b)) { pen = false; return; }
        const x = g.x(i) + g.bw / 2;
        const y = g.y(b[key]);
        d += (pen ? 'L' : 'M') + x.toFixed(1) + ' ' + y.toFixed(1) + ' ';
        pen = true;
        svg.appendChild(svgEl('circle', { class: 'dot ' + cls, cx: x, cy: y, r: 2.5 }));
      });
      if (d) svg.insertBefore(svgEl('path', { class: 'line ' + cls, d: d }), svg.querySelector('circle'));
    }
    svg.appendChild(svgEl('line', { class: 'baseline', x1: CH.left, x2: CH.w - CH.right, y1: g.y(0), y2: g.y(0) }));
    if (!s.buckets.some(has)) noData(svg);
  }

  // ---- start -------------------------------------------------------------------

  localizeTimes(document);
  const tz = $('#tz-note');
  if (tz) tz.textContent = 'Times are shown in your time zone' + (timeZone ? ' (' + timeZone + ')' : '') + '.';
  switch (body.dataset.page) {
    case 'runs': initRunsPage(); break;
    case 'run': initRunPage(); break;
    case 'operations': initOperationsPage(); break;
    case 'operation': initOperationPage(); break;
  }
})();
