"""A W&B-protocol server that stores nothing: the wandb client's floor for bench/wandb_door.py.

    python bench/_null_wandb.py [--port N]      # prints "READY http://127.0.0.1:N", serves

It answers what the wandb 0.31 client needs to ``init``, ``log`` and ``finish`` a run — the
GraphQL operations of ``shared/wandb-protocol/`` (``Viewer``, ``UpsertBucket``,
``CreateRunFiles``, ``ServerFeaturesQuery``, ...), file-stream posts, the file uploads
``CreateRunFiles`` points at, the client's own telemetry — as fast as a Python server can: the
body is read and dropped, the answer is a constant or an echo of the request's variables. A
``finish()`` against it costs only what the client itself does at the end of a run (its last
file-stream post, its exit handshake, its uploads), so what ``finish()`` takes against runyard
server beyond this is what runyard could remove.

Standard library only (``http.server`` with HTTP/1.1 keep-alive, one thread per connection).
Any other GraphQL field gets ``null`` (the client then takes the path an older server takes);
``--verbose`` prints each request's operation, to see what a new client version asks.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ENTITY = "null"
_FIELD = re.compile(r"[{(]\s*(?:\w+\s*:\s*)?(\w+)")


def _first_field(query: str) -> str:
    """The top-level field an operation asks for (after the operation's own braces)."""
    body = query[query.find("{") :] if "{" in query else query
    match = _FIELD.search(body)
    return match.group(1) if match else ""


def answer(body: dict[str, Any], base_url: str) -> dict[str, Any]:
    """The GraphQL answer for one operation of the wandb client."""
    query = str(body.get("query") or "")
    variables = body.get("variables") or {}
    field = _first_field(query)
    if field == "viewer":
        return {
            "viewer": {
                "id": "VXNlcjox",
                "entity": ENTITY,
                "username": ENTITY,
                "email": None,
                "flags": "{}",
                "admin": False,
                "teams": {"edges": []},
                "defaultFramework": None,
                "photoUrl": None,
                "apiKeys": {"edges": []},
            }
        }
    if field == "upsertBucket":
        name = variables.get("name") or variables.get("id") or "run"
        project = variables.get("project") or "uncategorized"
        return {
            "upsertBucket": {
                "bucket": {
                    "id": f"run:{name}",
                    "name": name,
                    "displayName": variables.get("displayName") or name,
                    "description": None,
                    "config": variables.get("config") or "{}",
                    "sweepName": None,
                    "project": {
                        "id": f"project:{project}",
                        "name": project,
                        "entity": {"id": f"entity:{ENTITY}", "name": ENTITY},
                    },
                    "historyLineCount": 0,
                },
                "inserted": True,
            }
        }
    if field == "createRunFiles":
        run = variables.get("run") or "run"
        return {
            "createRunFiles": {
                "runID": f"run:{run}",
                "uploadHeaders": [],
                "files": [
                    {"name": name, "uploadUrl": f"{base_url}/storage/{run}/{name}"}
                    for name in variables.get("files") or []
                ],
            }
        }
    if field == "serverInfo":
        return {
            "serverInfo": {
                "features": [],
                "cliVersionInfo": {"max_cli_version": None},
                "latestLocalVersionInfo": None,
                "availableBucketProviders": [],
                "isGoogleIap": False,
                "frontendHost": None,
            }
        }
    # RunResumeStatus (model), OrganizationCoreWeaveOrganizationID (entity), ...: nothing
    return {field or "unknown": None}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client reuses its connections
    verbose = False

    def log_message(self, format: str, *args: Any) -> None:
        if self.verbose:
            sys.stderr.write(f"null-wandb: {format % args}\n")

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            raw = b"".join(parts)
        else:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if "gzip" in self.headers.get("Content-Encoding", "").lower():
            raw = gzip.decompress(raw)
        return raw

    def _send(self, doc: Any) -> None:
        data = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        raw = self._body()
        if self.path.startswith("/graphql"):
            host = self.headers.get("Host") or f"127.0.0.1:{getattr(self.server, 'server_port', 0)}"
            base = f"http://{host}"
            request = json.loads(raw or b"{}")
            if isinstance(request, list):
                self._send([{"data": answer(r, base)} for r in request])
            else:
                if self.verbose:
                    sys.stderr.write(f"null-wandb: graphql {_first_field(request['query'])}\n")
                self._send({"data": answer(request, base)})
        elif self.path.endswith("/file_stream"):
            self._send({"exitcode": None, "limits": {}})
        else:  # /sdk/otel/v1/..., anything else: accepted and dropped
            self._send({})

    def do_PUT(self) -> None:
        self._body()
        self._send({})

    def do_GET(self) -> None:
        self._send({"ok": True})


def serve(port: int, verbose: bool = False) -> ThreadingHTTPServer:
    Handler.verbose = verbose
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--verbose", action="store_true", help="print each request")
    args = parser.parse_args()
    server = serve(args.port, args.verbose)
    print(f"READY http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
