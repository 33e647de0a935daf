import FederationTelemetry
import Hummingbird

/// Counts every request by method, route template and status, and times it.
///
/// The route is the matched template (`/v1/clients/{id}/heartbeat`), never the concrete path, so client ids
/// never become label values; requests that match no route count as `unmatched`.
struct HTTPMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: CoordinatorMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let started = ContinuousClock.now
        let method = request.method.rawValue
        do {
            let response = try await next(request, context)
            metrics.httpRequest(
                method: method, route: context.endpointPath ?? "unmatched", status: Int(response.status.code),
                duration: started.duration(to: .now))
            return response
        } catch let error as APIError {
            metrics.httpRequest(
                method: method, route: context.endpointPath ?? "unmatched", status: Int(error.status.code),
                duration: started.duration(to: .now))
            throw error
        }
    }
}
