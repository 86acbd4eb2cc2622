/* papers-digest archive search: titles and the start of abstracts, in the browser.
 *
 * search-index.js sets window.PAPERS_DIGEST_INDEX: the list of days, each with its shard
 * (search/<day>.js, which adds that day's rows to window.PAPERS_DIGEST_SHARDS). Both are
 * loaded on first use as <script>s, which work from file:// where fetch() of local files
 * is blocked; shards load a few at a time, newest day first. Results are built with
 * textContent only; links are accepted only when they have the shape of our own paper
 * pages or day-page entries, so nothing in the data can become markup or a URL.
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
  var PARALLEL = 4;     // shards loading at once
  var SAFE_HREF = /^(papers\/[A-Za-z0-9._-]+\.html|days\/\d{4}-\d\d-\d\d\.html#p-[A-Za-z0-9._-]+)$/;
  var SAFE_SHARD = /^search\/\d{4}-\d\d-\d\d\.js(\?v=[0-9a-f]+)?$/;
  var rows = null;      // [{href, title, abstract, day, t, a}] once loaded
  var loading = false;
  var pending = null;   // the query to run once the index is in

  function fold(text) {
    return String(text).toLowerCase().normalize("NFKD").replace(/[\u0300-\u036f]/g, "");
  }

  function script(src, done) {
    var s = document.createElement("script");
    s.src = root + src;
    s.onload = function () { done(true); };
    s.onerror = function () { done(false); };
    document.head.appendChild(s);
  }

  function fail() {
    loading = false;
    status.textContent = "The search index could not be loaded.";
  }

  function load() {
    if (rows || loading) return;
    loading = true;
    status.textContent = "Loading the search index…";
    script(indexSrc, function (ok) {
      var data = window.PAPERS_DIGEST_INDEX;
      if (!ok || !data || !Array.isArray(data.days)) { fail(); return; }
      var days = data.days.filter(function (d) {
        return Array.isArray(d) && typeof d[0] === "string" && typeof d[1] === "string" &&
          SAFE_SHARD.test(d[1]);
      });
      var next = 0, done = 0, failed = false;
      function finish() {
        var shards = window.PAPERS_DIGEST_SHARDS || {};
        rows = [];
        for (var i = 0; i < days.length; i++) {  // newest day first, as listed
          var shard = shards[days[i][0]];
          var papers = (shard && Array.isArray(shard.papers)) ? shard.papers : [];
          for (var j = 0; j < papers.length; j++) {
            var p = papers[j];
            if (!Array.isArray(p) || typeof p[0] !== "string" || !SAFE_HREF.test(p[0])) continue;
            var title = String(p[1] || ""), abstract = String(p[2] || "");
            rows.push({ href: p[0], title: title, abstract: abstract, day: days[i][0],
                        t: fold(title), a: fold(abstract) });
          }
        }
        loading = false;
        if (failed) status.textContent = "Some days of the search index could not be loaded.";
        if (pending !== null) run(pending);
        else if (!failed) status.textContent = "";
      }
      function more() {
        if (next >= days.length) { if (done === days.length) finish(); return; }
        var day = days[next++];
        script(day[1], function (ok) {
          if (!ok) failed = true;
          done++;
          if (days.length > PARALLEL) {
            status.textContent = "Loading the search index… " + done + "/" + days.length + " days";
          }
          more();
        });
      }
      if (days.length === 0) { finish(); return; }
      for (var k = 0; k < PARALLEL; k++) more();
    });
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
