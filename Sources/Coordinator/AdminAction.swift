import FederationTelemetry
import HTTPTypes
import Hummingbird

/// What the audit log records of an admin request besides its actor.
enum AdminAction {
    /// The trace id an audit event carries: the caller's (from its W3C `traceparent`), so the event joins the
    /// operator tool's trace, or a fresh random one so every admin action still has its own.
    static func traceID(of request: Request) -> String {
        if let header = request.headers[HTTPField.Name("traceparent")!], let context = TraceContext(traceparent: header)
        {
            return context.traceIDHex
        }
        var generator = SystemRandomNumberGenerator()
        return TraceContext.randomTraceID(using: &generator).hexString
    }
}
