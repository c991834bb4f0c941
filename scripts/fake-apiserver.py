#!/usr/bin/env python3
"""A small fake Kubernetes API server for tests (Python stdlib only).

Serves the few resources the project reads and writes, with list (label and field selectors, pagination), watch
(chunked JSON lines, bookmarks, 410 after a compaction), create (409 AlreadyExists), merge-patch, and
SubjectAccessReview / TokenReview answers from rules, recording every review it receives.

    fake-apiserver.py --seed seed.json [--port 0] [--tls-cert C --tls-key K] [--token T] [--bookmark-interval S]

Watches that allow bookmarks get one every --bookmark-interval seconds (default 1, so tests see them quickly; a
real API server sends about one a minute, which the benchmarks use).

Prints the bound port as its first line of output. Seed file (JSON):
    {"objects": [<Kubernetes objects with apiVersion, kind, metadata>],
     "tokens": {"<token>": {"username": "...", "uid": "...", "groups": [...]}},
     "allow": [{"user": "name" | "group": "name", "verb": "get"?, "resource": "pods"?}]}

Control API (no authentication):
    POST   /fake/objects            body: an object; created or replaced (ADDED / MODIFIED event)
    DELETE /fake/objects?kind=K&namespace=N&name=M     (DELETED event)
    GET    /fake/reviews            {"subjectaccessreviews": [...], "tokenreviews": [...]} as received
    POST   /fake/compact            watches from older resourceVersions get 410 Gone
    POST   /fake/fail?count=N       the next N API requests answer 500
    POST   /fake/forbid-watches?count=N   the next N watch requests answer 403, as RBAC without the watch verb does
                                    (lists are served); count=0 ends it
    POST   /fake/expire-watches?count=N   the next N watches end at once with 410 Gone, whatever their version (a
                                    broken or hostile server); count=0 ends it
    GET    /fake/requests           {"list": N, "watch": N, "get": N}: authorized API GET requests received, by kind
    POST   /fake/drop-watches       closes every open watch stream
    POST   /fake/freeze-watches     every open watch stream goes silent but stays open (a half-open connection);
                                    later watches are served as usual
"""
import argparse
import copy
import json
import socket
import ssl
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KINDS = {
    "Pod": ("", "v1", "pods", True),
    "ConfigMap": ("", "v1", "configmaps", True),
    "Secret": ("", "v1", "secrets", True),
    "EndpointSlice": ("discovery.k8s.io", "v1", "endpointslices", True),
    "APIService": ("apiregistration.k8s.io", "v1", "apiservices", False),
    "ResourceSlice": ("resource.k8s.io", "v1", "resourceslices", False),
}
RESOURCES = {v[2]: k for k, v in KINDS.items()}

lock = threading.Condition()
objects = {}          # (resource, namespace, name) -> object
events = []           # (rv, type, resource, object)
state = {"rv": 100, "compacted": 0, "fail": 0, "forbid_watches": 0, "expire_watches": 0, "generation": 0, "frozen": set()}
requests = {"list": 0, "watch": 0, "get": 0}
reviews = {"subjectaccessreviews": [], "tokenreviews": []}
config = {"tokens": {}, "allow": [], "token": None, "bookmark_interval": 1.0}


def next_rv():
    state["rv"] += 1
    return str(state["rv"])


def store(obj, event_type=None):
    kind = obj.get("kind")
    group, version, resource, namespaced = KINDS[kind]
    meta = obj.setdefault("metadata", {})
    ns = meta.get("namespace", "") if namespaced else ""
    key = (resource, ns, meta["name"])
    meta.setdefault("uid", str(uuid.uuid4()))
    meta["resourceVersion"] = next_rv()
    typ = event_type or ("MODIFIED" if key in objects else "ADDED")
    objects[key] = obj
    events.append((int(meta["resourceVersion"]), typ, resource, copy.deepcopy(obj)))
    lock.notify_all()


def remove(resource, ns, name):
    obj = objects.pop((resource, ns, name), None)
    if obj is not None:
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = next_rv()
        events.append((int(obj["metadata"]["resourceVersion"]), "DELETED", resource, obj))
        lock.notify_all()
    return obj


