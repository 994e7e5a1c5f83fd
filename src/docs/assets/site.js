// reluvia-transform docs: search, zoom and focus. Own code, no dependency; the data
// (search index, overview edges) is inline in the page.
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("data").textContent);
  var q = document.getElementById("q"), hits = document.getElementById("hits");
  var results = document.getElementById("results"), nres = document.getElementById("nres");
  function esc(s) {
    return String(s).replace(/[&<>"]/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c];
    });
  }
  function mark(s, t) {
    var i = s.toLowerCase().indexOf(t);
    if (i < 0) return esc(s);
    return esc(s.slice(0, i)) + "<mark>" + esc(s.slice(i, i + t.length)) + "</mark>" + esc(s.slice(i + t.length));
  }
  // Scores: name 3 (starts with it: 4), column 2, tag 2, description 1.
  function search(text) {
    var t = text.trim().toLowerCase(), out = [];
    if (!t) return out;
    for (var i = 0; i < D.index.length; i++) {
      var e = D.index[i], score = 0, cols = [];
      var name = e[0].toLowerCase();
      if (name.indexOf(t) === 0) score = 4; else if (name.indexOf(t) > 0 || e[6].toLowerCase().indexOf(t) >= 0) score = 3;
      for (var c = 0; c < e[4].length; c++) if (e[4][c].toLowerCase().indexOf(t) >= 0) cols.push(e[4][c]);
      if (cols.length) score = Math.max(score, 2);
      for (var g = 0; g < e[5].length; g++) if (e[5][g].toLowerCase().indexOf(t) >= 0) score = Math.max(score, 2);
      if (!score && e[3].toLowerCase().indexOf(t) >= 0) score = 1;
      if (score) out.push([score, i, cols]);
    }
    out.sort(function (a, b) { return b[0] - a[0] || (D.index[a[1]][0] < D.index[b[1]][0] ? -1 : 1); });
    return out;
  }
  function show(text) {
    var r = search(text), t = text.trim().toLowerCase(), h = [];
    results.hidden = !t;
    nres.textContent = r.length + (r.length === 1 ? " match" : " matches");
    for (var k = 0; k < r.length && k < 100; k++) {
      var e = D.index[r[k][1]], cols = r[k][2];
      var c = cols.slice(0, 6).map(function (n) {
        return '<a class="col" href="' + esc(e[2]) + "#col-" + esc(n) + '">' + mark(n, t) + "</a>";
      }).join(" ");
      h.push('<li><a class="ref k-' + e[1] + '" href="' + esc(e[2]) + '">' + mark(e[0], t) + '</a> <span class="kind-s">' + e[1] +
        "</span>" + (c ? ' <span class="cols">columns: ' + c + "</span>" : "") + '<div class="muted">' + mark(e[3], t) + "</div></li>");
    }
    hits.innerHTML = h.join("");
    return r.length;
  }
  window.reluviaSearch = show;
  q.addEventListener("input", function () { show(q.value); });
  q.form.addEventListener("submit", function (ev) { ev.preventDefault(); show(q.value); });

  // Overview: zoom and pan through the viewBox, focus on click.
  var svg = document.getElementById("overview"), box = document.getElementById("graph");
  var W = +svg.getAttribute("data-w"), H = +svg.getAttribute("data-h"), vb = [0, 0, W, H];
  var nodes = svg.querySelectorAll("g.n"), paths = svg.querySelectorAll("g.edges path");
  var kids = D.parents.map(function () { return []; }), edges = [];
  D.parents.forEach(function (ps, c) { ps.forEach(function (p) { kids[p].push(c); edges.push([p, c]); }); });
  function apply() { svg.setAttribute("viewBox", vb.map(function (v) { return v.toFixed(1); }).join(" ")); }
  function fit() {
    var bw = box.clientWidth || 900, bh = Math.min(Math.max(H, 160), 560);
    svg.setAttribute("width", bw); svg.setAttribute("height", bh);
    var s = Math.max(W / bw, H / bh, 1);
    vb = [0, 0, bw * s, bh * s]; apply();
  }
  function zoom(f, cx, cy) {
    if (cx === undefined) { cx = vb[0] + vb[2] / 2; cy = vb[1] + vb[3] / 2; }
    vb = [cx - (cx - vb[0]) / f, cy - (cy - vb[1]) / f, vb[2] / f, vb[3] / f]; apply();
  }
  document.querySelectorAll("[data-z]").forEach(function (b) {
    b.addEventListener("click", function () { var z = b.getAttribute("data-z"); if (z === "fit") fit(); else zoom(+z); });
  });
  function pt(ev) { var r = svg.getBoundingClientRect(); return [vb[0] + (ev.clientX - r.left) / r.width * vb[2], vb[1] + (ev.clientY - r.top) / r.height * vb[3]]; }
  svg.addEventListener("wheel", function (ev) { ev.preventDefault(); var p = pt(ev); zoom(ev.deltaY < 0 ? 1.15 : 1 / 1.15, p[0], p[1]); }, { passive: false });
  var drag = null, moved = false;
  svg.addEventListener("mousedown", function (ev) { drag = [ev.clientX, ev.clientY, vb[0], vb[1]]; moved = false; });
  window.addEventListener("mousemove", function (ev) {
    if (!drag) return;
    var r = svg.getBoundingClientRect(), dx = ev.clientX - drag[0], dy = ev.clientY - drag[1];
    if (Math.abs(dx) + Math.abs(dy) > 3) moved = true;
    vb[0] = drag[2] - dx / r.width * vb[2]; vb[1] = drag[3] - dy / r.height * vb[3]; apply();
  });
  window.addEventListener("mouseup", function () { drag = null; });
  function walk(start, next) {
    var seen = {}, stack = [start], out = [];
    seen[start] = 1;
    while (stack.length) { var v = stack.pop(); next[v].forEach(function (u) { if (!seen[u]) { seen[u] = 1; out.push(u); stack.push(u); } }); }
    return out;
  }
  var info = document.getElementById("focus-info");
  function focus(i) {
    if (i === null) {
      svg.classList.remove("focusing"); info.innerHTML = "";
      nodes.forEach(function (g) { g.classList.remove("on", "sel"); });
      paths.forEach(function (p) { p.classList.remove("on"); });
      return;
    }
    var up = walk(i, D.parents), down = walk(i, kids), on = {};
    on[i] = 1; up.forEach(function (v) { on[v] = 1; }); down.forEach(function (v) { on[v] = 1; });
    svg.classList.add("focusing");
    nodes.forEach(function (g) { var k = +g.getAttribute("data-i"); g.classList.toggle("on", !!on[k]); g.classList.toggle("sel", k === i); });
    paths.forEach(function (p, k) { p.classList.toggle("on", !!(on[edges[k][0]] && on[edges[k][1]])); });
    var n = D.nodes[i];
    info.innerHTML = '<b>' + esc(n[1]) + "</b> (" + n[2] + "): " + up.length + " upstream, " + down.length + ' downstream · <a href="' +
      esc(n[0]) + '">open its page</a> · <button type="button" id="unfocus">clear focus</button>';
    document.getElementById("unfocus").addEventListener("click", function () { focus(null); });
    // Zoom to the focused nodes.
    var x0 = 1e9, y0 = 1e9, x1 = -1e9, y1 = -1e9;
    nodes.forEach(function (g) {
      if (!on[+g.getAttribute("data-i")]) return;
      var b = g.getBBox(), m = g.transform.baseVal.consolidate().matrix;
      x0 = Math.min(x0, m.e); y0 = Math.min(y0, m.f); x1 = Math.max(x1, m.e + b.width); y1 = Math.max(y1, m.f + b.height);
    });
    var bw = svg.clientWidth || 900, bh = svg.clientHeight || 400, w = x1 - x0 + 40, h = y1 - y0 + 40;
    var s = Math.max(w / bw, h / bh, 0.8);
    vb = [x0 - 20 - (bw * s - w) / 2, y0 - 20 - (bh * s - h) / 2, bw * s, bh * s]; apply();
  }
  nodes.forEach(function (g) {
    g.addEventListener("click", function () { if (!moved) focus(+g.getAttribute("data-i")); });
    g.addEventListener("dblclick", function () { var p = D.nodes[+g.getAttribute("data-i")][0]; if (p) location.href = p; });
  });
  window.reluviaFocus = function (id) {
    for (var i = 0; i < D.nodes.length; i++) if (D.nodes[i][3] === id) { focus(i); return true; }
    return false;
  };
  fit();
  var params = new URLSearchParams(location.search), hash = decodeURIComponent(location.hash.slice(1));
  if (hash.indexOf("focus=") === 0) window.reluviaFocus(hash.slice(6));
  var start = params.get("q") || (hash.indexOf("q=") === 0 ? hash.slice(2) : "");
  if (start) { q.value = start; show(start); }
})();
