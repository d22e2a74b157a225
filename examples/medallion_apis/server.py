"""A simulated set of four REST APIs for the medallion example and the tests: deterministic,
seeded, paginated, incremental, and unreliable on purpose.

    python server.py --port 8765 --records 20000 --token demo-token

APIs (all JSON, records ordered by id, ``since`` keeps records updated after it):

| path | records at | pagination |
|---|---|---|
| /v1/rates | ``data`` | page number (``page``, ``per_page``) |
| /v1/observations | ``observations`` | cursor (``cursor``; ``meta.next_cursor``) |
| /v1/orders | ``results`` | ``next`` URL in the body |
| /v1/tickets | the body is the list | RFC 5988 ``Link`` header |

Any API also takes ``paging=page|offset|cursor|next|link|none`` to use another style (``offset``
and ``limit`` for offset paging). With ``--token``, every request must authenticate: a bearer
token, ``X-API-Key``, ``?api_key=``, basic auth with the token as password, or an OAuth2 token from
``POST /oauth/token`` (client credentials, the token as client secret).

Unreliability: ``--throttle-every N`` answers 429 (``Retry-After: 1``) to every Nth request,
``--fail-every N`` answers 500 to every Nth, ``--duplicates`` repeats the last record of each page
at the top of the next. ``POST /_admin/outage?after=K&count=C`` fails C requests after the next
K; ``POST /_admin/late?api=orders&count=N&age=3600`` adds N records updated ``age`` seconds before
the newest (late arrivals); ``GET /_admin/requests`` lists the requests served.
"""

from __future__ import annotations

import argparse
import base64
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

EPOCH = datetime(2024, 6, 1, tzinfo=UTC)
CURRENCIES = ["EUR", "GBP", "JPY", "BRL", "CHF", "CAD", "AUD", "SEK"]
STATUSES = ["placed", "paid", "shipped", "delivered", "returned"]
PRIORITIES = ["low", "normal", "high", "urgent"]


@dataclass(frozen=True)
class Api:
    name: str
    records_at: str | None
    paging: str
    step: int
    """Seconds between consecutive records' updated_at."""


APIS = {
    "/v1/rates": Api("rates", "data", "page", 300),
    "/v1/observations": Api("weather", "observations", "cursor", 30),
    "/v1/orders": Api("orders", "results", "next", 30),
    "/v1/tickets": Api("tickets", None, "link", 300),
}


def _mix(i: int, salt: int) -> int:
    return ((i + 1) * 2654435761 + salt * 40503) % 4294967296


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def record(api: Api, i: int, updated: datetime) -> dict[str, Any]:
    """Record ``i`` (0-based) of ``api``: the same every time."""
    h = _mix(i, len(api.name))
    base: dict[str, Any] = {"id": i + 1, "updated_at": _stamp(updated)}
    if api.name == "rates":
        base |= {
            "currency": CURRENCIES[h % 8],
            "day": updated.date().isoformat(),
            "rate": round(0.5 + (h % 10000) / 5000, 4),
        }
    elif api.name == "weather":
        base |= {
            "station_id": h % 40 + 1,
            "observed_at": _stamp(updated - timedelta(seconds=h % 600)),
            "temperature_c": round(-5 + (h % 4000) / 100, 2),
            "humidity": h % 100,
        }
    elif api.name == "orders":
        base |= {
            "customer_id": h % 5000 + 1,
            "amount": round((h % 50000) / 100, 2),
            "status": STATUSES[h % 5],
        }
    else:
        base |= {
            "customer_id": h % 5000 + 1,
            "priority": PRIORITIES[h % 4],
            "subject": f"Ticket {i + 1}: order issue",
        }
    return base


