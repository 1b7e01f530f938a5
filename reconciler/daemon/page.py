"""The status page: server-rendered HTML, no external CDN, no inline script.

A login form trades a token for a session cookie (HttpOnly, SameSite=Strict,
Secure under TLS). Every form that changes something carries the session's
CSRF token; the page's script (``/ui.js``) re-fetches the page's main part
every two seconds, so a sync, a drift or a heal shows without a reload. A
Content-Security-Policy allows scripts and styles from the daemon only.

A stack's page draws its objects as a graph (``stackgraph``, SVG made here);
a node links to ``?object=kind:name``, which opens that object's panel
(``panel``): its diff, health output, filesystem drift and log tail.

The overview lists the preview stacks too (``Previews``), and a preview
stack's row says its branch and links its URLs: all as the daemon's record
keeps them, escaped, and only ``http(s)://`` addresses made links.
"""
from __future__ import annotations

import hmac
from html import escape
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ..render_previews import previews_data
from .assets import CSS, JS
from .auth import Principal, Sessions
from .doors import Doors
from .paging import PAGE_SIZE
from .panel import cell, links, object_panel, panel_info, when
from .stackgraph import svg

__all__ = ["previews_section", "routes", "same_token"]

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
FORM_LIMIT = 8192

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


def _when(last: dict[str, Any] | None, now: float | None = None) -> str:
    if not last:
        return '<span class="muted">not yet</span>'
    return f'{when(last["at"], now)} <span class="muted">({escape(last["trigger"])}, {last["seconds"]:g} s)</span>'


def _last_sync(stack: dict[str, Any], now: float | None = None) -> str:
    """What started the last pass that changed something (not the no-op that followed it), and when."""
    change = stack.get("last_change")
    last = stack.get("last_sync")
    if not change:
        return _when(last, now)
    checked = f' <span class="muted">· checked {when(last["at"], now)}</span>' if last and last["at"] != change["at"] \
        else ""
    return (f'<span class="trigger">{escape(change["trigger"])}</span> {when(change["at"], now)}'
            f' <span class="muted">({change["changes"]} changed)</span>{checked}')


def _stack_link(stack: dict[str, Any]) -> str:
    key = stack["name"] or stack["id"]
    return f'<a href="/stacks/{quote(key, safe="")}">{escape(key)}</a>'


