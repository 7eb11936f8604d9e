"""HTTP basic auth in front of every dashboard request.

A Flask ``before_request`` hook rather than a plugin: it guards everything the
server answers (pages, ``_dash-*`` callbacks, assets, component bundles) with
a dozen lines and no dependency, and compares in constant time.
"""

from __future__ import annotations

import hmac

from flask import Flask, Response, request


def require_basic_auth(server: Flask, username: str, password: str, *, realm: str = "pang") -> None:
    """Answer 401 to any request without the given credentials."""
    expected_user = username.encode()
    expected_password = password.encode()

    def check() -> Response | None:
        auth = request.authorization
        if auth is not None and auth.type == "basic":
            user_ok = hmac.compare_digest((auth.username or "").encode(), expected_user)
            password_ok = hmac.compare_digest((auth.password or "").encode(), expected_password)
            if user_ok and password_ok:
                return None
        return Response(
            "pang dashboards: sign in with the dashboard username and password (PANG_DASH_USERNAME / PANG_DASH_PASSWORD).\n",
            status=401,
            headers={"WWW-Authenticate": f'Basic realm="{realm}", charset="UTF-8"'},
            mimetype="text/plain",
        )

    server.before_request(check)
