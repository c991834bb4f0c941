import Dispatch
import Synchronization

/// Reads amdgpu's `pcie_bw` off the sampler: the driver resets the card's PCIe counters, sleeps a second and reads
/// them inside each read of the file (amdgpu_pm.c), so one read blocks for a second per card and cannot run on the
/// sample tick. A queue of its own reads the cards one after another, a round every `interval`, and the sampler
/// takes the latest reading of each card that is recent enough.
///
/// The file holds `count0 count1 mps`: packets received and sent in that second and the maximum payload size
/// **[UNVERIFIED: which count is which direction; that every packet carries the maximum payload]**, so
/// packets × mps is an upper bound of the bytes moved each way. APUs answer ENODATA: such a card is left alone.
final class PCIeBandwidthReader: Sendable {
    struct Reading: Sendable, Equatable {
        var receivedBytesPerSecond: Double
        var sentBytesPerSecond: Double
        var at: MonotonicInstant
    }

    private let sysfs: FileRoot
    private let interval: Double
    private let queue = DispatchQueue(label: "accel-exporter.amdgpu.pcie-bw")
    /// Card entry (`card1`) → its `device/pcie_bw` path, relative to the sysfs root.
    private let cards = Mutex<[String: String]>([:])
    private let readings = Mutex<[String: Reading]>([:])
    /// Cards whose file is absent or refuses reads: not read again until discovery lists them anew.
    private let unsupported = Mutex<Set<String>>([])
    private let running = Atomic<Bool>(false)
    private let stopped = Atomic<Bool>(false)

    init(sysfs: FileRoot, interval: Double) {
        self.sysfs = sysfs
        self.interval = interval
    }

    deinit { stopped.store(true, ordering: .relaxed) }

    /// The cards to read (from discovery); starts the loop on first use.
    func setCards(_ entries: [String]) {
        cards.withLock { $0 = Dictionary(uniqueKeysWithValues: entries.map { ($0, "class/drm/\($0)/device/pcie_bw") }) }
        unsupported.withLock { $0.formIntersection(entries) }
        readings.withLock { current in current = current.filter { entries.contains($0.key) } }
        if !running.exchange(true, ordering: .relaxed) { schedule(after: 0) }
    }

    /// The card's reading if taken within `maxAge` seconds of `now`.
    func latest(_ entry: String, now: MonotonicInstant, maxAge: Double) -> Reading? {
        guard let reading = readings.withLock({ $0[entry] }), now.seconds(since: reading.at) <= maxAge else { return nil }
        return reading
    }

    private func schedule(after seconds: Double) {
        queue.asyncAfter(deadline: .now() + seconds) { [weak self] in
            guard let self, !self.stopped.load(ordering: .relaxed) else { return }
            self.round()
            self.schedule(after: self.interval)
        }
    }

    private func round() {
        let current = cards.withLock { $0 }
        for (entry, path) in current.sorted(by: { $0.key < $1.key }) where !unsupported.withLock({ $0.contains(entry) }) {
            guard let text = try? sysfs.readString(path), let (received, sent) = Self.parse(text) else {
                unsupported.withLock { _ = $0.insert(entry) }
                continue
            }
            let reading = Reading(receivedBytesPerSecond: received, sentBytesPerSecond: sent, at: .now())
            readings.withLock { $0[entry] = reading }
        }
    }

    /// `count0 count1 mps` → bytes per second received and sent over the driver's one-second window; nil for
    /// anything else (or counts that would not fit a double exactly enough to mean anything).
    static func parse(_ text: String) -> (received: Double, sent: Double)? {
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" })
        guard fields.count == 3, let received = UInt64(fields[0]), let sent = UInt64(fields[1]), let mps = UInt64(fields[2]),
              mps > 0, mps <= 4096 else { return nil }
        let (rx, rxOverflow) = received.multipliedReportingOverflow(by: mps)
        let (tx, txOverflow) = sent.multipliedReportingOverflow(by: mps)
        guard !rxOverflow, !txOverflow else { return nil }
        return (Double(rx), Double(tx))
    }
}
