#!/usr/bin/env python3
"""Writes the hand-made seed inputs of Fuzz/Corpus (every target but exposition, whose corpus grew from earlier runs).

Seeds are small, valid or nearly valid inputs that reach each parser's branches; libFuzzer mutates from them. Real
fixtures (model servers' answers) come from Tests/Fixtures. Rerun after changing a seed: python3 Fuzz/make-seeds.py
"""
import os
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "Fuzz", "Corpus")
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures")


def write(target, name, data):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def fixture(*parts):
    with open(os.path.join(FIXTURES, *parts), "rb") as f:
        return f.read()


# http-response: a selector byte (its value mod 3 picks the bound: 0 → 16 MiB, 1 → 1 MiB, 2 → 4 KiB; its high nibble is the
# piece size - 1 for the dripped read), then the answer.
def http(name, selector, answer):
    write("http-response", name, bytes([selector]) + answer.encode())


body = "vllm:num_requests_running{model_name=\"m\"} 1\n"
http("content-length", 0x30, f"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {len(body)}\r\n\r\n{body}")
http("chunked", 0x71, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n")
http("close-delimited", 0x02, "HTTP/1.0 200 OK\nContent-Type: application/openmetrics-text; version=1.0.0\n\n# EOF\n")
http("no-reason", 0xF0, "HTTP/1.1 204\r\n\r\n")
http("status-500", 0x10, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n\r\noops!")
http("huge-chunk", 0x20, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7fffffffffffffff\r\nabc\r\n")
http("negative-length", 0x00, "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n")
http("length-over-bound", 0x02, "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + "x" * 100)
http("short-body", 0x50, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
http("bad-chunk", 0x00, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\nzz\r\n")
http("signed-chunk", 0x00, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+4\r\nabcd\r\n-0\r\n\r\n")
http("header-no-colon", 0x00, "HTTP/1.1 200 OK\r\nBroken header\r\n\r\n")
http("not-http", 0x00, "SSH-2.0-OpenSSH_9.6\r\n")
http("long-header", 0x00, "HTTP/1.1 200 OK\r\nX-Long: " + "a" * 17000 + "\r\nContent-Length: 0\r\n\r\n")
http("many-headers", 0x00, "HTTP/1.1 200 OK\r\n" + "".join(f"X-H{i}: {i}\r\n" for i in range(101)) + "\r\n")
http("both-lengths", 0x00, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
http("close-over-bound", 0x02, "HTTP/1.1 200 OK\r\n\r\n" + "y" * 4200)

# label-selector: apimachinery's grammar, valid and not.
for i, text in enumerate([
    "", "a=b", "a==b,c!=d", "env in (prod, qa),tier notin (frontend)", "!x", "x", "k>5", "k<-3",
    "example.com/name=value", "a in ()", "a=", "a=b=c", "app.kubernetes.io/name in (a-b,c_d,e.f)", " x , !y ",
    "k>9223372036854775808", "a,a,a=1,a!=2", "(", "a notin (b", "A/b=c", "-a=b", "a b", "x=" + "v" * 64,
]):
    write("label-selector", f"seed-{i:02}", text)

# metrics-route: raw request targets (path?query) as the aggregator sends them.
for i, text in enumerate([
    "/apis", "/apis/custom.metrics.k8s.io", "/apis/custom.metrics.k8s.io/v1beta2/",
    "/apis/external.metrics.k8s.io/v1beta1",
    "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/*/gpu_utilization?labelSelector=app%3Dweb&metricLabelSelector=gpu+in+(0,1)",
    "/apis/custom.metrics.k8s.io/v1beta1/namespaces/ml/pods/trainer-0/gpu_memory_used_bytes",
    "/apis/custom.metrics.k8s.io/v1beta2/nodes/node-1/gpu_utilization",
    "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/metrics/gpu_utilization",
    "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/gpu_utilization",
    "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/deployments.apps/web/inference_requests_waiting",
    "/apis/external.metrics.k8s.io/v1beta1/namespaces/ml/accelerator_utilization_ratio?labelSelector=model_name%3Dllama",
    "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/%2A/m", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/%252A/m",
    "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/..%2F../m", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/a/%ZZ",
    "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ML/pods/a/m", "/apis//custom.metrics.k8s.io",
    "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/*/m?labelSelector=a&labelSelector=b&metricLabelSelector=%E2%82%AC",
    "/apis/custom.metrics.k8s.io/v1beta2/namespaces/*/metrics/m", "/healthz", "apis",
]):
    write("metrics-route", f"seed-{i:02}", text)

# quantity: resource.ParseQuantity's forms, plus eight-byte Doubles (the first eight bytes are also read as one).
for i, text in enumerate([
    "1", "1.5", "735m", "1Ki", "1500M", "12e6", "-0.001", ".5", "+1.", "1E-3", "9223372036854775807", "8Ei", "100Ei",
    "1e2147483647", "1000e2147483647", "1e-2147483648", "0.0000000001", "-1n", "1.5Gi", "0", "-0", "1u", "3k", "2P",
    "1e", "Ki", "1KiB", "1.2.3", "e3", "",
]):
    write("quantity", f"seed-{i:02}", text)
for i, value in enumerate([0.735, 1.5e9, 1e-12, -2.5e-7, 1.7976931348623157e308, 5e-324, 123456789.123456789]):
    write("quantity", f"double-{i}", struct.pack(">d", value))

# inference-normalizer: each engine's four scrapes (form feeds between them), the refused shapes, custom names.
for engine in ["vllm", "sglang", "tgi", "triton", "triton-trtllm", "vllm-restart"]:
    scrapes = b"\f".join(fixture("inference", engine, f"t{i}.prom") for i in range(4))
    if len(scrapes) > 60000:
        scrapes = b"\f".join(fixture("inference", engine, f"t{i}.prom") for i in range(2))
    write("inference-normalizer", engine, scrapes)
for name in sorted(os.listdir(os.path.join(FIXTURES, "inference", "bad"))):
    write("inference-normalizer", "bad-" + name.replace(".prom", ""), fixture("inference", "bad", name))
write("inference-normalizer", "custom-names",
      "@;queued-metric=queue_len;running-metric=running;kv-cache-metric=kv_pct;kv-cache-scale=0.01;model-label=model\n"
      "# TYPE queue_len gauge\nqueue_len{model=\"a\"} 3\n# TYPE running gauge\nrunning{model=\"a\"} 2\n"
      "# TYPE kv_pct gauge\nkv_pct{model=\"a\"} 42\n\f# TYPE queue_len gauge\nqueue_len{model=\"a\"} 1e308\n")
write("inference-normalizer", "workload-families",
      "@;metrics=app_queue_depth|app_tokens_total;inference=false\n# TYPE app_queue_depth gauge\napp_queue_depth 7\n"
      "# TYPE app_tokens counter\napp_tokens_total{pod=\"x\"} 10\n# TYPE accelerator_power_watts gauge\naccelerator_power_watts 1\n")
write("inference-normalizer", "openmetrics", fixture("exposition", "vllm.om"))

# metrics-config: docs/adapter.md's example and a few refusals.
write("metrics-config", "readme", """builtins: true
metrics:
  - name: gpu_sm_clock_hertz
    series: accelerator_clock_hertz
    selector: clock=sm
    aggregation: max
    per_accelerator: max
    namespace_total: max
    scale: 1
    resources: [pods, nodes, namespaces, external]
""")
write("metrics-config", "flow", '{"builtins": false, "metrics": [{"name": "q", "series": "app_queue_depth", "aggregation": "sum", "selector": "a in (b,c),!d"}]}')
write("metrics-config", "empty", "")
write("metrics-config", "twice", "metrics:\n- {name: a, series: b, aggregation: avg}\n- {name: a, series: c, aggregation: max}\n")
write("metrics-config", "alias", "metrics: &x\n- *x\n")
write("metrics-config", "deep", "metrics: " + "[" * 40 + "]" * 40 + "\n")
write("metrics-config", "bad-values", "builtins: maybe\nmetrics:\n- {name: A, series: '1x', aggregation: median, scale: nan, resources: []}\n")
write("metrics-config", "two-documents", "metrics: []\n---\nmetrics: []\n")

# web-config: exporter-toolkit's shape.
write("web-config", "full", """tls_server_config:
  cert_file: server.crt
  key_file: /etc/tls/server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: clients-ca.pem
  min_version: TLS12
  max_version: TLS13
http_server_config:
  headers: {Strict-Transport-Security: max-age=31536000, X-Frame-Options: deny}
  http2: true
basic_auth_users:
  prometheus: $2y$10$abcdefghijklmnopqrstuuXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX
""")
write("web-config", "request-cert", "tls_server_config: {cert_file: a, key_file: b, client_auth_type: RequestClientCert}\n")
write("web-config", "missing-file", "tls_server_config: {cert_file: missing.crt, key_file: b}\n")
write("web-config", "versions", "tls_server_config: {cert_file: a, key_file: b, min_version: TLS13, max_version: TLS12}\n")
write("web-config", "plain-password", "basic_auth_users: {alice: plaintext, bob: $2b$12$x}\n")
write("web-config", "null-users", "basic_auth_users:\n")
write("web-config", "unsupported", "tls_server_config: {cipher_suites: [TLS_AES_128_GCM_SHA256]}\n")

# kubeconfig: the shapes KubernetesTests use, and broken ones.
write("kubeconfig", "contexts", """apiVersion: v1
kind: Config
current-context: dev
clusters:
  - name: c1
    cluster: {server: "https://10.0.0.1:6443/", certificate-authority: certs/ca.pem, tls-server-name: kubernetes}
  - name: c2
    cluster: {server: "https://k8s.example:443", certificate-authority-data: REFUQQ==, insecure-skip-tls-verify: true}
users:
  - name: tok
    user: {token: abc}
  - name: cert
    user: {client-certificate-data: Q0VSVA, client-key-data: S0VZ}
contexts:
  - name: dev
    context: {cluster: c1, user: tok, namespace: ml}
  - name: other
    context: {cluster: c2, user: cert}
""")
write("kubeconfig", "cert-files", """current-context: x
clusters: [{name: c, cluster: {server: "http://127.0.0.1:8080"}}]
users: [{name: u, user: {client-certificate: /missing/cert.pem, client-key: key.pem}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
""")
write("kubeconfig", "basic-auth", """current-context: x
clusters: [{name: c, cluster: {server: "https://[::1]:6443", certificate-authority-data: "not base64!"}}]
users: [{name: u, user: {username: admin, password: secret, tokenFile: /var/run/token}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
""")
write("kubeconfig", "no-context", "apiVersion: v1\nkind: Config\nclusters: []\n")
write("kubeconfig", "ftp-server", "current-context: x\nclusters: [{name: c, cluster: {server: ftp://x}}]\ncontexts: [{name: x, context: {cluster: c}}]\n")


# tpu-runtime: MetricResponse messages, hand-encoded (field numbers from Protos/tpu/runtime_metric_service.proto).
def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number, wire, payload):
    key = varint(number << 3 | wire)
    if wire == 0:
        return key + varint(payload)
    if wire == 1:
        return key + struct.pack("<d", payload)
    return key + varint(len(payload)) + payload


def string(number, text):
    return field(number, 2, text.encode() if isinstance(text, str) else text)


def attribute_int(key, n):
    return string(1, key) + field(2, 2, field(3, 0, n))


def attribute_kv(entries):
    # AttrValue.kvlist_attr (6) holding Attributes (1).
    kv = b"".join(field(1, 2, string(1, k) + field(2, 2, v)) for k, v in entries)
    return field(2, 2, field(6, 2, kv))


def gauge_double(value):
    return field(3, 2, field(1, 1, value))


def gauge_int(value):
    return field(3, 2, field(2, 0, value))


def metric(attr, measure):
    return field(3, 2, field(1, 2, attr) + measure)


def response(name, metrics):
    return field(1, 2, string(1, name) + b"".join(metrics))


write("tpu-runtime", "hbm-usage", response("tpu.runtime.hbm.memory.usage.bytes",
                                           [metric(attribute_int("device-id", i), gauge_int(1 << 33)) for i in range(4)]))
write("tpu-runtime", "hbm-total", response("tpu.runtime.hbm.memory.total.bytes",
                                           [metric(attribute_int("device-id", i), gauge_int(1 << 34)) for i in range(4)]))
write("tpu-runtime", "duty-cycle", response("tpu.runtime.tensorcore.dutycycle.percent",
                                            [metric(attribute_int("accelerator_id", i), gauge_double(v))
                                             for i, v in enumerate([0.0, 55.5, 100.4, 101.0, float("nan")])]))
write("tpu-runtime", "unnamed-mixed", response("", [metric(attribute_int("id", 0), gauge_double(12.0)),
                                                    metric(attribute_int("id", 0), gauge_double(13.0)),
                                                    metric(attribute_int("id", 5000), field(4, 2, field(2, 0, 7)))]))
write("tpu-runtime", "queue", response("hlo.queue.size.gauge",
                                       [metric(attribute_kv([("device_ordinal", field(1, 2, b"3"))]), gauge_int(2)),
                                        metric(attribute_kv([("device_ordinal", field(3, 0, 1))]), gauge_double(0.5))]))


def distribution(count, mean, options, counts):
    packed = b"".join(varint(c) for c in counts)
    return field(5, 2, field(1, 0, count) + field(2, 1, mean) + field(6, 2, options) + field(7, 2, packed))


exponential = field(2, 2, field(1, 0, 4) + field(2, 1, 2.0) + field(3, 1, 100.0))
linear = field(4, 2, field(1, 0, 3) + field(2, 1, 50.0) + field(3, 1, 0.0))
explicit = field(3, 2, field(1, 2, b"".join(struct.pack("<d", b) for b in [10.0, 100.0, 1000.0])))
timing = "hlo.execution.timing.distribution.microseconds"
write("tpu-runtime", "timing-exponential", response(timing, [
    metric(attribute_kv([("device_ordinal", field(3, 0, 0))]), distribution(6, 350.0, exponential, [0, 1, 2, 3, 0, 0]))]))
write("tpu-runtime", "timing-linear", response(timing, [
    metric(attribute_kv([("device_ordinal", field(1, 2, b"1"))]), distribution(3, 40.0, linear, [1, 1, 1]))]))
write("tpu-runtime", "timing-explicit", response(timing, [
    metric(attribute_kv([("device_ordinal", field(3, 0, 2))]), distribution(5, 90.0, explicit, [1, 1, 1, 1, 1])),
    metric(attribute_kv([("device_ordinal", field(3, 0, 3))]), distribution(4, 90.0, explicit, [1, 1, 1, 1, 1]))]))
write("tpu-runtime", "timing-count-only", response(timing, [
    metric(attribute_kv([("device_ordinal", field(3, 0, 0))]), field(5, 2, field(1, 0, 9) + field(2, 1, 12.5)))]))

# identity-headers: the ConfigMap's data (key=value lines), a blank line, then the request's headers.
write("identity-headers", "defaults", "X-Remote-User: alice\nX-Remote-Group: dev\nX-Remote-Group: ops\nX-Remote-Extra-Scopes: a\n"
      "x-remote-extra-acme.com%2Fproject: p\nAuthorization: Bearer t\n")
write("identity-headers", "configmap",
      'requestheader-username-headers=["X-User","X-Remote-User"]\nrequestheader-group-headers=["X-Groups"]\n'
      'requestheader-extra-headers-prefix=["X-Extra-","X-Remote-Extra-"]\nrequestheader-allowed-names=["front-proxy-client"]\n'
      "\nx-user: bob\nX-Remote-User: mallory\nX-Groups: system:masters\nX-Extra-Reason: %zz\nX-EXTRA-: empty\n")
write("identity-headers", "bad-configmap",
      'requestheader-username-headers=X-User\nrequestheader-allowed-names=["a",1]\nrequestheader-extra-headers-prefix=[""]\n'
      "\nX-User: eve\nX-Remote-User:\nHost: adapter\n")
write("identity-headers", "no-user", "X-Remote-Group: dev\nX-Remote-Extra-: x\n")
