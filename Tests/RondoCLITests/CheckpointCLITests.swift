import FederationCore
import Foundation
import RondoTestSupport
import Testing

@testable import ModelManager

/// The `rondo` executable against real data directories: a short demo writes real checkpoints, the CLI reads
/// and changes them.
@Suite(.serialized) struct CheckpointCLITests {
    /// A data directory after a 3-site, 3-round demo (versions 1–4).
    static func demoDirectory() async throws -> String {
        let directory = RunningCoordinator.temporaryDirectory()
        let demo = try await ChildProcess.runRondo([
            "demo", "--clients", "3", "--rounds", "3", "--port", "0", "--no-guard", "--data-dir", directory,
        ])
        #expect(demo.status == 0, "\(demo.output)")
        return directory
    }

    @Test func rollbackVerifyAndCorruptionThroughTheCLI() async throws {
        let directory = try await Self.demoDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let list = try await ChildProcess.runRondo(["checkpoints", "list", "--data-dir", directory])
        #expect(list.status == 0 && list.output.contains("v4") && list.output.contains("current"), "\(list.output)")

        let rollback = try await ChildProcess.runRondo([
            "checkpoints", "rollback", "2", "--reason", "drill", "--data-dir", directory,
        ])
        #expect(rollback.status == 0 && rollback.output.contains("v4 -> v2"), "\(rollback.output)")
        let store = try await CheckpointStore(configuration: .init(path: directory + "/rondo.db"))
        #expect(try await store.refVersion(.current) == 2)
        let event = try #require(try await store.events(kind: .rollback).first)
        #expect(
            event.actor.hasPrefix("cli:") && event.detail["reason"] == "drill" && event.detail["from_version"] == "4")

        #expect(try await ChildProcess.runRondo(["checkpoints", "verify", "--data-dir", directory]).status == 0)
        try await store.rawQuery(
            "UPDATE checkpoint_chunks SET data = ? WHERE version = 3", [.blob(Array("garbage".utf8))])
        let verify = try await ChildProcess.runRondo(["checkpoints", "verify", "--data-dir", directory])
        #expect(verify.status != 0 && verify.output.contains("PROBLEM version 3"), "\(verify.output)")
        let refused = try await ChildProcess.runRondo([
            "checkpoints", "rollback", "3", "--reason", "x", "--data-dir", directory,
        ])
        #expect(refused.status != 0 && refused.output.contains("failed verification"), "\(refused.output)")
        #expect(try await store.refVersion(.current) == 2)

        let missing = try await ChildProcess.runRondo([
            "checkpoints", "rollback", "42", "--reason", "x", "--data-dir", directory,
        ])
        #expect(missing.status != 0 && missing.output.contains("no checkpoint v42"))
    }

    @Test func historyCommandsPrintTablesAndJSON() async throws {
        let directory = try await Self.demoDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let rounds = try await ChildProcess.runRondo(["rounds", "--data-dir", directory])
        #expect(rounds.status == 0 && rounds.output.hasPrefix("ROUND") && rounds.output.contains("committed"))
        let json = try await ChildProcess.runRondo(["rounds", "--json", "--data-dir", directory])
        let object = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any]
        let records = object?["rounds"] as? [[String: Any]] ?? []
        #expect(records.map { $0["round"] as? Int } == [3, 2, 1], "\(json.output)")
        #expect(records.allSatisfy { $0["status"] as? String == "committed" })
        let clients = try await ChildProcess.runRondo(["clients", "--data-dir", directory])
        #expect(clients.status == 0 && clients.output.contains("demo-site-2") && !clients.output.contains("token"))
        let diff = try await ChildProcess.runRondo(["checkpoints", "diff", "1", "4", "--data-dir", directory])
        #expect(diff.status == 0 && diff.output.contains("weight"))
        let noDatabase = try await ChildProcess.runRondo(["rounds", "--data-dir", directory + "/nowhere"])
        #expect(noDatabase.status != 0 && noDatabase.output.contains("no Rondo database"))
    }

    @Test func exportedFilesAreReadByPythonAndNumpyFilesImport() async throws {
        let python = ChildProcess.repositoryRoot + "/.venv/bin/python"
        try #require(
            FileManager.default.isExecutableFile(atPath: python), "run `make venv` (part of `make test`) first")
        let directory = try await Self.demoDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let exported = directory + "/v4.safetensors"
        #expect(
            try await ChildProcess.runRondo(["checkpoints", "export", "4", "-o", exported, "--data-dir", directory])
                .status == 0)

        let store = try await CheckpointStore(configuration: .init(path: directory + "/rondo.db"))
        let weights = try SafeTensorsFile.decode(try await store.bytes(version: 4)).weights
        let script = """
            import json, sys
            from safetensors import safe_open
            from safetensors.numpy import load_file, save_file
            import numpy as np
            tensors = load_file(sys.argv[1])
            with safe_open(sys.argv[1], framework="np") as f:
                meta = f.metadata()
            print(json.dumps({"weight_sum": float(tensors["weight"].astype(np.float64).sum()),
                              "bias": [float(x) for x in tensors["bias"]],
                              "shape": list(tensors["weight"].shape), "dtype": str(tensors["weight"].dtype),
                              "version": meta["rondo_version"], "metrics": json.loads(meta["metrics"])}))
            save_file({"weight": np.full((10, 64), 0.25, dtype=np.float32), "bias": np.arange(10, dtype=np.float32)},
                      sys.argv[2], metadata={"origin": "numpy"})
            """
        let fromNumpy = directory + "/numpy.safetensors"
        let run = try await ChildProcess.runRondoLike(python, ["-c", script, exported, fromNumpy])
        #expect(run.status == 0, "\(run.output)")
        struct Seen: Decodable {
            var weight_sum: Double
            var bias: [Double]
            var shape: [Int]
            var dtype: String
            var version: String
        }
        let seen = try JSONDecoder().decode(Seen.self, from: Data(run.output.utf8))
        let expectedSum = weights["weight"]!.floatValues.reduce(0.0) { $0 + Double($1) }
        #expect(abs(seen.weight_sum - expectedSum) < 1e-9 && seen.shape == [10, 64] && seen.dtype == "float32")
        #expect(seen.bias == weights["bias"]!.floatValues.map(Double.init) && seen.version == "4")

        let imported = try await ChildProcess.runRondo(["checkpoints", "import", fromNumpy, "--data-dir", directory])
        #expect(imported.status == 0 && imported.output.contains("as v5 (now current)"), "\(imported.output)")
        let model = try SafeTensorsFile.decode(try await store.bytes(version: 5)).weights
        #expect(model["bias"]?.floatValues == (0..<10).map(Float.init))
        #expect(model["weight"]?.floatValues.allSatisfy { $0 == 0.25 } == true)
        #expect(try await store.refVersion(.current) == 5)
    }
}
