// meshgate admin dashboard: plain JS, no external assets. Data is inserted
// with textContent only, so hostile SPIFFE IDs or paths cannot inject markup.
'use strict';
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var timer = null;

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function fill(tableId, rows, cells) {
    var body = $(tableId).tBodies[0];
    while (body.firstChild) body.removeChild(body.firstChild);
    (rows || []).forEach(function (r) {
      var tr = el('tr');
      cells(r).forEach(function (c) {
        var td = typeof c === 'object' && c !== null ? el('td', c.t, c.c) : el('td', c);
        if (typeof c === 'number') td.className = 'num';
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }
  function show(logged) {
    $('login').hidden = logged;
    $('dash').hidden = !logged;
    $('logout').hidden = !logged;
  }

  function renderGraph(edges) {
    var svg = $('graph-svg'), ns = 'http://www.w3.org/2000/svg';
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var srcs = [], dsts = [];
    edges.forEach(function (e) {
      if (srcs.indexOf(e.source) < 0) srcs.push(e.source);
      if (dsts.indexOf(e.service) < 0) dsts.push(e.service);
    });
    var rowH = 34, h = Math.max(srcs.length, dsts.length) * rowH + 10;
    svg.style.height = (edges.length ? h : 0) + 'px';
    var W = svg.clientWidth || 900, bw = Math.min(380, W * 0.42);
    function node(x, i, label) {
      var y = 5 + i * rowH;
      var r = document.createElementNS(ns, 'rect');
      r.setAttribute('x', x); r.setAttribute('y', y); r.setAttribute('width', bw);
      r.setAttribute('height', rowH - 8); r.setAttribute('rx', 4); r.setAttribute('class', 'node');
      var t = document.createElementNS(ns, 'text');
      t.setAttribute('x', x + 6); t.setAttribute('y', y + 17); t.textContent = label;
      svg.appendChild(r); svg.appendChild(t);
      return y + (rowH - 8) / 2;
    }
    var ys = {}, yd = {};
    srcs.forEach(function (s, i) { ys[s] = node(0, i, s); });
    dsts.forEach(function (d, i) { yd[d] = node(W - bw - 2, i, d); });
    edges.forEach(function (e, i) {
      var p = document.createElementNS(ns, 'path'), x1 = bw, x2 = W - bw - 2, m = (x1 + x2) / 2;
      p.setAttribute('d', 'M' + x1 + ',' + ys[e.source] + ' C' + m + ',' + ys[e.source] + ' ' + m + ',' + yd[e.service] + ' ' + x2 + ',' + yd[e.service]);
      p.setAttribute('class', 'edge');
      p.setAttribute('stroke-width', Math.min(8, 1 + Math.log(1 + e.requests + e.connections)));
      svg.appendChild(p);
      // label on the curve, staggered along it so labels of crossing edges stay apart
      var u = 0.2 + 0.6 * (edges.length > 1 ? i / (edges.length - 1) : 0.5), v = 1 - u;
      var a = v * v * v + 3 * v * v * u, b = 3 * v * u * u + u * u * u;
      var t = document.createElementNS(ns, 'text');
      t.setAttribute('x', v * v * v * x1 + 3 * v * v * u * m + 3 * v * u * u * m + u * u * u * x2 - 24);
      t.setAttribute('y', a * ys[e.source] + b * yd[e.service] - 4);
      t.textContent = e.requests ? e.requests + ' req' : e.connections + ' conn';
      svg.appendChild(t);
    });
  }

  function render(d) {
    var st = d.status || {};
    $('appliance').textContent = (st.name || '') + ' ' + (st.version || '');
    var dl = $('status');
    while (dl.firstChild) dl.removeChild(dl.firstChild);
    [['Uptime (s)', st.uptime_s], ['Config generation', st.generation], ['Policies', st.policies],
     ['Connections', (st.connections_active || 0) + ' / ' + (st.connections_pool || 0)],
     ['Accepted', st.accepted], ['Requests', st.requests], ['Refused', st.refused_total],
     ['TLS handshakes ok', st.tls_handshakes_ok], ['Admin sessions', st.admin_sessions]].forEach(function (kv) {
      dl.appendChild(el('dt', kv[0])); dl.appendChild(el('dd', kv[1] === undefined ? '-' : kv[1]));
    });
    fill('certs', d.certs, function (c) {
      var days = c.days_left === null || c.days_left === undefined ? '-' : c.days_left;
      return [c.role, c.identity.split('/').pop(), c.not_after || '-',
        { t: days, c: days !== '-' && days < 14 ? 'deny' : 'allow' }];
    });
    fill('ports', d.ports, function (p) {
      return [p.name, p.address, { t: p.link_up ? 'up' : 'down', c: p.link_up ? 'up' : 'deny' },
        p.rx_packets, p.tx_packets, p.rx_dropped, p.tx_dropped];
    });
    fill('listeners', d.listeners, function (l) { return [l.name, l.address, l.protocol, l.service]; });
    fill('connections', d.connections, function (c) {
      return [c.id, c.peer, c.spiffe_id || '-', c.listener, c.service, c.state, c.bytes_received, c.bytes_sent, c.age_s];
    });
    fill('policies', d.policies, function (p) {
      return [p.policy, { t: p.action, c: p.action === 'deny' ? 'deny' : 'allow' }, p.dry_run ? 'yes' : '', p.count];
    });
    fill('events', d.events, function (e) {
      return [e.age_s, { t: e.kind, c: e.kind === 'deny' ? 'deny' : '' }, e.spiffe_id || '-', e.service,
        (e.method || '') + ' ' + (e.path || ''), e.policy || '-'];
    });
    var edges = d.graph || [];
    fill('graph-edges', edges, function (e) { return [e.source, e.service, e.requests, e.connections]; });
    renderGraph(edges);
    $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
  }

  function poll() {
    fetch('/api/v1/dashboard', { credentials: 'same-origin' }).then(function (r) {
      if (r.status === 401 || r.status === 403) { stop(); show(false); return null; }
      return r.json();
    }).then(function (d) { if (d) render(d); }).catch(function () {});
  }
  function start() { show(true); poll(); if (!timer) timer = setInterval(poll, 2000); }
  function stop() { if (timer) clearInterval(timer); timer = null; }

  function session() {
    fetch('/api/v1/session', { credentials: 'same-origin' }).then(function (r) {
      if (!r.ok) { show(false); return null; }
      return r.json();
    }).then(function (s) {
      if (!s) return;
      $('who').textContent = s.via === 'mtls' ? s.spiffe_id : 'password session';
      start();
    });
  }

  document.addEventListener('DOMContentLoaded', function () {
    $('login-form').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var body = new URLSearchParams();
      body.set('password', $('password').value);
      fetch('/api/v1/login', { method: 'POST', body: body, credentials: 'same-origin' }).then(function (r) {
        $('password').value = '';
        if (r.ok) { $('login-error').textContent = ''; session(); return; }
        return r.json().then(function (j) { $('login-error').textContent = j.error || ('HTTP ' + r.status); });
      });
    });
    $('logout').addEventListener('click', function () {
      fetch('/api/v1/logout', { method: 'POST', credentials: 'same-origin' }).then(function () { stop(); show(false); });
    });
    session();
  });
})();
