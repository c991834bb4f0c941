import AdapterStore
import HTTPServer
import Synchronization

/// A small map whose entries expire; the oldest go first when it is full.
final class TTLCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct Entry {
        var value: Value
        var expires: Double
    }

    private let ttl: Double
    private let capacity: Int
    private let clock: @Sendable () -> Double
    private let entries = Mutex<[Key: Entry]>([:])

    init(ttl: Double, capacity: Int, clock: @escaping @Sendable () -> Double) {
        self.ttl = ttl
        self.capacity = capacity
        self.clock = clock
    }

    subscript(key: Key) -> Value? {
        get {
            let now = clock()
            return entries.withLock { entries in
                guard let entry = entries[key] else { return nil }
                guard entry.expires > now else {
                    entries[key] = nil
                    return nil
                }
                return entry.value
            }
        }
        set {
            let now = clock()
            entries.withLock { entries in
                guard let newValue else {
                    entries[key] = nil
                    return
                }
                if entries.count >= capacity {
                    // Drop the expired entries, then the ones closest to expiry.
                    entries = entries.filter { $0.value.expires > now }
                    if entries.count >= capacity {
                        let victims = entries.sorted { $0.value.expires < $1.value.expires }.prefix(entries.count / 4 + 1)
                        for (key, _) in victims { entries[key] = nil }
                    }
                }
                entries[key] = Entry(value: newValue, expires: now + ttl)
            }
        }
    }
}
