import Lifecycle
import Synchronization
import Testing

/// What happened, in order, across components.
private final class Journal: Sendable {
    private let entries = Mutex<[String]>([])
    func note(_ entry: String) { entries.withLock { $0.append(entry) } }
    var all: [String] { entries.withLock { $0 } }
}

private struct StartFailed: Error {}

private func components(_ names: [String], journal: Journal, failing: String? = nil) -> [Component] {
    names.map { name in
        Component(name, start: {
            if name == failing { throw StartFailed() }
            journal.note("start \(name)")
        }, stop: {
            journal.note("stop \(name)")
        })
    }
}

/// The components' order, in process: started as listed, stopped the other way round, a failed start undone.
@Suite struct LifecycleTests {
    @Test func startsInOrderAndStopsInReverse() async throws {
        let journal = Journal()
        let list = components(["config", "client", "watch", "server"], journal: journal)
        try await Lifecycle.start(list)
        await Lifecycle.stop(list)
        #expect(journal.all == [
            "start config", "start client", "start watch", "start server",
            "stop server", "stop watch", "stop client", "stop config",
        ])
    }

    @Test func aFailedStartStopsWhatHadStartedAndStartsNothingMore() async {
        let journal = Journal()
        let list = components(["config", "client", "server", "pusher"], journal: journal, failing: "server")
        await #expect(throws: StartFailed.self) { try await Lifecycle.start(list) }
        #expect(journal.all == ["start config", "start client", "stop client", "stop config"])
    }

    // `Lifecycle.run` itself (SIGTERM/SIGINT, the ordered graceful shutdown, the deadline) is tested through the
    // programs, end to end: in process it would install its signal handling in the test runner, whose children
    // inherit the dispositions.
}
