// The reader pages' one script: fill in the browser's time zone, and show a live
// preview of today's digest while keywords are typed (built with textContent only).
(function () {
  "use strict";
  document.querySelectorAll("input[name=timezone]").forEach(function (box) {
    if (box.value) return;
    try {
      box.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (e) { /* an old browser: the reader types it, or UTC */ }
  });

  var keywords = document.getElementById("keywords");
  var list = document.getElementById("preview-items");
  var status = document.getElementById("preview-status");
  if (!keywords || !list || !status) return;
  var exclude = document.getElementById("exclude");
  var frequency = document.getElementById("frequency");
  var timer = null;
  var asked = 0;

  function show(data, query) {
    list.replaceChildren();
    if (data.error) {
      status.textContent = data.error;
    } else if (!data.items.length) {
      status.textContent = "Nothing " + data.window + " matches yet (" + data.considered +
        " papers " + data.window + "). Try other keywords.";
    } else {
      status.textContent = data.items.length + (data.more ? " (and " + data.more + " more)" : "") +
        " of " + data.considered + " papers " + data.window + ":";
      data.items.forEach(function (item) {
        var li = document.createElement("li");
        var title = document.createElement("strong");
        title.textContent = item.title;
        var why = document.createElement("div");
        why.className = "hint";
        why.textContent = item.why;
        li.append(title, why);
        list.append(li);
      });
    }
    document.getElementById("preview").dataset.query = query;
  }

  function update() {
    var query = keywords.value.trim();
    if (!query) {
      list.replaceChildren();
      status.textContent = "Type keywords to see what today's digest would hold.";
      return;
    }
    var params = new URLSearchParams({ keywords: query });
    if (exclude && exclude.value.trim()) params.set("exclude", exclude.value.trim());
    if (frequency) params.set("frequency", frequency.value);
    var mine = ++asked;
    fetch("/subscribe/preview?" + params.toString(), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) { if (mine === asked) show(data, query); })
      .catch(function () { status.textContent = "The preview is not available right now."; });
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(update, 250);
  }
  keywords.addEventListener("input", later);
  if (exclude) exclude.addEventListener("input", later);
  if (frequency) frequency.addEventListener("change", update);
  if (keywords.value.trim()) update();
})();
