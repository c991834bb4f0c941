public import Kubernetes
public import Logging

/// The exporters behind a Service, from its EndpointSlices: ready endpoints, on the port named `metrics` (or the
/// slice's only port).
public final class EndpointSliceTargets: Sendable {
    private let informer: Informer<EndpointSlice>

    public init(
        client: KubernetesClient, namespace: String, service: String, logger: Logger,
        onChange: @escaping @Sendable ([ExporterTarget]) -> Void
    ) {
        informer = Informer<EndpointSlice>(
            client: client, path: "/apis/discovery.k8s.io/v1/namespaces/\(namespace)/endpointslices",
            query: ["labelSelector": "kubernetes.io/service-name=\(service)"], logger: logger
        ) { slices in
            onChange(Self.targets(Array(slices.values)))
        }
    }

    public func start() { informer.start() }
    public func stop() async { await informer.stop() }

    static func targets(_ slices: [EndpointSlice]) -> [ExporterTarget] {
        var out: [String: ExporterTarget] = [:]
        for slice in slices {
            let ports = slice.ports ?? []
            guard let port = (ports.first { $0.name == "metrics" } ?? (ports.count == 1 ? ports.first : nil))?.port else {
                continue
            }
            for endpoint in slice.endpoints ?? [] where endpoint.conditions?.ready != false {
                for address in endpoint.addresses {
                    let host = address.contains(":") ? "[\(address)]" : address
                    out["\(host):\(port)"] = ExporterTarget(address: "\(host):\(port)", node: endpoint.nodeName)
                }
            }
        }
        return out.values.sorted()
    }
}
