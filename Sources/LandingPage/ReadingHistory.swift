public import Accelerators
import Synchronization

/// The last few minutes of each accelerator's main readings, for the landing page's small charts. Fixed-size
/// rings: 4 readings × `capacity` ticks per device (about 15 KB for 8 GPUs at the default 120).
public final class ReadingHistory: Sendable {
    /// One tick's readings of one device; NaN where the device reported none.
    struct Point {
        var utilization: Double
        var memory: Double
        var power: Double
        var temperature: Double
    }

    struct Series {
        var points: [Point]
        var next = 0
        var count = 0

        init(capacity: Int) {
            points = Array(repeating: Point(utilization: .nan, memory: .nan, power: .nan, temperature: .nan), count: capacity)
        }

        mutating func append(_ point: Point) {
            points[next] = point
            next = (next + 1) % points.count
            count = min(count + 1, points.count)
        }

        /// Oldest first.
        var ordered: [Point] {
            (0..<count).map { points[(next - count + $0 + points.count) % points.count] }
        }
    }

    /// Ticks kept per device: the charts span `capacity` × the sample interval.
    public let capacity: Int
    private let series = Mutex<[String: Series]>([:])

    /// The exporter keeps one, with the default capacity, for the life of the process.
    public init(capacity: Int = 120) {
        self.capacity = capacity
    }

    /// Called by the exporter once per tick, after publishing it. Readings of a device that is down are NaN (a gap in
    /// the chart); devices absent from `devices` are forgotten. Safe from any thread.
    public func record(_ devices: [DeviceSample]) {
        series.withLock { table in
            var seen: Set<String> = []
            for device in devices {
                let id = device.identity.accelerator
                seen.insert(id)
                let memory: Double
                if let used = device.memoryUsedBytes["vram"], let total = device.memoryTotalBytes["vram"], total > 0 {
                    memory = used / total
                } else {
                    memory = .nan
                }
                let point = Point(
                    utilization: device.up ? device.utilizationRatio ?? .nan : .nan, memory: device.up ? memory : .nan,
                    power: device.up ? device.powerWatts ?? .nan : .nan,
                    temperature: device.up ? device.temperatureCelsius.values.max() ?? .nan : .nan)
                table[id, default: Series(capacity: capacity)].append(point)
            }
            // Devices that left discovery leave the page.
            for id in table.keys where !seen.contains(id) { table[id] = nil }
        }
    }

    func points(for accelerator: String) -> [Point] {
        series.withLock { $0[accelerator]?.ordered ?? [] }
    }
}

/// Inline SVG sparklines: no scripts, no fonts, no external resources.
enum Sparkline {
    /// A polyline of `values` (NaN breaks the line) scaled into `0...maximum` (or the data's own maximum).
    static func svg(_ values: [Double], maximum: Double?, width: Int = 120, height: Int = 28, color: String, label: String) -> String {
        let finite = values.filter(\.isFinite)
        guard !finite.isEmpty else {
            return "<svg width=\"\(width)\" height=\"\(height)\" role=\"img\" aria-label=\"\(label): no data\"></svg>"
        }
        let top = max(maximum ?? finite.max()!, 1e-9)
        let step = values.count > 1 ? Double(width - 2) / Double(values.count - 1) : 0
        var segments: [String] = []
        var current: [String] = []
        for (index, value) in values.enumerated() {
            guard value.isFinite else {
                if !current.isEmpty { segments.append(current.joined(separator: " ")) }
                current = []
                continue
            }
            let x = 1 + Double(index) * step
            let y = Double(height - 1) - min(max(value / top, 0), 1) * Double(height - 2)
            current.append("\(LandingPage.fixed(x, 1)),\(LandingPage.fixed(y, 1))")
        }
        if !current.isEmpty { segments.append(current.joined(separator: " ")) }
        var svg = "<svg width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-label=\"\(label)\">"
        svg += "<rect x=\"0.5\" y=\"0.5\" width=\"\(width - 1)\" height=\"\(height - 1)\" fill=\"none\" stroke=\"#ddd\"/>"
        for segment in segments {
            svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(segment)\"/>"
        }
        return svg + "</svg>"
    }
}
