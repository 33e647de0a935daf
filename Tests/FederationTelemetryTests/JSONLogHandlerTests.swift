import FederationTelemetry
import Foundation
import Logging
import Synchronization
import Testing

@Suite struct JSONLogHandlerTests {
    final class Lines: Sendable {
        let value = Mutex<[String]>([])
    }

    @Test func writesOneParseableObjectPerLineWithMetadataAtTopLevel() throws {
        let lines = Lines()
        var handler = JSONLogHandler(label: "rondo") { line in lines.value.withLock { $0.append(line) } }
        handler.logLevel = .info
        handler[metadataKey: "service"] = "coordinator"
        let logger = Logger(label: "rondo") { _ in handler }
        logger.info(
            "round committed",
            metadata: ["round": "3", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "note": "a \"quoted\"\nline"])
        logger.debug("not at this level")
        let written = lines.value.withLock { $0 }
        #expect(written.count == 1)
        let object = try #require(JSONSerialization.jsonObject(with: Data(written[0].utf8)) as? [String: String])
        #expect(object["msg"] == "round committed" && object["level"] == "info" && object["logger"] == "rondo")
        #expect(object["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736" && object["round"] == "3")
        #expect(object["service"] == "coordinator" && object["note"] == "a \"quoted\"\nline")
        #expect(object["ts"]?.hasSuffix("Z") == true)
    }
}
