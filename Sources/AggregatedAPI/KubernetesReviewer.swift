public import Kubernetes

/// SubjectAccessReview and TokenReview through the API server.
public struct KubernetesReviewer: AccessReviewer, TokenReviewer {
    /// The adapter's own client: its identity must be allowed to create SubjectAccessReviews and TokenReviews.
    public let client: KubernetesClient

    /// Memberwise.
    public init(client: KubernetesClient) { self.client = client }

    /// A review's own deadline: the request waiting on it gives up sooner (`APIHandler.guarded`), and this bounds
    /// how long the abandoned call lives on.
    static let reviewTimeoutSeconds = 10.0

    /// One SubjectAccessReview, 10 s deadline; empty fields are left out. Throws when the API server cannot be asked.
    public func review(user: UserInfo, attributes: RequestAttributes) async throws -> (allowed: Bool, reason: String) {
        var spec = SubjectAccessReview.Spec(
            user: user.name, groups: user.groups.isEmpty ? nil : user.groups, extra: user.extra.isEmpty ? nil : user.extra,
            uid: user.uid.isEmpty ? nil : user.uid)
        switch attributes {
        case .resource(let resource):
            spec.resourceAttributes = .init(
                namespace: resource.namespace.isEmpty ? nil : resource.namespace, verb: resource.verb,
                group: resource.group, version: resource.version, resource: resource.resource,
                subresource: resource.subresource.isEmpty ? nil : resource.subresource,
                name: resource.name.isEmpty ? nil : resource.name)
        case .nonResource(let path, let verb):
            spec.nonResourceAttributes = .init(path: path, verb: verb)
        }
        let answer = try await client.create(
            "/apis/authorization.k8s.io/v1/subjectaccessreviews", SubjectAccessReview(spec: spec), as: SubjectAccessReview.self,
            timeout: Self.reviewTimeoutSeconds)
        let status = answer.status
        return (status?.allowed == true, status?.reason ?? status?.evaluationError ?? "")
    }

    /// One TokenReview, 10 s deadline; nil when not authenticated or without a user name.
    public func review(token: String) async throws -> UserInfo? {
        let answer = try await client.create(
            "/apis/authentication.k8s.io/v1/tokenreviews", TokenReview(token: token), as: TokenReview.self,
            timeout: Self.reviewTimeoutSeconds)
        guard answer.status?.authenticated == true, let user = answer.status?.user, let name = user.username else { return nil }
        return UserInfo(name: name, uid: user.uid ?? "", groups: user.groups ?? [], extra: user.extra ?? [:])
    }
}
