// Landscape map: up to millions of points from one binary file (see landscape/web/mapbin.py),
// drawn with plain WebGL; a canvas 2D fallback, which says so, where WebGL is unavailable.
// The file is viewed as typed arrays (no parsing per point) and uploaded as is: positions are
// normalised uint16, colours an area or topic index looked up in the shader. Pan and zoom only
// change uniforms. Hover uses a grid index built once (counting sort), so a pick visits only the
// points in the cells under the cursor; titles are fetched by row when a point is hovered.
// A density layer (every point binned into a texture by the server, blurred, log-scaled) shades
// where points pile up.
// Labels come in levels: coarse regions zoomed out, finer ones, down to topics, zoomed in.
(function () {
  "use strict";
  var PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
                 "#9c755f", "#bab0ac", "#1f77b4", "#8c564b"];
  var RGB = PALETTE.map(function (h) {
    return [parseInt(h.slice(1, 3), 16) / 255, parseInt(h.slice(3, 5), 16) / 255, parseInt(h.slice(5, 7), 16) / 255];
  });
  var GREY = [0.62, 0.65, 0.7];
  var NO_AREA = 255, NO_TOPIC = 65535, Q = 65535, BINS = 256;
  var LABEL_GAP = 150;  // a level's labels show once they are about this many pixels apart
  var LOD_POINTS = 150000;  // while panning or zooming a bigger map, every k-th point stands in for all

  // --- the binary file ------------------------------------------------------------------------

  function parse(buf) {
    var dv = new DataView(buf);
    var magic = String.fromCharCode(dv.getUint8(0), dv.getUint8(1), dv.getUint8(2), dv.getUint8(3));
    if (magic !== "LMAP") throw new Error("map data: not a Landscape map file");
    if (dv.getUint32(4, true) !== 1) throw new Error("map data: format " + dv.getUint32(4, true) + " is not known here");
    var n = dv.getUint32(8, true), metaLen = dv.getUint32(12, true);
    var b = { minX: dv.getFloat32(16, true), maxX: dv.getFloat32(20, true),
              minY: dv.getFloat32(24, true), maxY: dv.getFloat32(28, true) };
    var meta = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 32, metaLen)));
    var o = 32 + metaLen;
    function take(Type, size) {
      var a = new Type(buf, o, n);
      o += Math.ceil(n * size / 4) * 4;
      return a;
    }
    var d = { n: n, bounds: b, meta: meta };
    d.x = take(Uint16Array, 2); d.y = take(Uint16Array, 2);
    d.area = take(Uint8Array, 1); d.kind = take(Uint8Array, 1); d.topic = take(Uint16Array, 2);
    d.rows = meta.sampled ? take(Uint32Array, 4) : null;
    d.density = new Uint8Array(buf, o, BINS * BINS);
    return d;
  }

  function loadScript(src) {
    return new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = src;
      s.onload = resolve;
      s.onerror = function () { reject(new Error("could not load " + src)); };
      document.head.appendChild(s);
    });
  }

  var staticBin = null;
  function loadBinary(el) {
    if (el.dataset.static === "1" && location.protocol === "file:") {
      // A page opened from disk may not fetch; the export ships the same bytes as base64 in a script.
      staticBin = staticBin || loadScript(el.dataset.srcJs).then(function () {
        var s = atob(window.LANDSCAPE_MAP_BIN), bytes = new Uint8Array(s.length);
        for (var i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
        return bytes.buffer;
      });
      return staticBin;
    }
    return fetch(el.dataset.src, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error("map data: HTTP " + r.status);
      return r.arrayBuffer();
    });
  }

  // --- renderers ------------------------------------------------------------------------------

  var VS = [
    "attribute float px; attribute float py; attribute float g; attribute float m; attribute float t;",
    "uniform vec2 k; uniform vec2 o; uniform float size; uniform float alpha; uniform float none;",
    "uniform float dimmed; uniform vec3 pal[12]; varying vec4 vc;",
    "void main() {",
    "  gl_Position = vec4(vec2(px, py) * k + o, 0.0, 1.0);",
    "  vec3 c = g >= none ? vec3(0.62, 0.65, 0.7) : pal[int(mod(g, 12.0))];",
    "  float a = m > 0.5 ? alpha : 0.1;",
    "  gl_PointSize = size * (1.0 + 0.6 * t) * (m > 0.5 && dimmed > 0.5 ? 1.6 : 1.0);",
    "  vc = vec4(c * a, a);",
    "}"].join("\n");
  var FS = "precision mediump float; uniform float round; varying vec4 vc; void main() { vec2 d = gl_PointCoord - 0.5;" +
    " if (round > 0.5 && dot(d, d) > 0.25) discard; gl_FragColor = vc; }";
  var DVS = "attribute vec2 q; uniform vec2 k; uniform vec2 o; varying vec2 uv;" +
    " void main() { uv = q; gl_Position = vec4(q * k + o, 0.0, 1.0); }";
  var DFS = "precision mediump float; uniform sampler2D d; uniform float strength; varying vec2 uv;" +
    " void main() { float v = texture2D(d, uv).r; float a = smoothstep(0.03, 0.9, v) * strength;" +
    " vec3 c = mix(vec3(0.78, 0.84, 0.93), vec3(0.16, 0.27, 0.5), v); gl_FragColor = vec4(c * a, a); }";

  function program(gl, vs, fs) {
    function shader(type, src) {
      var sh = gl.createShader(type);
      gl.shaderSource(sh, src);
      gl.compileShader(sh);
      if (!gl.getShaderParameter(sh, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(sh));
      return sh;
    }
    var prog = gl.createProgram();
    gl.attachShader(prog, shader(gl.VERTEX_SHADER, vs));
    gl.attachShader(prog, shader(gl.FRAGMENT_SHADER, fs));
    gl.linkProgram(prog);
    if (!gl.getProgramParameter(prog, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(prog));
    return prog;
  }

  function glRenderer(canvas, data) {
    var gl = null;
    try { gl = canvas.getContext("webgl", { antialias: false, premultipliedAlpha: true, preserveDrawingBuffer: false }); }
    catch (e) { gl = null; }
    if (!gl) return null;
    var pts, dens;
    try { pts = program(gl, VS, FS); dens = program(gl, DVS, DFS); } catch (e) { return null; }
    function buffer(array) {
      var b = gl.createBuffer();
      gl.bindBuffer(gl.ARRAY_BUFFER, b);
      gl.bufferData(gl.ARRAY_BUFFER, array, gl.STATIC_DRAW);
      return b;
    }
    var buf = { px: buffer(data.x), py: buffer(data.y), area: buffer(data.area), topic: buffer(data.topic), t: buffer(data.kind),
                quad: buffer(new Float32Array([0, 0, 1, 0, 0, 1, 1, 1])), m: null };
    var tex = gl.createTexture();
    gl.bindTexture(gl.TEXTURE_2D, tex);
    gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.LUMINANCE, BINS, BINS, 0, gl.LUMINANCE, gl.UNSIGNED_BYTE, data.density);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.LINEAR);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.LINEAR);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
    var loc = {};
    ["px", "py", "g", "m", "t"].forEach(function (a) { loc[a] = gl.getAttribLocation(pts, a); });
    var flat = [];
    RGB.forEach(function (c) { flat.push(c[0], c[1], c[2]); });
    function attr(name, b, type, norm, step) {
      gl.bindBuffer(gl.ARRAY_BUFFER, b);
      gl.enableVertexAttribArray(loc[name]);
      var bytes = type === gl.UNSIGNED_SHORT ? 2 : 1;
      gl.vertexAttribPointer(loc[name], 1, type, norm, step > 1 ? bytes * step : 0, 0);
    }
    function u(prog, name) { return gl.getUniformLocation(prog, name); }
    return {
      kind: "webgl",
      setMask: function (mask) {
        if (!mask) { buf.m = null; return; }
        if (!buf.m) buf.m = gl.createBuffer();
        gl.bindBuffer(gl.ARRAY_BUFFER, buf.m);
        gl.bufferData(gl.ARRAY_BUFFER, mask, gl.DYNAMIC_DRAW);
      },
      draw: function (s) {
        gl.viewport(0, 0, canvas.width, canvas.height);
        gl.clearColor(1, 1, 1, 1);
        gl.clear(gl.COLOR_BUFFER_BIT);
        gl.enable(gl.BLEND);
        gl.blendFunc(gl.ONE, gl.ONE_MINUS_SRC_ALPHA);
        if (s.density > 0) {
          gl.useProgram(dens);
          gl.bindBuffer(gl.ARRAY_BUFFER, buf.quad);
          var q = gl.getAttribLocation(dens, "q");
          gl.enableVertexAttribArray(q);
          gl.vertexAttribPointer(q, 2, gl.FLOAT, false, 0, 0);
          gl.uniform2f(u(dens, "k"), s.kx, s.ky);
          gl.uniform2f(u(dens, "o"), s.ox, s.oy);
          gl.uniform1f(u(dens, "strength"), s.density);
          gl.activeTexture(gl.TEXTURE0);
          gl.bindTexture(gl.TEXTURE_2D, tex);
          gl.uniform1i(u(dens, "d"), 0);
          gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
          gl.disableVertexAttribArray(q);
        }
        gl.useProgram(pts);
        // A stride over the arrays draws every step-th point: rows follow ingest order, not
        // position, so they are an even sample of the map (and of time) with no copy made.
        var step = s.lod ? Math.ceil(data.n / LOD_POINTS) : 1, count = Math.floor((data.n - 1) / step) + 1;
        attr("px", buf.px, gl.UNSIGNED_SHORT, true, step);
        attr("py", buf.py, gl.UNSIGNED_SHORT, true, step);
        attr("g", s.topic ? buf.topic : buf.area, s.topic ? gl.UNSIGNED_SHORT : gl.UNSIGNED_BYTE, false, step);
        attr("t", buf.t, gl.UNSIGNED_BYTE, false, step);
        if (buf.m) attr("m", buf.m, gl.UNSIGNED_BYTE, false, step);
        else { gl.disableVertexAttribArray(loc.m); gl.vertexAttrib1f(loc.m, 1); }
        gl.uniform2f(u(pts, "k"), s.kx, s.ky);
        gl.uniform2f(u(pts, "o"), s.ox, s.oy);
        gl.uniform1f(u(pts, "size"), s.size);
        gl.uniform1f(u(pts, "round"), s.size >= 3 ? 1 : 0);
        gl.uniform1f(u(pts, "alpha"), s.alpha);
        gl.uniform1f(u(pts, "none"), s.topic ? NO_TOPIC : NO_AREA);
        gl.uniform1f(u(pts, "dimmed"), buf.m ? 1 : 0);
        gl.uniform3fv(u(pts, "pal[0]"), flat);
        gl.drawArrays(gl.POINTS, 0, data.n ? count : 0);
        return data.n ? count : 0;
      },
      finish: function () { var px = new Uint8Array(4); gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, px); },
      pixels: function () {  // the frame just drawn (call in the same task as draw), RGBA rows
        var px = new Uint8Array(canvas.width * canvas.height * 4);
        gl.readPixels(0, 0, canvas.width, canvas.height, gl.RGBA, gl.UNSIGNED_BYTE, px);
        return px;
      }
    };
  }

  function pixelRenderer(canvas, data) {
    var ctx = canvas.getContext("2d"), mask = null;
    return {
      kind: "2d",
      setMask: function (m) { mask = m; },
      draw: function (s) {
        var W = canvas.width, H = canvas.height, img = ctx.createImageData(W, H);
        var px = new Uint32Array(img.data.buffer), groups = s.topic ? data.topic : data.area;
        var none = s.topic ? NO_TOPIC : NO_AREA, drawn = 0;
        px.fill(0xffffffff);
        var colours = RGB.concat([GREY]).map(function (c) {
          return (255 << 24) | (Math.round(c[2] * 255) << 16) | (Math.round(c[1] * 255) << 8) | Math.round(c[0] * 255);
        });
        var rad = Math.max(1, Math.round(s.size / 2));
        for (var i = 0; i < data.n; i++) {
          if (mask && !mask[i]) continue;
          // kx maps a normalised coordinate to clip space; clip to pixels is (c + 1) * W / 2
          var sx = Math.round(((data.x[i] / Q) * s.kx + s.ox + 1) * W / 2);
          var sy = Math.round((1 - ((data.y[i] / Q) * s.ky + s.oy)) * H / 2);
          if (sx < -rad || sy < -rad || sx >= W + rad || sy >= H + rad) continue;
          drawn++;
          var g = groups[i], colour = colours[g >= none ? 12 : g % 12];
          for (var dy = -rad + 1; dy < rad; dy++) {
            var yy = sy + dy;
            if (yy < 0 || yy >= H) continue;
            for (var dx = -rad + 1; dx < rad; dx++) {
              var xx = sx + dx;
              if (xx >= 0 && xx < W) px[yy * W + xx] = colour;
            }
          }
        }
        ctx.putImageData(img, 0, 0);
        return mask ? drawn : data.n;
      },
      finish: function () {}
    };
  }

  // --- derived structures, built once -----------------------------------------------------------

  function gridIndex(data) {
    var G = Math.max(1, Math.min(1024, Math.ceil(Math.sqrt(data.n / 8))));
    var start = new Uint32Array(G * G + 1), items = new Uint32Array(data.n), cell = new Uint32Array(data.n), i;
    for (i = 0; i < data.n; i++) {
      var c = Math.min(G - 1, (data.y[i] * G / (Q + 1)) | 0) * G + Math.min(G - 1, (data.x[i] * G / (Q + 1)) | 0);
      cell[i] = c;
      start[c + 1]++;
    }
    for (i = 0; i < G * G; i++) start[i + 1] += start[i];
    var fill = start.slice(0, G * G);
    for (i = 0; i < data.n; i++) items[fill[cell[i]]++] = i;
    return { G: G, start: start, items: items };
  }

  // --- the view ------------------------------------------------------------------------------

  function MapView(el, data) {
    var self = this;
    this.el = el;
    this.data = data;
    this.n = data.n;
    this.meta = data.meta;
    this.version = data.meta.version;
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
    this.small = el.classList.contains("small");
    var b = data.bounds;
    this.bounds = b;
    this.spanX = (b.maxX - b.minX) || 1;
    this.spanY = (b.maxY - b.minY) || 1;
    this.timings = { parsed: Math.round(performance.now()) };
    this.renderer = glRenderer(this.canvas, data);
    if (!this.renderer) {
      var note = document.createElement("p");
      note.className = "notice map-fallback";
      note.textContent = "WebGL is not available in this browser, so the map is drawn without it: slower, and without the density layer.";
      el.parentNode.insertBefore(note, el);
      this.renderer = pixelRenderer(this.canvas, data);
    }
    el.dataset.renderer = this.renderer.kind;
    this.grid = null;
    this.colourBy = "area";
    this.match = null;
    this.hover = -1;
    this.infoCache = {};
    this.levels = this.labelLevels();
    this.focus = null;
    if (el.dataset.focusX) this.focus = [parseFloat(el.dataset.focusX), parseFloat(el.dataset.focusY)];
    this.resize();
    this.reset(true);
    if (this.focus && this.small) { this.view.cx = this.focus[0]; this.view.cy = this.focus[1]; }
    this.timings.setUp = Math.round(performance.now());
    this.drawNow();
    this.renderer.finish();
    el.dataset.firstDrawMs = String(Math.round(performance.now()));
    this.timings.drawn = Math.round(performance.now());
    setTimeout(function () { self.index(); }, 0);
    this.bindEvents();
    window.addEventListener("resize", function () { self.resize(); self.redraw(); });
    el.landscapeMap = this;
    el.dataset.ready = "1";
  }

  MapView.prototype.labelLevels = function () {
    var labels = this.meta.labels || [], levels = [], area = this.spanX * this.spanY;
    labels.forEach(function (l) { (levels[l.level] = levels[l.level] || []).push(l); });
    return levels.filter(Boolean).map(function (ls) {
      ls.sort(function (a, b) { return b.size - a.size; });
      return { labels: ls, spacing: Math.sqrt(area / ls.length) };
    });
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

  MapView.prototype.reset = function (quiet) {
    var b = this.bounds;
    this.baseScale = 0.9 * Math.min(this.w / this.spanX, this.h / this.spanY);
    this.view = { cx: (b.minX + b.maxX) / 2, cy: (b.minY + b.maxY) / 2, scale: this.baseScale };
    if (!quiet) this.redraw();
  };

  MapView.prototype.settings = function () {
    // size and opacity follow the points drawn; the density layer, of every point, the whole map's size
    var v = this.view, zoom = v.scale / this.baseScale, n = this.n, total = this.meta.total || n;
    var kx = 2 * v.scale / this.w, ky = 2 * v.scale / this.h;
    var base = this.small ? 3 : n > 300000 ? 1.5 : n > 50000 ? 2.2 : n > 5000 ? 3.5 : 5;
    return {
      kx: kx * this.spanX, ky: ky * this.spanY,
      ox: (this.bounds.minX - v.cx) * kx, oy: (this.bounds.minY - v.cy) * ky,
      size: Math.min(12, base * Math.sqrt(zoom)) * this.dpr,
      alpha: n > 300000 ? Math.min(0.9, 0.35 * Math.sqrt(zoom)) : 0.9,
      density: total < 2000 ? 0 : Math.max(0.2, Math.min(1, 1.2 - Math.log2(zoom) / 5)),
      topic: this.colourBy === "topic",
      lod: !!this.moving && this.n > 2 * LOD_POINTS
    };
  };

  MapView.prototype.drawNow = function () {
    this.drawn = this.renderer.draw(this.settings());
    this.drawOverlay();
  };

  MapView.prototype.redraw = function (moving) {
    var self = this;
    if (moving && this.n > 2 * LOD_POINTS) {
      // while the view moves, a sample is drawn; the whole map once it has rested
      this.moving = true;
      clearTimeout(this.restTimer);
      this.restTimer = setTimeout(function () { self.moving = false; self.redraw(); }, 250);
    }
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(function () { self.pending = false; self.drawNow(); });
  };

  MapView.prototype.toScreen = function (x, y) {
    return [this.w / 2 + (x - this.view.cx) * this.view.scale, this.h / 2 - (y - this.view.cy) * this.view.scale];
  };

  MapView.prototype.coords = function (i) {
    return [this.bounds.minX + this.data.x[i] / Q * this.spanX, this.bounds.minY + this.data.y[i] / Q * this.spanY];
  };

  MapView.prototype.project = function (i) {
    var c = this.coords(i);
    return this.toScreen(c[0], c[1]);
  };

  MapView.prototype.rowOf = function (i) { return this.data.rows ? this.data.rows[i] : i; };

  MapView.prototype.drawOverlay = function () {
    var ctx = this.overlay.getContext("2d");
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.clearRect(0, 0, this.w, this.h);
    if (!this.small) this.drawLabels(ctx);
    var rings = [];
    if (this.focus) rings.push([this.toScreen(this.focus[0], this.focus[1]), "#d62728"]);
    if (this.hover >= 0) rings.push([this.project(this.hover), "#111"]);
    rings.forEach(function (r) {
      ctx.beginPath();
      ctx.arc(r[0][0], r[0][1], 7, 0, 2 * Math.PI);
      ctx.lineWidth = 2.5;
      ctx.strokeStyle = r[1];
      ctx.stroke();
    });
  };

  MapView.prototype.visibleLevel = function () {
    var scale = this.view.scale, level = 0;
    for (var l = 0; l < this.levels.length; l++) if (this.levels[l].spacing * scale >= LABEL_GAP) level = l;
    return level;
  };

  MapView.prototype.drawLabels = function (ctx) {
    if (!this.levels.length) return;
    var fine = this.visibleLevel(), placed = [], self = this;
    var coarse = { level: fine - 1, font: "600 20px system-ui, sans-serif", fill: "rgba(29,36,48,0.45)",
                   halo: "rgba(255,255,255,0.6)", max: 30 };
    var finest = { level: fine, font: fine === this.levels.length - 1 ? "600 12px system-ui, sans-serif" : "700 15px system-ui, sans-serif",
                   fill: "#1d2430", halo: "rgba(255,255,255,0.92)", max: 120 };
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    function place(layer) {
      ctx.font = layer.font;
      var out = [];
      self.levels[layer.level].labels.forEach(function (l) {
        if (out.length >= layer.max) return;
        var p = self.toScreen(l.x, l.y), w = ctx.measureText(l.label).width + 8, hh = parseInt(layer.font.split(" ")[1], 10) * 0.75;
        var box = [p[0] - w / 2, p[1] - hh, p[0] + w / 2, p[1] + hh];
        if (box[2] < 0 || box[0] > self.w || box[3] < 0 || box[1] > self.h) return;
        if (placed.some(function (o) { return box[0] < o[2] && o[0] < box[2] && box[1] < o[3] && o[1] < box[3]; })) return;
        placed.push(box);
        out.push({ level: layer.level, label: l.label, p: p });
      });
      return out;
    }
    function draw(layer, labels) {
      ctx.font = layer.font;
      labels.forEach(function (l) {
        ctx.lineWidth = 4;
        ctx.strokeStyle = layer.halo;
        ctx.strokeText(l.label, l.p[0], l.p[1]);
        ctx.fillStyle = layer.fill;
        ctx.fillText(l.label, l.p[0], l.p[1]);
      });
    }
    // The coarse regions name the view until it is zoomed well past where the finer level
    // appears; from there the finer labels win any overlap (a region's name, drawn at its
    // centre, would otherwise hide the topic that sits there).
    var deep = this.levels[fine].spacing * this.view.scale >= 2 * LABEL_GAP;
    var back = [], front = [];
    if (fine > 0 && !deep) back = place(coarse);
    front = place(finest);
    if (fine > 0 && deep) back = place(coarse);
    if (back.length) draw(coarse, back);
    draw(finest, front);
    this.shownLabels = back.concat(front).map(function (l) { return { level: l.level, label: l.label }; });
  };

  MapView.prototype.index = function () {
    if (!this.grid) {
      var t = performance.now();
      this.grid = gridIndex(this.data);
      this.timings.indexMs = Math.round(performance.now() - t);
    }
    return this.grid;
  };

  MapView.prototype.pick = function (sx, sy) {
    var v = this.view, G = this.index().G, r = 8;
    var x = v.cx + (sx - this.w / 2) / v.scale, y = v.cy - (sy - this.h / 2) / v.scale;
    var ux = (x - this.bounds.minX) / this.spanX, uy = (y - this.bounds.minY) / this.spanY;
    var rx = r / v.scale / this.spanX, ry = r / v.scale / this.spanY;
    var c0 = Math.max(0, Math.floor((ux - rx) * G)), c1 = Math.min(G - 1, Math.floor((ux + rx) * G));
    var r0 = Math.max(0, Math.floor((uy - ry) * G)), r1 = Math.min(G - 1, Math.floor((uy + ry) * G));
    var best = -1, bestD = r * r, kx = this.spanX / Q * v.scale, ky = this.spanY / Q * v.scale;
    var qx = ux * Q, qy = uy * Q, start = this.grid.start, items = this.grid.items, X = this.data.x, Y = this.data.y;
    for (var cy = r0; cy <= r1; cy++) {
      for (var cx = c0; cx <= c1; cx++) {
        var c = cy * G + cx;
        for (var k = start[c]; k < start[c + 1]; k++) {
          var i = items[k];
          if (this.match && !this.match[i]) continue;
          var dx = (X[i] - qx) * kx, dy = (Y[i] - qy) * ky, d = dx * dx + dy * dy;
          if (d <= bestD) { bestD = d; best = i; }
        }
      }
    }
    return best;
  };

  // --- titles and links, by row, on demand ------------------------------------------------------

  var staticRows = null;
  MapView.prototype.infos = function (rows) {
    var self = this, el = this.el, missing = rows.filter(function (r) { return !(r in self.infoCache); });
    function done() { return rows.map(function (r) { return self.infoCache[r]; }).filter(Boolean); }
    if (!missing.length) return Promise.resolve(done());
    if (el.dataset.static === "1") {
      staticRows = staticRows || loadScript(el.dataset.rowsJs).then(function () { return window.LANDSCAPE_MAP_ROWS; });
      return staticRows.then(function (t) {
        missing.forEach(function (r) {
          if (r < t.ids.length) self.infoCache[r] = { row: r, id: t.ids[r], title: t.titles[r], url: el.dataset.recordUrl.replace("__ID__", t.files[r]) };
        });
        return done();
      });
    }
    var url = el.dataset.rows + "?rows=" + missing.join(",") + "&v=" + encodeURIComponent(this.version);
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (r.status === 409) throw new Error("the map changed since this page was loaded; reload the page");
      if (!r.ok) throw new Error("map rows: HTTP " + r.status);
      return r.json();
    }).then(function (body) {
      body.rows.forEach(function (x) {
        self.infoCache[x.row] = { row: x.row, id: x.id, title: x.title, url: el.dataset.recordUrl.replace("__ID__", encodeURIComponent(x.id)) };
      });
      return done();
    });
  };

  MapView.prototype.showTip = function (i, sx, sy) {
    if (!this.tip) return;
    if (i < 0) { this.tip.hidden = true; return; }
    var self = this, row = this.rowOf(i);
    var cached = this.infoCache[row];
    this.tip.textContent = cached ? cached.title : "…";
    this.tip.hidden = false;
    this.tip.style.left = Math.min(sx + 12, this.w - 200) + "px";
    this.tip.style.top = Math.min(sy + 12, this.h - 40) + "px";
    if (!cached) {
      clearTimeout(this.tipTimer);
      this.tipTimer = setTimeout(function () {
        self.infos([row]).then(function (got) {
          if (self.hover === i && got.length) self.tip.textContent = got[0].title;
        }).catch(function (e) { self.tip.textContent = e.message; });
      }, 40);
    }
  };

  MapView.prototype.open = function (i) {
    this.infos([this.rowOf(i)]).then(function (got) { if (got.length) window.location.href = got[0].url; })
      .catch(function (e) { console.warn(e.message); });
  };

  MapView.prototype.zoom = function (factor, sx, sy) {
    var v = this.view;
    var x = v.cx + (sx - this.w / 2) / v.scale, y = v.cy - (sy - this.h / 2) / v.scale;
    v.scale = Math.min(this.baseScale * 2000, Math.max(this.baseScale * 0.5, v.scale * factor));
    v.cx = x - (sx - this.w / 2) / v.scale;
    v.cy = y + (sy - this.h / 2) / v.scale;
    this.redraw(true);
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
      if (drag && (drag.moved || Math.abs(p[0] - drag.x) + Math.abs(p[1] - drag.y) > 3)) {
        drag.moved = true;
        self.view.cx = drag.cx - (p[0] - drag.x) / self.view.scale;
        self.view.cy = drag.cy + (p[1] - drag.y) / self.view.scale;
        self.redraw(true);
        return;
      }
      var i = self.pick(p[0], p[1]);
      if (i !== self.hover) { self.hover = i; self.drawOverlay(); }
      c.style.cursor = i >= 0 ? "pointer" : "crosshair";
      self.showTip(i, p[0], p[1]);
    });
    c.addEventListener("pointerup", function (e) {
      var p = local(e), wasDrag = drag && drag.moved;
      drag = null;
      if (wasDrag) return;
      var i = self.pick(p[0], p[1]);
      if (i >= 0) self.open(i);
    });
    c.addEventListener("pointerleave", function () { self.hover = -1; self.showTip(-1); self.drawOverlay(); });
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
      if (handled) { e.preventDefault(); self.redraw(true); }
    });
    if (this.el.dataset.controls) this.bindControls();
  };

  // --- controls of the full map: colour, highlight by title or area ------------------------------

  MapView.prototype.titleRows = function (q) {
    var self = this, el = this.el;
    if (el.dataset.static === "1") {
      return this.infos([0]).then(function () {
        var t = window.LANDSCAPE_MAP_ROWS, rows = [];
        for (var r = 0; r < t.titles.length; r++) if (t.titles[r].toLowerCase().indexOf(q) >= 0) rows.push(r);
        return { rows: rows, total: rows.length };
      });
    }
    var url = el.dataset.match + "?q=" + encodeURIComponent(q) + "&v=" + encodeURIComponent(this.version);
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error("map matches: HTTP " + r.status);
      return r.json();
    }).then(function (body) {
      body.first.forEach(function (x) {
        self.infoCache[x.row] = { row: x.row, id: x.id, title: x.title, url: el.dataset.recordUrl.replace("__ID__", encodeURIComponent(x.id)) };
      });
      return body;
    });
  };

  MapView.prototype.bindControls = function () {
    var self = this, serial = 0;
    var colour = document.getElementById("map-colour"), filter = document.getElementById("map-filter");
    var area = document.getElementById("map-area"), reset = document.getElementById("map-reset");
    if (area) {
      this.meta.areas.slice().sort().forEach(function (name) {
        var opt = document.createElement("option");
        opt.value = name;
        opt.textContent = name;
        area.appendChild(opt);
      });
    }
    if (colour) colour.addEventListener("change", function () { self.colourBy = colour.value; self.redraw(); self.legend(); });
    function apply() {
      var q = (filter && filter.value || "").trim().toLowerCase();
      var ai = area && area.value ? self.meta.areas.indexOf(area.value) : -1;
      var mine = ++serial;
      if (!q && !(area && area.value)) { self.setMatch(null, 0); return; }
      (q ? self.titleRows(q) : Promise.resolve(null)).then(function (found) {
        if (mine !== serial) return;
        var m = new Uint8Array(self.n), i;
        if (found) found.rows.forEach(function (r) { m[r] = 1; }); else m.fill(1);
        if (area && area.value) for (i = 0; i < self.n; i++) if (self.data.area[i] !== ai) m[i] = 0;
        var total = 0;
        for (i = 0; i < self.n; i++) total += m[i];
        self.setMatch(m, total, found && found.total > found.rows.length ? found.total : 0);
      }).catch(function (e) { var s = document.querySelector(".map-status"); if (s) s.textContent = e.message; });
    }
    var timer = null;
    if (filter) filter.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(apply, 150); });
    if (area) area.addEventListener("change", apply);
    if (reset) reset.addEventListener("click", function () { self.reset(); });
    this.legend();
    this.setMatch(null, 0);
  };

  MapView.prototype.setMatch = function (mask, total, more) {
    this.match = mask;
    this.renderer.setMask(mask);
    this.redraw();
    var status = document.querySelector(".map-status"), list = document.querySelector(".map-matches");
    if (!status || !list) return;
    list.textContent = "";
    if (!mask) { status.textContent = this.n + " records on the map."; return; }
    var rows = [];
    for (var i = 0; i < this.n && rows.length < 25; i++) if (mask[i]) rows.push(this.rowOf(i));
    status.textContent = total + " of " + this.n + " records highlighted" + (more ? " (of " + more + " titles found, the first " + total + " shown)" : "") +
      (total > rows.length ? " (first " + rows.length + " listed)" : "") + ".";
    this.infos(rows).then(function (got) {
      got.forEach(function (x) {
        var li = document.createElement("li"), a = document.createElement("a");
        a.href = x.url;
        a.textContent = x.title;
        li.appendChild(a);
        list.appendChild(li);
      });
    }).catch(function (e) { status.textContent = e.message; });
  };

  MapView.prototype.legend = function () {
    var box = document.querySelector(".map-legend");
    if (!box || this.small) return;
    box.textContent = "";
    var names = this.colourBy === "topic" ? this.meta.topics.map(function (t) { return t.label; }) : this.meta.areas;
    names.slice(0, 24).forEach(function (name, k) {
      var item = document.createElement("span"), sw = document.createElement("span");
      sw.className = "swatch c" + (k % 12);
      item.appendChild(sw);
      item.appendChild(document.createTextNode(name));
      box.appendChild(item);
    });
  };

  function init(el) {
    if (el.dataset.ready) return;
    var asked = performance.now();
    loadBinary(el)
      .then(function (buf) {
        var loaded = performance.now(), view = new MapView(el, parse(buf));
        view.timings.asked = Math.round(asked);
        view.timings.loaded = Math.round(loaded);
      })
      .catch(function (e) {
        var p = document.createElement("p");
        p.className = "notice";
        p.textContent = "The map could not be loaded (" + e.message + ").";
        el.replaceWith(p);
      });
  }

  Array.prototype.forEach.call(document.querySelectorAll(".map[data-src]"), init);
})();
