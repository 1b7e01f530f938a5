"""The status page: server-rendered HTML, no external CDN, no inline script.

A login form trades a token for a session cookie (HttpOnly, SameSite=Strict,
Secure under TLS). Every form that changes something carries the session's
CSRF token; the page's script (``/ui.js``) re-fetches the page's main part
every two seconds, so a sync, a drift or a heal shows without a reload. A
Content-Security-Policy allows scripts and styles from the daemon only.
"""
from __future__ import annotations

import hmac
from html import escape
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from .auth import Principal, Sessions
from .doors import Doors

__all__ = ["routes", "same_token"]

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
FORM_LIMIT = 8192

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d232a;background:#f6f7f9}
header{display:flex;gap:1em;align-items:center;padding:.6em 1.2em;background:#1d232a;color:#fff}
header a{color:#fff;font-weight:600;text-decoration:none}header form{margin-left:auto}
main{padding:1em 1.2em}table{border-collapse:collapse;width:100%;background:#fff;margin:.5em 0 1.5em}
th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #e3e6ea;vertical-align:top}
th{background:#eef0f3;font-weight:600}code,pre{font:12px ui-monospace,monospace}
pre{background:#fff;border:1px solid #e3e6ea;padding:.6em;overflow:auto;white-space:pre-wrap}
.state{display:inline-block;padding:0 .5em;border-radius:.6em;font-weight:600;font-size:12px}
.converged{background:#d6f5dd;color:#135c26}.failed,.error,.invalid,.source_error{background:#fbdada;color:#7a1313}
.suspended,.degraded,.pending{background:#fdf0c8;color:#6b4d00}.drift{color:#7a1313;font-weight:600}
.muted{color:#6a737d}button{font:inherit;padding:.25em .9em;cursor:pointer}
.login{max-width:24em;margin:4em auto;background:#fff;padding:1.5em;border:1px solid #e3e6ea}
.login input{width:100%;box-sizing:border-box;margin:.4em 0 1em;padding:.4em}.bad{color:#7a1313}
"""

JS = """
(function () {
  var main = document.getElementById('main');
  if (!main || !main.dataset.refresh) return;
  function refresh() {
    fetch(main.dataset.refresh, {credentials: 'same-origin', cache: 'no-store'})
      .then(function (r) { if (r.status === 401) { location.href = '/login'; } return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) { main.innerHTML = html; } })
      .catch(function () {})
      .finally(function () { setTimeout(refresh, 2000); });
  }
  setTimeout(refresh, 2000);
})();
"""


def same_token(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


def _page(title: str, body: str, *, status: int = 200, **extra: str) -> HTMLResponse:
    html = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)} · reconciler</title>'
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            f'<link rel="stylesheet" href="/ui.css"><script src="/ui.js" defer></script></head><body>{body}</body></html>')
    return HTMLResponse(html, status_code=status, headers={**HEADERS, **extra})


def _header(principal: Principal, csrf: str) -> str:
    return ('<header><a href="/">reconciler</a>'
            f'<span class="muted">signed in as {escape(principal.name)} ({principal.access.value})</span>'
            f'<form method="post" action="/logout"><input type="hidden" name="csrf" value="{escape(csrf)}">'
            '<button type="submit">Sign out</button></form></header>')


def _state(state: str) -> str:
    return f'<span class="state {escape(state)}" data-state="{escape(state)}">{escape(state)}</span>'


def _when(last: dict[str, Any] | None) -> str:
    if not last:
        return '<span class="muted">not yet</span>'
    return f'{escape(last["at"])} <span class="muted">({escape(last["trigger"])}, {last["seconds"]:g} s)</span>'


def _stack_link(stack: dict[str, Any]) -> str:
    key = stack["name"] or stack["id"]
    return f'<a href="/stacks/{quote(key, safe="")}">{escape(key)}</a>'


def overview(stacks: list[dict[str, Any]]) -> str:
    rows = []
    for s in stacks:
        source = s["source"]
        where = escape(source["url"] or source["name"]) + (f'@{escape(source["ref"])}' if source["ref"] else "")
        revision = escape((s["revision"] or "")[:12]) + (" <b>held</b>" if s["held"] else "")
        drift = s["drift"]
        rows.append(
            f'<tr data-stack="{escape(s["name"] or s["id"])}"><td>{_stack_link(s)}</td>'
            f'<td>{where} <span class="muted">{escape(source["path"])}</span></td><td><code>{revision}</code></td>'
            f'<td>{_state(s["state"])}{" <b>suspended</b>" if s["suspended"] else ""}</td>'
            f'<td class="{"drift" if drift else ""}" data-drift="{drift if drift is not None else ""}">'
            f'{drift if drift is not None else ""}</td><td>{s["managed"]}</td><td>{_when(s["last_sync"])}</td></tr>')
    return ('<h1>Stacks</h1><table><thead><tr><th>Stack</th><th>Source</th><th>Revision</th><th>State</th>'
            '<th>Drift</th><th>Objects</th><th>Last sync</th></tr></thead><tbody>' + "".join(rows) + '</tbody></table>')


def detail(stack: dict[str, Any], history: list[dict[str, Any]], principal: Principal, csrf: str) -> str:
    key = stack["name"] or stack["id"]
    last = stack["last_sync"] or {}
    parts = [f'<h1>{escape(key)} {_state(stack["state"])}</h1>',
             f'<p>Revision <code>{escape(stack["revision"] or "none")}</code>'
             f'{" (held at a rollback)" if stack["held"] else ""}{" · suspended" if stack["suspended"] else ""}'
             f' · last sync {_when(stack["last_sync"])}</p>']
    disabled = "" if principal.can_write else ' disabled title="read-only token"'
    parts.append(f'<form method="post" action="/stacks/{quote(key, safe="")}/sync">'
                 f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
                 f'<button type="submit" id="sync-now"{disabled}>Sync now</button></form>')
    if last.get("error"):
        heading = "The source could not be fetched" if last.get("result") == "source_error" else "Last error"
        parts.append(f'<h2>{heading}</h2><pre class="bad">{escape(last["error"])}</pre>')
    if stack.get("observe_error"):
        parts.append(f'<pre class="bad">{escape(stack["observe_error"])}</pre>')
    rows = "".join(
        f'<tr data-object="{escape(o["kind"])}:{escape(o["name"])}"><td>{escape(o["kind"])}</td>'
        f'<td>{escape(o["name"])}</td><td>{"yes" if o["desired"] else "no"}</td><td>{escape(o["state"])}</td>'
        f'<td>{escape(o["health"] or "")}</td><td class="drift">{escape(o["drift"] or "")}</td></tr>'
        for o in stack.get("objects") or [])
    parts.append('<h2>Objects</h2><table><thead><tr><th>Kind</th><th>Name</th><th>In spec</th><th>Live</th>'
                 f'<th>Health</th><th>Drift</th></tr></thead><tbody>{rows}</tbody></table>')
    plan = stack.get("plan")
    if plan and plan["changes"]:
        lines = []
        for change in plan["changes"]:
            lines.append(f'{change["action"]} {change["kind"]} {change["name"]} ({change["reason"]})')
            lines += [f'    {f["path"]}: {f["old"]!r} → {f["new"]!r}' for f in change["fields"]]
        parts.append(f'<h2>Pending plan</h2><pre id="plan">{escape(chr(10).join(lines))}</pre>')
    else:
        parts.append('<h2>Pending plan</h2><p id="plan" class="muted">nothing to change</p>')
    rows = "".join(f'<tr><td>{escape(h["started_at"])}</td><td><code>{escape((h["revision"] or "")[:12])}</code></td>'
                   f'<td>{_state(h["result"])}</td><td>{h["seconds"]:g} s</td><td>{escape(h["summary"])}</td></tr>'
                   for h in history)
    parts.append('<h2>History</h2><table><thead><tr><th>Started</th><th>Revision</th><th>Result</th><th>Took</th>'
                 f'<th>Changes</th></tr></thead><tbody>{rows}</tbody></table>')
    return "".join(parts)


def _signed_out(request: Request) -> Response:
    """To the login form; the page's script asking for a fragment gets a 401 to act on instead."""
    if request.query_params.get("fragment"):
        return HTMLResponse("", status_code=401, headers=HEADERS)
    return RedirectResponse("/login", status_code=303)


def routes(doors: Doors) -> list[Route]:
    def session(request: Request) -> tuple[Principal, str] | None:
        return doors.sessions.get(request.cookies.get(Sessions.COOKIE))

    async def form(request: Request) -> dict[str, str]:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > FORM_LIMIT:
                return {}
        return {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}

    def login_form(error: str = "", status: int = 200) -> HTMLResponse:
        message = f'<p class="bad" id="login-error">{escape(error)}</p>' if error else ""
        return _page("Sign in", '<form class="login" method="post" action="/login"><h1>reconciler</h1>'
                     f'{message}<label for="token">API token</label>'
                     '<input id="token" name="token" type="password" autocomplete="current-password" required>'
                     '<button type="submit" id="sign-in">Sign in</button></form>', status=status)

    def login_page(request: Request) -> Response:
        return login_form()

    async def login(request: Request) -> Response:
        principal = doors.tokens.check((await form(request)).get("token", "").strip())
        if principal is None:
            return login_form("That token is not valid.", status=401)
        session_id, _ = doors.sessions.open(principal)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(Sessions.COOKIE, session_id, max_age=int(doors.sessions.lifetime), httponly=True,
                            samesite="strict", secure=doors.secure_cookie, path="/")
        return response

    async def logout(request: Request) -> Response:
        known = session(request)
        if known and not same_token((await form(request)).get("csrf"), known[1]):
            return _page("Refused", '<main><p class="bad">The form was stale or forged (CSRF check).</p></main>',
                         status=403)
        doors.sessions.close(request.cookies.get(Sessions.COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(Sessions.COOKIE, path="/")
        return response

    def home(request: Request) -> Response:
        known = session(request)
        if known is None:
            return _signed_out(request)
        main = overview(doors.view.stacks())
        if request.query_params.get("fragment"):
            return HTMLResponse(main, headers=HEADERS)
        return _page("Stacks", _header(*known) + f'<main id="main" data-refresh="/?fragment=1">{main}</main>')

    def stack_page(request: Request) -> Response:
        known = session(request)
        if known is None:
            return _signed_out(request)
        worker = doors.view.find(request.path_params["name"])
        if worker is None:
            return _page("Not found", _header(*known) + '<main><p>No such stack.</p></main>', status=404)
        main = detail(doors.view.detail(worker), doors.view.history(worker), *known)
        if request.query_params.get("fragment"):
            return HTMLResponse(main, headers=HEADERS)
        refresh = f'/stacks/{quote(request.path_params["name"], safe="")}?fragment=1'
        return _page(worker.stack or worker.id,
                     _header(*known) + f'<main id="main" data-refresh="{escape(refresh)}">{main}</main>')

    async def sync_now(request: Request) -> Response:
        known = session(request)
        if known is None:
            return RedirectResponse("/login", status_code=303)
        principal, csrf = known
        if not same_token((await form(request)).get("csrf"), csrf):
            return _page("Refused", '<main><p class="bad">The form was stale or forged (CSRF check).</p></main>',
                         status=403)
        if not principal.can_write:
            return _page("Refused", '<main><p class="bad">A read-only token cannot sync.</p></main>', status=403)
        worker = doors.view.find(request.path_params["name"])
        if worker is None:
            return _page("Not found", '<main><p>No such stack.</p></main>', status=404)
        doors.daemon.sync(worker)
        return RedirectResponse(f'/stacks/{quote(request.path_params["name"], safe="")}', status_code=303)

    def asset(text: str, media_type: str):
        def endpoint(request: Request) -> Response:
            return Response(text, media_type=media_type, headers=HEADERS)
        return endpoint

    return [
        Route("/", home),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/stacks/{name:path}/sync", sync_now, methods=["POST"]),
        Route("/stacks/{name:path}", stack_page),
        Route("/ui.js", asset(JS, "text/javascript")),
        Route("/ui.css", asset(CSS, "text/css")),
        Route("/favicon.ico", lambda request: Response(status_code=204, headers=HEADERS)),
    ]
