// Search for the exported static site: a prebuilt BM25 index (data/search-index.js, built by
// landscape/web/static_site.py) is loaded as a script, the query's terms are looked up in it and
// their weights summed. Results are built with DOM calls and textContent only: record text is
// never parsed as HTML.
(function () {
  "use strict";
  var box = document.getElementById("static-search");
  if (!box) return;
  var input = document.getElementById("q");
  var MAX = 50;

  function load(src) {
    return new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = src;
      s.onload = function () { resolve(window.LANDSCAPE_SEARCH); };
      s.onerror = function () { reject(new Error("could not load the search index")); };
      document.head.appendChild(s);
    });
  }

  function tokens(text, stop) {
    return (text.toLowerCase().match(/[a-z0-9]+/g) || []).filter(function (t) { return !stop[t]; });
  }

  function lowerBound(sorted, prefix) {
    var lo = 0, hi = sorted.length;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (sorted[mid] < prefix) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  function rank(index, vocab, stop, query) {
    var terms = tokens(query, stop);
    var scores = {}, hits = {};
    terms.forEach(function (term, k) {
      var words = index.terms[term] ? [term] : [];
      if (k === terms.length - 1 && term.length >= 3) {
        // the last word may be unfinished: also every indexed word it starts (at most 20)
        for (var i = lowerBound(vocab, term); i < vocab.length && vocab[i].indexOf(term) === 0 && words.length < 20; i++) {
          if (vocab[i] !== term) words.push(vocab[i]);
        }
      }
      words.forEach(function (w) {
        var p = index.terms[w], factor = w === term ? 1 : 0.5;
        for (var j = 0; j < p.length; j += 2) {
          scores[p[j]] = (scores[p[j]] || 0) + factor * p[j + 1];
          hits[p[j]] = (hits[p[j]] || 0) | (1 << Math.min(k, 30));
        }
      });
    });
    var all = (1 << Math.min(terms.length, 31)) - 1;
    return Object.keys(scores).map(Number).sort(function (a, b) {
      var fa = hits[a] === all ? 1 : 0, fb = hits[b] === all ? 1 : 0;
      return fb - fa || scores[b] - scores[a] || a - b;
    }).map(function (d) { return { doc: index.docs[d], score: scores[d] }; });
  }

  function highlighted(el, text, terms) {
    if (!terms.length) { el.textContent = text; return; }
    var re = new RegExp("\\b(" + terms.map(function (t) { return t.replace(/[^a-z0-9]/g, ""); }).join("|") + ")", "gi");
    var last = 0, m;
    while ((m = re.exec(text)) !== null) {
      if (m.index > last) el.appendChild(document.createTextNode(text.slice(last, m.index)));
      var mark = document.createElement("mark");
      mark.textContent = m[0];
      el.appendChild(mark);
      last = m.index + m[0].length;
      if (m[0].length === 0) re.lastIndex++;
    }
    if (last < text.length) el.appendChild(document.createTextNode(text.slice(last)));
  }

  function card(doc, terms) {
    var li = document.createElement("li"), h = document.createElement("h3"), a = document.createElement("a");
    li.className = "card";
    h.className = "card-title math";
    a.href = box.dataset.recordUrl.replace("__ID__", doc.file);
    highlighted(a, doc.title, terms);
    h.appendChild(a);
    li.appendChild(h);
    var meta = document.createElement("p");
    meta.className = "meta";
    meta.textContent = [doc.kind === "talk" ? "Talk" : "", doc.area, doc.date].filter(Boolean).join(" · ");
    li.appendChild(meta);
    if (doc.authors.length) {
      var au = document.createElement("p");
      au.className = "authors";
      au.textContent = doc.authors.join(", ");
      li.appendChild(au);
    }
    if (doc.text) {
      var sn = document.createElement("p");
      sn.className = "snippet math";
      highlighted(sn, doc.text, terms);
      li.appendChild(sn);
    }
    return li;
  }

  function show(index, vocab, stop, query) {
    box.textContent = "";
    if (!query.trim()) return;
    var results = rank(index, vocab, stop, query), terms = tokens(query, stop);
    var note = document.createElement("p");
    note.className = "muted";
    note.setAttribute("role", "status");
    note.textContent = results.length + " result" + (results.length === 1 ? "" : "s") +
      (results.length > MAX ? " (the first " + MAX + " shown)" : "") + ", ranked by keywords.";
    box.appendChild(note);
    var list = document.createElement("ol");
    list.className = "cards results";
    results.slice(0, MAX).forEach(function (r) { list.appendChild(card(r.doc, terms)); });
    box.appendChild(list);
    if (window.landscapeRenderMath) window.landscapeRenderMath(box);
  }

  load(box.dataset.index).then(function (index) {
    var vocab = Object.keys(index.terms).sort(), stop = {};
    index.stopwords.forEach(function (w) { stop[w] = true; });
    var query = new URLSearchParams(location.search).get("q") || "";
    if (input) {
      input.value = query;
      input.addEventListener("input", function () { show(index, vocab, stop, input.value); });
    }
    show(index, vocab, stop, query);
  }).catch(function (e) {
    box.textContent = e.message;
  });
})();
