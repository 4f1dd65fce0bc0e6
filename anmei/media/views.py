"""`GET /media/<token>`: play a stored upload through a signed link (Range requests for seeking).

The body streams: a Range request reads and decrypts only the chunks it covers (anmei.media.services
MediaReader), never the whole object.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.views.decorators.http import require_http_methods

from anmei.common.errors import ApplicationError, error_response
from anmei.media.links import media_token_verify
from anmei.media.services import MediaReader, media_open

logger = logging.getLogger("anmei.media")

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """Parse one `bytes=a-b` / `a-` / `-n` range; None when absent or unsatisfiable (caller decides)."""
    match = _RANGE.match(header.strip())
    if not match or match.group(1) == match.group(2) == "":
        raise ValueError("malformed range")
    first, last = match.group(1), match.group(2)
    if first == "":
        length = int(last)
        if length == 0:
            return None
        return max(size - length, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        return None
    return start, end


@require_http_methods(["GET", "HEAD"])
def media_play(request: HttpRequest, token: str) -> HttpResponse:
    try:
        tenant_id, key, mime = media_token_verify(token)
        media = media_open(tenant_id=tenant_id, key=key)
    except ApplicationError as exc:
        return error_response(exc.status_code, exc.code, exc.message, exc.details)
    size = media.size
    header = request.headers.get("Range", "")
    status, start, end = 200, 0, size - 1
    content_range = None
    try:
        byte_range = _byte_range(header, size) if header else ()
    except ValueError:
        # RFC 9110 §14.2: a Range we cannot parse (or several ranges, which we do not serve) is
        # ignored: the whole body with 200, never a 206 that claims to be a part.
        byte_range = ()
    if byte_range != ():
        if byte_range is None:
            media.close()
            response = error_response(416, "range_not_satisfiable", "the requested range is outside the media")
            response["Content-Range"] = f"bytes */{size}"
            return response
        start, end = byte_range
        status = 206
        content_range = f"bytes {start}-{end}/{size}"
    length = max(end - start + 1, 0)
    if request.method == "HEAD":
        media.close()
        response = HttpResponse(b"", status=status, content_type=mime)
    else:
        chunks = media.chunks(start, end)
        try:  # the first chunk before the headers: an object that does not decrypt is an error answer
            first = next(chunks, b"")
        except Exception as exc:  # noqa: BLE001 - tampered or moved (ValueError), or storage gone
            media.close()
            if isinstance(exc, ValueError):
                return error_response(500, "media_corrupt", "the stored media cannot be decrypted")
            logger.exception("media read failed", extra={"tenant_id": tenant_id})
            return error_response(503, "media_unavailable", "media storage is unreachable")
        response = StreamingHttpResponse(
            _stream(media, first, chunks, tenant_id=tenant_id), status=status, content_type=mime
        )
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = f"private, max-age={settings.MEDIA_URL_TTL_SECONDS}"
    response["Content-Disposition"] = "inline"
    response["X-Content-Type-Options"] = "nosniff"
    if content_range:
        response["Content-Range"] = content_range
    logger.info("media served", extra={"tenant_id": tenant_id, "status": status, "bytes": length})
    return response


def _stream(media: MediaReader, first: bytes, rest: Iterator[bytes], *, tenant_id: int) -> Iterator[bytes]:
    """The range's plain bytes, a chunk at a time; the object is closed when done or abandoned."""
    try:
        yield first
        yield from rest
    except Exception:  # noqa: BLE001 - headers are sent: log it; the short body tells the client
        logger.exception("media stream failed", extra={"tenant_id": tenant_id})
    finally:
        media.close()
