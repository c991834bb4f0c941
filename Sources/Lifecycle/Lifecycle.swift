public import Logging
import ServiceLifecycle
import UnixSignals

/// One long-running part of a program (a server, a client loop, a watch): how it starts and how it stops.
///
/// A program lists its components once, in start order; ``Lifecycle/run(_:logger:shutdownDeadline:started:)`` starts
/// them in that order and, on SIGTERM or SIGINT, stops them in the reverse order.
public struct Component: Sendable, CustomStringConvertible {
    /// Names the service in swift-service-lifecycle's logs and in start failures.
    public let name: String
    let start: @Sendable () async throws -> Void
    let stop: @Sendable () async -> Void

    /// - Parameters:
    ///   - start: returns once the component runs (a failure here stops the program before it serves).
    ///   - stop: returns once the component stopped; it must not wait on a peer without a deadline.
    public init(_ name: String, start: @escaping @Sendable () async throws -> Void = {}, stop: @escaping @Sendable () async -> Void = {}) {
        self.name = name
        self.start = start
        self.stop = stop
    }

    /// The ``name``.
    public var description: String { name }
}

/// The start, the signal handling and the ordered shutdown both executables share.
public enum Lifecycle {
    /// Starts `components` in order, then runs until SIGTERM or SIGINT, then stops them in reverse order.
    ///
    /// A component whose start throws stops the ones already started (in reverse) and the error comes back.
    /// Shutdown runs under swift-service-lifecycle's `ServiceGroup`: each component is a service that waits for the
    /// graceful shutdown and then stops; the group stops them last-started first. Past `shutdownDeadline` the
    /// group cancels whatever is still stopping, and the process exits anyway.
    /// - Parameter started: called once every component started, before waiting for a signal.
    public static func run(_ components: [Component], logger: Logger, shutdownDeadline: Duration = .seconds(10),
                           started: @Sendable () -> Void = {}) async throws {
        try await start(components)
        var configuration = ServiceGroupConfiguration(
            services: components.map { ServiceGroupConfiguration.ServiceConfiguration(service: ComponentService($0), serviceName: $0.name) },
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        configuration.maximumGracefulShutdownDuration = shutdownDeadline
        configuration.maximumCancellationDuration = .seconds(2)
        configuration.logging.keys.serviceKey = "component"
        let group = ServiceGroup(configuration: configuration)
        started()
        try await group.run()
    }
}

/// A started component as a service: waits for the group's graceful shutdown (or cancellation), then stops it.
struct ComponentService: Service {
    let component: Component

    init(_ component: Component) { self.component = component }

    func run() async throws {
        try? await gracefulShutdown()
        await component.stop()
    }
}

extension Lifecycle {
    /// Starts `components` in order without signal handling (tests, embedding); a failure stops the started ones.
    public static func start(_ components: [Component]) async throws {
        var started: [Component] = []
        do {
            for component in components {
                try await component.start()
                started.append(component)
            }
        } catch {
            for component in started.reversed() { await component.stop() }
            throw error
        }
    }

    /// Stops `components` in reverse order.
    public static func stop(_ components: [Component]) async {
        for component in components.reversed() { await component.stop() }
    }
}
