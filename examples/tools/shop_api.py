"""A tiny stand-in for Harbour Lane Bakery's own API, to try the example tools file against:

    python examples/tools/shop_api.py            # serves http://127.0.0.1:8765
    TOOLS_FILE=examples/tools/tools.toml TOOLS_ALLOW_PRIVATE=on SHOP_API_KEY=try-me flask --app app chat

GET /orders/{number}?customer=... answers an order's status; POST /bookings takes a table booking. Both want
`Authorization: Bearer $SHOP_API_KEY` (any value set in the environment, "try-me" by default). Standard library only.
"""

from __future__ import annotations

import json
import os
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ORDERS = {
    "1042": {"number": "1042", "status": "baked and out for delivery", "items": ["sourdough loaf", "6 croissants"]},
    "1043": {"number": "1043", "status": "ready to collect at the counter", "items": ["birthday cake (chocolate)"]},
    "1044": {"number": "1044", "status": "to be baked on Saturday morning", "items": ["12 cinnamon buns"]},
}
# Tables for each day: the café seats 28 inside.
FREE_SEATS = {"friday": 6, "saturday": 0, "sunday": 12}


class ShopApi(BaseHTTPRequestHandler):
    """The shop's API: orders and bookings."""

    def do_GET(self) -> None:
        if not self._authorised():
            return
        parts = urlsplit(self.path)
        number = parts.path.removeprefix("/orders/")
        order = ORDERS.get(number) if parts.path.startswith("/orders/") else None
        if order is None:
            self._answer(HTTPStatus.NOT_FOUND, {"error": "no such order"})
            return
        customer = parse_qs(parts.query).get("customer", [""])[0]
        self._answer(HTTPStatus.OK, {"order": order, "asked_for": customer})

    def do_POST(self) -> None:
        if not self._authorised():
            return
        if urlsplit(self.path).path != "/bookings":
            self._answer(HTTPStatus.NOT_FOUND, {"error": "no such endpoint"})
            return
        try:
            booking = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            day, people = str(booking["day"]).lower(), int(booking["people"])
        except (ValueError, KeyError, TypeError):
            self._answer(HTTPStatus.BAD_REQUEST, {"error": "day and people are needed"})
            return
        free = FREE_SEATS.get(day, 0)
        if people > free:
            self._answer(HTTPStatus.OK, {"booked": False, "reason": f"only {free} seats free on {day}"})
            return
        FREE_SEATS[day] = free - people
        self._answer(
            HTTPStatus.OK, {"booked": True, "day": day, "people": people, "reference": f"T-{day[:3]}-{people}"}
        )

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {os.environ.get('SHOP_API_KEY', 'try-me')}":
            return True
        self._answer(HTTPStatus.UNAUTHORIZED, {"error": "unauthorised"})
        return False

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(port: int = 8765) -> ThreadingHTTPServer:
    """The API, served on 127.0.0.1 (call serve_forever on it)."""
    return ThreadingHTTPServer(("127.0.0.1", port), ShopApi)


if __name__ == "__main__":
    server = serve(int(sys.argv[1]) if len(sys.argv) > 1 else 8765)
    print(f"Harbour Lane Bakery's API on http://127.0.0.1:{server.server_address[1]} (Ctrl-C stops it)")
    server.serve_forever()
