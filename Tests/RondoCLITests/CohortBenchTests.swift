import Foundation
import RondoTestSupport
import Testing

/// `rondo bench cohort` end to end on a small cohort: every client registers, polls and is counted, and the
/// report says what the coordinator used.
@Suite struct CohortBenchTests {
    @Test func aSmallCohortRegistersPollsAndReports() async throws {
        let (status, output) = try await ChildProcess.runRondo(
            ["bench", "cohort", "--clients", "30", "--ramp", "100", "--hold", "3", "--poll-wait", "1", "--json"],
            timeout: .seconds(60))
        #expect(status == 0, "\(output.suffix(800))")
        let line = try #require(output.split(separator: "\n").last { $0.hasPrefix("{") }, "\(output.suffix(800))")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let latencies = try #require(report["latencies"] as? [String: [String: Double]])
        #expect(latencies["register"]?["count"] == 30, "every client registered once")
        #expect((latencies["poll"]?["count"] ?? 0) >= 30, "each client polled at least once")
        #expect((latencies["metrics"]?["count"] ?? 0) >= 1)
        #expect((report["errors"] as? [String: Any])?.isEmpty == true, "\(report["errors"] ?? "")")
        #expect((report["coordinator_end_rss_mb"] as? Double ?? 0) > 1)
        #expect((report["coordinator_cpu_seconds_per_minute"] as? Double ?? -1) >= 0)
    }
}

/// `rondo bench overhead` end to end on two small cohorts: every round of each commits and is timed, and the fit
/// goes through the medians.
@Suite struct OverheadBenchTests {
    @Test func twoCohortSizesAreTimedAndFitted() async throws {
        let (status, output) = try await ChildProcess.runRondo(
            ["bench", "overhead", "--clients", "2", "6", "--rounds", "3", "--json"], timeout: .seconds(120))
        #expect(status == 0, "\(output.suffix(800))")
        let line = try #require(output.split(separator: "\n").last { $0.hasPrefix("{") }, "\(output.suffix(800))")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let rows = try #require(report["rows"] as? [[String: Any]])
        #expect(rows.map { $0["clients"] as? Int } == [2, 6])
        for row in rows {
            let rounds = try #require(row["round_ms"] as? [Double])
            #expect(rounds.count == 3 && rounds.allSatisfy { $0 > 0 }, "every round committed and was timed")
            let median = try #require(row["median_ms"] as? Double)
            #expect(median >= rounds.min()! && median <= rounds.max()!)
        }
        // Two points: the line passes through both medians.
        let intercept = try #require(report["intercept_ms"] as? Double)
        let slope = try #require(report["per_client_ms"] as? Double)
        for row in rows {
            let clients = Double(row["clients"] as! Int)
            #expect(abs(intercept + slope * clients - (row["median_ms"] as! Double)) < 1e-6)
        }
    }
}
