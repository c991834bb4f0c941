import Foundation

/// Polls `condition` until it holds or `timeout` seconds pass; true when it held. A deadline instead of a fixed sleep:
/// fast when the system is, patient when the machine is loaded.
///
/// Disfavoured so that `await eventually { … }` in an async test picks the overload that suspends: this one blocks its
/// thread between polls, and blocked cooperative threads (two on a two-core machine) stall every other async test.
@_disfavoredOverload
public func eventually(timeout: Double = 10, pollInterval: Double = 0.05, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        Thread.sleep(forTimeInterval: pollInterval)
    }
    return try condition()
}

/// `eventually` for async tests: suspends between polls instead of blocking a thread.
public func eventually(timeout: Double = 10, pollInterval: Double = 0.05, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(Int(pollInterval * 1000)))
    }
    return try await condition()
}
