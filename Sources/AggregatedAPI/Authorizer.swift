public import AdapterStore
import HTTPServer
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

    /// What the reviewer answered, cached as it is.
    public struct Decision: Sendable, Equatable {
        /// False for a denial and for no opinion alike.
        public var allowed: Bool
        /// The API server's reason or evaluation error; may be empty.
        public var reason: String
    }

    /// Allow and deny decisions are cached for `cacheSeconds` (at most 16384); `clock` is monotonic seconds. Errors are
    /// not cached.
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
