/* papers-digest archive search: the ranker's word rules, in the browser.
 *
 * search-index.js sets window.PAPERS_DIGEST_INDEX: the months (newest first), each with
 * its number of buckets, and the stop words and synonym table of the analyzer. A query
 * is parsed as a profile's keywords are (commas: alternatives, "quotes": a phrase,
 * -word: an exclusion, ^2: a weight, ignored) and compiled as `digest.rank.find` compiles
 * it, with the stem of each word looked up in the buckets that hold its spelling
 * (search/<month>/b-N.js, N = fnv1a(spelling) % buckets; see digest/publish/search.py
 * for their layout); then the buckets of the
 * features it needs are loaded and every paper of the month whose features match is
 * found; the rows (title, link, start of the abstract) are loaded only for the results
 * shown. Files load as <script>s, which work from file:// where fetch() is blocked.
 * Results are built with textContent only; links are accepted only when they have the
 * shape of our own paper pages or day-page entries, so nothing in the data can become
 * markup or a URL.
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
  var SAFE_HREF = /^(papers\/[A-Za-z0-9._-]+\.html|days\/\d{4}-\d\d-\d\d\.html#p-[A-Za-z0-9._-]+)$/;
  var SAFE_MONTH = /^\d{4}-\d\d$/;
  var index = null;     // PAPERS_DIGEST_INDEX once loaded
  var loads = {};       // script src -> [callbacks] while loading, true when done
  var generation = 0;   // the latest query; older ones stop when their files arrive

  // --- the analyzer's rules (digest/rank/analyzer.py) for what a reader types -------
  var RAW_WORD = /[\p{L}\p{N}_$^{}\\'\u2019]+/gu;
  var SUB_WORD = /[\p{L}\p{N}]+/gu;
  var CJK = /([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af])/;
  var JOINING_GAP = /^[\s\-\u2010\u2011\u2012\u2013]{0,3}$/;
  var HYPHENS = "-\u2010\u2011\u2012\u2013";
  var POSSESSIVE = /['\u2019]s$/;
  var PLURAL_ACRONYM = /^([A-Z][A-Za-z0-9]*[A-Z0-9])s$/;
  var QUOTES = "\"\u201c\u201d\u201e\u00ab\u00bb";
  var WEIGHT = /^([\s\S]*?)\^\s*([0-9]*\.?[0-9]+)\s*$/;

  function casefold(text) {
    return text.toLowerCase().replace(/\u00df/g, "ss").replace(/\u03c2/g, "\u03c3").normalize("NFKC");
  }

  function stripLatex(text) {  // enough of digest.text.strip_latex for typed words
    return text.replace(/\\[A-Za-z]+\{([^{}]*)\}/g, "$1").replace(/\\([A-Za-z]+)/g, "$1")
      .replace(/[$^_{}\\]/g, "");
  }

  function splitRaw(raw) {
    var text = stripLatex(raw.normalize("NFKC")).replace(POSSESSIVE, "");
    var out = [];
    (text.match(SUB_WORD) || []).forEach(function (sub) {
      var pieces = CJK.test(sub) ? sub.split(CJK).filter(Boolean) : [sub];
      pieces.forEach(function (piece) {
        var cased = piece.replace(PLURAL_ACRONYM, "$1");
        (casefold(cased).match(SUB_WORD) || []).forEach(function (w) { out.push(w); });
      });
    });
    return out;
  }

  function tokenize(text) {
    var tokens = [], prevEnd = -1, m;
    RAW_WORD.lastIndex = 0;
    while ((m = RAW_WORD.exec(text)) !== null) {
      var start = m.index, end = start + m[0].length;
      var join = prevEnd >= 0 && JOINING_GAP.test(text.slice(prevEnd, start));
      splitRaw(m[0]).forEach(function (w) {
        tokens.push({ word: w, start: start, end: end, joined: join });
        join = true;
      });
      prevEnd = end;
    }
    return tokens;
  }

  function exactForm(w) {
    var n = w.length;
    if (n > 4 && /ies$/.test(w) && "aeo".indexOf(w[n - 4]) < 0) return w.slice(0, -3) + "y";
    if (n > 4 && /(sses|xes|zes|ches|shes)$/.test(w)) return w.slice(0, -2);
    if (n > 3 && w[n - 1] === "s" && "suiy'".indexOf(w[n - 2]) < 0) return w.slice(0, -1);
    return w;
  }

  // --- the query syntax (digest/keywords.py) ------------------------------------------
  function splitKeywords(text) {
    var parts = [], cur = "", quoted = false;
    for (var i = 0; i < text.length; i++) {
      var ch = text[i];
      if (QUOTES.indexOf(ch) >= 0) quoted = !quoted;
      if ((ch === "," || ch === "\n") && !quoted) { parts.push(cur); cur = ""; } else cur += ch;
    }
    parts.push(cur);
    return parts;
  }

  function parseKeyword(raw) {
    var body = raw.trim();
    if (!body) return null;
    var m = WEIGHT.exec(body);
    if (m) body = m[1].trim();
    var negated = body[0] === "-" && body.length > 1 && !/\s/.test(body[1]);
    if (negated) body = body.slice(1);
    var phrase = false;
    if (body && QUOTES.indexOf(body[0]) >= 0) {
      var inner = body.slice(1), close = inner.length;
      for (var i = 0; i < inner.length; i++) if (QUOTES.indexOf(inner[i]) >= 0) { close = i; break; }
      if (!inner.slice(close + 1).trim()) { phrase = true; body = inner.slice(0, close); }
    }
    body = body.split("").filter(function (c) { return QUOTES.indexOf(c) < 0; }).join("")
      .replace(/\s+/g, " ").trim();
    return body ? { text: body, phrase: phrase, negated: negated } : null;
  }

  // --- compiling a keyword (digest/rank/query.py compile_keyword, exact share 0) ------
  // entry(s) = [stem, group by stem, group as acronym] of a folded spelling, or null.
  function compileKeyword(kw, entry) {
    var tokens = tokenize(kw.text);
    if (!tokens.length) return null;
    var stop = index.stop;
    var ws = tokens.map(function (t) { return t.word; });
    if (ws.every(function (w) { return stop.indexOf(w) >= 0; })) return null;
    var chunks = [], prev = null;
    tokens.forEach(function (t) {
      var gap = prev ? kw.text.slice(prev.end, t.start) : "";
      var same = prev && t.start === prev.start;
      var hyph = gap && gap.split("").every(function (c) { return HYPHENS.indexOf(c) >= 0; });
      if (prev && (same || hyph)) chunks[chunks.length - 1].push(t.word); else chunks.push([t.word]);
      prev = t;
    });
    function stemOf(s) { var e = entry(s); return e ? e[0] : "?" + s; }
    function stemGroup(s) {
      var e = entry(s);
      if (e) return e[1] || null;
      return index.syn.solid[s] || index.syn.solid[exactForm(s)] || null;
    }
    function wordUnit(w) {
      var e = entry(w);
      if (e) return [e[2] || e[1] || e[0]];
      var g = index.syn.word[w] || index.syn.solid[w] || index.syn.solid[exactForm(w)];
      return [g || "?" + w];  // a spelling the archive never uses (see digest/rank/find.py)
    }
    function pairs(c) {
      var out = [];
      for (var i = 1; i < c.length; i++) {
        var p = stemOf(c[i - 1] + c[i]);
        if (out.indexOf(p) < 0) out.push(p);
      }
      return out;
    }
    function wholeUnit(c) {  // [features, need_all]
      if (c.length === 1) return [wordUnit(c[0]), []];
      var g = stemGroup(c.join(""));
      if (g) return [[g], []];
      if (c.length === 2) return [[stemOf(c[0] + c[1])], []];
      var ps = pairs(c);
      return [ps, ps.length > 1 ? ps : []];
    }
    var phrase = wholeUnit(chunks.length === 1 ? chunks[0] : ws);
    var bag = [];
    if (chunks.length > 1 && !kw.phrase) {
      chunks.forEach(function (c) {
        if (!(c.length === 1 && stop.indexOf(c[0]) >= 0)) bag.push(wholeUnit(c)[0]);
      });
    }
    return { phrase: phrase[0], need: phrase[1], bag: bag };
  }

  function parseQuery(text) {
    return splitKeywords(text).map(parseKeyword).filter(Boolean);
  }

  function querySpellings(keywords) {  // every spelling compiling may look up
    var out = {};
    keywords.forEach(function (kw) {
      var tokens = tokenize(kw.text), ws = tokens.map(function (t) { return t.word; });
      ws.forEach(function (w) { out[w] = out[exactForm(w)] = 1; });
      for (var i = 0; i < ws.length; i++) {
        for (var j = i + 1; j < ws.length; j++) out[ws.slice(i, j + 1).join("")] = 1;
      }
    });
    return Object.keys(out);
  }

  // --- loading -----------------------------------------------------------------------
  function script(src, done) {
    if (loads[src] === true) { done(true); return; }
    if (loads[src]) { loads[src].push(done); return; }
    loads[src] = [done];
    var s = document.createElement("script");
    s.src = root + src;
    function finish(ok) {
      var waiting = loads[src];
      loads[src] = ok ? true : undefined;
      waiting.forEach(function (f) { f(ok); });
    }
    s.onload = function () { finish(true); };
    s.onerror = function () { finish(false); };
    document.head.appendChild(s);
  }

  function scripts(srcs, done) {  // all of them, then done(every one loaded)
    var left = srcs.length, ok = true;
    if (!left) { done(true); return; }
    srcs.forEach(function (src) {
      script(src, function (good) { ok = ok && good; if (--left === 0) done(ok); });
    });
  }

  function fnv1a(text) {
    var h = 0x811c9dc5;
    for (var ch of text) h = Math.imul(h ^ ch.codePointAt(0), 0x01000193) >>> 0;
    return h >>> 0;
  }

  function shards() { return window.PAPERS_DIGEST_SHARDS || {}; }
  // A month's spellings ("w") are in w-N.js, its features ("t") in b-N.js.
  function bucketName(month, part, key) {
    return month[0] + "/" + part + (fnv1a(key) & (month[1] - 1));
  }
  function bucketSrc(month, part, key) {
    return "search/" + month[0] + "/" + (part === "w" ? "w-" : "b-") +
      (fnv1a(key) & (month[1] - 1)) + ".js?v=" + month[2];
  }
  function srcsFor(part, keys) {
    var out = {};
    index.months.forEach(function (m) { keys.forEach(function (k) { out[bucketSrc(m, part, k)] = 1; }); });
    return Object.keys(out);
  }
  var tables = {};  // bucket name -> Map(key -> value), parsed once
  function lookup(month, part, key) {
    var id = bucketName(month, part, key);
    if (!tables[id]) {
      var b = shards()[id], text = typeof b === "string" ? b : "";
      var map = new Map();
      if (text) text.split(";").forEach(function (rec) {
        var at = rec.indexOf(":");
        if (at > 0) map.set(rec.slice(0, at), rec.slice(at + 1));
      });
      if (typeof b === "string") tables[id] = map; else return null;
    }
    var got = tables[id].get(key);
    return got === undefined ? null : got;
  }

  function entryOf(spelling, text) {  // "3" (drop 3 to get the stem) or "=stem,group,acronym"
    if (text === null) return null;
    if (text[0] === "=") return text.slice(1).split(",");
    var drop = parseInt(text, 10);
    return drop >= 0 && drop < spelling.length ? [spelling.slice(0, spelling.length - drop)] : null;
  }

  function loadIndex(done) {
    if (index) { done(true); return; }
    script(indexSrc, function (ok) {
      var data = window.PAPERS_DIGEST_INDEX;
      if (!ok || !data || !Array.isArray(data.months)) { done(false); return; }
      data.months = data.months.filter(function (m) {
        return Array.isArray(m) && typeof m[0] === "string" && SAFE_MONTH.test(m[0]) &&
          m[1] > 0 && (m[1] & (m[1] - 1)) === 0 && /^[0-9a-f]*$/.test(String(m[2]));
      });
      index = data;
      done(true);
    });
  }

  // --- matching ----------------------------------------------------------------------
  function postings(text, n) {  // base-36 gaps -> a bitmap of the month's papers
    var bits = new Uint8Array(n), at = -1;
    if (text) text.split(".").forEach(function (g) { at += parseInt(g, 36) + 1; if (at < n) bits[at] = 1; });
    return bits;
  }

  function matchMonth(month, plans, excludes) {
    var n = 0;
    month[3].forEach(function (d) { n += d[1]; });
    var memo = {};
    function has(f) { return memo[f] || (memo[f] = postings(lookup(month, "t", f), n)); }
    function any(fs) {
      var out = new Uint8Array(n);
      fs.forEach(function (f) { var b = has(f); for (var i = 0; i < n; i++) out[i] |= b[i]; });
      return out;
    }
    function phraseOf(p) {
      var out = any(p.phrase);
      p.need.forEach(function (f) { var b = has(f); for (var i = 0; i < n; i++) out[i] &= b[i]; });
      return out;
    }
    var found = new Uint8Array(n);
    plans.forEach(function (p) {
      var hit = phraseOf(p);
      if (p.bag.length) {
        var all = new Uint8Array(n).fill(1);
        p.bag.forEach(function (u) { var b = any(u); for (var i = 0; i < n; i++) all[i] &= b[i]; });
        for (var i = 0; i < n; i++) hit[i] |= all[i];
      }
      for (var j = 0; j < n; j++) found[j] |= hit[j];
    });
    excludes.forEach(function (p) {
      var veto = phraseOf(p);
      for (var i = 0; i < n; i++) if (veto[i]) found[i] = 0;
    });
    var hits = [];
    for (var k = 0; k < n; k++) if (found[k]) hits.push(k);
    return hits;
  }

  function dayOf(month, k) {
    var days = month[3];
    for (var i = 0; i < days.length; i++) { if (k < days[i][1]) return days[i][0]; k -= days[i][1]; }
    return "";
  }

  // --- the page ----------------------------------------------------------------------
  function excerpt(text) { return text; }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function show(query, hits, failed) {
    clear(list);
    status.textContent = (failed ? "Some of the search index could not be loaded. " : "") +
      (hits.length === 0 ? "No paper matches \u201c" + query.trim() + "\u201d."
      : hits.length + " paper" + (hits.length === 1 ? "" : "s") + " match" +
        (hits.length === 1 ? "es" : "") + (hits.length > MAX_RESULTS ? "; the first " + MAX_RESULTS + " are shown." : "."));
    hits.slice(0, MAX_RESULTS).forEach(function (hit) {
      var file = shards()[hit.month[0] + "/r" + Math.floor(hit.k / index.rows)];
      var row = Array.isArray(file) ? file[hit.k % index.rows] : null;
      if (!Array.isArray(row) || typeof row[0] !== "string" || !SAFE_HREF.test(row[0])) return;
      var title = String(row[1] || ""), lede = String(row[2] || "");
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.className = "title";
      a.href = root + row[0];
      a.textContent = title.length > 400 ? title.slice(0, 399) + "\u2026" : title;
      var meta = document.createElement("div");
      meta.className = "meta";
      meta.textContent = dayOf(hit.month, hit.k);
      var p = document.createElement("p");
      p.className = "snippet";
      p.textContent = excerpt(lede);
      li.appendChild(a); li.appendChild(meta); li.appendChild(p);
      list.appendChild(li);
    });
    list.setAttribute("data-query", query);  // what the list shows (tests wait for it)
    list.setAttribute("data-count", String(hits.length));
  }

  function run(query) {
    var mine = ++generation;
    var keywords = parseQuery(query);
    clear(list);
    if (!query.trim()) { box.hidden = true; status.textContent = ""; return; }
    box.hidden = false;
    status.textContent = "Searching\u2026";
    loadIndex(function (ok) {
      if (mine !== generation) return;
      if (!ok) { status.textContent = "The search index could not be loaded."; return; }
      var spellings = querySpellings(keywords);
      scripts(srcsFor("w", spellings), function (ok1) {
        if (mine !== generation) return;
        var entries = {};
        spellings.forEach(function (s) {
          for (var i = 0; i < index.months.length && !entries[s]; i++) {
            var e = entryOf(s, lookup(index.months[i], "w", s));
            if (e && e[0]) entries[s] = e;
          }
        });
        function entry(s) { return entries[s] || null; }
        var plans = [], excludes = [];
        keywords.forEach(function (kw) {
          var plan = compileKeyword(kw, entry);
          if (plan) (kw.negated ? excludes : plans).push(plan);
        });
        var features = {};
        plans.concat(excludes).forEach(function (p) {
          p.phrase.concat(p.need).forEach(function (f) { features[f] = 1; });
          p.bag.forEach(function (u) { u.forEach(function (f) { features[f] = 1; }); });
        });
        scripts(srcsFor("t", Object.keys(features)), function (ok2) {
          if (mine !== generation) return;
          var hits = [];
          index.months.forEach(function (m) {
            matchMonth(m, plans, excludes).forEach(function (k) { hits.push({ month: m, k: k }); });
          });
          var rowSrcs = {};
          hits.slice(0, MAX_RESULTS).forEach(function (h) {
            rowSrcs["search/" + h.month[0] + "/r-" + Math.floor(h.k / index.rows) + ".js?v=" + h.month[2]] = 1;
          });
          scripts(Object.keys(rowSrcs), function (ok3) {
            if (mine !== generation) return;
            show(query, hits, !(ok1 && ok2 && ok3));
          });
        });
      });
    });
  }

  var timer = null;
  input.addEventListener("focus", function () { loadIndex(function () {}); });
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
