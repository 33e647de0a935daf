import ArgumentParser
import CurlHTTP
import FederationCore
import Foundation

/// `rondo bench round`: whole rounds with big models, end to end. Starts `rondo serve` (this binary) as a
/// separate process on a temporary data directory with an initial model of `--model-mb` MB of F32 tensors,
/// drives `--clients` clients over real HTTP on 127.0.0.1 (libcurl, in this process), and reports each round's
/// time (the coordinator's own start-to-commit), the coordinator's peak RSS (`VmHWM` from /proc), and the
/// clients' download and upload throughput.
struct RoundBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "round",
        abstract: "Time whole rounds of a separate `rondo serve` with big models and K HTTP clients; report round "
            + "time, coordinator peak RSS and client throughput.")

    @Option(help: "Clients, each training and uploading every round.") var clients = 10
    @Option(help: "Model size in MB (10^6 bytes) of F32 parameters.") var modelMb = 100
    @Option(help: "Tensors the model is split into.") var tensors = 4
    @Option(help: "Rounds to run (the median round time is reported).") var rounds = 3
    @Option(
        help: ArgumentHelp(
            "Run this rondo binary as the coordinator instead of this one, to measure two builds side by side "
                + "with the same clients."))
    var coordinator: String?
    @Flag(help: "Print one JSON object instead of text.") var json = false

    func run() async throws {
        guard clients >= 1, modelMb >= 1, tensors >= 1, rounds >= 1 else {
            throw ValidationError("--clients, --model-mb, --tensors and --rounds must be at least 1")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rondo-bench-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }

        let perTensor = modelMb * 1_000_000 / 4 / tensors
        func model(_ value: Float) -> ModelWeights {
            ModelWeights(
                (0..<tensors).map {
                    NamedTensor(
                        name: "layer\($0).weight",
                        tensor: Tensor(shape: [perTensor], values: [Float](repeating: value, count: perTensor)))
                })
        }
        let initial = SafeTensorsFile(weights: model(0.01), metadata: [:]).encoded()
        // Every client sends the same bytes: the coordinator validates and folds each upload all the same.
        let update = SafeTensorsFile(
            weights: model(0.02), metadata: [WireProtocol.numExamplesKey: "10"]
        ).encoded()
        let coordinator = try BenchCoordinator(
            directory: directory, initialModel: initial, clients: clients, rounds: rounds,
            extra: ["--max-update-bytes", String(update.count * 2)], executable: self.coordinator)
        defer { coordinator.stop() }
        let url = try await coordinator.waitUntilListening()
        let startRSS = coordinator.residentKB()

        let http = CurlHTTPClient()
        defer { http.shutdown() }
        // Each client has its own libcurl thread, so one thread's copying does not cap the coordinator.
        let origin = ContinuousClock.now
        let results = try await withThrowingTaskGroup(of: BenchClient.Timings.self) { group in
            for index in 0..<clients {
                group.addTask {
                    let own = CurlHTTPClient()
                    defer { own.shutdown() }
                    return try await BenchClient(http: own, url: url, name: "bench-\(index)").participate(
                        rounds: rounds, update: update, origin: origin)
                }
            }
            var all: [BenchClient.Timings] = []
            for try await timings in group { all.append(timings) }
            return all
        }
        let roundSeconds = try await coordinator.roundDurations(http: http, url: url, count: rounds)
        let peakKB = coordinator.peakResidentKB()
        let downloads = results.flatMap(\.downloadSeconds)
        let uploads = results.flatMap(\.uploadSeconds)
        let modelMB = Double(update.count) / 1e6
        // All clients download the round's model at once: total bytes over the first start to the last end.
        let byRound = Dictionary(grouping: results.flatMap(\.downloads), by: \.round)
        let aggregate = byRound.values.map { downloads in
            Double(downloads.count) * Double(initial.count) / 1e6
                / (downloads.map(\.end).max()! - downloads.map(\.start).min()!)
        }
        // Where a round's time goes: from the first download's start to the last one's end, then the uploads
        // the same way, and the gap between (clients long-polling, the round's selection).
        let uploadsByRound = Dictionary(grouping: results.flatMap(\.uploads), by: \.round)
        var downloadWindows: [Double] = []
        var uploadWindows: [Double] = []
        for (round, downloads) in byRound {
            downloadWindows.append(downloads.map(\.end).max()! - downloads.map(\.start).min()!)
            if let uploads = uploadsByRound[round] {
                uploadWindows.append(uploads.map(\.end).max()! - uploads.map(\.start).min()!)
            }
        }
        let report = Report(
            clients: clients, modelMB: modelMB, rounds: rounds, roundSeconds: roundSeconds,
            roundSecondsMedian: roundSeconds.median, coordinatorStartRSSMB: Double(startRSS ?? 0) / 1000,
            coordinatorPeakRSSMB: Double(peakKB ?? 0) / 1000,
            peakOverModel: Double(peakKB ?? 0) / 1000 / modelMB,
            downloadMBPerSecondMedian: modelMB / downloads.median, uploadMBPerSecondMedian: modelMB / uploads.median,
            downloadTotalMBPerSecondMedian: aggregate.median, downloadPhaseSecondsMedian: downloadWindows.median,
            uploadPhaseSecondsMedian: uploadWindows.median)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(
                "round bench: \(clients) clients x \(String(format: "%.1f", modelMB)) MB model (\(tensors) F32 tensors), \(rounds) rounds"
            )
            print(
                "  round time (start to commit): "
                    + roundSeconds.map { String(format: "%.2f s", $0) }.joined(separator: ", ")
                    + String(format: "  median %.2f s", report.roundSecondsMedian))
            print(
                String(
                    format: "  of which: all downloads %.2f s, all uploads (until each 202) %.2f s (medians)",
                    report.downloadPhaseSecondsMedian, report.uploadPhaseSecondsMedian))
            print(
                String(
                    format: "  coordinator RSS: %.0f MB after start, peak %.0f MB (%.1f x model)",
                    report.coordinatorStartRSSMB, report.coordinatorPeakRSSMB, report.peakOverModel))
            print(
                String(
                    format: "  client throughput (median per transfer): download %.0f MB/s, upload %.0f MB/s",
                    report.downloadMBPerSecondMedian, report.uploadMBPerSecondMedian))
            print(
                String(
                    format: "  downloads, all %d clients at once: %.0f MB/s in total (median over rounds)", clients,
                    report.downloadTotalMBPerSecondMedian))
        }
    }

    struct Report: Encodable {
        var clients: Int
        var modelMB: Double
        var rounds: Int
        var roundSeconds: [Double]
        var roundSecondsMedian: Double
        var coordinatorStartRSSMB: Double
        var coordinatorPeakRSSMB: Double
        var peakOverModel: Double
        var downloadMBPerSecondMedian: Double
        var uploadMBPerSecondMedian: Double
        var downloadTotalMBPerSecondMedian: Double
        var downloadPhaseSecondsMedian: Double
        var uploadPhaseSecondsMedian: Double

        enum CodingKeys: String, CodingKey {
            case clients, rounds
            case modelMB = "model_mb"
            case roundSeconds = "round_seconds"
            case roundSecondsMedian = "round_seconds_median"
            case coordinatorStartRSSMB = "coordinator_start_rss_mb"
            case coordinatorPeakRSSMB = "coordinator_peak_rss_mb"
            case peakOverModel = "peak_rss_over_model"
            case downloadMBPerSecondMedian = "download_mb_per_s_median"
            case uploadMBPerSecondMedian = "upload_mb_per_s_median"
            case downloadTotalMBPerSecondMedian = "download_total_mb_per_s_median"
            case downloadPhaseSecondsMedian = "download_phase_seconds_median"
            case uploadPhaseSecondsMedian = "upload_phase_seconds_median"
        }
    }

}
