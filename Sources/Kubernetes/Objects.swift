/// The parts of Kubernetes objects this project reads and writes. Decoding ignores every other field.
public struct ObjectMeta: Codable, Sendable, Hashable {
    public var name: String?
    public var namespace: String?
    /// The object's UID; a pod's is how cgroup paths name it.
    public var uid: String?
    /// Opaque: only passed back to the API server (a watch resumes from it).
    public var resourceVersion: String?
    public var labels: [String: String]?
    public var annotations: [String: String]?

    /// For objects this project writes (Secrets) and for tests.
    public init(
        name: String? = nil, namespace: String? = nil, uid: String? = nil, resourceVersion: String? = nil,
        labels: [String: String]? = nil, annotations: [String: String]? = nil
    ) {
        self.name = name
        self.namespace = namespace
        self.uid = uid
        self.resourceVersion = resourceVersion
        self.labels = labels
        self.annotations = annotations
    }
}

/// Objects an informer can key.
public protocol KubernetesObject: Decodable, Sendable {
    /// Informers key objects by ``key``, built from its namespace and name.
    var metadata: ObjectMeta { get }
}

extension KubernetesObject {
    /// `namespace/name` (or `name` for cluster-scoped objects).
    public var key: String {
        let name = metadata.name ?? ""
        guard let namespace = metadata.namespace, !namespace.isEmpty else { return name }
        return "\(namespace)/\(name)"
    }
}

/// `v1` Pod, with only the fields this project reads.
public struct Pod: KubernetesObject, Hashable {
    /// `spec`: where the pod runs and what its containers listen on.
    public struct Spec: Codable, Sendable, Hashable {
        /// `spec.containers[]`: a container's name and declared ports.
        public struct Container: Codable, Sendable, Hashable {
            /// `spec.containers[].ports[]`.
            public struct Port: Codable, Sendable, Hashable {
                public var name: String?
                /// The port the container listens on, in the pod's network namespace.
                public var containerPort: Int
            }
            public var name: String
            public var ports: [Port]?
        }
        /// Nil until the scheduler binds the pod.
        public var nodeName: String?
        /// Nil means false: the pod has its own IP.
        public var hostNetwork: Bool?
        public var containers: [Container]?

        /// For tests and fakes; decoding fills the rest.
        public init(nodeName: String? = nil, hostNetwork: Bool? = nil, containers: [Container]? = nil) {
            self.nodeName = nodeName
            self.hostNetwork = hostNetwork
            self.containers = containers
        }
    }
    /// `status`: phase, IP and the runtime's container ids.
    public struct Status: Codable, Sendable, Hashable {
        /// `status.containerStatuses[]` and `status.initContainerStatuses[]`.
        public struct ContainerStatus: Codable, Sendable, Hashable {
            public var name: String
            /// `containerd://<id>`, `cri-o://<id>`, `docker://<id>`; absent until the container was created.
            public var containerID: String?
        }
        /// `Pending`, `Running`, `Succeeded`, `Failed` or `Unknown`.
        public var phase: String?
        /// Nil until the pod has an address; the node's IP for a host-network pod.
        public var podIP: String?
        public var containerStatuses: [ContainerStatus]?
        /// Read too: init containers' ids map to names like the others'.
        public var initContainerStatuses: [ContainerStatus]?

        /// For tests and fakes; `initContainerStatuses` is left nil.
        public init(phase: String? = nil, podIP: String? = nil, containerStatuses: [ContainerStatus]? = nil) {
            self.phase = phase
            self.podIP = podIP
            self.containerStatuses = containerStatuses
        }
    }
    public var metadata: ObjectMeta
    /// Nil only where the server left it out (watch BOOKMARK events).
    public var spec: Spec?
    /// Nil where the server left it out (watch BOOKMARK events).
    public var status: Status?

    /// For tests and fakes.
    public init(metadata: ObjectMeta, spec: Spec? = nil, status: Status? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }
}

