/* papers-digest archive search: the ranker's word rules, in the browser.
 *
 * search-index.js sets window.PAPERS_DIGEST_INDEX: the months (newest first), each with
 * its number of buckets, key and days, and the stop words and synonym table of the
 * analyzer. A query is parsed as a profile's keywords are (commas: alternatives,
 * "quotes": a phrase, -word: an exclusion, ^2: a weight, ignored) and compiled as
 * `digest.rank.find` compiles it, with the same Snowball stemmer (static/snowball-
 * english.js); each feature it needs is hashed as the publisher hashed the papers'
 * (BLAKE2b, static/blake2b.js) and looked up in the one bucket of a month that holds
 * it (search/<month>/b-N.js; see digest/publish/postings.py for their layout). Months
 * are searched newest first until a page of results is found ("More results" goes on);
 * the rows (title, link, start of the abstract) are loaded only for the results shown.
 * Files load as <script>s, which work from file:// where fetch() is blocked.
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
  var more = document.getElementById("search-more");
  if (!input || !box || !list || !status) return;

  var MAX_RESULTS = 50;
  var SAFE_HREF = /^(papers\/[A-Za-z0-9._-]+\.html|days\/\d{4}-\d\d-\d\d\.html#p-[A-Za-z0-9._-]+)$/;
  var SAFE_MONTH = /^\d{4}-\d\d$/;
  var SAFE_DAY = /^\d{4}-\d\d-\d\d$/;
  var SAFE_BUCKET = /^[0-9A-Za-z_-]*$/;
  var ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_";
  var VALUE = {};
  for (var a = 0; a < ALPHABET.length; a++) VALUE[ALPHABET[a]] = a;
  var KEY_BITS = 28;
  var index = null;     // PAPERS_DIGEST_INDEX once loaded
  var loads = {};       // script src -> [callbacks] while loading, true when done

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
    // "- survey" is kept whole by the parser, and then read as an exclusion all the same
    // (make_profile, find.compile_search: a keyword whose text starts with "-").
    if (!negated && body[0] === "-") { negated = true; body = body.slice(1).trim(); }
    return body ? { text: body, phrase: phrase, negated: negated } : null;
  }

  // --- compiling a keyword (digest/rank/query.py compile_keyword, exact share 0) ------
  function stem(w) { return window.PAPERS_DIGEST_STEM(w); }
  function isStop(w) { return index.stop.indexOf(w) >= 0; }
  function own(map, k) { return Object.prototype.hasOwnProperty.call(map, k) ? map[k] : null; }
  function wordGroup(w) { return own(index.syn.word, w) || own(index.syn.stem, stem(w)); }
  function group(ws) {  // SynonymTable.group
    return ws.length === 1 ? wordGroup(ws[0]) : own(index.syn.stem, stem(ws.join("")));
  }
  function pairs(ws) {
    var out = [];
    for (var i = 1; i < ws.length; i++) {
      var p = stem(ws[i - 1] + ws[i]);
      if (out.indexOf(p) < 0) out.push(p);
    }
    return out;
  }

  function compileKeyword(kw) {  // {phrase: [features], need: [features], bag: [[features]]}
    var tokens = tokenize(kw.text);
    if (!tokens.length) return null;
    var ws = tokens.map(function (t) { return t.word; });
    if (ws.every(isStop)) return null;
    var chunks = [], prev = null;
    tokens.forEach(function (t) {
      var gap = prev ? kw.text.slice(prev.end, t.start) : "";
      var same = prev && t.start === prev.start;
      var hyph = gap && gap.split("").every(function (c) { return HYPHENS.indexOf(c) >= 0; });
      if (prev && (same || hyph)) chunks[chunks.length - 1].push(t.word); else chunks.push([t.word]);
      prev = t;
    });
    function whole(c) {  // [features, need_all] of words that stand together
      var g = group(c);
      if (g) return [[g], []];
      if (c.length === 1) return [[stem(c[0])], []];
      if (c.length === 2) return [[stem(c[0] + c[1])], []];
      var ps = pairs(c);
      return [ps, ps.length > 1 ? ps : []];
    }
    var phrase = whole(chunks.length === 1 ? chunks[0] : ws);
    var bag = [];
    if (chunks.length > 1 && !kw.phrase) {
      chunks.forEach(function (c) { if (!(c.length === 1 && isStop(c[0]))) bag.push(whole(c)[0]); });
    }
    return { phrase: phrase[0], need: phrase[1], bag: bag };
  }

  function parseQuery(text) {
    return splitKeywords(text).map(parseKeyword).filter(Boolean);
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

  function shards() { return window.PAPERS_DIGEST_SHARDS || {}; }

  function loadIndex(done) {
    if (index) { done(true); return; }
    scripts([indexSrc, "static/snowball-english.js", "static/blake2b.js"], function (ok) {
      var data = window.PAPERS_DIGEST_INDEX;
      if (!ok || !data || !Array.isArray(data.months) || !window.PAPERS_DIGEST_STEM ||
          !window.PAPERS_DIGEST_BLAKE2B) { done(false); return; }
      data.months = data.months.filter(function (m) {
        return Array.isArray(m) && typeof m[0] === "string" && SAFE_MONTH.test(m[0]) &&
          m[1] > 0 && (m[1] & (m[1] - 1)) === 0 && m[1] <= data.fine &&
          /^[0-9a-f]*$/.test(String(m[2])) && Array.isArray(m[3]) &&
          m[3].every(function (d) { return SAFE_DAY.test(d[0]) && d[1] >= 0 && /^[0-9a-f]*$/.test(String(d[2])); });
      });
      index = data;
      done(true);
    });
  }

  // --- postings (digest/publish/postings.py) -------------------------------------------
  var hashes = Object.create(null);  // feature -> [chunk, key] (no inherited keys)
  function featureHash(f) {
    if (!hashes[f]) {
      var b = window.PAPERS_DIGEST_BLAKE2B(new TextEncoder().encode(f), undefined, 8);
      var top = b[4] + b[5] * 256 + b[6] * 65536 + b[7] * 16777216;  // the high 32 bits
      var low = b[0] + b[1] * 256 + b[2] * 65536 + b[3] * 16777216;
      var folded = Math.floor(top * 256 + low / 16777216);  // bits 24..63: chunk and key
      hashes[f] = [Math.floor(folded / Math.pow(2, KEY_BITS)), folded % Math.pow(2, KEY_BITS)];
    }
    return hashes[f];
  }

  function Reader(text) { this.text = text; this.at = 0; }
  Reader.prototype.varint = function () {
    var value = 0;
    for (;;) {
      var d = VALUE[this.text[this.at++]];
      if (d === undefined) throw new Error("bad postings");
      value = value * 32 + (d & 31);
      if (d < 32) return value;
    }
  };
  Reader.prototype.skip = function (n) {  // n varints
    while (n > 0) {
      if (this.at >= this.text.length) throw new Error("bad postings");
      if (VALUE[this.text[this.at++]] < 32) n--;
    }
  };

  // Papers of `month` (numbered over its days, newest first) in bucket text `text` that
  // have the feature at (chunk q of each day's part, key).
  function postingsOf(text, month, q, key) {
    var per = index.fine / month[1], r = new Reader(text), hits = [], offset = 0;
    month[3].forEach(function (day) {
      var width = Math.ceil(day[1] / 6);
      for (var c = 0; c < per; c++) {
        var n = r.varint(), k = -1, keys = [], metas = [];
        for (var i = 0; i < n; i++) { k += 1 + r.varint(); keys.push(k); }
        for (var j = 0; j < n; j++) metas.push(r.varint());
        var found = c === q ? keys.indexOf(key) : -1;
        for (var s = 0; s < n; s++) {
          if (metas[s] & 1) continue;
          if (s !== found) { r.skip(metas[s] >> 1); continue; }
          for (var p = -1, t = 0; t < metas[s] >> 1; t++) { p += 1 + r.varint(); hits.push(offset + p); }
        }
        for (var x = 0; x < n; x++) {
          if (!(metas[x] & 1)) continue;
          if (x === found) {
            for (var ch = 0; ch < width; ch++) {
              var bits = VALUE[text[r.at + ch]];
              for (var bit = 0; bit < 6; bit++) if (bits >> bit & 1) hits.push(offset + 6 * ch + bit);
            }
          }
          r.at += width;
        }
      }
      offset += day[1];
    });
    return hits;
  }

  function bucketOf(month, f) {
    var h = featureHash(f), per = index.fine / month[1];
    return { n: Math.floor(h[0] / per), q: h[0] % per, key: h[1] };
  }
  function bucketSrc(month, n) { return "search/" + month[0] + "/b-" + n + ".js?v=" + month[2]; }

  // --- matching ----------------------------------------------------------------------
  function monthSize(month) { var n = 0; month[3].forEach(function (d) { n += d[1]; }); return n; }

  // A bucket that cannot be read (not loaded, or not of this month's list of days)
  // finds nothing and marks the search as incomplete.
  function matchMonth(month, plans, excludes, search) {
    var n = monthSize(month), memo = Object.create(null);
    function has(f) {
      if (!memo[f]) {
        var b = bucketOf(month, f), bits = new Uint8Array(n);
        var text = shards()[month[0] + "@" + month[2] + "/" + b.n];
        try {
          if (typeof text !== "string" || !SAFE_BUCKET.test(text)) throw new Error("no bucket");
          postingsOf(text, month, b.q, b.key).forEach(function (k) { if (k < n) bits[k] = 1; });
        } catch (e) {
          bits = new Uint8Array(n);
          search.failed = true;
        }
        memo[f] = bits;
      }
      return memo[f];
    }
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
    for (var k = 0; k < n; k++) if (found[k]) hits.push(rowOf(month, k));
    return hits;
  }

  function rowOf(month, k) {  // paper k of a month -> {day, i (its place in the day), key}
    var days = month[3];
    for (var i = 0; i < days.length; i++) {
      if (k < days[i][1]) return { day: days[i][0], i: k, key: days[i][2] };
      k -= days[i][1];
    }
    return null;
  }
  function rowSrc(hit) {
    return "search/rows/" + hit.day + "-" + Math.floor(hit.i / index.rows) + ".js?v=" + hit.key;
  }

  // --- the page ----------------------------------------------------------------------
  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function show(search) {
    search.busy = false;
    var hits = search.hits, shown = Math.min(hits.length, search.limit);
    var complete = search.next >= index.months.length;
    clear(list);
    var text = search.failed ? "Some of the search index could not be loaded. " : "";
    var q = "\u201c" + search.query.trim() + "\u201d";
    if (hits.length === 0) text += complete ? "No paper matches " + q + "." : "";
    else {
      text += hits.length + (complete ? "" : "+") + " paper" + (hits.length === 1 ? "" : "s") +
        " match" + (hits.length === 1 ? "es " : " ") + q;
      if (!complete) text += " from " + index.months[search.next - 1][0] + " on";
      text += shown < hits.length || !complete ? "; the newest " + shown + " are shown." : ".";
    }
    status.textContent = text;
    hits.slice(0, shown).forEach(function (hit) {
      var file = shards()[hit.day + "@" + hit.key + "/r" + Math.floor(hit.i / index.rows)];
      var row = Array.isArray(file) ? file[hit.i % index.rows] : null;
      if (!Array.isArray(row) || typeof row[0] !== "string" || !SAFE_HREF.test(row[0])) return;
      var title = String(row[1] || ""), lede = String(row[2] || "");
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.className = "title";
      a.href = root + row[0];
      a.textContent = title.length > 400 ? title.slice(0, 399) + "\u2026" : title;
      var meta = document.createElement("div");
      meta.className = "meta";
      meta.textContent = hit.day;
      var p = document.createElement("p");
      p.className = "snippet";
      p.textContent = lede;
      li.appendChild(a); li.appendChild(meta); li.appendChild(p);
      list.appendChild(li);
    });
    if (more) more.hidden = shown >= hits.length && complete;
    list.setAttribute("data-query", search.query);  // what the list shows (tests wait for it)
    list.setAttribute("data-count", String(hits.length));
    list.setAttribute("data-complete", complete ? "1" : "0");
    list.setAttribute("data-shows", String(++shows));
  }

  var current = null;  // the search on the page
  var shows = 0;       // results shown so far (tests wait for a new showing)

  // Search months from search.next on until `limit` results are found, then show them.
  function proceed(search) {
    if (search !== current) return;
    if (search.hits.length >= search.limit || search.next >= index.months.length) {
      var rows = {};
      search.hits.slice(0, search.limit).forEach(function (h) { rows[rowSrc(h)] = 1; });
      scripts(Object.keys(rows), function (ok) {
        if (search !== current) return;
        search.failed = search.failed || !ok;
        show(search);
      });
      return;
    }
    var month = index.months[search.next];
    var srcs = {};
    search.features.forEach(function (f) { srcs[bucketSrc(month, bucketOf(month, f).n)] = 1; });
    scripts(Object.keys(srcs), function (ok) {
      if (search !== current) return;
      search.failed = search.failed || !ok;
      search.hits = search.hits.concat(matchMonth(month, search.plans, search.excludes, search));
      search.next++;
      proceed(search);
    });
  }

  function run(query) {
    var search = { query: query, hits: [], next: 0, limit: MAX_RESULTS, failed: false, busy: true };
    current = search;
    clear(list);
    if (more) more.hidden = true;
    if (!query.trim()) { box.hidden = true; status.textContent = ""; return; }
    box.hidden = false;
    status.textContent = "Searching\u2026";
    loadIndex(function (ok) {
      if (search !== current) return;
      if (!ok) { status.textContent = "The search index could not be loaded."; return; }
      search.plans = [];
      search.excludes = [];
      parseQuery(query).forEach(function (kw) {
        var plan = compileKeyword(kw);
        if (plan) (kw.negated ? search.excludes : search.plans).push(plan);
      });
      var features = {};
      search.plans.concat(search.excludes).forEach(function (p) {
        p.phrase.concat(p.need).forEach(function (f) { features[f] = 1; });
        p.bag.forEach(function (u) { u.forEach(function (f) { features[f] = 1; }); });
      });
      search.features = Object.keys(features);
      if (!search.plans.length) search.next = index.months.length;  // nothing to look for
      proceed(search);
    });
  }

  var timer = null;
  input.addEventListener("focus", function () { loadIndex(function () {}); });
  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () {
      if (!current || current.query !== input.value) run(input.value);  // not again on Enter
    }, 120);
  });
  if (more) {
    more.addEventListener("click", function () {
      if (!current || current.busy) return;  // a second click while the first loads
      current.busy = true;
      current.limit += MAX_RESULTS;
      status.textContent = "Searching\u2026";
      proceed(current);
    });
  }
  if (input.form) {
    input.form.addEventListener("submit", function (event) {
      event.preventDefault();
      clearTimeout(timer);
      if (!current || current.query !== input.value) run(input.value);
    });
  }
  var initial = new URLSearchParams(window.location.search).get("q");
  if (initial) { input.value = initial; run(initial); }
})();
