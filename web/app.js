/* pyexecd playground: edits a script, sends it to POST /execute of the same origin, and
 * shows the answer. No inline script or style anywhere (the page's Content-Security-Policy
 * forbids both); CodeMirror 5 (Debian's libjs-codemirror) is the editor.
 *
 * Share links carry the script (and stdin, args, kwargs) in the URL fragment,
 * #script=<base64url of UTF-8>&stdin=..., which browsers never send to the server; opening
 * one fills the page and runs nothing. */
(function () {
  "use strict";

  var KEY_STORAGE = "pyexecd.apiKey";

  var EXAMPLES = window.PYEXECD_EXAMPLES;  /* web/examples.js */

  var $ = function (id) { return document.getElementById(id); };
  var cm = null;
  var inputFiles = [];     /* {path, size, content (base64)} */
  var blobUrls = [];       /* of the returned files shown, revoked on the next run */
  var errorLine = null;    /* the editor line marked as failing */
  var running = null;      /* the AbortController of the request in flight */

  /* ---- small helpers ------------------------------------------------------------ */

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function storageGet(key) {
    try { return window.localStorage.getItem(key) || ""; } catch (e) { return ""; }
  }

  function storageSet(key, value) {
    try {
      if (value) window.localStorage.setItem(key, value);
      else window.localStorage.removeItem(key);
    } catch (e) { /* storage off: the key lives as long as the page */ }
  }

  function bytesToBase64(bytes) {
    var bin = "";
    for (var i = 0; i < bytes.length; i += 0x8000)
      bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(bin);
  }

  function base64ToBytes(b64) {
    var bin = atob(b64);
    var bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return bytes;
  }

  function toBase64Url(text) {
    return bytesToBase64(new TextEncoder().encode(text))
      .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  /* UTF-8 text from base64url, padding optional; null if it is not that. */
  function fromBase64Url(s) {
    if (!/^[A-Za-z0-9_-]*={0,2}$/.test(s)) return null;
    var b64 = s.replace(/=+$/, "").replace(/-/g, "+").replace(/_/g, "/");
    if (b64.length % 4 === 1) return null;
    while (b64.length % 4) b64 += "=";
    try {
      return new TextDecoder("utf-8", {fatal: true}).decode(base64ToBytes(b64));
    } catch (e) {
      return null;
    }
  }

  function formatSize(n) {
    if (n < 1024) return n + " B";
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " KiB";
    return (n / 1024 / 1024).toFixed(1) + " MiB";
  }

  /* ---- the editor --------------------------------------------------------------- */

  /* Esc, then Tab or Shift+Tab, moves the focus out of the editor (Tab alone indents). */
  var escaped = false;

  function focusBeside(dir) {
    var all = Array.prototype.filter.call(
      document.querySelectorAll("button, input, select, textarea, summary, a[href]"),
      function (e) { return !e.disabled && e.offsetParent !== null && e.tabIndex >= 0; });
    var here = all.indexOf(cm.getInputField());
    var next = all[here + dir];
    if (next) next.focus();
  }

  function tabKey(dir) {
    return function () {
      if (escaped) {
        escaped = false;
        focusBeside(dir);
      } else if (dir < 0) {
        cm.execCommand("indentLess");
      } else if (cm.somethingSelected()) {
        cm.execCommand("indentMore");
      } else {
        cm.execCommand("insertSoftTab");
      }
    };
  }

  function setupEditor() {
    cm = CodeMirror.fromTextArea($("script"), {
      mode: {name: "python", version: 3},
      lineNumbers: true,
      indentUnit: 4,
      tabSize: 4,
      indentWithTabs: false,
      matchBrackets: true,
      viewportMargin: Infinity,
      screenReaderLabel: "Python script",
      extraKeys: {
        "Tab": tabKey(1),
        "Shift-Tab": tabKey(-1),
        "Esc": function () { escaped = true; },
        "Ctrl-Enter": function () { run(); },
        "Cmd-Enter": function () { run(); }
      }
    });
    cm.on("keydown", function (_, ev) {
      if (ev.key !== "Escape" && ev.key !== "Tab") escaped = false;
    });
    cm.on("change", clearErrorLine);
  }

  function markErrorLine(line) {
    clearErrorLine();
    if (!line || line < 1 || line > cm.lineCount()) return;
    errorLine = cm.addLineClass(line - 1, "wrap", "pg-error-line");
    cm.scrollIntoView({line: line - 1, ch: 0}, 40);
  }

  function clearErrorLine() {
    if (errorLine) cm.removeLineClass(errorLine, "wrap", "pg-error-line");
    errorLine = null;
  }

  /* ---- inputs ------------------------------------------------------------------- */

  function renderFileList() {
    var list = $("file-list");
    clear(list);
    inputFiles.forEach(function (f, i) {
      var li = el("li");
      var path = el("input");
      path.type = "text";
      path.value = f.path;
      path.spellcheck = false;
      path.setAttribute("aria-label", "Path of input file " + (i + 1));
      path.addEventListener("input", function () { f.path = path.value; });
      var remove = el("button", "small", "Remove");
      remove.type = "button";
      remove.setAttribute("aria-label", "Remove " + f.path);
      remove.addEventListener("click", function () {
        inputFiles.splice(i, 1);
        renderFileList();
      });
      li.appendChild(path);
      li.appendChild(el("span", "size", formatSize(f.size)));
      li.appendChild(remove);
      list.appendChild(li);
    });
  }

  function addFiles(fileList) {
    Array.prototype.forEach.call(fileList, function (file) {
      file.arrayBuffer().then(function (buf) {
        inputFiles.push({path: file.name, size: buf.byteLength,
                         content: bytesToBase64(new Uint8Array(buf))});
        renderFileList();
      }, function (err) {
        showClientError("NOT READ", "Cannot read " + file.name + ": " + err.message);
      });
    });
  }

  function setupInputs() {
    $("file-input").addEventListener("change", function (ev) {
      addFiles(ev.target.files);
      ev.target.value = "";
    });
    var zone = $("dropzone");
    zone.addEventListener("dragover", function (ev) {
      ev.preventDefault();
      zone.classList.add("over");
    });
    zone.addEventListener("dragleave", function () { zone.classList.remove("over"); });
    zone.addEventListener("drop", function (ev) {
      ev.preventDefault();
      zone.classList.remove("over");
      if (ev.dataTransfer && ev.dataTransfer.files) addFiles(ev.dataTransfer.files);
    });

    var key = $("api-key");
    key.value = storageGet(KEY_STORAGE);
    if (key.value) $("key-box").open = true;
    key.addEventListener("change", function () { storageSet(KEY_STORAGE, key.value.trim()); });
    /* Enter in the key field stores it and runs; the form itself is never submitted. */
    $("key-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      storageSet(KEY_STORAGE, key.value.trim());
      run();
    });
    $("forget-key").addEventListener("click", function () {
      key.value = "";
      storageSet(KEY_STORAGE, "");
    });
  }

  function setInputs(inputs) {
    inputs = inputs || {};
    $("stdin").value = inputs.stdin || "";
    $("args").value = inputs.args || "";
    $("kwargs").value = inputs.kwargs || "";
    $("timeout").value = inputs.timeout || "";
    $("return-files").checked = !!inputs.returnFiles;
    inputFiles = (inputs.files || []).map(function (f) {
      var bytes = new TextEncoder().encode(f.text);
      return {path: f.path, size: bytes.length, content: bytesToBase64(bytes)};
    });
    renderFileList();
  }

  function setupExamples() {
    var select = $("example");
    select.appendChild(el("option", null, "Choose an example…")).value = "";
    EXAMPLES.forEach(function (group) {
      var og = el("optgroup");
      og.label = group.group;
      group.items.forEach(function (ex) {
        og.appendChild(el("option", null, ex.name)).value = ex.id;
      });
      select.appendChild(og);
    });
    select.addEventListener("change", function () {
      EXAMPLES.forEach(function (group) {
        group.items.forEach(function (ex) {
          if (ex.id !== select.value) return;
          cm.setValue(ex.script);
          setInputs(ex.inputs);
          setStatus("Loaded the example “" + ex.name + "”: Run (Ctrl+Enter) sends it.");
        });
      });
    });
  }

  /* ---- the request -------------------------------------------------------------- */

  function parseJsonField(id, kind) {
    var text = $(id).value.trim();
    if (!text) return undefined;
    var value;
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw new Error(id + " is not valid JSON: " + e.message);
    }
    var ok = kind === "array" ? Array.isArray(value)
      : value !== null && typeof value === "object" && !Array.isArray(value);
    if (!ok) throw new Error(id + " must be a JSON " + kind);
    return value;
  }

  function buildRequest() {
    var body = {script: cm.getValue()};
    var stdin = $("stdin").value;
    if (stdin) body.stdin = stdin;
    var args = parseJsonField("args", "array");
    if (args !== undefined) body.args = args;
    var kwargs = parseJsonField("kwargs", "object");
    if (kwargs !== undefined) body.kwargs = kwargs;
    if (inputFiles.length) {
      body.files = inputFiles.map(function (f) {
        return {path: f.path, content: f.content, encoding: "base64"};
      });
    }
    if ($("return-files").checked) body.return_files = true;
    var timeout = $("timeout").value.trim();
    if (timeout) {
      var t = Number(timeout);
      if (!(t > 0)) throw new Error("the timeout must be a number of seconds above 0");
      body.timeout = t;
    }
    return body;
  }

  function run() {
    if (running) return;
    var body;
    try {
      body = buildRequest();
    } catch (e) {
      showClientError("NOT SENT", "Not sent: " + e.message);
      return;
    }
    var headers = {"Content-Type": "application/json"};
    var key = $("api-key").value.trim();
    if (key) headers.Authorization = "Bearer " + key;

    resetOutput();
    setStatus("Running…");
    running = new AbortController();
    $("run").disabled = true;
    $("stop").hidden = false;
    var status = 0, requestId = "";
    fetch("/execute", {method: "POST", headers: headers, body: JSON.stringify(body),
                       signal: running.signal, credentials: "omit", cache: "no-store"})
      .then(function (resp) {
        status = resp.status;
        requestId = resp.headers.get("X-Request-Id") || "";
        $("http-status").textContent = resp.status + " " + resp.statusText;
        $("request-id").textContent = requestId || "–";
        return resp.text();
      })
      .then(function (text) { showAnswer(status, text, !!key); })
      .catch(function (err) {
        if (err.name === "AbortError")
          showClientError("STOPPED", "Stopped: the connection was closed, and the service " +
                          "stops a script whose client hung up.");
        else
          showClientError("NO ANSWER", "Could not reach the service: " + err.message);
      })
      .then(function () {
        running = null;
        $("run").disabled = false;
        $("stop").hidden = true;
        /* One pane above the other (a narrow window): bring the answer into view. */
        var pane = $("output-pane");
        if (pane.getBoundingClientRect().top > window.innerHeight) pane.scrollIntoView();
        /* A count of finished runs: what tests wait for. */
        document.body.dataset.runs = String(Number(document.body.dataset.runs || 0) + 1);
      });
  }

  /* ---- the answer --------------------------------------------------------------- */

  function setStatus(text) { $("status").textContent = text; }

  function resetOutput() {
    clearErrorLine();
    ["http-status", "request-id", "duration"].forEach(function (id) { $(id).textContent = "–"; });
    $("error").hidden = true;
    $("traceback").hidden = true;
    clear($("result"));
    $("stdout").textContent = "";
    $("stderr").textContent = "";
    clear($("figures"));
    clear($("files"));
    $("figures-box").hidden = true;
    $("files-box").hidden = true;
    blobUrls.forEach(function (u) { URL.revokeObjectURL(u); });
    blobUrls = [];
  }

  function showError(code, message) {
    $("error-code").textContent = code;
    $("error-message").textContent = message;
    $("error").hidden = false;
  }

  /* A failure on this side of HTTP: `code` is the page's, not one of the service's. */
  function showClientError(code, message) {
    setStatus(message);
    showError(code, message);
  }

  /* JSON.parse that keeps each number's text (0.1 stays 0.1, a 30-digit integer exact),
   * where the browser passes the source text to the reviver. */
  function Num(text) { this.text = text; }

  function parseKeepingNumbers(text) {
    return JSON.parse(text, function (key, value, ctx) {
      return typeof value === "number" && ctx && typeof ctx.source === "string"
        ? new Num(ctx.source) : value;
    });
  }

  function jsonScalar(v) {
    if (v instanceof Num) return el("span", "j-num", v.text);
    if (typeof v === "number") return el("span", "j-num", String(v));
    if (typeof v === "string") return el("span", "j-str", JSON.stringify(v));
    if (typeof v === "boolean") return el("span", "j-bool", String(v));
    return el("span", "j-null", "null");
  }

  /* A collapsible tree: objects and arrays are <details>, open down to depth 2. */
  function jsonTree(v, label, depth) {
    var compound = v !== null && typeof v === "object" && !(v instanceof Num);
    var keys = compound ? Object.keys(v) : [];
    if (!compound || keys.length === 0) {
      var line = el("div", "j-line");
      if (label !== null) line.appendChild(el("span", "j-key", label + ": "));
      line.appendChild(compound ? el("span", "j-punct", Array.isArray(v) ? "[]" : "{}")
        : jsonScalar(v));
      return line;
    }
    var isArray = Array.isArray(v);
    var d = el("details", "j-node");
    d.open = depth < 2;
    var s = el("summary");
    if (label !== null) s.appendChild(el("span", "j-key", label + ": "));
    s.appendChild(el("span", "j-punct", isArray ? "[" : "{"));
    s.appendChild(el("span", "j-count", isArray ? keys.length + " items"
      : keys.length + (keys.length === 1 ? " key" : " keys")));
    s.appendChild(el("span", "j-punct", isArray ? "]" : "}"));
    d.appendChild(s);
    var kids = el("div", "j-children");
    keys.forEach(function (k) {
      kids.appendChild(jsonTree(v[k], isArray ? k : JSON.stringify(k), depth + 1));
    });
    d.appendChild(kids);
    return d;
  }

  /* The editor line of the script's failure: a syntax error's own line, or the innermost
   * frame of the script in a traceback. */
  function failingLine(body) {
    if (typeof body.line === "number") return body.line;
    if (typeof body.traceback !== "string") return null;
    var re = /File "<script>", line (\d+)/g, m, line = null;
    while ((m = re.exec(body.traceback))) line = Number(m[1]);
    return line;
  }

  function showFigures(body) {
    var figs = Array.isArray(body.figures) ? body.figures : [];
    var types = {png: "image/png", jpeg: "image/jpeg", svg: "image/svg+xml"};
    figs.forEach(function (f, i) {
      var fig = el("figure");
      if (!types[f.format] || typeof f.content !== "string") {
        fig.appendChild(el("figcaption", null, "Figure " + (i + 1) + ": format " +
          f.format + " cannot be shown"));
      } else {
        var img = el("img");
        img.alt = "Figure " + (i + 1);
        if (f.width) img.width = f.width;
        if (f.height) img.height = f.height;
        img.src = "data:" + types[f.format] + ";base64," + f.content;
        fig.appendChild(img);
        fig.appendChild(el("figcaption", null, "Figure " + (i + 1) +
          (f.width && f.height ? " (" + f.width + "×" + f.height + ")" : "")));
      }
      $("figures").appendChild(fig);
    });
    if (body.figures_truncated)
      $("figures").appendChild(el("p", "note", "More figures were drawn than the answer carries."));
    $("figures-box").hidden = !figs.length && !body.figures_truncated;
  }

  function showFiles(body) {
    var files = Array.isArray(body.files) ? body.files : [];
    var omitted = Array.isArray(body.files_omitted) ? body.files_omitted : [];
    var box = $("files");
    if (files.length) {
      var ul = el("ul", "file-list");
      files.forEach(function (f) {
        var li = el("li");
        var url = URL.createObjectURL(new Blob([base64ToBytes(f.content)]));
        blobUrls.push(url);
        var a = el("a", null, f.path);
        a.href = url;
        a.download = f.path.split("/").pop();
        li.appendChild(a);
        li.appendChild(el("span", "size", formatSize(f.size)));
        ul.appendChild(li);
      });
      box.appendChild(ul);
    }
    if (omitted.length)
      box.appendChild(el("p", "note", "Not returned (over the limits): " + omitted.join(", ")));
    if (body.files_truncated)
      box.appendChild(el("p", "note", "More files were left out than listed."));
    $("files-box").hidden = !files.length && !omitted.length && !body.files_truncated;
  }

  function showAnswer(status, text, sentKey) {
    var body;
    try {
      body = JSON.parse(text);
    } catch (e) {
      body = null;
    }
    if (!body || typeof body !== "object") {
      setStatus("HTTP " + status + ": the answer is not JSON");
      showError("HTTP " + status, text.slice(0, 2000));
      return;
    }
    if (typeof body.duration_ms === "number")
      $("duration").textContent = body.duration_ms + " ms";
    $("stdout").textContent = body.stdout || "";
    $("stderr").textContent = body.stderr || "";
    if (body.truncated) $("stdout").appendChild(el("span", "note", "\n[output truncated]"));
    showFigures(body);
    showFiles(body);

    if (status === 401) {
      $("key-box").open = true;
      var msg = sentKey ? "The service refused this API key (401). Check it under “API key”."
        : "This service requires an API key (401): enter it under “API key” and run again.";
      setStatus(msg);
      showError(body.code || "UNAUTHORIZED", msg);
      $("api-key").focus();
      return;
    }
    if (body.code) {
      var detail = body.error || "";
      if (body.code === "SYNTAX_ERROR" && body.line)
        detail += " (line " + body.line + (body.column ? ", column " + body.column : "") + ")";
      if (body.signal) detail += " [" + body.signal + "]";
      if (body.request_id) detail += " (request id " + body.request_id + ")";
      showError(body.code, detail);
      if (body.traceback) {
        $("traceback").textContent = body.traceback;
        $("traceback").hidden = false;
      }
      var line = failingLine(body);
      if (line) markErrorLine(line);
      setStatus(body.code + (line ? " at line " + line : "") + " (HTTP " + status + ")");
      return;
    }
    var result;
    try {
      result = parseKeepingNumbers(text).result;
    } catch (e) {
      result = body.result;
    }
    $("result").appendChild(jsonTree(result, null, 0));
    setStatus("Done (HTTP " + status + ").");
  }

  /* ---- share links -------------------------------------------------------------- */

  var SHARED = ["script", "stdin", "args", "kwargs"];

  function share() {
    var values = {script: cm.getValue(), stdin: $("stdin").value, args: $("args").value,
                  kwargs: $("kwargs").value};
    var parts = SHARED.filter(function (k) { return values[k]; }).map(function (k) {
      return k + "=" + toBase64Url(values[k]);
    });
    var url = location.origin + location.pathname + "#" + parts.join("&");
    history.replaceState(null, "", url);
    $("share-link").value = url;
    $("share-row").hidden = false;
    $("share-link").focus();
    $("share-link").select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(url).then(function () {
        setStatus("Link copied to the clipboard.");
      }, function () {
        setStatus("Link ready below: copy it from there.");
      });
    } else {
      setStatus("Link ready below: copy it from there.");
    }
  }

  /* Fills the page from #script=...&stdin=...; never runs. */
  function loadFragment() {
    var frag = location.hash.replace(/^#/, "");
    if (!frag) return;
    var got = {}, bad = [];
    frag.split("&").forEach(function (part) {
      var eq = part.indexOf("=");
      var name = eq < 0 ? part : part.slice(0, eq);
      if (SHARED.indexOf(name) < 0) return;
      var text = fromBase64Url(eq < 0 ? "" : part.slice(eq + 1));
      if (text === null) bad.push(name);
      else got[name] = text;
    });
    if (bad.length) {
      setStatus("The link's " + bad.join(", ") + " is not base64url of UTF-8 text: not loaded.");
      return;
    }
    if (got.script === undefined) return;
    cm.setValue(got.script);
    setInputs({stdin: got.stdin, args: got.args, kwargs: got.kwargs});
    resetOutput();
    setStatus("Loaded the script from the link: nothing has run. Run (Ctrl+Enter) sends it.");
  }

  /* ---- start -------------------------------------------------------------------- */

  function start() {
    setupEditor();
    setupInputs();
    setupExamples();
    $("run").addEventListener("click", run);
    $("stop").addEventListener("click", function () { if (running) running.abort(); });
    $("share").addEventListener("click", share);
    document.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey) && !cm.hasFocus()) {
        ev.preventDefault();
        run();
      }
    });
    window.addEventListener("hashchange", loadFragment);
    loadFragment();
    document.body.classList.add("ready");
  }

  start();
})();
