"""Sign-in, sign-out and the first-run screen.

The first admin comes from `sluice admin create EMAIL`, or from the first-run screen, which only
answers while no admin exists and only to a browser on this machine (`Visitor.local`): whoever
can reach a fresh server from elsewhere must not be able to claim it.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice.ui.accounts import (
    AccountError,
    authenticate,
    create_admin,
    has_admin,
    password_tag,
)
from sluice.ui.guard import Visitor, cookie_header
from sluice.ui.session import CSRF_COOKIE, SESSION_COOKIE, SESSION_TTL_S, new_nonce
from sluice.ui.site import Site, redirect, safe_next


async def _signed_in(site: Site, request: Request, email: str, tag: str, target: str) -> Response:
    """Redirect to `target` with a new session cookie (and a new pre-session CSRF value)."""
    visitor: Visitor = request.state.visitor
    cookie, _ = await site.run(site.keys.sign, email, tag)
    response = redirect(safe_next(target))
    response.raw_headers.append(
        (
            b"set-cookie",
            cookie_header(SESSION_COOKIE, cookie, secure=visitor.secure, max_age=SESSION_TTL_S),
        )
    )
    # A new pre-session CSRF value, so a value planted before sign-in is worth nothing after.
    response.raw_headers.append(
        (
            b"set-cookie",
            cookie_header(CSRF_COOKIE, new_nonce(), secure=visitor.secure, max_age=None),
        )
    )
    return response


def routes(site: Site) -> list[Route]:
    async def signin_page(request: Request) -> Response:
        visitor: Visitor = request.state.visitor
        if visitor.session is not None:
            return redirect(safe_next(request.query_params.get("next")))
        if visitor.local and not await site.run(has_admin, site.store):
            return redirect("/setup")
        return site.render(
            request, "signin.html", next=request.query_params.get("next", "/"), error="", email=""
        )

    async def signin(request: Request) -> Response:
        form = await request.form()
        email = str(form.get("email", ""))
        password = str(form.get("password", ""))
        target = str(form.get("next", "/"))
        admin = await site.run(authenticate, site.store, email, password)
        if admin is None:
            return site.render(
                request,
                "signin.html",
                status=400,
                next=target,
                email=email,
                error="Wrong email or password.",
            )
        return await _signed_in(site, request, admin.email, password_tag(admin), target)

    async def signout(request: Request) -> Response:
        visitor: Visitor = request.state.visitor
        response = redirect("/signin")
        response.raw_headers.append(
            (b"set-cookie", cookie_header(SESSION_COOKIE, "", secure=visitor.secure, max_age=0))
        )
        return response

    async def setup_page(request: Request) -> Response:
        visitor: Visitor = request.state.visitor
        if await site.run(has_admin, site.store):
            return redirect("/signin")
        if not visitor.local:
            return site.render(request, "setup_remote.html", status=403)
        return site.render(request, "setup.html", error="", email="")

    async def setup(request: Request) -> Response:
        visitor: Visitor = request.state.visitor
        if not visitor.local:
            return site.render(request, "setup_remote.html", status=403)
        form = await request.form()
        email = str(form.get("email", ""))
        password = str(form.get("password", ""))
        if password != str(form.get("confirm", "")):
            error = "The two passwords differ."
        elif await site.run(has_admin, site.store):
            return redirect("/signin")
        else:
            try:
                admin = await site.run(create_admin, site.store, email, password)
            except AccountError as exc:
                error = str(exc).capitalize() + "."
            else:
                return await _signed_in(site, request, admin.email, password_tag(admin), "/")
        return site.render(request, "setup.html", status=400, error=error, email=email)

    return [
        Route("/signin", signin_page, methods=["GET"]),
        Route("/signin", signin, methods=["POST"]),
        Route("/signout", signout, methods=["POST"]),
        Route("/setup", setup_page, methods=["GET"]),
        Route("/setup", setup, methods=["POST"]),
    ]