/// `discovery.k8s.io/v1` EndpointSlice: where a Service's pods listen.
public struct EndpointSlice: KubernetesObject, Hashable {
    /// `endpoints[]`: one pod's addresses and readiness.
    public struct Endpoint: Codable, Sendable, Hashable {
        /// Nil fields mean unknown; the API asks consumers to take an unknown `ready` as ready.
        public struct Conditions: Codable, Sendable, Hashable {
            public var ready: Bool?
            public var terminating: Bool?
        }
        /// Addresses of the slice's `addressType`.
        public var addresses: [String]
        public var conditions: Conditions?
        /// The node the endpoint's pod runs on.
        public var nodeName: String?
    }
    /// `ports[]`: the Service port's name, number and protocol (`TCP` when nil).
    public struct Port: Codable, Sendable, Hashable {
        public var name: String?
        public var port: Int?
        public var `protocol`: String?
    }
    /// The owning Service is named in the `kubernetes.io/service-name` label.
    public var metadata: ObjectMeta
    /// `IPv4`, `IPv6` or `FQDN`.
    public var addressType: String?
    public var endpoints: [Endpoint]?
    public var ports: [Port]?
}

/// `v1` ConfigMap, as read: `data` only (`binaryData` is ignored).
public struct ConfigMap: KubernetesObject, Hashable {
    public var metadata: ObjectMeta
    /// Nil when the ConfigMap has no `data`.
    public var data: [String: String]?
}

/// `v1` Secret, read and written (the adapter's serving-certificate bootstrap).
public struct Secret: KubernetesObject, Codable, Hashable {
    public var apiVersion = "v1"
    public var kind = "Secret"
    public var metadata: ObjectMeta
    /// As `kubernetes.io/tls`; nil leaves it to the server (`Opaque`).
    public var type: String?
    /// Base64 values.
    public var data: [String: String]?

    /// A Secret to create or replace; `data` values must already be base64 (`Base64` in ConfigYAML).
    public init(metadata: ObjectMeta, type: String? = nil, data: [String: String]? = nil) {
        self.metadata = metadata
        self.type = type
        self.data = data
    }
}

/// `authorization.k8s.io/v1` SubjectAccessReview.
public struct SubjectAccessReview: Codable, Sendable, Hashable {
    /// `spec.resourceAttributes`: the API request being authorized.
    public struct ResourceAttributes: Codable, Sendable, Hashable {
        public var namespace: String?
        /// A Kubernetes verb (`get`, `list`, `watch`…), not the HTTP method.
        public var verb: String
        /// The API group; empty for the core group.
        public var group: String?
        public var version: String?
        public var resource: String?
        public var subresource: String?
        public var name: String?

        /// Nil fields are left out of the request.
        public init(
            namespace: String? = nil, verb: String, group: String? = nil, version: String? = nil, resource: String? = nil,
            subresource: String? = nil, name: String? = nil
        ) {
            self.namespace = namespace
            self.verb = verb
            self.group = group
            self.version = version
            self.resource = resource
            self.subresource = subresource
            self.name = name
        }
    }
    /// `spec.nonResourceAttributes`: a request for a path outside the API (`/metrics`, `/healthz`).
    public struct NonResourceAttributes: Codable, Sendable, Hashable {
        public var path: String
        public var verb: String
        /// `verb` is the lower-cased HTTP method (`get`), as the API server's own authorizer spells it.
        public init(path: String, verb: String) {
            self.path = path
            self.verb = verb
        }
    }
    /// `spec`: who asks (as authentication found them) and for what; one of the two attributes is set.
    public struct Spec: Codable, Sendable, Hashable {
        public var resourceAttributes: ResourceAttributes?
        public var nonResourceAttributes: NonResourceAttributes?
        public var user: String?
        public var groups: [String]?
        public var extra: [String: [String]]?
        public var uid: String?

