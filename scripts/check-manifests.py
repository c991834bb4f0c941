#!/usr/bin/env python3
"""Checks deploy/ as shipped: every overlay renders, every object is valid, the security scan is clean.

    .build-checks/venv/bin/python scripts/check-manifests.py      (make test runs it; scripts/install-deps.sh
                                                                     makes the virtual environment)

1. Renders every kustomization under deploy/ (nested ones too) with the real kustomize (`kubectl kustomize`), and
   checks that every kustomize Component is used by at least one of them, so it gets rendered and checked too.
2. Validates every rendered object offline: Kubernetes kinds against the API's OpenAPI schemas (PyPI
   kubernetes-validate, strict: unknown fields are errors) for the oldest and newest Kubernetes versions below;
   Prometheus Operator and cert-manager objects against models generated from their CRD schemas (PyPI
   cloudcoil.models.*), with unknown fields made errors too. A kind with no schema is an error, not a skip.
3. Project rules the schemas cannot express: namespaces, the exporter's and adapter's security settings and host
   access, no insecureSkipTLSVerify, monitors and scrape jobs with honor_labels and the relabelling that moves the
   exporter pod's namespace/pod to exporter_namespace/exporter_pod and adds node (run through a small emulation of
   Prometheus' relabelling, with the labels the Prometheus Operator adds first), selectors that find their Service
   and ports, the generated PrometheusRule being current, and deploy/prometheus-scrape.yaml through promtool.
   The Kubernetes AI conformance suite's ways in: the exporter's Service through the API server's service proxy
   (http, a named port 9445 whose target is the port the exporter listens on, /metrics, NetworkPolicies that admit
   a control-plane source; TLS overlays listed, not failed), with mutated renders that must fail; the optional
   Prometheus (selectors that find the suite's ServiceMonitor and ours, RBAC, restricted pod security, its Service);
   the -service-metrics-scrape-manifest template, rendered with the suite's fields and validated like a render, and
   the scrape job that must keep it; the KAR-0057 example workload and its HPA.
4. Scans the rendered manifests with checkov (framework kubernetes). Every finding must be fixed or accepted with a
   `checkov.io/skipN: CKV_K8S_xx=reason` annotation beside a comment in the manifest; the accepted ones are listed.
5. Lints deploy/Containerfile* with hadolint (any finding fails; an accepted one has `# hadolint ignore=` under a
   comment line saying why) and checks the rules we hold them to (multi-stage, TARGETARCH, static stdlib, non-root
   USER, the bookworm-slim runtime). scripts/check-runtime-root.sh (`make check-images`) runs the binaries in a root
   with those runtime packages.

Ends with one line, `N passed, M failed`; exits 1 if anything failed.
"""
from __future__ import annotations

import base64
import copy
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

try:
    import yaml
    import kubernetes_validate
    import pydantic
    from cloudcoil.models.cert_manager import v1 as cert_manager_v1
    from cloudcoil.models.prometheus_operator import v1 as prometheus_operator_v1
except ImportError as error:  # pragma: no cover - environment problem, said plainly
    sys.exit(f"check-manifests: {error}; run scripts/install-deps.sh and use .build-checks/venv/bin/python")

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
VENV_BIN = pathlib.Path(sys.executable).parent
# The oldest Kubernetes the manifests promise to work on, and the newest schema kubernetes-validate ships.
KUBERNETES_VERSIONS = ["1.30.0", "1.37.0"]
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "APIService", "ClusterIssuer",
                  "CustomResourceDefinition", "PriorityClass", "RuntimeClass"}
# Objects allowed outside accel-metrics: the one RoleBinding that must sit beside kube-system's ConfigMap, and the
# HPA examples, which live with the workloads they scale.
OTHER_NAMESPACES = {("RoleBinding", "accel-metrics-adapter-auth-reader"): "kube-system"}
EXAMPLE_OVERLAYS = {"examples"}
# The AI conformance suite (kubernetes-sigs/ai-conformance, test/), as its tests reach us. KAR-0059: GET
# /api/v1/namespaces/<ns>/services/http:<svc>:<port>/proxy/metrics, with the flags docs/conformance.md gives.
EXPORTER_NAMESPACE, EXPORTER_SERVICE, EXPORTER_PORT = "accel-metrics", "accel-exporter", 9445
# The Service port's name: what the ServiceMonitor, the PodMonitor and prometheus-scrape.yaml's keep rule select.
EXPORTER_PORT_NAME = "metrics"
EXPORTER_LABELS = {"app.kubernetes.io/name": "accel-exporter"}
# The exporter's defaults (Sources/ExporterApp/ExporterFlags.swift and Collectors/) when its args do not set them.
EXPORTER_DEFAULTS = {"--web.listen-address": ":9445", "--web.telemetry-path": "/metrics"}
# KAR-0061: the fields the suite fills a -service-metrics-scrape-manifest template with (its namespace is
# ai-service-metrics-<5 random>, its run ID 10 random lower-case letters and digits), the labels its stub carries,
# and the label docs/conformance.md tells users to pass with -service-metrics-scrape-labels for our Prometheus.
SCRAPE_TEMPLATE = DEPLOY / "conformance" / "service-metrics-scrape.yaml.tmpl"
TEMPLATE_RENDER = "conformance/service-metrics-scrape.yaml.tmpl"
SUITE_FIELDS = {"Namespace": "ai-service-metrics-x7k2p", "ServiceName": "ai-metrics-stub", "PortName": "http",
                "Port": "8080", "AppLabelKey": "app.kubernetes.io/name", "AppLabelValue": "ai-metrics-stub",
                "RunID": "b5x9q2m7kd"}
SUITE_SCRAPE_LABELS = {"accelmetrics.io/monitor": "true"}
ANNOTATED_JOB = "accelmetrics-annotated-services"
# A Prometheus run by the operator listens on 9090, container port `web` unless spec.portName says otherwise.
PROMETHEUS_PORT = 9090
# Host paths the exporter may mount, all read-only: the kubelet's pod-resources directory, the host's /proc, and the
# kubelet's pod log directories (deploy/attribution, deploy/attribution/processes).
HOST_PATHS = {"/var/lib/kubelet/pod-resources", "/proc", "/var/log/pods"}
ADDED_CAPABILITIES = {"SYS_PTRACE"}
CRD_MODELS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): prometheus_operator_v1.ServiceMonitor,
    ("monitoring.coreos.com/v1", "PodMonitor"): prometheus_operator_v1.PodMonitor,
    ("monitoring.coreos.com/v1", "PrometheusRule"): prometheus_operator_v1.PrometheusRule,
    ("monitoring.coreos.com/v1", "Prometheus"): prometheus_operator_v1.Prometheus,
    ("cert-manager.io/v1", "Issuer"): cert_manager_v1.Issuer,
    ("cert-manager.io/v1", "ClusterIssuer"): cert_manager_v1.ClusterIssuer,
    ("cert-manager.io/v1", "Certificate"): cert_manager_v1.Certificate,
}
ADAPTER_SERVER_NAME = "accel-metrics-adapter.accel-metrics.svc"
ADAPTER_CERT_SECRET = "accel-metrics-adapter-serving-cert"