@dataclass
class State:
    records: int
    token: str | None
    throttle_every: int = 0
    fail_every: int = 0
    duplicates: bool = False
    served: int = 0
    outage_after: int = -1
    outage_count: int = 0
    late: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    log: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def listing(self, api: Api, since: datetime | None) -> tuple[range, list[dict[str, Any]]]:
        """The ids (as a range over base records) and late records matching ``since``."""
        first = 0
        if since is not None:
            first = max(int((since - EPOCH).total_seconds() // api.step) + 1, 0)
        late = [r for r in self.late.get(api.name, []) if since is None or _parse(r["updated_at"]) > since]
        return range(first, self.records), late


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Handler(BaseHTTPRequestHandler):
    server_version = "LagoaSim/1.0"
    protocol_version = "HTTP/1.1"
    state: State

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the admin endpoint lists requests."""

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self, query: dict[str, str]) -> bool:
        token = self.state.token
        if token is None:
            return True
        header = self.headers.get("Authorization", "")
        if (
            header == f"Bearer {token}"
            or self.headers.get("X-API-Key") == token
            or query.get("api_key") == token
        ):
            return True
        if header.startswith("Basic "):
            _, _, password = base64.b64decode(header[6:]).decode().partition(":")
            return password == token
        return False

    def do_POST(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(parts.query))
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode())) if length else {}
        state = self.state
        if parts.path == "/oauth/token":
            if state.token is None or form.get("client_secret") == state.token:
                self._send(
                    200, {"access_token": state.token or "open", "token_type": "bearer", "expires_in": 3600}
                )
            else:
                self._send(401, {"error": "invalid_client"})
        elif parts.path == "/_admin/outage":
            with state.lock:
                state.outage_after = state.served + int(query.get("after", "0"))
                state.outage_count = int(query.get("count", "1"))
            self._send(200, {"ok": True})
        elif parts.path == "/_admin/late":
            api = next(a for a in APIS.values() if a.name == query.get("api", "orders"))
            count, age = int(query.get("count", "10")), int(query.get("age", "3600"))
            with state.lock:
                extras = state.late.setdefault(api.name, [])
                newest = EPOCH + timedelta(seconds=api.step * (state.records - 1))
                for _ in range(count):
                    i = state.records + len(extras)
                    extras.append(record(api, i, newest - timedelta(seconds=age)))
            self._send(200, {"ok": True, "late": len(extras)})
        else:
            self._send(404, {"error": "not found"})

    def do_GET(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(parts.query))
        state = self.state
        if parts.path == "/_admin/requests":
            with state.lock:
                self._send(200, state.log)
            return
        api = APIS.get(parts.path)
        if api is None:
            self._send(404, {"error": f"no API at {parts.path}"})
            return
        with state.lock:
            state.served += 1
            number = state.served
            entry = {"n": number, "path": parts.path, "query": parts.query, "at": time.time(), "status": 200}
            state.log.append(entry)
            outage = (
                state.outage_after >= 0
                and state.outage_after < number <= state.outage_after + state.outage_count
            )
        if not self._authorised(query):
            entry["status"] = 401
            self._send(401, {"error": "unauthorised"})
            return
        if state.throttle_every and number % state.throttle_every == 0:
            entry["status"] = 429
            self._send(429, {"error": "slow down"}, {"Retry-After": "1"})
            return
        if outage or (state.fail_every and number % state.fail_every == 0):
            entry["status"] = 500
            self._send(500, {"error": "internal error"})
            return
        self._page(api, query, parts.path)

    def _page(self, api: Api, query: dict[str, str], path: str) -> None:
        paging = query.get("paging", api.paging)
        since = _parse(query["since"]) if query.get("since") else None
        ids, late = self.state.listing(api, since)
        total = len(ids) + len(late)
        if paging == "page":
            size = int(query.get("per_page", "100"))
            start = (int(query.get("page", "1")) - 1) * size
        elif paging == "cursor":
            size = int(query.get("limit", "100"))
            start = int(base64.urlsafe_b64decode(query["cursor"]).decode()) if query.get("cursor") else 0
        elif paging == "none":
            size, start = total, 0
        else:
            size = int(query.get("limit", "100"))
            start = int(query.get("offset", "0"))
        chosen = []
        for position in range(start, min(start + size, total)):
            if position < len(ids):
                i = ids[position]
                chosen.append(record(api, i, EPOCH + timedelta(seconds=api.step * i)))
            else:
                chosen.append(late[position - len(ids)])
        if self.state.duplicates and start > 0 and chosen:
            previous = start - 1
            i = ids[previous] if previous < len(ids) else None
            chosen.insert(
                0,
                record(api, i, EPOCH + timedelta(seconds=api.step * i))
                if i is not None
                else late[previous - len(ids)],
            )
        following = start + size if start + size < total else None
        headers: dict[str, str] = {}
        carried = {k: v for k, v in query.items() if k not in ("page", "offset", "cursor")}
        body: Any
        if paging == "link" and following is not None:
            headers["Link"] = (
                f'<{path}?{urllib.parse.urlencode({**carried, "offset": following})}>; rel="next"'
            )
        if api.records_at is None and paging in ("link", "offset", "none"):
            body = chosen
        else:
            body = {api.records_at or "records": chosen, "meta": {"total": total}}
            if paging == "cursor":
                body["meta"]["next_cursor"] = (
                    base64.urlsafe_b64encode(str(following).encode()).decode()
                    if following is not None
                    else None
                )
            if paging == "next":
                body["next"] = (
                    f"{path}?{urllib.parse.urlencode({**carried, 'offset': following})}"
                    if following is not None
                    else None
                )
        self._send(200, body, headers)


def serve(port: int, state: State) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    return server


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=8765, help="0: any free port (printed on the first line)")
    parser.add_argument("--records", type=int, default=20_000, help="records per API")
    parser.add_argument("--token", help="require this credential")
    parser.add_argument("--throttle-every", type=int, default=0)
    parser.add_argument("--fail-every", type=int, default=0)
    parser.add_argument("--duplicates", action="store_true")
    args = parser.parse_args()
    state = State(args.records, args.token, args.throttle_every, args.fail_every, args.duplicates)
    server = serve(args.port, state)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