        /// Identity fields as authentication found them; nil ones are left out of the request.
        public init(
            resourceAttributes: ResourceAttributes? = nil, nonResourceAttributes: NonResourceAttributes? = nil,
            user: String?, groups: [String]?, extra: [String: [String]]?, uid: String?
        ) {
            self.resourceAttributes = resourceAttributes
            self.nonResourceAttributes = nonResourceAttributes
            self.user = user
            self.groups = groups
            self.extra = extra
            self.uid = uid
        }
    }
    /// The API server's answer: `allowed`, or `denied` to refuse outright; neither means no opinion.
    public struct Status: Codable, Sendable, Hashable {
        public var allowed: Bool
        /// True: refused outright, no other authorizer may allow it.
        public var denied: Bool?
        public var reason: String?
        /// Set when the authorizer could not evaluate the request; an error, not a denial.
        public var evaluationError: String?
    }
    /// Fixed; written into the request body.
    public var apiVersion = "authorization.k8s.io/v1"
    public var kind = "SubjectAccessReview"
    /// What is asked.
    public var spec: Spec
    /// Nil in a request; the verdict in the answer.
    public var status: Status?

    /// A review for `POST /apis/authorization.k8s.io/v1/subjectaccessreviews`.
    public init(spec: Spec) {
        self.spec = spec
    }
}

/// `authentication.k8s.io/v1` TokenReview.
public struct TokenReview: Codable, Sendable, Hashable {
    /// `spec`: the bearer token and the audiences it must be valid for (nil: the API server's own).
    public struct Spec: Codable, Sendable, Hashable {
        public var token: String
        public var audiences: [String]?
    }
    /// The authenticated user as the API server resolved it: name, uid, groups and extra.
    public struct UserInfo: Codable, Sendable, Hashable {
        public var username: String?
        public var uid: String?
        public var groups: [String]?
        public var extra: [String: [String]]?
    }
    /// The API server's answer; `error` says why a token did not authenticate.
    public struct Status: Codable, Sendable, Hashable {
        /// Nil or false: the token did not authenticate.
        public var authenticated: Bool?
        public var user: UserInfo?
        public var error: String?
    }
    /// Fixed; written into the request body.
    public var apiVersion = "authentication.k8s.io/v1"
    public var kind = "TokenReview"
    /// What is asked.
    public var spec: Spec
    /// Nil in a request; the verdict in the answer.
    public var status: Status?

    /// A review for `POST /apis/authentication.k8s.io/v1/tokenreviews`.
    public init(token: String, audiences: [String]? = nil) {
        spec = Spec(token: token, audiences: audiences)
    }
}

/// `resource.k8s.io/v1` ResourceSlice: the devices a DRA driver publishes for one pool, with their attributes.
public struct ResourceSlice: KubernetesObject, Hashable {
    /// `spec`: the driver, pool and node, and the devices with their attributes.
    public struct Spec: Codable, Sendable, Hashable {
        /// `spec.pool`: only its name is read.
        public struct Pool: Codable, Sendable, Hashable {
            public var name: String
        }
        /// `spec.devices[]`: a device's name within the pool and its attributes.
        public struct Device: Codable, Sendable, Hashable {
            public var name: String
            /// Attribute name (`uuid`, `gpu.nvidia.com/uuid`, `pciBusID`, …) → its value, whichever of the typed
            /// fields (`string`, `int`, `bool`, `version`) it used, as text.
            public var attributes: [String: AttributeValue]?
        }
        /// One attribute value; the API sets exactly one of the typed fields.
        public struct AttributeValue: Codable, Sendable, Hashable {
            public var string: String?
            public var int: Int64?
            public var bool: Bool?
            public var version: String?

            /// The value as text, whichever field holds it; nil when none does.
            public var text: String? {
                string ?? version ?? int.map { String($0) } ?? bool.map { String($0) }
            }
        }
        /// The DRA driver name, as in pod-resources' `ClaimResource.driverName`.
        public var driver: String
        public var pool: Pool
        /// Nil for slices that are not tied to one node.
        public var nodeName: String?
        public var devices: [Device]?
    }
    public var metadata: ObjectMeta
    /// Absent only in a watch's BOOKMARK events, which carry nothing but the resource version.
    public var spec: Spec?
}
