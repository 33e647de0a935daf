import ArgumentParser
import Coordinator
import FederationTelemetry
import Foundation
import Logging
import Metrics

@main
struct Rondo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rondo",
        abstract: "Rondo, an observability-first federated-learning coordinator.",
        subcommands: [
            DemoCommand.self, ServeCommand.self, ClientCommand.self, StatusCommand.self, EventsCommand.self,
            RoundsCommand.self, ClientsCommand.self, CheckpointsCommand.self, PauseCommand.self, ResumeCommand.self,
            FederationCommand.self, BenchCommand.self, PrivacyCommand.self,
        ])

    /// Runs the command. Errors while it runs are one line and exit status 1 (JSON with `--json`); a command
    /// line that does not parse keeps ArgumentParser's usage text and status 64.
    static func main() async {
        var command: any ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            exit(withError: error)
        }
        do {
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            // ArgumentParser's own (help, usage, ExitCode, CleanExit): its usual output and status.
            if String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") {
                type(of: command).exit(withError: error)
            }
            Foundation.exit(CommandErrorReport.report(error))
        }
    }
}

/// Options every command that runs a coordinator or a client shares.
struct CommonOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level?

    @Option(help: "Log format: text (default) or json (one object per line, env RONDO_LOG_FORMAT).")
    var logFormat: LogFormat?

    enum LogFormat: String, ExpressibleByArgument {
        case text, json
    }

    /// Bootstraps swift-log once for the process (stderr, so stdout stays for results).
    func bootstrapLogging(defaultLevel: Logger.Level) -> Logger {
        let level =
            logLevel ?? ProcessInfo.processInfo.environment["RONDO_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) }
            ?? defaultLevel
        let format =
            logFormat ?? ProcessInfo.processInfo.environment["RONDO_LOG_FORMAT"].flatMap(LogFormat.init) ?? .text
        LoggingSystem.bootstrap { label in
            switch format {
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            case .json:
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
        }
        var logger = Logger(label: "rondo")
        logger.logLevel = level
        return logger
    }
}

/// Where the coordinator listens and keeps its data; shared by `demo` and `serve`.
struct ServerOptions: ParsableArguments {
    @Option(help: "Address to listen on (env RONDO_HOST).")
    var host: String?

    @Option(help: "Port to listen on; 0 picks a free port and prints it (env RONDO_PORT).")
    var port: Int?

    @Option(help: "Directory for the coordinator's data (created if missing).")
    var dataDir: String = "./rondo-data"

    var resolvedHost: String { host ?? ProcessInfo.processInfo.environment["RONDO_HOST"] ?? "127.0.0.1" }

    var resolvedPort: Int { port ?? ProcessInfo.processInfo.environment["RONDO_PORT"].flatMap { Int($0) } ?? 8470 }

    /// The database inside the data directory, with symlinks in the directory's path resolved: SQLite opens it
    /// with `SQLITE_OPEN_NOFOLLOW`, which refuses a symlink anywhere in the path, while a data directory reached
    /// through a symlink (`/var/lib/rondo -> /srv/rondo`) is a normal deployment.
    var databasePath: String { resolvedDatabasePath(dataDir) }

    /// Makes new files private (umask 077), creates the directory (0700), refuses one another user owns or may
    /// write to, and takes its lock: this process becomes the data directory's one writer (a short `rondo`
    /// command holding the lock is waited for; another coordinator is an error).
    func prepareDataDirectory() async throws -> DataDirectoryLock {
        DataDirectory.restrictNewFiles()
        _ = try DataDirectory(preparing: dataDir)
        return try await DataDirectoryLock.acquire(directory: dataDir, waitingUpTo: .seconds(10))
    }

    /// A URL this host reaches the server on: a wildcard bind address becomes the loopback address.
    func localURL(scheme: String, port: Int) -> String {
        let host =
            switch resolvedHost {
            case "0.0.0.0", "": "127.0.0.1"
            case "::", "[::]": "[::1]"
            case let host where host.contains(":") && !host.hasPrefix("["): "[\(host)]"
            case let host: host
            }
        return "\(scheme)://\(host):\(port)"
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// Writes a line to standard output unbuffered, so progress shows up at once even when stdout is a file or pipe.
func printLine(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// Creates the Prometheus-backed metrics factory and bootstraps swift-metrics with it (once per process).
func bootstrapMetrics() -> CatalogueMetricsFactory {
    let factory = CatalogueMetricsFactory()
    MetricsSystem.bootstrap(factory)
    return factory
}

/// The tracer and, when `OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT` is set, the OTLP exporter service it feeds.
/// Without an endpoint spans still carry trace context (so `traceparent` flows) but nothing is exported.
func makeTracing(
    serviceName: String, metricsFactory: CatalogueMetricsFactory, logger: Logger
) -> (tracer: RondoTracer, exporter: OTLPHTTPExporter?) {
    let environment = ProcessInfo.processInfo.environment
    let configuration = OTLPExporterConfiguration.fromEnvironment(environment, defaultServiceName: serviceName)
    guard configuration.endpoint != nil else { return (RondoTracer(sink: nil), nil) }
    let exporter = OTLPHTTPExporter(configuration: configuration, metricsFactory: metricsFactory, logger: logger)
    logger.info("exporting traces", metadata: ["endpoint": "\(configuration.endpoint ?? "")"])
    return (
        RondoTracer(sampleRatio: RondoTracer.sampleRatio(environment: environment), sink: exporter.enqueue), exporter
    )
}

/// `DATA_DIR/rondo.db` with the directory's symlinks resolved (see `ServerOptions.databasePath`).
func resolvedDatabasePath(_ dataDir: String) -> String {
    (URL(fileURLWithPath: dataDir).resolvingSymlinksInPath().path as NSString).appendingPathComponent("rondo.db")
}
