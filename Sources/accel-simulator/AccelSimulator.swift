import DeviceSimulation
import ArgumentParser
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Builds the fake nodes the tests and the demo use, and moves their readings while an exporter runs.
@main
struct AccelSimulator: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "accel-simulator",
        abstract: "Fake accelerator nodes for tests and the demo (umockdev device descriptions).",
        subcommands: [Describe.self, Animate.self, Fleet.self]
    )

    struct Describe: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a node's umockdev device description.")

        @Argument(help: "One of: \(FixtureNodes.names.joined(separator: ", ")).")
        var node: String

        func run() throws {
            guard let tree = FixtureNodes.tree(named: node) else {
                throw ValidationError("unknown node \"\(node)\"; known: \(FixtureNodes.names.joined(separator: ", "))")
            }
            print(tree.umockdevDescription(), terminator: "")
        }
    }

    struct Animate: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Rewrite a running testbed's readings every interval.")

        @Option(help: "The umockdev testbed directory (default: $UMOCKDEV_DIR).")
        var testbed: String?

        @Option(help: "The node to animate.")
        var node = "mi300x-8"

        @Option(help: "Seconds between updates.")
        var interval = 1.0

        @Option(help: "Stop after this many updates (0: run until killed).")
        var count = 0

        func run() throws {
            guard let root = testbed ?? getenv("UMOCKDEV_DIR").map({ String(cString: $0) }) else {
                throw ValidationError("no --testbed and no $UMOCKDEV_DIR")
            }
            var writer = TestbedWriter(root: root)
            var n = 0
            while count == 0 || n < count {
                guard let tree = FixtureNodes.tree(named: node, time: Double(n) * interval) else {
                    throw ValidationError("unknown node \"\(node)\"")
                }
                try writer.update(tree)
                n += 1
                usleep(UInt32(interval * 1_000_000))
            }
        }
    }
}
