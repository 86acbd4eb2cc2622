/* papers-digest archive search: titles and abstracts, entirely in the browser.
 *
 * The index is a script (search-index.js) that sets window.PAPERS_DIGEST_INDEX, loaded on
 * first use: a <script> works from file:// where fetch() of local files is blocked.
 * Results are built with textContent only; links are accepted only when they have the
 * shape of our own paper pages, so nothing in the data can become markup or a URL.
 */
(function () {
  "use strict";
  var me = document.currentScript;
  var root = (me && me.getAttribute("data-root")) || "";
  var indexSrc = (me && me.getAttribute("data-index")) || "search-index.js";
  var input = document.getElementById("search-input");
  var box = document.getElementById("search");
  var list = document.getElementById("search-results");
  var status = document.getElementById("search-status");
  if (!input || !box || !list || !status) return;

  var MAX_RESULTS = 50;
  var SAFE_HREF = /^papers\/[A-Za-z0-9._-]+\.html$/;
  var rows = null;      // [{href, title, abstract, day, t, a}] once loaded
  var loading = false;
  var pending = null;   // the query to run once the index is in

  function fold(text) {
    return String(text).toLowerCase().normalize("NFKD").replace(/[\u0300-\u036f]/g, "");
  }

  function load() {
    if (rows || loading) return;
    loading = true;
    status.textContent = "Loading the search index…";
    var s = document.createElement("script");
    s.src = root + indexSrc;
    s.onload = function () {
      var data = window.PAPERS_DIGEST_INDEX;
      var papers = (data && Array.isArray(data.papers)) ? data.papers : [];
      rows = [];
      for (var i = 0; i < papers.length; i++) {
        var p = papers[i];
        if (!Array.isArray(p) || typeof p[0] !== "string" || !SAFE_HREF.test(p[0])) continue;
        var title = String(p[1] || ""), abstract = String(p[2] || "");
        rows.push({ href: p[0], title: title, abstract: abstract, day: String(p[3] || ""),
                    t: fold(title), a: fold(abstract) });
      }
      loading = false;
      if (pending !== null) run(pending);
      else status.textContent = "";
    };
    s.onerror = function () {
      loading = false;
      status.textContent = "The search index could not be loaded.";
    };
    document.head.appendChild(s);
  }

  function excerpt(text, folded, term) {
    var at = term ? folded.indexOf(term) : -1;
    var start = Math.max(0, at < 0 ? 0 : at - 80);
    var out = text.slice(start, start + 240);
    return (start > 0 ? "…" : "") + out + (start + 240 < text.length ? "…" : "");
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function run(query) {
    var q = fold(query).trim();
    clear(list);
    if (!q) { box.hidden = true; status.textContent = ""; return; }
    box.hidden = false;
    if (!rows) { pending = query; load(); return; }
    pending = null;
    var terms = q.split(/\s+/).filter(Boolean);
    var hits = [];
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i], score = 0, ok = true;
      for (var j = 0; j < terms.length; j++) {
        var inTitle = r.t.indexOf(terms[j]) >= 0;
        var inAbstract = !inTitle && r.a.indexOf(terms[j]) >= 0;
        if (!inTitle && !inAbstract) { ok = false; break; }
        score += inTitle ? 3 : 1;
      }
      if (!ok) continue;
      if (terms.length > 1 && r.t.indexOf(q) >= 0) score += 5;
      hits.push({ row: r, score: score, order: i });
    }
    hits.sort(function (x, y) { return (y.score - x.score) || (x.order - y.order); });
    status.textContent = hits.length === 0 ? "No paper matches “" + query.trim() + "”."
      : hits.length + " paper" + (hits.length === 1 ? "" : "s") + " match" +
        (hits.length === 1 ? "es" : "") + (hits.length > MAX_RESULTS ? "; the first " + MAX_RESULTS + " are shown." : ".");
    for (var k = 0; k < hits.length && k < MAX_RESULTS; k++) {
      var row = hits[k].row;
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.className = "title";
      a.href = root + row.href;
      a.textContent = row.title.length > 400 ? row.title.slice(0, 399) + "…" : row.title;
      var meta = document.createElement("div");
      meta.className = "meta";
      meta.textContent = row.day;
      var p = document.createElement("p");
      p.className = "snippet";
      p.textContent = excerpt(row.abstract, row.a, terms[0]);
      li.appendChild(a); li.appendChild(meta); li.appendChild(p);
      list.appendChild(li);
    }
    list.setAttribute("data-query", query);  // what the list shows (tests wait for it)
  }

  var timer = null;
  input.addEventListener("focus", load);
  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () { run(input.value); }, 120);
  });
  if (input.form) {
    input.form.addEventListener("submit", function (event) {
      event.preventDefault();
      run(input.value);
    });
  }
  var initial = new URLSearchParams(window.location.search).get("q");
  if (initial) { input.value = initial; run(initial); }
})();
