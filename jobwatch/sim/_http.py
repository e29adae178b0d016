"""Responses: JSON and HTML bodies, the error shapes, and the canned answers of faults."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from jobwatch.sim._faults import ApiName, Fault

__all__ = [
    "Response",
    "api_error",
    "fault_response",
    "gateway_error",
    "json_response",
    "truncate",
]

JSON = "application/json;charset=UTF-8"
HTML = "text/html; charset=utf-8"

_UNAVAILABLE_PAGE = (
    b"<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n"
    b"<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n"
    b"<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


@dataclass(frozen=True, slots=True)
class Response:
    """A complete response; ``headers`` are extra to Content-Type/-Length and X-Request-Id.

    ``served`` lists the ``(job id, raw status)`` pairs a readable job body carried.
    """

    status: int
    body: bytes
    content_type: str = JSON
    headers: tuple[tuple[str, str], ...] = ()
    served: tuple[tuple[str, str], ...] = ()


def json_response(status: int, body: object, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    """A JSON response."""
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(status, data, JSON, headers)


def api_error(api: ApiName, status: int, code: str, message: str) -> Response:
    """An error in the API's own shape.

    EVS ``{"error": {"message", "code"}}`` (each service of its family in its own
    shape: ``jobwatch.sim._family.error_body``); GES v1.0 and CCE ``{"errorMessage",
    "errorCode"}`` (CCE: "Error Codes", cce_02_0250); GES v2 and RDS ``{"error_msg",
    "error_code"}`` (RDS: "Abnormal Request Results"); the engine adds ``"result": "failed"``.
    """
    from jobwatch.sim._family import error_body  # (it builds on this module)

    body = error_body(api, code, message)  # the EVS-style family, EVS included
    if body is None and api in ("ges-v2", "rds"):
        body = {"error_msg": message, "error_code": code}
    elif body is None:
        body = {"errorMessage": message, "errorCode": code}
        if api == "ges-engine":
            body["result"] = "failed"
    return json_response(status, body)


def gateway_error(
    status: int,
    code: str,
    message: str,
    request_id: str,
    headers: tuple[tuple[str, str], ...] = (),
) -> Response:
    """An error of the API gateway (APIGW), which answers before any service does."""
    body = {"error_code": code, "error_msg": message, "request_id": request_id}
    return json_response(status, body, headers)


def fault_response(fault: Fault, api: ApiName, request_id: str) -> Response | None:
    """The canned answer of ``fault``; None for kinds that alter the normal answer instead."""
    if fault.kind == "http_500":
        message = fault.error_message or "internal server error (simulated)"
        return api_error(api, 500, fault.error_code or "SIM.0500", message)
    if fault.kind == "http_503_html":
        return Response(503, _UNAVAILABLE_PAGE, HTML)
    if fault.kind == "throttle_429":
        message = (
            "The throttling threshold has been reached: policy user over ratelimit,"
            f"limit:{fault.throttle_limit},time:{fault.throttle_period}"
        )
        headers = () if fault.retry_after is None else (("Retry-After", str(fault.retry_after)),)
        return gateway_error(429, "APIGW.0308", message, request_id, headers)
    if fault.kind == "error_200":
        message = fault.error_message or "simulated error in a 200 response"
        return json_response(
            200, {"error": {"code": fault.error_code or "SIM.0200", "message": message}}
        )
    return None


def truncate(response: Response) -> Response:
    """The ``malformed_json`` fault: status 200 and only the first half of the body."""
    cut = response.body[: max(1, len(response.body) // 2)]
    return replace(response, status=200, body=cut, served=())
