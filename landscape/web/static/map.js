// Landscape map: a small WebGL scatter (canvas 2D fallback) that stays smooth at 100,000 points.
// Pan and zoom only change two uniforms; colours and highlights are rebuilt only when they change.
// Hover uses a grid index, so finding the point under the cursor does not scan every point.
(function () {
  "use strict";
  var PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
                 "#9c755f", "#bab0ac", "#1f77b4", "#8c564b"];
  var GREY = [0.62, 0.65, 0.7];
  var RGB = PALETTE.map(function (h) {
    return [parseInt(h.slice(1, 3), 16) / 255, parseInt(h.slice(3, 5), 16) / 255, parseInt(h.slice(5, 7), 16) / 255];
  });

  var VS = "attribute vec2 p; attribute vec4 c; attribute float s; uniform vec2 k; uniform vec2 o; uniform float r;" +
    "varying vec4 vc; void main(){ gl_Position = vec4(p * k + o, 0.0, 1.0); gl_PointSize = s * r; vc = c; }";
  var FS = "precision mediump float; varying vec4 vc; void main(){ vec2 d = gl_PointCoord - 0.5;" +
    " if (dot(d, d) > 0.25) discard; gl_FragColor = vec4(vc.rgb * vc.a, vc.a); }";

  function glRenderer(canvas) {
    var gl = null;
    try { gl = canvas.getContext("webgl", { antialias: false, premultipliedAlpha: true }); } catch (e) { gl = null; }
    if (!gl) return null;
    function shader(type, src) {
      var sh = gl.createShader(type);
      gl.shaderSource(sh, src);
      gl.compileShader(sh);
      return sh;
    }
    var prog = gl.createProgram();
    gl.attachShader(prog, shader(gl.VERTEX_SHADER, VS));
    gl.attachShader(prog, shader(gl.FRAGMENT_SHADER, FS));
    gl.linkProgram(prog);
    if (!gl.getProgramParameter(prog, gl.LINK_STATUS)) return null;
    gl.useProgram(prog);
    var buffers = {};
    function attribute(name, size, data) {
      var loc = gl.getAttribLocation(prog, name);
      if (!buffers[name]) buffers[name] = gl.createBuffer();
      gl.bindBuffer(gl.ARRAY_BUFFER, buffers[name]);
      gl.bufferData(gl.ARRAY_BUFFER, data, gl.STATIC_DRAW);
      gl.enableVertexAttribArray(loc);
      gl.vertexAttribPointer(loc, size, gl.FLOAT, false, 0, 0);
    }
    var count = 0;
    return {
      kind: "webgl",
      setPositions: function (xy) { attribute("p", 2, xy); count = xy.length / 2; },
      setStyle: function (rgba, size) { attribute("c", 4, rgba); attribute("s", 1, size); },
      draw: function (view, w, h, dpr) {
        gl.viewport(0, 0, canvas.width, canvas.height);
        gl.clearColor(1, 1, 1, 1);
        gl.clear(gl.COLOR_BUFFER_BIT);
        gl.enable(gl.BLEND);
        gl.blendFunc(gl.ONE, gl.ONE_MINUS_SRC_ALPHA);
        var kx = 2 * view.scale / w, ky = 2 * view.scale / h;
        gl.uniform2f(gl.getUniformLocation(prog, "k"), kx, ky);
        gl.uniform2f(gl.getUniformLocation(prog, "o"), -view.cx * kx, -view.cy * ky);
        gl.uniform1f(gl.getUniformLocation(prog, "r"), dpr);
        gl.drawArrays(gl.POINTS, 0, count);
      }
    };
  }

  function pixelRenderer(canvas) {
    var ctx = canvas.getContext("2d");
    var xy, rgba, size;
    return {
      kind: "2d",
      setPositions: function (p) { xy = p; },
      setStyle: function (c, s) { rgba = c; size = s; },
      draw: function (view, w, h, dpr) {
        var W = canvas.width, H = canvas.height;
        var img = ctx.createImageData(W, H);
        var px = new Uint32Array(img.data.buffer);
        px.fill(0xffffffff);
        var n = xy.length / 2;
        for (var pass = 0; pass < 2; pass++) {
          for (var i = 0; i < n; i++) {
            var a = rgba[4 * i + 3];
            if ((pass === 0) !== (a < 0.9)) continue;
            var sx = Math.round((w / 2 + (xy[2 * i] - view.cx) * view.scale) * dpr);
            var sy = Math.round((h / 2 - (xy[2 * i + 1] - view.cy) * view.scale) * dpr);
            var rad = Math.max(1, Math.round(size[i] * dpr / 2));
            if (sx < -rad || sy < -rad || sx >= W + rad || sy >= H + rad) continue;
            var r = Math.round(255 * (rgba[4 * i] * a + 1 - a)), g = Math.round(255 * (rgba[4 * i + 1] * a + 1 - a));
            var b = Math.round(255 * (rgba[4 * i + 2] * a + 1 - a));
            var colour = (255 << 24) | (b << 16) | (g << 8) | r;
            for (var dy = -rad + 1; dy < rad; dy++) {
              var yy = sy + dy;
              if (yy < 0 || yy >= H) continue;
              for (var dx = -rad + 1; dx < rad; dx++) {
                var xx = sx + dx;
                if (xx >= 0 && xx < W) px[yy * W + xx] = colour;
              }
            }
          }
        }
        ctx.putImageData(img, 0, 0);
      }
    };
  }

  function MapView(el, data) {
    var self = this;
    this.el = el;
    this.data = data;
    this.n = data.ids.length;
    this.canvas = el.querySelector("canvas");
    this.overlay = document.createElement("canvas");
    this.overlay.className = "map-overlay";
    this.overlay.setAttribute("aria-hidden", "true");
    this.overlay.style.position = "absolute";
    this.overlay.style.left = "0";
    this.overlay.style.top = "0";
    this.overlay.style.pointerEvents = "none";
    el.appendChild(this.overlay);
    this.tip = el.querySelector(".map-tip");
    this.renderer = glRenderer(this.canvas) || pixelRenderer(this.canvas);
    el.dataset.renderer = this.renderer.kind;
    this.colourBy = "area";
    this.match = null;
    this.hover = -1;
    this.focus = -1;
    this.small = el.classList.contains("small");

    var xy = new Float32Array(2 * this.n);
    var minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
    for (var i = 0; i < this.n; i++) {
      var x = data.x[i], y = data.y[i];
      xy[2 * i] = x; xy[2 * i + 1] = y;
      if (x < minX) minX = x; if (x > maxX) maxX = x; if (y < minY) minY = y; if (y > maxY) maxY = y;
    }
    if (!this.n) { minX = minY = 0; maxX = maxY = 1; }
    this.bounds = { minX: minX, maxX: maxX, minY: minY, maxY: maxY };
    this.xy = xy;
    this.renderer.setPositions(xy);
    this.buildGrid();
    this.index = {};
    for (var j = 0; j < this.n; j++) this.index[data.ids[j]] = j;
    var focusId = el.dataset.focus || new URLSearchParams(location.search).get("focus");
    if (focusId && focusId in this.index) this.focus = this.index[focusId];

    this.resize();
    this.reset();
    if (this.focus >= 0 && this.small) {
      this.view.cx = data.x[this.focus];
      this.view.cy = data.y[this.focus];
    }
    this.restyle();
    this.bindEvents();
    window.addEventListener("resize", function () { self.resize(); self.redraw(); });
    el.landscapeMap = this;
    el.dataset.ready = "1";
  }

  MapView.prototype.buildGrid = function () {
    var b = this.bounds, G = 64;
    this.G = G;
    this.cellW = (b.maxX - b.minX) / G || 1;
    this.cellH = (b.maxY - b.minY) / G || 1;
    var cells = new Array(G * G);
    for (var i = 0; i < this.n; i++) {
      var c = this.cellOf(this.xy[2 * i], this.xy[2 * i + 1]);
      (cells[c] || (cells[c] = [])).push(i);
    }
    this.cells = cells;
  };

  MapView.prototype.cellOf = function (x, y) {
    var G = this.G, b = this.bounds;
    var cx = Math.min(G - 1, Math.max(0, Math.floor((x - b.minX) / this.cellW)));
    var cy = Math.min(G - 1, Math.max(0, Math.floor((y - b.minY) / this.cellH)));
    return cy * G + cx;
  };

  MapView.prototype.resize = function () {
    var rect = this.el.getBoundingClientRect();
    this.w = Math.max(50, rect.width);
    this.h = Math.max(50, rect.height);
    this.dpr = Math.min(2, window.devicePixelRatio || 1);
    [this.canvas, this.overlay].forEach(function (c) {
      c.width = Math.round(this.w * this.dpr);
      c.height = Math.round(this.h * this.dpr);
      c.style.width = this.w + "px";
      c.style.height = this.h + "px";
    }, this);
  };

  MapView.prototype.reset = function () {
    var b = this.bounds;
    this.baseScale = 0.9 * Math.min(this.w / (b.maxX - b.minX || 1), this.h / (b.maxY - b.minY || 1));
    this.view = { cx: (b.minX + b.maxX) / 2, cy: (b.minY + b.maxY) / 2, scale: this.baseScale };
    this.redraw();
  };

  MapView.prototype.colourOf = function (i) {
    var group = this.colourBy === "topic" ? this.data.topic[i] : this.data.area[i];
    return group < 0 ? GREY : RGB[group % RGB.length];
  };

  MapView.prototype.restyle = function () {
    var n = this.n, rgba = new Float32Array(4 * n), size = new Float32Array(n);
    var base = this.small ? 3.5 : (n > 20000 ? 2.5 : 5);
    for (var i = 0; i < n; i++) {
      var c = this.colourOf(i);
      var on = !this.match || this.match[i];
      rgba[4 * i] = c[0]; rgba[4 * i + 1] = c[1]; rgba[4 * i + 2] = c[2];
      rgba[4 * i + 3] = on ? 0.95 : 0.12;
      size[i] = on && this.match ? base * 1.6 : base;
      if (this.data.kind[i] === 1) size[i] *= 1.6;
    }
    this.renderer.setStyle(rgba, size);
    this.redraw();
    this.legend();
  };

  MapView.prototype.redraw = function () {
    var self = this;
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(function () {
      self.pending = false;
      self.renderer.draw(self.view, self.w, self.h, self.dpr);
      self.drawOverlay();
    });
  };

  MapView.prototype.project = function (i) {
    return [this.w / 2 + (this.data.x[i] - this.view.cx) * this.view.scale,
            this.h / 2 - (this.data.y[i] - this.view.cy) * this.view.scale];
  };

  MapView.prototype.drawOverlay = function () {
    var ctx = this.overlay.getContext("2d");
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.clearRect(0, 0, this.w, this.h);
    if (!this.small) this.drawLabels(ctx);
    var self = this;
    [[this.focus, "#d62728"], [this.hover, "#111"]].forEach(function (pair) {
      if (pair[0] < 0) return;
      var p = self.project(pair[0]);
      ctx.beginPath();
      ctx.arc(p[0], p[1], 7, 0, 2 * Math.PI);
      ctx.lineWidth = 2.5;
      ctx.strokeStyle = pair[1];
      ctx.stroke();
    });
  };

  MapView.prototype.drawLabels = function (ctx) {
    var topics = (this.data.topics || []).slice().sort(function (a, b) { return b.size - a.size; });
    var placed = [];
    ctx.font = "600 12px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    for (var t = 0; t < topics.length; t++) {
      var sx = this.w / 2 + (topics[t].x - this.view.cx) * this.view.scale;
      var sy = this.h / 2 - (topics[t].y - this.view.cy) * this.view.scale;
      var w = ctx.measureText(topics[t].label).width + 8;
      var box = [sx - w / 2, sy - 9, sx + w / 2, sy + 9];
      if (box[2] < 0 || box[0] > this.w || box[3] < 0 || box[1] > this.h) continue;
      var clash = placed.some(function (o) { return box[0] < o[2] && o[0] < box[2] && box[1] < o[3] && o[1] < box[3]; });
      if (clash) continue;
      placed.push(box);
      ctx.lineWidth = 4;
      ctx.strokeStyle = "rgba(255,255,255,0.92)";
      ctx.strokeText(topics[t].label, sx, sy);
      ctx.fillStyle = "#1d2430";
      ctx.fillText(topics[t].label, sx, sy);
    }
  };

  MapView.prototype.pick = function (sx, sy) {
    var x = this.view.cx + (sx - this.w / 2) / this.view.scale;
    var y = this.view.cy - (sy - this.h / 2) / this.view.scale;
    var r = 8 / this.view.scale, G = this.G, b = this.bounds;
    var c0 = Math.floor((x - r - b.minX) / this.cellW), c1 = Math.floor((x + r - b.minX) / this.cellW);
    var r0 = Math.floor((y - r - b.minY) / this.cellH), r1 = Math.floor((y + r - b.minY) / this.cellH);
    var best = -1, bestD = r * r;
    for (var cy = Math.max(0, r0); cy <= Math.min(G - 1, r1); cy++) {
      for (var cx = Math.max(0, c0); cx <= Math.min(G - 1, c1); cx++) {
        var cell = this.cells[cy * G + cx];
        if (!cell) continue;
        for (var k = 0; k < cell.length; k++) {
          var i = cell[k];
          if (this.match && !this.match[i]) continue;
          var dx = this.xy[2 * i] - x, dy = this.xy[2 * i + 1] - y, d = dx * dx + dy * dy;
          if (d <= bestD) { bestD = d; best = i; }
        }
      }
    }
    return best;
  };

  MapView.prototype.href = function (i) {
    var id = this.data.files ? this.data.files[i] : encodeURIComponent(this.data.ids[i]);
    return this.el.dataset.recordUrl.replace("__ID__", id);
  };

  MapView.prototype.showTip = function (i, sx, sy) {
    if (!this.tip) return;
    if (i < 0) { this.tip.hidden = true; return; }
    this.tip.textContent = this.data.title[i];
    this.tip.hidden = false;
    this.tip.style.left = Math.min(sx + 12, this.w - 200) + "px";
    this.tip.style.top = Math.min(sy + 12, this.h - 40) + "px";
  };

  MapView.prototype.zoom = function (factor, sx, sy) {
    var v = this.view;
    var x = v.cx + (sx - this.w / 2) / v.scale, y = v.cy - (sy - this.h / 2) / v.scale;
    v.scale = Math.min(this.baseScale * 200, Math.max(this.baseScale * 0.5, v.scale * factor));
    v.cx = x - (sx - this.w / 2) / v.scale;
    v.cy = y + (sy - this.h / 2) / v.scale;
    this.redraw();
  };

  MapView.prototype.bindEvents = function () {
    var self = this, c = this.canvas, drag = null;
    function local(e) { var r = c.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; }
    c.addEventListener("pointerdown", function (e) {
      var p = local(e);
      drag = { x: p[0], y: p[1], cx: self.view.cx, cy: self.view.cy, moved: false };
      if (c.setPointerCapture) c.setPointerCapture(e.pointerId);
    });
    c.addEventListener("pointermove", function (e) {
      var p = local(e);
      if (drag && (Math.abs(p[0] - drag.x) + Math.abs(p[1] - drag.y) > 3)) {
        drag.moved = true;
        self.view.cx = drag.cx - (p[0] - drag.x) / self.view.scale;
        self.view.cy = drag.cy + (p[1] - drag.y) / self.view.scale;
        self.redraw();
        return;
      }
      var i = self.pick(p[0], p[1]);
      if (i !== self.hover) { self.hover = i; self.redraw(); }
      c.style.cursor = i >= 0 ? "pointer" : "crosshair";
      self.showTip(i, p[0], p[1]);
    });
    c.addEventListener("pointerup", function (e) {
      var p = local(e), wasDrag = drag && drag.moved;
      drag = null;
      if (wasDrag) return;
      var i = self.pick(p[0], p[1]);
      if (i >= 0) window.location.href = self.href(i);
    });
    c.addEventListener("pointerleave", function () { self.hover = -1; self.showTip(-1); self.redraw(); });
    c.addEventListener("wheel", function (e) {
      if (self.small) return;
      e.preventDefault();
      var p = local(e);
      self.zoom(Math.exp(-e.deltaY * 0.0015), p[0], p[1]);
    }, { passive: false });
    c.addEventListener("keydown", function (e) {
      var step = 60 / self.view.scale, v = self.view, handled = true;
      if (e.key === "ArrowLeft") v.cx -= step;
      else if (e.key === "ArrowRight") v.cx += step;
      else if (e.key === "ArrowUp") v.cy += step;
      else if (e.key === "ArrowDown") v.cy -= step;
      else if (e.key === "+" || e.key === "=") self.zoom(1.4, self.w / 2, self.h / 2);
      else if (e.key === "-" || e.key === "_") self.zoom(1 / 1.4, self.w / 2, self.h / 2);
      else if (e.key === "0") self.reset();
      else handled = false;
      if (handled) { e.preventDefault(); self.redraw(); }
    });
    if (this.el.dataset.controls) this.bindControls();
  };

  MapView.prototype.bindControls = function () {
    var self = this;
    var colour = document.getElementById("map-colour"), filter = document.getElementById("map-filter");
    var area = document.getElementById("map-area"), reset = document.getElementById("map-reset");
    if (colour) colour.addEventListener("change", function () { self.colourBy = colour.value; self.restyle(); });
    function apply() {
      var q = (filter && filter.value || "").trim().toLowerCase();
      var a = area ? area.value : "";
      var ai = a ? self.data.areas.indexOf(a) : -1;
      if (!q && !a) { self.match = null; self.restyle(); self.listMatches(); return; }
      var m = new Uint8Array(self.n);
      for (var i = 0; i < self.n; i++) {
        m[i] = (!a || self.data.area[i] === ai) && (!q || self.data.title[i].toLowerCase().indexOf(q) >= 0) ? 1 : 0;
      }
      self.match = m;
      self.restyle();
      self.listMatches();
    }
    var timer = null;
    if (filter) filter.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(apply, 120); });
    if (area) area.addEventListener("change", apply);
    if (reset) reset.addEventListener("click", function () { self.reset(); });
    this.listMatches();
  };

  MapView.prototype.listMatches = function () {
    var status = document.querySelector(".map-status"), list = document.querySelector(".map-matches");
    if (!status || !list) return;
    list.textContent = "";
    if (!this.match) { status.textContent = this.n + " records on the map."; return; }
    var shown = 0, total = 0;
    for (var i = 0; i < this.n; i++) {
      if (!this.match[i]) continue;
      total++;
      if (shown < 25) {
        var li = document.createElement("li"), a = document.createElement("a");
        a.href = this.href(i);
        a.textContent = this.data.title[i];
        li.appendChild(a);
        list.appendChild(li);
        shown++;
      }
    }
    status.textContent = total + " of " + this.n + " records highlighted" + (total > shown ? " (first " + shown + " listed)" : "") + ".";
  };

  MapView.prototype.legend = function () {
    var box = document.querySelector(".map-legend");
    if (!box || this.small) return;
    box.textContent = "";
    var names = this.colourBy === "topic" ? (this.data.topics || []).map(function (t) { return t.label; }) : this.data.areas;
    names.slice(0, 24).forEach(function (name, k) {
      var item = document.createElement("span"), sw = document.createElement("span");
      sw.className = "swatch c" + (k % 12);
      item.appendChild(sw);
      item.appendChild(document.createTextNode(name));
      box.appendChild(item);
    });
  };

  var staticData = null;
  function staticMapData(src) {
    // The exported site ships the map as a script setting a global: it loads from file:// too.
    if (!staticData) {
      staticData = new Promise(function (resolve, reject) {
        var s = document.createElement("script");
        s.src = src;
        s.onload = function () { resolve(window.LANDSCAPE_MAP); };
        s.onerror = function () { reject(new Error("map data: could not load " + src)); };
        document.head.appendChild(s);
      });
    }
    return staticData;
  }

  function mapData(el) {
    if (el.dataset.static === "1") return staticMapData(el.dataset.src);
    return fetch(el.dataset.src, { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("map data: HTTP " + r.status); return r.json(); });
  }

  function init(el) {
    if (el.dataset.ready) return;
    mapData(el)
      .then(function (data) { new MapView(el, data); })
      .catch(function (e) {
        var p = document.createElement("p");
        p.className = "notice";
        p.textContent = "The map could not be loaded (" + e.message + ").";
        el.replaceWith(p);
      });
  }

  Array.prototype.forEach.call(document.querySelectorAll(".map[data-src]"), init);
})();