class Report:
    """Counts checks; prints each failure at once with where it happened."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, ok: bool, what: str) -> bool:
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL {what}")
        return ok

    def fail(self, what: str) -> None:
        self.check(False, what)


def section(title: str) -> None:
    print(f"\n== {title}")


def overlay_name(directory: pathlib.Path) -> str:
    return str(directory.relative_to(DEPLOY))


def obj_id(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{obj.get('kind')}/{(namespace + '/') if namespace else ''}{meta.get('name')}"


# 1. Render ----------------------------------------------------------------------------------------------------

def kustomizations() -> tuple[list[pathlib.Path], list[pathlib.Path], dict[pathlib.Path, dict]]:
    overlays, components, files = [], [], {}
    for path in sorted(DEPLOY.rglob("kustomization.yaml")):
        content = yaml.safe_load(path.read_text()) or {}
        files[path.parent] = content
        (components if content.get("kind") == "Component" else overlays).append(path.parent)
    return overlays, components, files


def render_all(report: Report) -> dict[str, list[dict]]:
    section("render every kustomization under deploy/ (kubectl kustomize)")
    overlays, components, files = kustomizations()
    renders: dict[str, list[dict]] = {}
    for directory in overlays:
        result = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True, text=True)
        if not report.check(result.returncode == 0, f"{overlay_name(directory)}: kubectl kustomize: {result.stderr.strip()}"):
            continue
        objects = [o for o in yaml.safe_load_all(result.stdout) if o]
        renders[overlay_name(directory)] = objects
        print(f"  {overlay_name(directory):36} {len(objects):3} objects")
    used = set()
    for directory, content in files.items():
        for component in content.get("components") or []:
            used.add((directory / component).resolve())
    for component in components:
        report.check(component.resolve() in used,
                     f"{overlay_name(component)}: a Component no kustomization under deploy/ uses, so it is never rendered or checked")
        if component.resolve() in used:
            print(f"  {overlay_name(component):36} Component, rendered through the overlays that use it")
    return renders


# 2. Schemas ---------------------------------------------------------------------------------------------------

def unknown_fields(given, dumped, path: str = "") -> list[str]:
    """Keys present in the input that the model did not keep: fields the CRD schema does not have."""
    if isinstance(given, dict) and isinstance(dumped, dict):
        out = []
        for key, value in given.items():
            if key not in dumped:
                out.append(f"{path}.{key}" if path else key)
            else:
                out += unknown_fields(value, dumped[key], f"{path}.{key}" if path else key)
        return out
    if isinstance(given, list) and isinstance(dumped, list):
        out = []
        for index, (a, b) in enumerate(zip(given, dumped)):
            out += unknown_fields(a, b, f"{path}[{index}]")
        return out
    return []


def validate_schemas(report: Report, renders: dict[str, list[dict]]) -> None:
    section(f"validate every object: Kubernetes OpenAPI {', '.join(KUBERNETES_VERSIONS)} (strict), CRD models")
    counts: dict[str, int] = {}
    validated = 0
    for overlay, objects in renders.items():
        for obj in objects:
            key = (obj.get("apiVersion"), obj.get("kind"))
            where = f"{overlay}: {obj_id(obj)}"
            if key in CRD_MODELS:
                try:
                    model = CRD_MODELS[key].model_validate(obj)
                except pydantic.ValidationError as error:
                    report.fail(f"{where}: not valid against its CRD schema:\n{error}")
                    continue
                dumped = model.model_dump(by_alias=True, exclude_unset=True, mode="json")
                extra = unknown_fields(obj, dumped)
                if not report.check(not extra, f"{where}: fields the CRD schema does not have: {extra}"):
                    continue
            else:
                ok = True
                for version in KUBERNETES_VERSIONS:
                    try:
                        kubernetes_validate.validate(obj, version, strict=True)
                    except kubernetes_validate.SchemaNotFoundError:
                        report.fail(f"{where}: no schema for {key[0]} {key[1]} (Kubernetes {version})")
                        ok = False
                        break
                    except kubernetes_validate.ValidationError as error:
                        report.fail(f"{where}: Kubernetes {version}: {'.'.join(str(p) for p in error.path)}: {error.message}")
                        ok = False
                if not ok:
                    continue
            report.check(True, where)
            validated += 1
            counts[key[1]] = counts.get(key[1], 0) + 1
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items()))
    print(f"  {validated} objects valid over {len(renders)} renders ({kinds})")


# 3. Project rules ---------------------------------------------------------------------------------------------

def skipped_checks(obj: dict) -> dict[str, str]:
    out = {}
    for key, value in ((obj.get("metadata") or {}).get("annotations") or {}).items():
        if key.startswith("checkov.io/skip"):
            check, _, reason = str(value).partition("=")
            out[check] = reason
    return out


def pod_spec(obj: dict) -> dict | None:
    if obj.get("kind") in ("DaemonSet", "Deployment", "StatefulSet", "Job"):
        return obj["spec"]["template"]["spec"]
    return None


def check_namespaces(report: Report, overlay: str, obj: dict) -> None:
    kind, meta = obj.get("kind"), obj.get("metadata") or {}
    where = f"{overlay}: {obj_id(obj)}"
    if kind in CLUSTER_SCOPED:
        report.check("namespace" not in meta, f"{where}: a cluster-scoped object with a namespace")
        return
    if overlay in EXAMPLE_OVERLAYS:
        report.check(bool(meta.get("namespace")), f"{where}: no namespace")
        return
    if overlay == TEMPLATE_RENDER:
        # The suite creates them in its own namespace, deleted after the run; nothing may land elsewhere.
        report.check(meta.get("namespace") == SUITE_FIELDS["Namespace"],
                     f"{where}: namespace {meta.get('namespace')!r}, expected the suite's ({SUITE_FIELDS['Namespace']})")
        return
    wanted = OTHER_NAMESPACES.get((kind, meta.get("name")), "accel-metrics")
    report.check(meta.get("namespace") == wanted,
                 f"{where}: namespace {meta.get('namespace')!r}, expected {wanted!r} (an object without one lands in "
                 "whatever namespace kubectl's context names)")


def check_workload(report: Report, overlay: str, obj: dict) -> None:
    spec = pod_spec(obj)
    if spec is None:
        return
    where = f"{overlay}: {obj_id(obj)}"
    skips = skipped_checks(obj)
    pod_security = spec.get("securityContext") or {}
    report.check(not spec.get("hostNetwork") and not spec.get("hostIPC"), f"{where}: hostNetwork/hostIPC")
    args = [a for c in spec["containers"] for a in c.get("args") or []]
    if spec.get("hostPID"):
        report.check("--collector.processes" in args and "CKV_K8S_17" in skips,
                     f"{where}: hostPID without --collector.processes and an accepted, justified CKV_K8S_17")
    for volume in spec.get("volumes") or []:
        if "hostPath" in volume:
            report.check(volume["hostPath"]["path"] in HOST_PATHS,
                         f"{where}: hostPath {volume['hostPath']['path']} is not one the exporter needs ({sorted(HOST_PATHS)})")
    host_volumes = {v["name"] for v in spec.get("volumes") or [] if "hostPath" in v}
    if obj["kind"] == "DaemonSet":
        report.check(spec.get("priorityClassName") == "system-node-critical", f"{where}: priorityClassName")
    for container in spec["containers"] + (spec.get("initContainers") or []):
        cwhere = f"{where} container {container['name']}"
        sc = container.get("securityContext") or {}
        report.check(sc.get("readOnlyRootFilesystem") is True, f"{cwhere}: readOnlyRootFilesystem")
        report.check(sc.get("allowPrivilegeEscalation") is False, f"{cwhere}: allowPrivilegeEscalation")
        report.check(not sc.get("privileged"), f"{cwhere}: privileged")
        capabilities = sc.get("capabilities") or {}
        report.check(capabilities.get("drop") == ["ALL"], f"{cwhere}: capabilities.drop is not [ALL]")
        added = set(capabilities.get("add") or [])
        report.check(added <= ADDED_CAPABILITIES and (not added or "CKV_K8S_37" in skips),
                     f"{cwhere}: capabilities added {sorted(added)} (allowed: {sorted(ADDED_CAPABILITIES)}, with CKV_K8S_37 accepted)")
        seccomp = (sc.get("seccompProfile") or pod_security.get("seccompProfile") or {}).get("type")
        report.check(seccomp == "RuntimeDefault", f"{cwhere}: seccompProfile {seccomp}")
        non_root = sc.get("runAsNonRoot", pod_security.get("runAsNonRoot"))
        user = sc.get("runAsUser", pod_security.get("runAsUser"))
        if non_root is True:
            report.check(user is None or user > 0, f"{cwhere}: runAsNonRoot with uid 0")
        else:
            report.check("CKV_K8S_23" in skips and bool(skips["CKV_K8S_23"]),
                         f"{cwhere}: runs as root without an accepted, justified CKV_K8S_23")
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        report.check("cpu" in requests and "memory" in requests and "memory" in limits,
                     f"{cwhere}: requests (cpu, memory) and a memory limit")
        if overlay not in EXAMPLE_OVERLAYS:   # the examples are workloads: they are meant to take accelerators
            report.check(not any("gpu" in k or "habana" in k for k in list(requests) + list(limits)),
                         f"{cwhere}: requests an accelerator: it watches devices, it must not take them from workloads")
        for mount in container.get("volumeMounts") or []:
            if mount["name"] in host_volumes:
                report.check(mount.get("readOnly") is True, f"{cwhere}: host mount {mount['mountPath']} is not readOnly")


def check_tls(report: Report, overlay: str, obj: dict, text: str) -> None:
    where = f"{overlay}: {obj_id(obj)}"
    report.check("insecureSkipTLSVerify" not in text and "insecureSkipVerify" not in text
                 and "insecure_skip_verify" not in text, f"{where}: skips TLS verification")
    if obj.get("kind") == "APIService":
        service = obj["spec"].get("service") or {}
        report.check(service.get("name") == "accel-metrics-adapter" and service.get("namespace") == "accel-metrics"
                     and service.get("port") == 443, f"{where}: spec.service {service}")
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        report.check("caBundle" not in obj["spec"] or "cert-manager.io/inject-ca-from" in annotations,
                     f"{where}: a fixed caBundle (the adapter or cert-manager keeps it current)")


def relabel(labels: dict[str, str], configs: list[dict], internal: bool = False) -> dict[str, str] | None:
    """Prometheus' relabelling (replace, keep, drop, labeldrop, labelkeep), enough for these jobs. With internal,
    the __ labels (__address__, __metrics_path__, …) are kept in the result too."""
    labels = dict(labels)
    for config in configs:
        get = lambda snake, camel, default=None: config.get(snake, config.get(camel, default))  # noqa: E731
        action = str(get("action", "action", "replace")).lower()
        regex = re.compile(f"^(?:{get('regex', 'regex', '(.*)')})$")
        if action in ("labeldrop", "labelkeep"):
            labels = {k: v for k, v in labels.items() if bool(regex.match(k)) == (action == "labelkeep")}
            continue
        value = get("separator", "separator", ";").join(labels.get(s, "") for s in get("source_labels", "sourceLabels", []))
        match = regex.match(value)
        if action == "keep" and not match:
            return None
        if action == "drop" and match:
            return None
        if action == "replace" and match:
            target = get("target_label", "targetLabel")
            result = match.expand(re.sub(r"\$\{?(\d+)\}?", r"\\g<\1>", get("replacement", "replacement", "$1")))
            if result:
                labels[target] = result
            else:
                labels.pop(target, None)
    return {k: v for k, v in labels.items() if internal or not k.startswith("__")}


def target_meta(service: str, port: str, pod: str) -> dict[str, str]:
    return {"__address__": "192.0.2.10:9445", "__meta_kubernetes_namespace": "accel-metrics",
            "__meta_kubernetes_service_name": service, "__meta_kubernetes_endpointslice_port_name": port,
            "__meta_kubernetes_pod_name": pod, "__meta_kubernetes_pod_node_name": "gpu-node-7",
            "__meta_kubernetes_pod_container_name": pod.rsplit("-", 1)[0],
            "__meta_kubernetes_pod_container_port_name": port}


def check_target_labels(report: Report, where: str, target: dict[str, str] | None, pod: str) -> None:
    if not report.check(target is not None, f"{where}: the exporter's own target is dropped"):
        return
    report.check(target.get("exporter_namespace") == "accel-metrics" and target.get("exporter_pod") == pod
                 and target.get("node") == "gpu-node-7", f"{where}: target labels {target}: want exporter_namespace, exporter_pod, node")
    report.check(not {"namespace", "pod", "container"} & set(target),
                 f"{where}: target labels {target} keep namespace/pod/container: device series would look like the exporter pod's own")
    # honor_labels: a scraped label wins over a target label of the same name.
    workload = {**target, **{"namespace": "ml", "pod": "llm-0", "container": "server"}}
    device = {**target, **{"accelerator": "GPU-0"}}
    report.check(workload["namespace"] == "ml" and "namespace" not in device and "pod" not in device,
                 f"{where}: series labels after honor_labels")


def operator_prefix(kind: str, monitor: dict) -> list[dict]:
    """The relabellings the Prometheus Operator puts before a monitor's own (namespace, service, pod, container,
    endpoint, job), so the emulation sees the target labels the operator really adds."""
    prefix = [{"sourceLabels": ["__meta_kubernetes_namespace"], "targetLabel": "namespace"},
              {"sourceLabels": ["__meta_kubernetes_pod_container_name"], "targetLabel": "container"},
              {"sourceLabels": ["__meta_kubernetes_pod_name"], "targetLabel": "pod"}]
    if kind == "ServiceMonitor":
        prefix.append({"sourceLabels": ["__meta_kubernetes_service_name"], "targetLabel": "service"})
    return prefix


def check_monitor(report: Report, overlay: str, obj: dict, everything: list[tuple[str, dict]]) -> None:
    kind = obj["kind"]
    where = f"{overlay}: {obj_id(obj)}"
    spec = obj["spec"]
    endpoints = spec.get("endpoints") if kind == "ServiceMonitor" else spec.get("podMetricsEndpoints")
    selector = spec["selector"].get("matchLabels") or {}
    namespaces = (spec.get("namespaceSelector") or {}).get("matchNames") or [obj["metadata"]["namespace"]]
    # What the selector finds, among every render's Services (ServiceMonitor) or pod templates (PodMonitor).
    ports: set[str] = set()
    found = False
    for _, other in everything:
        meta = other.get("metadata") or {}
        if meta.get("namespace") not in namespaces:
            continue
        if kind == "ServiceMonitor" and other.get("kind") == "Service":
            if selector.items() <= (meta.get("labels") or {}).items():
                found = True
                ports |= {p.get("name") for p in other["spec"].get("ports") or []}
        if kind == "PodMonitor" and pod_spec(other) is not None:
            if selector.items() <= (other["spec"]["template"]["metadata"].get("labels") or {}).items():
                found = True
                ports |= {p.get("name") for c in pod_spec(other)["containers"] for p in c.get("ports") or []}
    report.check(found, f"{where}: its selector {selector} finds nothing in {namespaces}")
    job = selector.get(spec.get("jobLabel", ""), obj["metadata"]["name"])
    report.check(job in ("accel-exporter", "accel-metrics-adapter"), f"{where}: job would be {job!r}; the rules expect accel-exporter / accel-metrics-adapter")
    for endpoint in endpoints:
        ewhere = f"{where} port {endpoint.get('port')}"
        report.check(endpoint.get("port") in ports, f"{ewhere}: no such port on what the selector finds ({sorted(ports)})")
        report.check(endpoint.get("honorLabels") is True, f"{ewhere}: honorLabels is not true")
        pod = f"{job}-x7k2p"
        target = relabel(target_meta(job, endpoint.get("port"), pod),
                         operator_prefix(kind, obj) + (endpoint.get("relabelings") or []))
        check_target_labels(report, ewhere, target, pod)
        tls = endpoint.get("tlsConfig")
        if endpoint.get("scheme") == "https" or tls:
            report.check(bool(tls) and tls.get("serverName") == ADAPTER_SERVER_NAME
                         and (tls.get("ca") or {}).get("secret", {}).get("name") == ADAPTER_CERT_SECRET,
                         f"{ewhere}: HTTPS without the adapter's CA ({ADAPTER_CERT_SECRET}) and server name {ADAPTER_SERVER_NAME}")


def selector_matches(selector: dict | None, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels, matchExpressions) against labels: None selects nothing, {} all."""
    if selector is None:
        return False
    if not (selector.get("matchLabels") or {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        if ((operator == "In" and labels.get(key) not in values)
                or (operator == "NotIn" and key in labels and labels[key] in values)
                or (operator == "Exists" and key not in labels)
                or (operator == "DoesNotExist" and key in labels)):
            return False
    return True


def arg_value(args: list[str], flag: str) -> str | None:
    """The value of --flag=value or --flag value in a container's args, the last one winning."""
    value = None
    for index, arg in enumerate(args):
        if arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
        elif arg == flag and index + 1 < len(args):
            value = args[index + 1]
    return value


def container_port(container: dict, target) -> dict | None:
    """The container port a Service's targetPort (a name or a number) resolves to."""
    by_name = isinstance(target, str) and not target.isdigit()
    for port in container.get("ports") or []:
        if (by_name and port.get("name") == target) or (not by_name and port.get("containerPort") == int(target)):
            return port
    return None


def ports_cover(rule_ports: list[dict] | None, port: dict) -> bool:
    """Whether a NetworkPolicy rule's ports admit a container port (no ports: every port)."""
    if not rule_ports:
        return True
    for entry in rule_ports:
        if entry.get("protocol", "TCP") != port.get("protocol", "TCP"):
            continue
        number = entry.get("port")
        if number is None or number == port.get("name") or (
                isinstance(number, int) and number <= port["containerPort"] <= entry.get("endPort", number)):
            return True
    return False


def admits_control_plane(objects: list[dict], namespace: str, pod_labels: dict[str, str], port: dict) -> tuple[bool, str]:
    """Whether the render's NetworkPolicies let the API server's service proxy reach a pod's port. The proxy dials
    from the control plane's address (a host-network process, or konnectivity on a node), which only a rule with no
    `from` (any source) or with an ipBlock can admit; pod and namespace selectors never match it."""
    isolating = [o for o in objects if o.get("kind") == "NetworkPolicy"
                 and o["metadata"].get("namespace") == namespace
                 and selector_matches(o["spec"].get("podSelector", {}), pod_labels)
                 and "Ingress" in (o["spec"].get("policyTypes") or ["Ingress"])]
    if not isolating:
        return True, "no NetworkPolicy isolates the pods"
    for policy in isolating:
        for rule in policy["spec"].get("ingress") or []:
            if not ports_cover(rule.get("ports"), port):
                continue
            peers = rule.get("from") or []
            if not peers:
                return True, f"NetworkPolicy {policy['metadata']['name']} admits any source to port {port['containerPort']}"
            blocks = [p["ipBlock"]["cidr"] for p in peers if "ipBlock" in p]
            if blocks:
                return True, (f"NetworkPolicy {policy['metadata']['name']} admits ipBlock {blocks} to port "
                              f"{port['containerPort']} (it must cover the control plane's addresses)")
    names = sorted(p["metadata"]["name"] for p in isolating)
    return False, (f"NetworkPolicies {names} do not admit the API server's service proxy to port "
                   f"{port['containerPort']}: it comes from a control-plane address, which needs a rule without "
                   "`from` (or an ipBlock); pod/namespace selectors never match it")


def mounted_file(objects: list[dict], spec: dict, container: dict, path: str) -> str | None:
    """The content of a file in a ConfigMap or Secret volume, if the render holds it."""
    for mount in container.get("volumeMounts") or []:
        base = mount["mountPath"].rstrip("/")
        if not path.startswith(base + "/") and path != base:
            continue
        key = mount.get("subPath") or path[len(base) + 1:]
        volume = next((v for v in spec.get("volumes") or [] if v["name"] == mount["name"]), {})
        source = volume.get("configMap") or volume.get("secret") or {}
        kind, name = ("ConfigMap", source.get("name")) if "configMap" in volume else ("Secret", source.get("secretName"))
        for item in source.get("items") or []:
            if item.get("path") == key:
                key = item["key"]
        for obj in objects:
            if obj.get("kind") == kind and obj["metadata"].get("name") == name:
                if key in (obj.get("stringData") or {}):
                    return obj["stringData"][key]
                if kind == "Secret" and key in (obj.get("data") or {}):
                    return base64.b64decode(obj["data"][key]).decode()
                return (obj.get("data") or {}).get(key)
    return None


def exporter_reachability(objects: list[dict]) -> tuple[list[tuple[bool, str]], list[str], str]:
    """The exporter as the AI conformance suite's KAR-0059 test reaches it, in one render holding its DaemonSet:
    GET /api/v1/namespaces/accel-metrics/services/http:accel-exporter:9445/proxy/metrics. The API server finds the
    Service port numbered 9445, takes its name, and dials a ready endpoint's port of that name (the targetPort,
    resolved on the pod) with plain HTTP. Returns (ok, what) for each rule, the reasons the render serves TLS (the
    suite cannot scrape it then: reported, not failed) and a one-line summary."""
    results: list[tuple[bool, str]] = []
    tls: list[str] = []
    ds = next(o for o in objects if o.get("kind") == "DaemonSet" and o["metadata"]["name"] == EXPORTER_SERVICE)
    namespace, spec = ds["metadata"].get("namespace"), ds["spec"]["template"]["spec"]
    pod_labels = ds["spec"]["template"]["metadata"].get("labels") or {}
    container = next((c for c in spec["containers"] if c["name"] == EXPORTER_SERVICE), None)
    if not container:
        return [(False, f"the DaemonSet has no container {EXPORTER_SERVICE}")], tls, ""
    args = container.get("args") or []
    service = next((o for o in objects if o.get("kind") == "Service" and o["metadata"]["name"] == EXPORTER_SERVICE
                    and o["metadata"].get("namespace") == namespace), None)
    results.append((namespace == EXPORTER_NAMESPACE and service is not None,
                    f"no Service {EXPORTER_SERVICE} beside the DaemonSet in {EXPORTER_NAMESPACE} (-metrics-namespace "
                    f"{EXPORTER_NAMESPACE} -metrics-service-name {EXPORTER_SERVICE})"))
    if service is None:
        return results, tls, ""
    selector = service["spec"].get("selector") or {}
    results.append((bool(selector) and selector.items() <= pod_labels.items(),
                    f"Service {EXPORTER_SERVICE}'s selector {selector} does not select the exporter pods {pod_labels}"))
    ports = service["spec"].get("ports") or []
    numbered = [p for p in ports if p.get("port") == EXPORTER_PORT]
    results.append((len(numbered) == 1, f"Service {EXPORTER_SERVICE} has no port numbered {EXPORTER_PORT} "
                    f"(ports {[(p.get('name'), p.get('port')) for p in ports]}): -metrics-service-port {EXPORTER_PORT} finds nothing"))
    if len(numbered) != 1:
        return results, tls, ""
    service_port = numbered[0]
    results.append((bool(service_port.get("name")), f"Service {EXPORTER_SERVICE} port {EXPORTER_PORT} has no name: the "
                    "proxy maps the number to the port's name and dials the endpoints' port of that name"))
    results.append((not service_port.get("name") or service_port.get("name") == EXPORTER_PORT_NAME,
                    f"Service {EXPORTER_SERVICE} port {EXPORTER_PORT} is named {service_port.get('name')!r}, not "
                    f"{EXPORTER_PORT_NAME!r} (what the monitors, prometheus-scrape.yaml and docs/conformance.md name)"))
    results.append((service_port.get("protocol", "TCP") == "TCP", f"Service port {EXPORTER_PORT} is not TCP"))
    target = service_port.get("targetPort", service_port["port"])
    port = container_port(container, target)
    results.append((port is not None, f"Service port {EXPORTER_PORT}'s targetPort {target!r} is no container port of "
                    f"{EXPORTER_SERVICE} ({[(p.get('name'), p.get('containerPort')) for p in container.get('ports') or []]})"))
    if port is None:
        return results, tls, ""
    listen = arg_value(args, "--web.listen-address") or EXPORTER_DEFAULTS["--web.listen-address"]
    host, _, listen_port = listen.rpartition(":")
    results.append((listen_port.isdigit() and int(listen_port) == port["containerPort"],
                    f"the exporter listens on {listen!r} but the Service's target is container port {port['containerPort']}"))
    results.append((host.strip("[]") not in ("localhost", "127.0.0.1", "::1"),
                    f"the exporter listens on {listen!r}: loopback only, the proxy dials the pod IP"))
    path = arg_value(args, "--web.telemetry-path") or EXPORTER_DEFAULTS["--web.telemetry-path"]
    results.append((path == "/metrics", f"--web.telemetry-path {path}: the suite GETs /metrics"))
    web_config = arg_value(args, "--web.config.file")
    if web_config:
        text = mounted_file(objects, spec, container, web_config)
        config = yaml.safe_load(text) if text else None
        if config is None:
            tls.append(f"--web.config.file {web_config} is not in the render (if it has tls_server_config or "
                       "basic_auth_users, the suite cannot scrape)")
        else:
            if config.get("tls_server_config"):
                tls.append(f"--web.config.file {web_config} has tls_server_config")
            if config.get("basic_auth_users"):
                tls.append(f"--web.config.file {web_config} has basic_auth_users (the suite sends no credentials)")
    admitted, how = admits_control_plane(objects, namespace, pod_labels, port)
    results.append((admitted, how))
    summary = (f"http:{EXPORTER_SERVICE}:{EXPORTER_PORT} → port {service_port.get('name')} → container port "
               f"{port.get('name')}/{port['containerPort']}, listening {listen}, {path}; {how}")
    return results, tls, summary


def monitor_tls(objects: list[dict]) -> list[str]:
    """Monitors in a render that scrape the exporter over HTTPS: the exporter serves TLS there."""
    out = []
    for obj in objects:
        if obj.get("kind") in ("ServiceMonitor", "PodMonitor") and \
                selector_matches(obj["spec"].get("selector"), EXPORTER_LABELS):
            for endpoint in obj["spec"].get("endpoints") or obj["spec"].get("podMetricsEndpoints") or []:
                if endpoint.get("scheme") == "https":
                    out.append(f"{obj_id(obj)} scrapes the exporter with scheme https")
    return out


def reachability_mutations(objects: list[dict]) -> list[tuple[str, list[dict], bool]]:
    """Renders broken one way each, to show the rules catch it: (what, objects, expect TLS rather than a failure)."""
    def mutated(change) -> list[dict]:
        copied = copy.deepcopy(objects)
        change({(o["kind"], o["metadata"]["name"]): o for o in copied})
        return copied

    def service_port(o):
        return o[("Service", EXPORTER_SERVICE)]["spec"]["ports"][0]

    def container(o):
        return o[("DaemonSet", EXPORTER_SERVICE)]["spec"]["template"]["spec"]["containers"][0]

    def policy_rule(o):
        return o[("NetworkPolicy", EXPORTER_SERVICE)]["spec"]["ingress"][0]

    def with_web_config(config: str) -> list[dict]:
        copied = copy.deepcopy(objects)
        o = {(x["kind"], x["metadata"]["name"]): x for x in copied}
        container(o).setdefault("args", []).append("--web.config.file=/etc/accel-exporter/web.yml")
        container(o).setdefault("volumeMounts", []).append({"name": "web", "mountPath": "/etc/accel-exporter"})
        o[("DaemonSet", EXPORTER_SERVICE)]["spec"]["template"]["spec"].setdefault("volumes", []).append(
            {"name": "web", "configMap": {"name": "web"}})
        copied.append({"apiVersion": "v1", "kind": "ConfigMap", "data": {"web.yml": config},
                       "metadata": {"name": "web", "namespace": EXPORTER_NAMESPACE}})
        return copied

    cases = [
        ("the Service port renamed", lambda o: service_port(o).update(name="http")),
        ("the Service port's name dropped", lambda o: service_port(o).pop("name", None)),
        ("the Service port renumbered", lambda o: service_port(o).update(port=9400)),
        ("the container port renamed", lambda o: container(o)["ports"][0].update(name="web")),
        ("a numeric targetPort the container does not have", lambda o: service_port(o).update(targetPort=9400)),
        ("--web.listen-address on another port", lambda o: container(o)["args"].append("--web.listen-address=:9500")),
        ("--web.listen-address on loopback", lambda o: container(o)["args"].append("--web.listen-address=127.0.0.1:9445")),
        ("--web.telemetry-path moved", lambda o: container(o)["args"].append("--web.telemetry-path=/stats")),
        ("the NetworkPolicy narrowed to a namespaceSelector", lambda o: policy_rule(o).update({"from": [{"namespaceSelector": {}}]})),
        ("the NetworkPolicy admitting another port", lambda o: policy_rule(o).update(ports=[{"protocol": "TCP", "port": 9500}])),
    ]
    out = [(what, mutated(change), False) for what, change in cases]
    out.append(("--web.config.file with tls_server_config",
                with_web_config("tls_server_config: {cert_file: tls.crt, key_file: tls.key}\n"), True))
    return out


def check_reachability(report: Report, renders: dict[str, list[dict]]) -> None:
    section("the exporter's Service as the AI conformance suite reaches it (KAR-0059: the API server's service proxy)")
    tls_renders = {}
    for overlay, objects in renders.items():
        tls = monitor_tls(objects)
        if any(o.get("kind") == "DaemonSet" and o["metadata"]["name"] == EXPORTER_SERVICE for o in objects):
            results, more_tls, summary = exporter_reachability(objects)
            tls += more_tls
            for ok, what in results:
                report.check(ok, f"{overlay}: {what}")
            if summary:
                print(f"  {overlay:24} {summary}")
        if tls:
            tls_renders[overlay] = tls
            print(f"  {overlay:24} TLS: the suite's http proxy cannot scrape; see docs/conformance.md ({'; '.join(tls)})")
    print(f"  TLS overlays (the suite's http proxy cannot scrape them): {', '.join(sorted(tls_renders)) or 'none'}")
    # The rules must fail on a broken render: each mutation of deploy/base must be caught (or, for TLS, recognised).
    base = renders.get("base")
    if not report.check(base is not None, "self-test: deploy/base did not render"):
        return
    caught, mutations = 0, reachability_mutations(base)
    for what, objects, expect_tls in mutations:
        results, tls, _ = exporter_reachability(objects)
        failures = [message for ok, message in results if not ok]
        if expect_tls:
            ok = bool(tls) and not failures
        else:
            ok = bool(failures)
        caught += report.check(ok, f"self-test: deploy/base with {what}: the reachability rules did not "
                               f"{'recognise TLS' if expect_tls else 'fail'} (failures {failures}, TLS {tls})")
    print(f"  self-test: {caught} of {len(mutations)} broken copies of deploy/base caught")


def check_prometheus(report: Report, overlay: str, obj: dict, objects: list[dict],
                     everything: list[tuple[str, dict]]) -> None:
    """A Prometheus we ship: it must pick up the suite's ServiceMonitor (KAR-0061) and ours, our rules, be allowed
    to discover them, meet the restricted Pod Security level, and be queryable through the service proxy."""
    where = f"{overlay}: {obj_id(obj)}"
    spec, name, namespace = obj["spec"], obj["metadata"]["name"], obj["metadata"]["namespace"]

    def namespaces_selected(selector_key: str, other_namespace: str) -> bool:
        selector = spec.get(selector_key)
        if selector is None:   # unset: the Prometheus's own namespace only
            return other_namespace == namespace
        return selector_matches(selector, {"kubernetes.io/metadata.name": other_namespace})

    report.check(selector_matches(spec.get("serviceMonitorSelector"), SUITE_SCRAPE_LABELS)
                 and namespaces_selected("serviceMonitorNamespaceSelector", SUITE_FIELDS["Namespace"]),
                 f"{where}: does not select the suite's ServiceMonitor (labels {SUITE_SCRAPE_LABELS} from "
                 f"-service-metrics-scrape-labels, in namespace {SUITE_FIELDS['Namespace']})")
    wanted = {"ServiceMonitor": ("serviceMonitorSelector", "serviceMonitorNamespaceSelector"),
              "PodMonitor": ("podMonitorSelector", "podMonitorNamespaceSelector"),
              "PrometheusRule": ("ruleSelector", "ruleNamespaceSelector")}
    seen = set()
    for other_overlay, other in everything:
        if other.get("kind") not in wanted or obj_id(other) in seen or other_overlay == TEMPLATE_RENDER:
            continue
        seen.add(obj_id(other))
        selector, namespace_selector = wanted[other["kind"]]
        report.check(selector_matches(spec.get(selector), other["metadata"].get("labels") or {})
                     and namespaces_selected(namespace_selector, other["metadata"]["namespace"]),
                     f"{where}: does not select {obj_id(other)} ({other_overlay}) by {selector}/{namespace_selector}")
    report.check(not spec.get("overrideHonorLabels") and not spec.get("enforcedNamespaceLabel"),
                 f"{where}: overrideHonorLabels/enforcedNamespaceLabel rewrite the workload labels of the exporter's series")
    # Restricted Pod Security: the operator makes its containers read-only, non-escalating, without capabilities;
    # the pod's settings are ours.
    security = spec.get("securityContext") or {}
    report.check(security.get("runAsNonRoot") is True and security.get("runAsUser", 1) > 0
                 and (security.get("seccompProfile") or {}).get("type") == "RuntimeDefault"
                 and not spec.get("hostNetwork") and not spec.get("containers") and not spec.get("initContainers"),
                 f"{where}: securityContext {security}: restricted Pod Security needs runAsNonRoot, a non-zero uid, "
                 "RuntimeDefault seccomp, no hostNetwork and no container overrides")
    report.check(bool((spec.get("resources") or {}).get("requests")) and "memory" in ((spec.get("resources") or {}).get("limits") or {}),
                 f"{where}: resources: requests and a memory limit")
    # RBAC: the ServiceAccount, bound cluster-wide (its monitor namespace selectors reach every namespace) to
    # read what service discovery lists and watches.
    account = spec.get("serviceAccountName", "default")
    report.check(any(o.get("kind") == "ServiceAccount" and o["metadata"]["name"] == account
                     and o["metadata"].get("namespace") == namespace for o in objects),
                 f"{where}: ServiceAccount {account} is not in the render")
    roles = {o["metadata"]["name"]: o for o in objects if o.get("kind") == "ClusterRole"}
    granted: set[tuple[str, str, str]] = set()
    for binding in (o for o in objects if o.get("kind") == "ClusterRoleBinding"):
        if any(s.get("kind") == "ServiceAccount" and s.get("name") == account and s.get("namespace") == namespace
               for s in binding.get("subjects") or []):
            for rule in (roles.get(binding["roleRef"]["name"]) or {}).get("rules") or []:
                for group in rule.get("apiGroups") or []:
                    for resource in rule.get("resources") or []:
                        granted |= {(group, resource, verb) for verb in rule.get("verbs") or []}
                for url in rule.get("nonResourceURLs") or []:
                    granted |= {("url", url, verb) for verb in rule.get("verbs") or []}
    needed = {(group, resource, verb) for group, resource in
              [("", "services"), ("", "endpoints"), ("", "pods"), ("discovery.k8s.io", "endpointslices")]
              for verb in ("get", "list", "watch")} | {("url", "/metrics", "get")}
    report.check(needed <= granted, f"{where}: its ServiceAccount lacks, cluster-wide: {sorted(needed - granted)}")
    # Queryable through the API server's service proxy: a Service selecting the operator's pods, a named port 9090
    # whose target is the Prometheus's web port, NetworkPolicies admitting the proxy.
    port_name = spec.get("portName", "web")
    pod_labels = {"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/managed-by": "prometheus-operator",
                  "app.kubernetes.io/instance": name, "prometheus": name, "operator.prometheus.io/name": name,
                  "operator.prometheus.io/shard": "0"}
    container = {"ports": [{"name": port_name, "containerPort": PROMETHEUS_PORT, "protocol": "TCP"}]}
    services = []
    for service in (o for o in objects if o.get("kind") == "Service" and o["metadata"].get("namespace") == namespace):
        selector = service["spec"].get("selector") or {}
        for port in service["spec"].get("ports") or []:
            if selector and selector.items() <= pod_labels.items() and port.get("port") == PROMETHEUS_PORT and \
                    port.get("name") and container_port(container, port.get("targetPort", port["port"])):
                services.append(service["metadata"]["name"])
    if report.check(bool(services), f"{where}: no Service with a named port {PROMETHEUS_PORT} reaching its pods' "
                    f"{port_name} port: -service-metrics-prometheus-service has nothing to proxy to"):
        print(f"  {overlay}: -service-metrics-prometheus-service {namespace}/{services[0]}:{PROMETHEUS_PORT}")
    admitted, how = admits_control_plane(objects, namespace, pod_labels, container["ports"][0])
    report.check(admitted, f"{where}: {how}")


def check_example_hpa(report: Report, overlay: str, obj: dict, objects: list[dict]) -> None:
    """An HPA whose workload the render ships (KAR-0057): its Pods metrics are families the pods name in
    accelmetrics.io/metrics, served on accelmetrics.io/port; each pod requests an accelerator."""
    target = obj["spec"]["scaleTargetRef"]
    workload = next((o for o in objects if o.get("kind") == target["kind"] and o["metadata"]["name"] == target["name"]
                     and o["metadata"].get("namespace") == obj["metadata"]["namespace"]), None)
    if workload is None:
        return
    where = f"{overlay}: {obj_id(obj)} → {obj_id(workload)}"
    template = workload["spec"]["template"]
    annotations = template["metadata"].get("annotations") or {}
    families = {f.strip() for f in annotations.get("accelmetrics.io/metrics", "").split(",") if f.strip()}
    for metric in obj["spec"].get("metrics") or []:
        if metric["type"] == "Pods":
            name = metric["pods"]["metric"]["name"]
            report.check(name in families, f"{where}: Pods metric {name} is not among the pods' accelmetrics.io/metrics {sorted(families)}")
    numbers = {str(p.get("containerPort")) for c in template["spec"]["containers"] for p in c.get("ports") or []}
    report.check(annotations.get("accelmetrics.io/port") in numbers,
                 f"{where}: accelmetrics.io/port {annotations.get('accelmetrics.io/port')!r} is none of the pods' container ports {sorted(numbers)}")
    report.check(any(any("gpu" in k for k in (c.get("resources") or {}).get("limits") or {})
                     for c in template["spec"]["containers"]),
                 f"{where}: its pods request no accelerator (KAR-0057 scales pods that each take one)")
    report.check(((obj["spec"].get("behavior") or {}).get("scaleDown") or {}).get("stabilizationWindowSeconds") is not None,
                 f"{where}: no scale-down stabilization window (the test waits it out)")


def render_scrape_template(report: Report) -> dict[str, list[dict]]:
    """deploy/conformance/service-metrics-scrape.yaml.tmpl filled in as the suite fills it (Go text/template with
    missingkey=error): only {{.Field}} actions of the suite's fields are allowed, so this substitution is exact."""
    text = SCRAPE_TEMPLATE.read_text()
    actions = re.findall(r"\{\{(.*?)\}\}", text, re.S)
    for action in actions:
        field = re.fullmatch(r"\.(\w+)", action)
        report.check(field is not None and field.group(1) in SUITE_FIELDS,
                     f"{TEMPLATE_RENDER}: {{{{{action}}}}} is not one of the suite's fields as a plain {{{{.Field}}}} "
                     f"({sorted(SUITE_FIELDS)})")
    rendered = re.sub(r"\{\{\.(\w+)\}\}", lambda m: SUITE_FIELDS.get(m.group(1), m.group(0)), text)
    if not report.check("{{" not in rendered and "}}" not in rendered,
                        f"{TEMPLATE_RENDER}: left over after rendering: {re.findall(r'.*(?:[{][{]|[}][}]).*', rendered)}"):
        return {}
    try:
        objects = [o for o in yaml.safe_load_all(rendered) if o]
    except yaml.YAMLError as error:
        report.fail(f"{TEMPLATE_RENDER}: rendered, it is not YAML: {error}")
        return {}
    report.check(bool(objects) and all(o.get("apiVersion") and o.get("kind") and (o.get("metadata") or {}).get("name")
                                       for o in objects),
                 f"{TEMPLATE_RENDER}: the suite needs apiVersion, kind and metadata.name in every document")
    print(f"  {TEMPLATE_RENDER:36} {len(objects):3} objects (rendered with the suite's fields: {len(actions)} substitutions)")
    return {TEMPLATE_RENDER: objects}


def sanitise(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def endpointslice_meta(service: dict, pod: str, address: str, endpoint_port: int) -> dict[str, str]:
    """The labels Prometheus' endpointslice discovery gives one endpoint of a Service's first port, with the service
    role's labels it adds (annotations and labels, their names sanitised)."""
    meta, port = service["metadata"], service["spec"]["ports"][0]
    out = {"__address__": f"{address}:{endpoint_port}", "__meta_kubernetes_namespace": meta["namespace"],
           "__meta_kubernetes_service_name": meta["name"], "__meta_kubernetes_endpointslice_port_name": port.get("name", ""),
           "__meta_kubernetes_endpointslice_port": str(endpoint_port),
           "__meta_kubernetes_endpointslice_port_protocol": port.get("protocol", "TCP"),
           "__meta_kubernetes_endpointslice_endpoint_conditions_ready": "true",
           "__meta_kubernetes_pod_name": pod, "__meta_kubernetes_pod_node_name": "gpu-node-7",
           "__meta_kubernetes_pod_container_port_name": port.get("name", ""), "__metrics_path__": "/metrics"}
    for kind, values in (("annotation", meta.get("annotations") or {}), ("label", meta.get("labels") or {})):
        for key, value in values.items():
            out[f"__meta_kubernetes_service_{kind}_{sanitise(key)}"] = str(value)
            out[f"__meta_kubernetes_service_{kind}present_{sanitise(key)}"] = "true"
    return out


def suite_stub_service() -> dict:
    """The suite's own stub Service (KAR-0061): the app label, port `http` 8080 targeting the container port `http`."""
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": SUITE_FIELDS["ServiceName"], "namespace": SUITE_FIELDS["Namespace"],
                         "labels": {SUITE_FIELDS["AppLabelKey"]: SUITE_FIELDS["AppLabelValue"]}},
            "spec": {"selector": {SUITE_FIELDS["AppLabelKey"]: SUITE_FIELDS["AppLabelValue"]},
                     "ports": [{"name": SUITE_FIELDS["PortName"], "port": int(SUITE_FIELDS["Port"]),
                                "targetPort": SUITE_FIELDS["PortName"]}]}}


def check_annotated_job(report: Report, where: str, job: dict, renders: dict[str, list[dict]]) -> None:
    """The job that scrapes annotated Services, against the Service the scrape template creates for the suite's
    stub: kept, on the right address and path, labelled namespace/pod/service; the stub's own Service and the
    exporter's are not."""
    report.check(job.get("honor_labels", False) is False,
                 f"{where}: honor_labels: arbitrary workloads must not set their own namespace/pod target labels")
    sd = job.get("kubernetes_sd_configs") or [{}]
    report.check(len(sd) == 1 and sd[0].get("role") == "endpointslice" and not sd[0].get("namespaces"),
                 f"{where}: kubernetes_sd_configs {sd}: role endpointslice in every namespace (the suite's is random)")
    services = [o for o in renders.get(TEMPLATE_RENDER) or [] if o.get("kind") == "Service"]
    if not report.check(len(services) == 1, f"{TEMPLATE_RENDER}: {len(services)} Services, expected the one the job scrapes"):
        return
    service = services[0]
    name, spec = service["metadata"]["name"], service["spec"]
    port = (spec.get("ports") or [{}])[0]
    report.check(re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", name) is not None,
                 f"{TEMPLATE_RENDER}: Service name {name!r} is not a DNS-1035 label of at most 63 characters")
    report.check(name != SUITE_FIELDS["ServiceName"] and SUITE_FIELDS["RunID"] in name,
                 f"{TEMPLATE_RENDER}: Service name {name!r} must differ from the suite's own Service and carry the run ID")
    report.check(spec.get("selector") == {SUITE_FIELDS["AppLabelKey"]: SUITE_FIELDS["AppLabelValue"]},
                 f"{TEMPLATE_RENDER}: selector {spec.get('selector')} does not select the stub pods")
    report.check(len(spec.get("ports") or []) == 1 and port.get("name") == SUITE_FIELDS["PortName"]
                 and port.get("port") == int(SUITE_FIELDS["Port"])
                 and port.get("targetPort") in (SUITE_FIELDS["PortName"], int(SUITE_FIELDS["Port"])),
                 f"{TEMPLATE_RENDER}: ports {spec.get('ports')}: want one, {SUITE_FIELDS['PortName']} → {SUITE_FIELDS['Port']}")
    # The stub's container port `http` is 8080: the endpoints of either Service carry 8080.
    stub_port = int(SUITE_FIELDS["Port"])
    for address in ("10.244.3.17", "[fd00:10:244::17]"):
        target = relabel(endpointslice_meta(service, SUITE_FIELDS["ServiceName"], address, stub_port),
                         job["relabel_configs"], internal=True)
        if not report.check(target is not None, f"{where}: drops the suite's annotated Service {name} ({address})"):
            continue
        report.check(target.get("__address__") == f"{address}:{SUITE_FIELDS['Port']}"
                     and target.get("__metrics_path__") == "/metrics",
                     f"{where}: scrapes {target.get('__address__')}{target.get('__metrics_path__')}, "
                     f"want {address}:{SUITE_FIELDS['Port']}/metrics")
        labels = {k: v for k, v in target.items() if not k.startswith("__")}
        report.check(labels == {"namespace": SUITE_FIELDS["Namespace"], "pod": SUITE_FIELDS["ServiceName"], "service": name},
                     f"{where}: target labels {labels}, want namespace, pod and service of the stub")
    # The port comes from the annotation, whatever the endpoint's own port (IPv6 hosts keep their brackets).
    moved = copy.deepcopy(service)
    moved["metadata"]["annotations"]["accelmetrics.io/port"] = "9102"
    for address in ("10.244.3.17", "[fd00:10:244::17]"):
        target = relabel(endpointslice_meta(moved, "p", address, stub_port), job["relabel_configs"], internal=True)
        report.check(target is not None and target["__address__"] == f"{address}:9102",
                     f"{where}: accelmetrics.io/port 9102 on {address}:{stub_port} gives address {target and target['__address__']}")
    report.check(relabel(endpointslice_meta(suite_stub_service(), "p", "10.244.3.17", stub_port), job["relabel_configs"]) is None,
                 f"{where}: keeps the suite's own (unannotated) stub Service: a second target for the same pod")
    exporter = next((o for o in renders.get("base") or [] if o.get("kind") == "Service" and o["metadata"]["name"] == EXPORTER_SERVICE), None)
    if exporter:
        report.check(relabel(endpointslice_meta(exporter, "accel-exporter-x7k2p", "10.244.3.18", EXPORTER_PORT), job["relabel_configs"]) is None,
                     f"{where}: keeps the exporter's Service: it would be scraped without honor_labels")
    print(f"  {ANNOTATED_JOB}: keeps {SUITE_FIELDS['Namespace']}/{name} → {SUITE_FIELDS['Port']}/metrics with "
          "namespace/pod/service; drops the stub's own Service and the exporter's")


def check_scrape_config(report: Report, renders: dict[str, list[dict]]) -> None:
    section("deploy/prometheus-scrape.yaml: honor_labels, relabelling (the suite's annotated Service too), promtool")
    path = DEPLOY / "prometheus-scrape.yaml"
    config = yaml.safe_load(path.read_text())
    exporter_jobs = {"accel-exporter": ("accel-exporter", "metrics"), "accel-metrics-adapter": ("accel-metrics-adapter", "https")}
    for job in config["scrape_configs"]:
        where = f"prometheus-scrape.yaml job {job['job_name']}"
        for rule in job.get("relabel_configs") or []:
            try:
                re.compile(str(rule.get("regex", "(.*)")))
            except re.error as error:
                report.fail(f"{where}: regex {rule['regex']!r} does not compile: {error}")
                job["relabel_configs"] = []
        if job["job_name"] == ANNOTATED_JOB:
            check_annotated_job(report, where, job, renders)
            continue
        if not report.check(job["job_name"] in exporter_jobs, f"{where}: a job this check does not know"):
            continue
        report.check(job.get("honor_labels") is True, f"{where}: honor_labels is not true")
        service, port = exporter_jobs[job["job_name"]]
        pod = f"{service}-x7k2p"
        check_target_labels(report, where, relabel(target_meta(service, port, pod), job["relabel_configs"]), pod)
        other = "accel-metrics-adapter" if service == "accel-exporter" else "accel-exporter"
        report.check(relabel(target_meta(other, "metrics", pod), job["relabel_configs"]) is None,
                     f"{where}: keeps the {other} Service's endpoints too")
        for annotated in (o for o in renders.get(TEMPLATE_RENDER) or [] if o.get("kind") == "Service"):
            report.check(relabel(endpointslice_meta(annotated, "p", "10.244.3.17", 8080), job["relabel_configs"]) is None,
                         f"{where}: keeps the suite's annotated Service {annotated['metadata']['name']} too")
        tls = job.get("tls_config") or {}
        if job.get("scheme") == "https":
            report.check(tls.get("server_name") == ADAPTER_SERVER_NAME and bool(tls.get("ca_file")),
                         f"{where}: HTTPS without the adapter's CA and server name")
    report.check({job["job_name"] for job in config["scrape_configs"]} == set(exporter_jobs) | {ANNOTATED_JOB},
                 f"prometheus-scrape.yaml: jobs {[job['job_name'] for job in config['scrape_configs']]}, "
                 f"expected {sorted(set(exporter_jobs) | {ANNOTATED_JOB})}")
    # promtool: Debian's Prometheus is built without Kubernetes service discovery, so the check runs on a copy whose
    # kubernetes_sd_configs are a static target and whose files exist; everything else is checked as written.
    promtool = shutil.which("promtool")
    if not promtool:
        print("  SKIP promtool check config: promtool not on the PATH")
        return
    with tempfile.TemporaryDirectory() as tmp:
        for job in config["scrape_configs"]:
            job.pop("kubernetes_sd_configs")
            job["static_configs"] = [{"targets": ["127.0.0.1:9"]}]
            for section_name, key in (("tls_config", "ca_file"), ("authorization", "credentials_file")):
                if key in (job.get(section_name) or {}):
                    stand_in = pathlib.Path(tmp) / f"{job['job_name']}-{key}"
                    stand_in.write_text("x\n")
                    job[section_name][key] = str(stand_in)
        copy = pathlib.Path(tmp) / "prometheus.yml"
        config["rule_files"] = [str(p) for p in sorted((ROOT / "dashboards").glob("*.yaml"))]
        copy.write_text(yaml.safe_dump(config))
        result = subprocess.run([promtool, "check", "config", str(copy)], capture_output=True, text=True)
        report.check(result.returncode == 0, f"promtool check config (scrape jobs + dashboards/*.yaml): {result.stdout}{result.stderr}")
        print(f"  promtool check config: {'ok' if result.returncode == 0 else 'FAILED'} (kubernetes_sd_configs replaced by a static target)")


def check_generated_rules(report: Report) -> None:
    section("deploy/prometheus-operator/rules/prometheusrule.yaml is generated from dashboards/*.yaml")
    result = subprocess.run([sys.executable, str(ROOT / "scripts/generate-prometheusrule.py"), "--check"],
                            capture_output=True, text=True)
    report.check(result.returncode == 0, result.stderr.strip())
    print(f"  {result.stdout.strip() or result.stderr.strip()}")


def check_rules(report: Report, renders: dict[str, list[dict]]) -> None:
    section("project rules: namespaces, security settings, host access, TLS, monitors")
    everything = [(overlay, obj) for overlay, objects in renders.items() for obj in objects]
    before = report.passed + report.failed
    for overlay, obj in everything:
        check_namespaces(report, overlay, obj)
        check_workload(report, overlay, obj)
        check_tls(report, overlay, obj, yaml.safe_dump(obj))
        if obj.get("kind") in ("ServiceMonitor", "PodMonitor"):
            check_monitor(report, overlay, obj, everything)
        if obj.get("kind") == "Prometheus":
            check_prometheus(report, overlay, obj, renders[overlay], everything)
        if obj.get("kind") == "HorizontalPodAutoscaler":
            check_example_hpa(report, overlay, obj, renders[overlay])
        for check, reason in skipped_checks(obj).items():
            report.check(re.fullmatch(r"CKV2?_K8S_\d+", check) is not None and len(reason.strip()) >= 20,
                         f"{overlay}: {obj_id(obj)}: skip annotation {check}={reason!r} needs a check id and a reason")
    for path in DEPLOY.rglob("*.yaml"):
        report.check("insecureSkipTLSVerify: true" not in path.read_text(), f"{path.relative_to(ROOT)}: insecureSkipTLSVerify")
    print(f"  {report.passed + report.failed - before} checks over {len(everything)} rendered objects")


# 4. checkov ---------------------------------------------------------------------------------------------------

def run_checkov(report: Report, renders: dict[str, list[dict]]) -> None:
    section("checkov (framework kubernetes) on every render")
    checkov = VENV_BIN / "checkov"
    if not checkov.exists():
        report.fail(f"checkov is not installed in {VENV_BIN} (scripts/install-deps.sh)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        for overlay, objects in renders.items():
            (pathlib.Path(tmp) / (overlay.replace("/", "__") + ".yaml")).write_text(yaml.safe_dump_all(objects))
        env = dict(os.environ, LOG_LEVEL="ERROR")
        result = subprocess.run([str(checkov), "-d", tmp, "--framework", "kubernetes", "--skip-download",
                                 "--output", "json", "--compact"],
                                capture_output=True, text=True, env=env)
    try:
        output = json.loads(result.stdout)
    except json.JSONDecodeError:
        report.fail(f"checkov gave no JSON (exit {result.returncode}): {result.stdout[-2000:]}{result.stderr[-2000:]}")
        return
    runs = output if isinstance(output, list) else [output]
    failed, skipped, passed = [], [], 0
    for run in runs:
        results = run.get("results") or {}
        failed += results.get("failed_checks") or []
        skipped += results.get("skipped_checks") or []
        passed += (run.get("summary") or {}).get("passed", 0)
        for error in results.get("parsing_errors") or []:
            report.fail(f"checkov could not parse {error}")
    for finding in failed:
        report.fail(f"checkov {finding['check_id']} ({finding['check_name']}): {finding['resource']} in "
                    f"{pathlib.Path(finding['file_path']).stem.replace('__', '/')}: fix it, or accept it with a "
                    "checkov.io/skipN annotation and a comment saying why")
    accepted: dict[tuple[str, str], set[str]] = {}
    for finding in skipped:
        comment = (finding.get("check_result") or {}).get("suppress_comment", "")
        report.check(bool(comment) and comment != "No comment provided", f"checkov skip of {finding['check_id']} without a reason")
        accepted.setdefault((finding["check_id"], comment), set()).add(pathlib.Path(finding["file_path"]).stem.replace("__", "/"))
    print(f"  checkov: {passed} passed, {len(failed)} failed, {len(skipped)} accepted (skip annotations) over {len(renders)} renders")
    for (check, comment), overlays in sorted(accepted.items()):
        print(f"  accepted {check}: {comment}  [{len(overlays)} renders]")
    report.check(not failed, f"checkov: {len(failed)} findings")


# 5. Containerfiles --------------------------------------------------------------------------------------------

def check_containerfiles(report: Report) -> None:
    section("deploy/Containerfile*: hadolint and the rules we hold them to")
    hadolint = VENV_BIN / "hadolint"
    for path in sorted(DEPLOY.glob("Containerfile*")):
        name = path.relative_to(ROOT)
        text = path.read_text()
        if hadolint.exists():
            result = subprocess.run([str(hadolint), "--failure-threshold", "style", "--format", "tty", "--no-color", str(path)],
                                    capture_output=True, text=True)
            report.check(result.returncode == 0, f"{name}: hadolint:\n{result.stdout}{result.stderr}")
            print(f"  hadolint {name}: {'clean' if result.returncode == 0 else 'findings'}")
        else:
            report.fail(f"hadolint is not installed in {VENV_BIN} (scripts/install-deps.sh)")
        lines = text.splitlines()
        for number, line in enumerate(lines):
            if "hadolint ignore=" in line:
                above = lines[number - 1].strip() if number else ""
                report.check(above.startswith("#") and len(above.lstrip("# ")) >= 20,
                             f"{name}:{number + 1}: `{line.strip()}` needs a comment line above it saying why")
        stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, re.M | re.I)
        report.check(len(stages) >= 2, f"{name}: not multi-stage")
        report.check(re.search(r"^ARG\s+TARGETARCH\b", text, re.M) is not None and "BUILDPLATFORM" in text,
                     f"{name}: TARGETARCH/BUILDPLATFORM not used")
        # Every release build goes through scripts/build-release.sh, which links the Swift stdlib statically.
        release_script = (ROOT / "scripts" / "build-release.sh").read_text()
        report.check(re.search(r"^RUN scripts/build-release\.sh ", text, re.M) is not None
                     and "--static-swift-stdlib" in release_script,
                     f"{name}: does not build with scripts/build-release.sh (--static-swift-stdlib)")
        final = text[text.rfind("\nFROM "):]
        user = re.findall(r"^USER\s+(\S+)", final, re.M)
        report.check(bool(user) and re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", user[-1]) is not None,
                     f"{name}: the final stage's USER is {user[-1] if user else 'unset'}, not a numeric non-root uid")
        report.check("debian:bookworm-slim" in text, f"{name}: runtime is not debian:bookworm-slim")


def main() -> int:
    report = Report()
    os.chdir(ROOT)
    renders = render_all(report)
    renders.update(render_scrape_template(report))
    validate_schemas(report, renders)
    check_generated_rules(report)
    check_rules(report, renders)
    check_reachability(report, renders)
    check_scrape_config(report, renders)
    run_checkov(report, renders)
    check_containerfiles(report)
    print()
    print(f"check-manifests: {report.passed} passed, {report.failed} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