def _pages(page: int, total: int) -> str:
    """Links to the overview's previous and next pages (plain links: they work without the script)."""
    count = max(1, -(-total // PAGE_SIZE))
    if count == 1:
        return ""
    prev = f'<a href="/?page={page - 1}" rel="prev">← previous</a>' if page > 1 else ""
    after = f'<a href="/?page={page + 1}" rel="next">next →</a>' if page < count else ""
    return (f'<nav class="pages">{prev} <span class="muted">page {page} of {count} · {total} stacks</span> '
            f'{after}</nav>')


def _preview_of(stack: dict[str, Any]) -> str:
    """A preview stack's branch and URLs, under its name ("" for a stack that is no preview)."""
    preview = stack.get("preview")
    if not preview:
        return ""
    return (f'<div class="preview" data-branch="{escape(preview["branch"])}"><span class="muted">preview of '
            f'</span><span class="branch">{escape(preview["branch"])}</span> {links(preview["urls"])}</div>')


def previews_section(previews: list[dict[str, Any]], now: float | None = None) -> str:
    """The overview's ``Previews``: each preview's branch, stack, state (and why), URLs and age; "" when none."""
    if not previews:
        return ""
    rows = []
    for p in previews:
        stack = (f'<a href="/stacks/{quote(p["stack"], safe="")}">{escape(p["stack"])}</a>' if p["stack"]
                 else cell(None))
        reason = f' <span class="muted">{escape(p["reason"])}</span>' if p["reason"] else ""
        rows.append(f'<tr data-preview="{escape(p["source"])}:{escape(p["branch"])}:{escape(p["path"])}">'
                    f'<td>{escape(p["branch"])} <span class="muted">{escape(p["source"])}</span></td><td>{stack}</td>'
                    f'<td>{_state(p["state"])}{reason}</td><td>{links(p["urls"])}</td>'
                    f'<td>{when(p["created"], now)}</td></tr>')
    return ('<h2>Previews</h2><div class="scroll"><table id="previews"><thead><tr><th>Branch</th><th>Stack</th>'
            f'<th>State</th><th>URLs</th><th>Made</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>')


def overview(stacks: list[dict[str, Any]], *, page: int = 1, total: int | None = None,
             previews: list[dict[str, Any]] | None = None) -> str:
    """The stacks of one overview page (``page``, 1-based, of ``PAGE_SIZE``; ``total``: stacks in all), and the
    ``Previews`` section (``previews``: ``GET /api/previews``'s entries)."""
    rows = []
    for s in stacks:
        source = s["source"]
        where = cell(source["url"] or source["name"]) + (f'@{escape(source["ref"])}' if source["ref"] else "")
        revision = cell((s["revision"] or "")[:12]) + (" <b>held</b>" if s["held"] else "")
        drift = s["drift"]
        rows.append(
            f'<tr data-stack="{escape(s["name"] or s["id"])}"><td>{_stack_link(s)}{_preview_of(s)}</td>'
            f'<td>{where} <span class="muted">{escape(source["path"])}</span></td><td><code>{revision}</code></td>'
            f'<td>{_state(s["state"])}{" <b>suspended</b>" if s["suspended"] else ""}</td>'
            f'<td class="{"drift" if drift else ""}" data-drift="{drift if drift is not None else ""}">'
            f'{cell(drift)}</td><td>{s["managed"]}</td><td class="last-sync">{_last_sync(s)}</td></tr>')
    pages = _pages(page, len(stacks) if total is None else total)
    return ('<h1>Stacks</h1><div class="scroll"><table><thead><tr><th>Stack</th><th>Source</th><th>Revision</th><th>State</th>'
            '<th>Drift</th><th>Objects</th><th>Last sync</th></tr></thead><tbody>' + "".join(rows)
            + '</tbody></table></div>' + pages + previews_section(previews or []))


def detail(stack: dict[str, Any], history: list[dict[str, Any]], principal: Principal, csrf: str,
           selected: str = "", now: float | None = None) -> str:
    """A stack's main part: state, sync button, errors, graph, objects, pending plan and history."""
    key = stack["name"] or stack["id"]
    base = f'/stacks/{quote(key, safe="")}'
    last = stack["last_sync"] or {}
    parts = [f'<h1>{escape(key)} {_state(stack["state"])}</h1>',
             f'<p>Revision <code>{escape(stack["revision"] or "none")}</code>'
             f'{" (held at a rollback)" if stack["held"] else ""}{" · suspended" if stack["suspended"] else ""}'
             f' · last sync {_when(stack["last_sync"], now)}</p>']
    preview = stack.get("preview")
    if preview:
        parts.append(f'<p id="preview">Preview of branch <span class="branch">{escape(preview["branch"])}</span> '
                     f'of source {escape(preview["source"])} · {_state(preview["state"])} · {links(preview["urls"])}'
                     '</p>')
    disabled = "" if principal.can_write else ' disabled title="read-only token"'
    parts.append(f'<form method="post" action="{base}/sync">'
                 f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
                 f'<button type="submit" id="sync-now"{disabled}>Sync now</button></form>')
    invalid = last.get("result") == "invalid"
    if last.get("error"):
        heading = ("The source could not be fetched" if last.get("result") == "source_error"
                   else "The spec does not load" if invalid else "Last error")
        parts.append(f'<h2>{heading}</h2><pre class="bad" id="last-error">{escape(last["error"])}</pre>')
    if stack.get("observe_error"):
        parts.append(f'<pre class="bad">{escape(stack["observe_error"])}</pre>')
    objects = stack.get("objects") or []
    if objects:
        parts.append('<h2>Graph</h2><div class="graph-box">'
                     f'{svg(objects, stack.get("edges") or [], base, selected=selected)}</div>')
    rows = "".join(
        f'<tr data-object="{escape(o["kind"])}:{escape(o["name"])}"><td>{escape(o["kind"])}</td>'
        f'<td><a href="{base}?object={quote(o["kind"] + ":" + o["name"], safe=":")}#panel">{escape(o["name"])}</a></td>'
        f'<td>{"yes" if o["desired"] else "no"}</td><td>{cell(o["state"])}</td>'
        f'<td>{cell(o["health"])}</td><td class="drift">{cell(o["drift"])}</td></tr>'
        for o in objects)
    parts.append('<h2>Objects</h2><div class="scroll"><table><thead><tr><th>Kind</th><th>Name</th><th>In spec</th>'
                 f'<th>Live</th><th>Health</th><th>Drift</th></tr></thead><tbody>{rows}</tbody></table></div>')
    parts.append(_snapshots(stack.get("snapshots") or {}, now))
    plan = stack.get("plan")
    if invalid:
        pass  # the plan of the last spec that loaded is not what a pass would apply: none would
    elif plan and plan["changes"]:
        lines = []
        for change in plan["changes"]:
            lines.append(f'{change["action"]} {change["kind"]} {change["name"]} ({change["reason"]})')
            lines += [f'    {f["path"]}: {f["old"]!r} → {f["new"]!r}' for f in change["fields"]]
        parts.append(f'<h2>Pending plan</h2><pre id="plan">{escape(chr(10).join(lines))}</pre>')
    else:
        parts.append('<h2>Pending plan</h2><p id="plan" class="muted">nothing to change</p>')
    rows = "".join(f'<tr><td>{when(h["started_at"], now)}</td><td class="trigger">{cell(h.get("trigger"))}</td>'
                   f'<td><code>{cell((h["revision"] or "")[:12])}</code></td>'
                   f'<td>{_state(h["result"])}</td><td>{h["seconds"]:g} s</td><td>{cell(h["summary"])}</td></tr>'
                   for h in history)
    parts.append('<h2>History</h2><div class="scroll"><table id="history"><thead><tr><th>Started</th><th>Trigger</th>'
                 '<th>Revision</th><th>Result</th><th>Took</th>'
                 f'<th>Changes</th></tr></thead><tbody>{rows}</tbody></table></div>')
    return "".join(parts)


def _snapshots(volumes: dict[str, dict[str, Any]], now: float | None = None) -> str:
    """Each volume's snapshots: how many, and the newest (``reconcile snapshots list`` shows them all)."""
    if not volumes:
        return ""
    rows = "".join(f'<tr data-volume="{escape(name)}"><td>{escape(name)}</td><td>{v["count"]}</td>'
                   f'<td><code>{cell(v.get("newest"))}</code></td><td>{when(v.get("newest_at"), now)}</td></tr>'
                   for name, v in sorted(volumes.items()))
    return ('<h2>Volume snapshots</h2><div class="scroll"><table id="snapshots"><thead><tr><th>Volume</th>'
            f'<th>Snapshots</th><th>Newest</th><th>Taken</th></tr></thead><tbody>{rows}</tbody></table></div>')


def _selected(stack: dict[str, Any], key: str) -> dict[str, Any] | None:
    """The object row ``kind:name`` of ``stack`` (a service answers to ``container:`` too)."""
    kind, _, name = key.partition(":")
    for row in stack.get("objects") or []:
        if row["name"] == name and (row["kind"] == kind or {row["kind"], kind} == {"container", "service"}):
            return row
    return None


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
        text = request.query_params.get("page", "1")
        number = int(text) if text.isdigit() and 0 < len(text) < 7 and int(text) > 0 else 1
        records = doors.view.listed_previews()  # one read: the rows' previews and the section below them
        rows, total = doors.view.page(limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE, previews=records)
        if not rows and total:  # past the last page: show the last
            number = -(-total // PAGE_SIZE)
            rows, total = doors.view.page(limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE, previews=records)
        main = overview(rows, page=number, total=total, previews=previews_data(records))
        if request.query_params.get("fragment"):
            return HTMLResponse(main, headers=HEADERS)
        refresh = "/?fragment=1" + (f"&page={number}" if number > 1 else "")
        return _page("Stacks", _header(*known) + f'<main id="main" data-refresh="{escape(refresh)}">{main}</main>')

    def stack_page(request: Request) -> Response:
        known = session(request)
        if known is None:
            return _signed_out(request)
        worker = doors.view.find(request.path_params["name"])
        if worker is None:
            return _page("Not found", _header(*known) + '<main><p>No such stack.</p></main>', status=404)
        selected = request.query_params.get("object", "")[:512]
        fragment = request.query_params.get("fragment")
        # An open panel lists a container's changed paths and an image's layers (one history call per image):
        # read for the panel only, not for the main part's refresh beside it.
        data = doors.view.detail(worker, detailed=bool(selected) and fragment in (None, "panel"))
        key = worker.stack or worker.id
        row = _selected(data, selected) if selected else None
        if row is not None:
            row = doors.view.with_health_output(worker, row)  # asked for one object: worth one inspect
        if fragment == "panel":
            return HTMLResponse(panel_info(row, selected), headers=HEADERS)
        main = detail(data, doors.view.history(worker), *known, selected=selected)
        if fragment:
            return HTMLResponse(main, headers=HEADERS)
        refresh = f'/stacks/{quote(key, safe="")}?fragment=1' + (f'&object={quote(selected, safe=":")}'
                                                                   if selected else "")
        panel = object_panel(row, selected, key) if selected else ""
        return _page(key, _header(*known) + f'<main id="main" data-refresh="{escape(refresh)}">{main}</main>' + panel)

    def graph_svg(request: Request) -> Response:
        if doors.who(request)[0] is None:
            return Response(status_code=401, headers=HEADERS)
        worker = doors.view.find(request.path_params["name"])
        if worker is None:
            return Response(status_code=404, headers=HEADERS)
        data = doors.view.detail(worker)
        base = f'/stacks/{quote(worker.stack or worker.id, safe="")}'
        return Response(svg(data.get("objects") or [], data.get("edges") or [], base, standalone=True),
                        media_type="image/svg+xml", headers=HEADERS)

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
        Route("/stacks/{name:path}/graph.svg", graph_svg),
        Route("/stacks/{name:path}", stack_page),
        Route("/ui.js", asset(JS, "text/javascript")),
        Route("/ui.css", asset(CSS, "text/css")),
        Route("/favicon.ico", lambda request: Response(status_code=204, headers=HEADERS)),
    ]
