// Landscape page script: loads KaTeX only where there is math, and the map or static search
// only where the page has one. No inline scripts anywhere (the CSP forbids them).
(function () {
  "use strict";
  var body = document.body;

  function loadScript(src) {
    return new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = src;
      s.onload = resolve;
      s.onerror = function () { reject(new Error("could not load " + src)); };
      document.head.appendChild(s);
    });
  }

  function loadStyle(href) {
    var l = document.createElement("link");
    l.rel = "stylesheet";
    l.href = href;
    document.head.appendChild(l);
  }

  var MATH = /\$[^$]+\$|\\\(|\\\[/;

  function mathElements(root) {
    return Array.prototype.filter.call((root || document).querySelectorAll(".math"), function (el) {
      return MATH.test(el.textContent);
    });
  }

  var katexReady = null;
  function renderMath(root) {
    var els = mathElements(root);
    if (!els.length) return Promise.resolve();
    if (!katexReady) {
      loadStyle(body.dataset.katexCss);
      katexReady = loadScript(body.dataset.katexJs).then(function () { return loadScript(body.dataset.katexAuto); });
    }
    return katexReady.then(function () {
      els.forEach(function (el) {
        window.renderMathInElement(el, {
          delimiters: [
            { left: "$$", right: "$$", display: true },
            { left: "$", right: "$", display: false },
            { left: "\\(", right: "\\)", display: false },
            { left: "\\[", right: "\\]", display: true }
          ],
          throwOnError: false,
          trust: false,
          strict: "ignore",
          maxExpand: 500,
          maxSize: 20
        });
        el.classList.add("math-rendered");
      });
    });
  }
  window.landscapeRenderMath = renderMath;

  function start() {
    renderMath(document).catch(function (e) { console.warn(e.message); });
    if (document.querySelector(".map")) loadScript(body.dataset.mapJs);
    if (document.getElementById("static-search")) loadScript(body.dataset.searchJs);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
