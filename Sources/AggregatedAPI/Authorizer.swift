public import AdapterStore
public import HTTPServer
import Synchronization

/// Decides whether a user may do something (SubjectAccessReview in production).
public protocol AccessReviewer: Sendable {
    /// (allowed, reason). Throws when the API server cannot be asked.
    func review(user: UserInfo, attributes: RequestAttributes) async throws -> (allowed: Bool, reason: String)
}

/// Delegated authorization with a short cache of allow and deny decisions.
public final class Authorizer: Sendable {
    private let reviewer: any AccessReviewer
    private let cache: TTLCache<CacheKey, Decision>

    struct CacheKey: Hashable, Sendable {
        var user: UserInfo
        var attributes: RequestAttributes
    }

    public struct Decision: Sendable, Equatable {
        public var allowed: Bool
        public var reason: String
    }

    public init(
        reviewer: any AccessReviewer, cacheSeconds: Double = 10,
        clock: @escaping @Sendable () -> Double = { monotonicSeconds() }
    ) {
        self.reviewer = reviewer
        cache = TTLCache(ttl: cacheSeconds, capacity: 16384, clock: clock)
    }

    /// `system:masters` is allowed without asking, as the API server's own authorizer does.
    public func authorize(_ user: UserInfo, _ attributes: RequestAttributes) async throws -> Decision {
        if user.groups.contains("system:masters") { return Decision(allowed: true, reason: "system:masters") }
        let key = CacheKey(user: user, attributes: attributes)
        if let cached = cache[key] { return cached }
        let (allowed, reason) = try await reviewer.review(user: user, attributes: attributes)
        let decision = Decision(allowed: allowed, reason: reason)
        cache[key] = decision
        return decision
    }
}
