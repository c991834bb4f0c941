/// The parts of Kubernetes objects this project reads and writes. Decoding ignores every other field.
public struct ObjectMeta: Codable, Sendable, Hashable {
    public var name: String?
    public var namespace: String?
    public var uid: String?
    public var resourceVersion: String?
    public var labels: [String: String]?
    public var annotations: [String: String]?

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

public struct Pod: KubernetesObject, Hashable {
    public struct Spec: Codable, Sendable, Hashable {
        public struct Container: Codable, Sendable, Hashable {
            public struct Port: Codable, Sendable, Hashable {
                public var name: String?
                public var containerPort: Int
            }
            public var name: String
            public var ports: [Port]?
        }
        public var nodeName: String?
        public var hostNetwork: Bool?
        public var containers: [Container]?

        public init(nodeName: String? = nil, hostNetwork: Bool? = nil, containers: [Container]? = nil) {
            self.nodeName = nodeName
            self.hostNetwork = hostNetwork
            self.containers = containers
        }
    }
    public struct Status: Codable, Sendable, Hashable {
        public struct ContainerStatus: Codable, Sendable, Hashable {
            public var name: String
            /// `containerd://<id>`, `cri-o://<id>`, `docker://<id>`; absent until the container was created.
            public var containerID: String?
        }
        public var phase: String?
        public var podIP: String?
        public var containerStatuses: [ContainerStatus]?
        public var initContainerStatuses: [ContainerStatus]?

        public init(phase: String? = nil, podIP: String? = nil, containerStatuses: [ContainerStatus]? = nil) {
            self.phase = phase
            self.podIP = podIP
            self.containerStatuses = containerStatuses
        }
    }
    public var metadata: ObjectMeta
    public var spec: Spec?
    public var status: Status?

    public init(metadata: ObjectMeta, spec: Spec? = nil, status: Status? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }
}

/// `discovery.k8s.io/v1` EndpointSlice: where a Service's pods listen.
public struct EndpointSlice: KubernetesObject, Hashable {
    public struct Endpoint: Codable, Sendable, Hashable {
        public struct Conditions: Codable, Sendable, Hashable {
            public var ready: Bool?
            public var terminating: Bool?
        }
        public var addresses: [String]
        public var conditions: Conditions?
        public var nodeName: String?
    }
    public struct Port: Codable, Sendable, Hashable {
        public var name: String?
        public var port: Int?
        public var `protocol`: String?
    }
    public var metadata: ObjectMeta
    public var addressType: String?
    public var endpoints: [Endpoint]?
    public var ports: [Port]?
}

public struct ConfigMap: KubernetesObject, Hashable {
    public var metadata: ObjectMeta
    public var data: [String: String]?
}

public struct Secret: KubernetesObject, Codable, Hashable {
    public var apiVersion = "v1"
    public var kind = "Secret"
    public var metadata: ObjectMeta
    public var type: String?
    /// Base64 values.
    public var data: [String: String]?

    public init(metadata: ObjectMeta, type: String? = nil, data: [String: String]? = nil) {
        self.metadata = metadata
        self.type = type
        self.data = data
    }
}

/// `authorization.k8s.io/v1` SubjectAccessReview.
public struct SubjectAccessReview: Codable, Sendable, Hashable {
    public struct ResourceAttributes: Codable, Sendable, Hashable {
        public var namespace: String?
        public var verb: String
        public var group: String?
        public var version: String?
        public var resource: String?
        public var subresource: String?
        public var name: String?

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
    public struct NonResourceAttributes: Codable, Sendable, Hashable {
        public var path: String
        public var verb: String
        public init(path: String, verb: String) {
            self.path = path
            self.verb = verb
        }
    }
    public struct Spec: Codable, Sendable, Hashable {
        public var resourceAttributes: ResourceAttributes?
        public var nonResourceAttributes: NonResourceAttributes?
        public var user: String?
        public var groups: [String]?
        public var extra: [String: [String]]?
        public var uid: String?

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
    public struct Status: Codable, Sendable, Hashable {
        public var allowed: Bool
        public var denied: Bool?
        public var reason: String?
        public var evaluationError: String?
    }
    public var apiVersion = "authorization.k8s.io/v1"
    public var kind = "SubjectAccessReview"
    public var spec: Spec
    public var status: Status?

    public init(spec: Spec) {
        self.spec = spec
    }
}

/// `authentication.k8s.io/v1` TokenReview.
public struct TokenReview: Codable, Sendable, Hashable {
    public struct Spec: Codable, Sendable, Hashable {
        public var token: String
        public var audiences: [String]?
    }
    public struct UserInfo: Codable, Sendable, Hashable {
        public var username: String?
        public var uid: String?
        public var groups: [String]?
        public var extra: [String: [String]]?
    }
    public struct Status: Codable, Sendable, Hashable {
        public var authenticated: Bool?
        public var user: UserInfo?
        public var error: String?
    }
    public var apiVersion = "authentication.k8s.io/v1"
    public var kind = "TokenReview"
    public var spec: Spec
    public var status: Status?

    public init(token: String, audiences: [String]? = nil) {
        spec = Spec(token: token, audiences: audiences)
    }
}

/// `resource.k8s.io/v1` ResourceSlice: the devices a DRA driver publishes for one pool, with their attributes.
public struct ResourceSlice: KubernetesObject, Hashable {
    public struct Spec: Codable, Sendable, Hashable {
        public struct Pool: Codable, Sendable, Hashable {
            public var name: String
        }
        public struct Device: Codable, Sendable, Hashable {
            public var name: String
            /// Attribute name (`uuid`, `gpu.nvidia.com/uuid`, `pciBusID`, …) → its value, whichever of the typed
            /// fields (`string`, `int`, `bool`, `version`) it used, as text.
            public var attributes: [String: AttributeValue]?
        }
        public struct AttributeValue: Codable, Sendable, Hashable {
            public var string: String?
            public var int: Int64?
            public var bool: Bool?
            public var version: String?

            public var text: String? {
                string ?? version ?? int.map { String($0) } ?? bool.map { String($0) }
            }
        }
        public var driver: String
        public var pool: Pool
        public var nodeName: String?
        public var devices: [Device]?
    }
    public var metadata: ObjectMeta
    /// Absent only in a watch's BOOKMARK events, which carry nothing but the resource version.
    public var spec: Spec?
}
