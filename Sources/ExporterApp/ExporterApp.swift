public import ArgumentParser
import CommandLineSupport
import ConfigYAML
import Exporter
import Lifecycle
import LineLogging
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// accel-exporter's composition root: flags → configuration → the exporter's components, run until SIGTERM.
public enum ExporterApp {
    /// Runs the exporter the flags describe until SIGTERM or SIGINT, then stops it in order and returns.
    /// A configuration or start failure is one line on stderr and exit status 1.
    public static func run(_ flags: ExporterFlags) async throws {
        // A parent may hand us SIGTERM blocked (Foundation's Process does); a daemon that cannot be stopped
        // gracefully gets SIGKILLed mid-write. Unblock before any thread starts, so every thread inherits it.
        var unblock = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, SIGTERM)
        sigaddset(&unblock, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)

        let level = try CommandLineSupport.parseLevel(flags.logLevel)
        guard let format = LineLogHandler.Format(rawValue: flags.logFormat) else {
            throw ValidationError("--log.format must be logfmt or json, not \"\(flags.logFormat)\"")
        }
        CommandLineSupport.bootstrapLogging(level: level, format: format)
        // Start-up happens in phases (runtime and flags, then the sources' first tick and the server); giving back
        // each phase's one-off pages before the next keeps the peak down as well as the steady state.
        if flags.trimStartupMemory { MemoryTrim.pageOutReadOnlyFileMappings() }
        let logger = Logger(label: "accel-exporter")
        let (config, notes) = try flags.configuration(environment: CommandLineSupport.environmentVariables())
        let exporter = Exporter(configuration: config, logger: logger)
        let collectors = config.collectors.map(\.name).sorted() + (config.kubelet != nil ? ["kubelet"] : []) + (config.processes ? ["processes"] : [])
        let trim = flags.trimStartupMemory
        do {
            try await Lifecycle.run(exporter.components, logger: logger) {
                if trim { MemoryTrim.pageOutReadOnlyFileMappings() }
                logger.info("accel-exporter started", metadata: ["version": "\(SelfMetrics.version)", "collectors": "\(collectors.joined(separator: ","))"])
                // After the start: a flag or configuration error stays the only line printed.
                for note in notes { logger.info("\(note.message)", metadata: note.metadata) }
            }
        } catch let error as ConfigError {
            CommandLineSupport.fail(program: "accel-exporter", "--web.config.file: \(error)")
        } catch {
            CommandLineSupport.fail(program: "accel-exporter", "cannot start: \(error)")
        }
        logger.info("accel-exporter stopped")
    }

    /// The process entry: bounds the allocator, gives back the loader's start-up pages, then parses and runs.
    public static func main<Command: AsyncParsableCommand>(_ command: Command.Type) async {
        MemoryTrim.boundAllocatorRetention()
        // The loader and the Swift runtime's start-up touch about 9 MB of code and constants that a running exporter
        // never needs again: give them back before flag parsing adds its own (see MemoryTrim).
        if !CommandLine.arguments.contains("--no-runtime.trim-startup-memory") { MemoryTrim.pageOutReadOnlyFileMappings() }
        await CommandLineSupport.main(Command.self, program: "accel-exporter")
    }
}
