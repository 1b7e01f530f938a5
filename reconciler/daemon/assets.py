"""The status page's stylesheet and script, served by the daemon itself (``/ui.css``, ``/ui.js``).

The Content-Security-Policy allows scripts and styles from the daemon only, so
they live here rather than inline. The page reads fine without the script: it
only refreshes the main part (and an open object's panel) in place every two
seconds, keeps every "n s ago" current, and tails the open container's logs.
"""
from __future__ import annotations

__all__ = ["CSS", "JS"]

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d232a;background:#f6f7f9}
header{display:flex;flex-wrap:wrap;gap:.4em 1em;align-items:center;padding:.6em 1.2em;background:#1d232a;color:#fff}
header a{color:#fff;font-weight:600;text-decoration:none}header form{margin-left:auto}
header .muted{color:#c9d1d9}
main,aside{padding:1em 1.2em}.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;background:#fff;margin:.5em 0 1.5em}
th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #e3e6ea;vertical-align:top}
th{background:#eef0f3;font-weight:600}code,pre{font:12px ui-monospace,monospace}
pre{background:#fff;border:1px solid #e3e6ea;padding:.6em;overflow:auto;white-space:pre-wrap;word-break:break-word}
.state{display:inline-block;padding:0 .5em;border-radius:.6em;font-weight:600;font-size:12px}
.converged{background:#d6f5dd;color:#135c26}.failed,.error,.invalid,.source_error{background:#fbdada;color:#7a1313}
.suspended,.degraded,.pending{background:#fdf0c8;color:#6b4d00}.drift{color:#7a1313;font-weight:600}
.muted,.ago{color:#59626b}.empty{color:#59626b}button{font:inherit;padding:.25em .9em;cursor:pointer}
.state.up{background:#d6f5dd;color:#135c26}.state.starting,.state.waiting,.state.expired{background:#fdf0c8;color:#6b4d00}
.preview{font-size:12px}.branch{font:12px ui-monospace,monospace}a.url{margin-right:.5em}
.login{max-width:24em;margin:4em auto;background:#fff;padding:1.5em;border:1px solid #e3e6ea}
.login input{width:100%;box-sizing:border-box;margin:.4em 0 1em;padding:.4em}.bad{color:#7a1313}
.graph-box{overflow-x:auto;background:#fff;border:1px solid #e3e6ea;padding:.6em;margin:.5em 0 1.5em}
svg.graph{display:block;max-width:none}svg.graph a:focus rect{stroke-width:3}
#panel{background:#fff;border:2px solid #1d232a;margin:0 1.2em 1.5em;border-radius:6px}
#panel h2{margin-top:0}#panel dl{display:grid;grid-template-columns:max-content 1fr;gap:.3em 1em}
#panel dt{font-weight:600}#panel dd{margin:0}#logs{max-height:24em}.diff-add{color:#135c26}.diff-del{color:#7a1313}
@media (max-width:640px){main,aside{padding:.6em}th,td{padding:.3em .4em}#panel{margin:0 .4em 1em}
#panel dl{grid-template-columns:1fr}}
"""

JS = """
(function () {
  'use strict';
  function ago(iso) {
    var s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (isNaN(s)) { return ''; }
    if (s < 120) { return s + ' s ago'; }
    if (s < 7200) { return Math.floor(s / 60) + ' min ago'; }
    if (s < 172800) { return Math.floor(s / 3600) + ' h ago'; }
    return Math.floor(s / 86400) + ' d ago';
  }
  function ticks() {
    var all = document.querySelectorAll('[data-ago]');
    for (var i = 0; i < all.length; i++) { all[i].textContent = ago(all[i].getAttribute('data-ago')); }
  }
  setInterval(ticks, 1000);

  function swap(id, url) {
    var el = document.getElementById(id);
    if (!el || !url) { return Promise.resolve(); }
    return fetch(url, {credentials: 'same-origin', cache: 'no-store'})
      .then(function (r) { if (r.status === 401) { location.href = '/login'; } return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) { el.innerHTML = html; ticks(); } })
      .catch(function () {});
  }
  var main = document.getElementById('main');
  if (main && main.dataset.refresh) {
    var refresh = function () {
      var info = document.getElementById('panel-info');
      Promise.all([swap('main', main.dataset.refresh), swap('panel-info', info && info.dataset.refresh)])
        .finally(function () { setTimeout(refresh, 2000); });
    };
    setTimeout(refresh, 2000);
  }

  var logs = document.getElementById('logs');
  if (!logs || !logs.dataset.src || !window.AbortController) { return; }
  var stop = new AbortController(), kept = [];
  function show(line) {
    kept.push(line);
    if (kept.length > 200) { kept.shift(); }
    logs.textContent = kept.join('\\n');
    logs.scrollTop = logs.scrollHeight;
  }
  function unavailable(why) { logs.textContent = 'logs unavailable' + (why ? ' (' + why + ')' : ''); }
  logs.textContent = 'loading logs…';
  fetch(logs.dataset.src, {credentials: 'same-origin', cache: 'no-store', signal: stop.signal})
    .then(function (r) {
      if (!r.ok || !r.body) { unavailable('HTTP ' + r.status); return; }
      logs.textContent = '';
      var reader = r.body.getReader(), decoder = new TextDecoder(), rest = '';
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) { return; }
          var lines = (rest + decoder.decode(chunk.value, {stream: true})).split('\\n');
          rest = lines.pop();
          lines.forEach(function (text) {
            if (!text) { return; }
            try {
              var e = JSON.parse(text), at = typeof e.time === 'number' ? new Date(e.time * 1000).toISOString() : e.time;
              show((at || '') + ' ' + (e.stream || '') + ' ' + (e.line || ''));
            }
            catch (err) { show(text); }
          });
          if (!kept.length) { logs.textContent = '(no log lines yet)'; }
          return pump();
        });
      }
      if (!kept.length) { logs.textContent = '(no log lines yet)'; }
      return pump();
    })
    .catch(function (e) { if (e.name !== 'AbortError') { unavailable(''); } });
  window.addEventListener('pagehide', function () { stop.abort(); });
  var close = document.getElementById('close-panel');
  if (close) {
    close.addEventListener('click', function (event) {
      event.preventDefault();
      stop.abort();
      var panel = document.getElementById('panel');
      if (panel) { panel.remove(); }
      history.replaceState(null, '', close.getAttribute('href'));
    });
  }
})();
"""
