from __future__ import annotations

from django.shortcuts import render


def index(request):
    return render(request, "console/index.html")


def console(request):
    """The consultant console: a static page that logs in over the REST API and opens /ws/console/."""
    return render(request, "console/console.html")
