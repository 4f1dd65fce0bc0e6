"""The admin page that draws the dashboard with Chart.js (vendored, no CDN)."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from anmei.automation import selectors
from anmei.common.permissions import is_operator


@staff_member_required
def dashboard_page(request):
    """Render the first picture server-side; the page then refreshes itself from the JSON API."""
    user = request.user
    tenant_id = user.tenant_id
    if is_operator(user):
        try:
            tenant_id = int(request.GET.get("tenant", ""))
        except ValueError:
            tenant_id = None
    elif user.role != "admin":
        raise PermissionDenied
    data = selectors.automation_dashboard(tenant_id=tenant_id) if tenant_id else None
    return render(request, "automation/dashboard.html", {"data": data, "tenant_id": tenant_id})
