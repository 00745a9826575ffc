"""An HTTP echo server answering as go-httpbin does (what E2B's `httpbin` template serves), for the
local cloud's `httpbin` template: E2B's own tests start it as a sidecar sandbox and read back the
headers a request reached it with. Python's standard library only, as every sandbox has it.

Endpoints: /headers, /get, /anything[/...] (any method), /post, /put, /patch, /delete, /ip,
/user-agent, /status/<code>. Header names are given as Go writes them (X-Test-Token), each with the
list of its values.

Usage: python3 httpbin.py [PORT]  (default 8080, or $PORT)
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

METHODS = {"/get": "GET", "/post": "POST", "/put": "PUT", "/patch": "PATCH", "/delete": "DELETE"}


def canonical(name):
    """A header name as Go's net/http canonicalises it: each dash-separated part capitalised."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


class Handler(BaseHTTPRequestHandler):
    server_version = "httpbin"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - the standard library's name
        return

    def headers_seen(self):
        seen = {}
        for name, value in self.headers.items():
            seen.setdefault(canonical(name), []).append(value)
        return seen

    def answer(self, status, document):
        body = (json.dumps(document, indent=2) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; encoding=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def echo(self, url):
        data = self.body()
        text = data.decode("utf-8", "replace")
        document = {
            "args": parse_qs(url.query),
            "headers": self.headers_seen(),
            "method": self.command,
            "origin": self.client_address[0],
            "url": "http://" + (self.headers.get("Host") or "") + self.path,
        }
        if self.command not in ("GET", "HEAD"):
            document["data"] = text
            try:
                document["json"] = json.loads(text) if text else None
            except ValueError:
                document["json"] = None
        return document

    def route(self):
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        if path == "/headers":
            return self.answer(200, {"headers": self.headers_seen()})
        if path == "/ip":
            return self.answer(200, {"origin": self.client_address[0]})
        if path == "/user-agent":
            return self.answer(200, {"user-agent": self.headers.get("User-Agent", "")})
        if path == "/anything" or path.startswith("/anything/"):
            return self.answer(200, self.echo(url))
        if path in METHODS:
            if METHODS[path] != self.command:
                return self.answer(405, {"status_code": 405, "error": "Method Not Allowed"})
            return self.answer(200, self.echo(url))
        if path.startswith("/status/"):
            code = path[len("/status/"):]
            if code.isdigit() and 100 <= int(code) <= 599:
                self.send_response(int(code))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            return self.answer(400, {"status_code": 400, "error": "invalid status code: " + code})
        if path == "/":
            return self.answer(200, {"endpoints": ["/headers", "/get", "/anything", "/post", "/put", "/patch", "/delete", "/ip", "/user-agent", "/status/<code>"]})
        return self.answer(404, {"status_code": 404, "error": "Not Found"})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = route


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("PORT", "8080"))
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
