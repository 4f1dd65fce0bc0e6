from __future__ import annotations

from functools import wraps

from django.shortcuts import render


def strict_csp(view):
    """Serve a page under a Content-Security-Policy with no inline script or style at all.

    Every script and stylesheet of the console and the chat is a static file of our origin; data
    reaches the DOM as text nodes. Media links may point at an S3-compatible bucket (https:).
    A global CSP middleware (django-csp) leaves a header that is already set alone.
    """

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        host = request.get_host()
        response["Content-Security-Policy"] = "; ".join(
            [
                "default-src 'self'",
                "script-src 'self'",
                "style-src 'self'",
                "img-src 'self' data: blob: https:",
                "media-src 'self' blob: https:",
                f"connect-src 'self' ws://{host} wss://{host}",
                "object-src 'none'",
                "base-uri 'none'",
                "form-action 'self'",
                "frame-ancestors 'none'",
            ]
        )
        response["Referrer-Policy"] = "same-origin"
        return response

    return wrapped


def index(request):
    return render(request, "console/index.html")


@strict_csp
def console(request):
    """The consultant console: static HTML + ES modules that talk to the REST API and /ws/console/."""
    return render(request, "console/console.html")


@strict_csp
def chat(request):
    """The web customer's chat: register or log in, then the conversation live over /ws/customer/."""
    return render(request, "console/chat.html")