def label_match(selector, labels):
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, v = term.split("=", 1) if "==" not in term else term.split("==", 1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def field_match(selector, obj):
    for term in filter(None, selector.split(",")):
        k, v = term.split("=", 1)
        value = obj
        for part in k.split("."):
            value = value.get(part, {}) if isinstance(value, dict) else {}
        if (value if isinstance(value, str) else "") != v:
            return False
    return True


def selected(obj, resource, ns, query):
    meta = obj["metadata"]
    if ns and meta.get("namespace", "") != ns:
        return False
    if "labelSelector" in query and not label_match(query["labelSelector"], meta.get("labels") or {}):
        return False
    if "fieldSelector" in query and not field_match(query["fieldSelector"], obj):
        return False
    return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_json(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def status(self, code, reason, message):
        self.send_json(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
                              "reason": reason, "code": code})

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def route(self):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        parts = [p for p in url.path.split("/") if p]
        # /api/v1/... or /apis/<group>/<version>/...
        if parts[:1] == ["api"]:
            rest = parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            rest = parts[3:]
        else:
            return None, None, None, query
        ns = ""
        if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        resource = rest[0] if rest else None
        name = rest[1] if len(rest) > 1 else None
        return resource, ns, name, query

    def authorized(self):
        if config["token"] is None:
            return True
        return self.headers.get("Authorization") == "Bearer " + config["token"]

    def failing(self):
        with lock:
            if state["fail"] > 0:
                state["fail"] -= 1
                return True
        return False

    # --- control API ---------------------------------------------------------------------------------------------
    def control(self, method):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        with lock:
            if method == "POST" and url.path == "/fake/objects":
                store(self.body())
                return self.send_json(200, {})
            if method == "DELETE" and url.path == "/fake/objects":
                _, _, resource, namespaced = KINDS[query["kind"]]
                remove(resource, query.get("namespace", "") if namespaced else "", query["name"])
                return self.send_json(200, {})
            if method == "GET" and url.path == "/fake/reviews":
                return self.send_json(200, reviews)
            if method == "POST" and url.path == "/fake/compact":
                state["compacted"] = state["rv"]
                lock.notify_all()
                return self.send_json(200, {})
            if method == "POST" and url.path == "/fake/fail":
                state["fail"] = int(query.get("count", "1"))
                return self.send_json(200, {})
            if method == "POST" and url.path == "/fake/forbid-watches":
                state["forbid_watches"] = int(query.get("count", "1"))
                return self.send_json(200, {})
            if method == "POST" and url.path == "/fake/expire-watches":
                state["expire_watches"] = int(query.get("count", "1"))
                return self.send_json(200, {})
            if method == "GET" and url.path == "/fake/requests":
                return self.send_json(200, requests)
            if method == "POST" and url.path == "/fake/freeze-watches":
                state["frozen"].add(state["generation"])
                state["generation"] += 1
                lock.notify_all()
                return self.send_json(200, {})
            if method == "POST" and url.path == "/fake/drop-watches":
                state["generation"] += 1
                lock.notify_all()
                return self.send_json(200, {})
        self.status(404, "NotFound", "no such control path")

    # --- API -----------------------------------------------------------------------------------------------------
    def do_GET(self):
        if self.path.startswith("/fake/"):
            return self.control("GET")
        if not self.authorized():
            return self.status(401, "Unauthorized", "Unauthorized")
        resource, ns, name, query = self.route()
        watching = query.get("watch") in ("true", "1")
        with lock:
            requests["get" if name else "watch" if watching else "list"] += 1
        if self.failing():
            return self.status(500, "InternalError", "injected failure")
        if resource not in RESOURCES:
            return self.status(404, "NotFound", "the server could not find the requested resource")
        if watching:
            with lock:
                forbidden = state["forbid_watches"] > 0
                if forbidden:
                    state["forbid_watches"] -= 1
            if forbidden:
                return self.status(403, "Forbidden", f'{resource} is forbidden: cannot watch resource "{resource}"')
        if name:
            with lock:
                obj = objects.get((resource, ns, name))
            if obj is None:
                return self.status(404, "NotFound", f'{resource} "{name}" not found')
            return self.send_json(200, obj)
        if query.get("watch") in ("true", "1"):
            return self.watch(resource, ns, query)
        with lock:
            items = sorted((o for (r, _, _), o in objects.items() if r == resource and selected(o, resource, ns, query)),
                           key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
            rv = str(state["rv"])
        limit = int(query.get("limit", "0") or 0)
        start = int(query.get("continue", "0") or 0)
        page = items[start:start + limit] if limit else items[start:]
        cont = str(start + limit) if limit and start + limit < len(items) else ""
        self.send_json(200, {"kind": RESOURCES[resource] + "List", "apiVersion": "v1",
                             "metadata": {"resourceVersion": rv, "continue": cont}, "items": page})

    def watch(self, resource, ns, query):
        since = int(query.get("resourceVersion") or 0)
        timeout = float(query.get("timeoutSeconds", "300"))
        with lock:
            if since and since < state["compacted"]:
                gone = True
            elif state["expire_watches"] > 0:
                state["expire_watches"] -= 1
                gone = True
            else:
                gone = False
            generation = state["generation"]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def chunk(obj):
            data = (json.dumps(obj) + "\n").encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        try:
            if gone:
                chunk({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                                   "message": "too old resource version", "reason": "Expired",
                                                   "code": 410}})
            else:
                deadline = time.time() + timeout
                sent = since
                last_bookmark = time.time()
                while time.time() < deadline:
                    with lock:
                        dropped = state["generation"] != generation
                        frozen = generation in state["frozen"]
                    if frozen:
                        # Silent, never closed: what a client sees of a peer that vanished without a FIN.
                        while True:
                            time.sleep(3600)
                    if dropped:
                        # Drop the connection without the final chunk, as a dying API server would.
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    with lock:
                        if state["compacted"] > sent:
                            pending = [("ERROR", None)]
                        else:
                            pending = [(t, o) for (rv, t, r, o) in events
                                       if rv > sent and r == resource and selected(o, resource, ns, query)]
                            sent = max([sent] + [rv for (rv, _, r, _) in events if rv > sent])
                        if not pending:
                            lock.wait(0.2)
                    for typ, obj in pending:
                        if typ == "ERROR":
                            chunk({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1",
                                                               "status": "Failure", "reason": "Expired",
                                                               "message": "too old resource version", "code": 410}})
                            raise StopIteration
                        chunk({"type": typ, "object": obj})
                    if (time.time() - last_bookmark > config["bookmark_interval"]
                            and query.get("allowWatchBookmarks") == "true"):
                        chunk({"type": "BOOKMARK", "object": {"kind": RESOURCES[resource], "apiVersion": "v1",
                                                              "metadata": {"resourceVersion": str(sent)}}})
                        last_bookmark = time.time()
            self.wfile.write(b"0\r\n\r\n")
        except (StopIteration,):
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    def do_POST(self):
        if self.path.startswith("/fake/"):
            return self.control("POST")
        if not self.authorized():
            return self.status(401, "Unauthorized", "Unauthorized")
        if self.failing():
            return self.status(500, "InternalError", "injected failure")
        body = self.body()
        path = urllib.parse.urlsplit(self.path).path
        if path == "/apis/authorization.k8s.io/v1/subjectaccessreviews":
            with lock:
                reviews["subjectaccessreviews"].append(body)
            spec = body.get("spec", {})
            attributes = spec.get("resourceAttributes") or spec.get("nonResourceAttributes") or {}
            allowed = False
            for rule in config["allow"]:
                who = rule.get("user") == spec.get("user") or rule.get("group") in (spec.get("groups") or [])
                what = all(rule.get(k) in (None, attributes.get(k)) for k in ("verb", "resource", "namespace"))
                allowed = allowed or (who and what)
            body["status"] = {"allowed": allowed, "reason": "allowed by a seed rule" if allowed else "no seed rule"}
            return self.send_json(201, body)
        if path == "/apis/authentication.k8s.io/v1/tokenreviews":
            with lock:
                reviews["tokenreviews"].append(body)
            user = config["tokens"].get(body.get("spec", {}).get("token"))
            body["status"] = {"authenticated": True, "user": user} if user else {"authenticated": False}
            return self.send_json(201, body)
        resource, ns, name, _ = self.route()
        if resource not in RESOURCES or name:
            return self.status(404, "NotFound", "the server could not find the requested resource")
        with lock:
            meta = body.setdefault("metadata", {})
            if ns:
                meta["namespace"] = ns
            key = (resource, ns if KINDS[RESOURCES[resource]][3] else "", meta.get("name"))
            if key in objects:
                return self.status(409, "AlreadyExists", f'{resource} "{meta.get("name")}" already exists')
            body.setdefault("kind", RESOURCES[resource])
            store(body, "ADDED")
            return self.send_json(201, body)

    def do_PATCH(self):
        if not self.authorized():
            return self.status(401, "Unauthorized", "Unauthorized")
        resource, ns, name, _ = self.route()
        patch = self.body()
        with lock:
            key = (resource, ns, name)
            obj = objects.get(key)
            if obj is None:
                return self.status(404, "NotFound", f'{resource} "{name}" not found')

            def merge(target, change):
                for k, v in change.items():
                    if v is None:
                        target.pop(k, None)
                    elif isinstance(v, dict) and isinstance(target.get(k), dict):
                        merge(target[k], v)
                    else:
                        target[k] = v
            obj = copy.deepcopy(obj)
            merge(obj, patch)
            store(obj, "MODIFIED")
            return self.send_json(200, obj)

    def do_DELETE(self):
        if self.path.startswith("/fake/"):
            return self.control("DELETE")
        self.status(405, "MethodNotAllowed", "not supported")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--token")
    parser.add_argument("--bookmark-interval", type=float, default=1.0,
                        help="seconds between BOOKMARK events on a watch that allows them (a real API server: about 60)")
    args = parser.parse_args()
    config["token"] = args.token
    config["bookmark_interval"] = args.bookmark_interval
    if args.seed:
        with open(args.seed) as f:
            seed = json.load(f)
        config["tokens"] = seed.get("tokens", {})
        config["allow"] = seed.get("allow", [])
        with lock:
            for obj in seed.get("objects", []):
                store(obj, "ADDED")
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
