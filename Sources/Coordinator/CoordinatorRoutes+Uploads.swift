import FederationCore
import HTTPTypes
import Hummingbird

/// `POST /v1/tasks/{id}/result` for fit tasks: the upload streams through `UploadReceiver` into a spool file
/// and reaches the round only once it is complete and valid.
extension CoordinatorRoutes {
    func submitFit(_ task: RoundDriver.Task, _ request: Request, client: ClientID) async throws {
        let mediaType = mediaType(of: request)
        guard mediaType == WireProtocol.safetensorsMediaType || mediaType == "application/octet-stream" else {
            throw APIError(
                .unsupportedMediaType, code: .unsupportedMediaType,
                "fit results are \(WireProtocol.safetensorsMediaType), not \(mediaType ?? "unspecified")")
        }
        let declaredLength = request.headers[.contentLength].flatMap { Int($0) }
        if let declaredLength, declaredLength > configuration.limits.maxUpdateBytes {
            throw APIError.payloadTooLarge(limit: configuration.limits.maxUpdateBytes)
        }
        try await driver.uploadStarted(client, task: task.id)
        await uploads.acquire()
        metrics.uploadsInProgress(await uploads.usage.inUse)
        do {
            // The round may have closed while this upload waited for a slot: then refuse it unread.
            let task = try await driver.checkTask(task.id, client: client)
            let base = try await driver.fitBase(for: task)
            try await receiveAndFold(task, request.body, declaredLength: declaredLength, base: base, client: client)
        } catch {
            await uploads.release()
            await driver.uploadEnded(client, task: task.id)
            metrics.uploadsInProgress(await uploads.usage.inUse)
            throw error
        }
        await uploads.release()
        await driver.uploadEnded(client, task: task.id)
        metrics.uploadsInProgress(await uploads.usage.inUse)
    }

    private func receiveAndFold(
        _ task: RoundDriver.Task, _ body: RequestBody, declaredLength: Int?, base: GlobalModel, client: ClientID
    ) async throws {
        let receiver = UploadReceiver(
            spoolDirectory: configuration.spoolDirectory, limits: configuration.limits,
            validator: configuration.rounds.validator)
        let received: UploadReceiver.Received
        do {
            received = try await receiver.receive(body, declaredLength: declaredLength, base: base) {
                await driver.canStillAnswer(task.id, client: client)
            }
        } catch let rejection as UpdateRejection {
            await driver.fitRejected(task.id, client: client, rejection)
            throw rejection
        } catch let aborted as UploadReceiver.Aborted {
            metrics.uploadAborted()
            await driver.uploadAborted(task.id, client: client, aborted)
            throw aborted
        } catch let failure as SpoolError {
            // The disk, not the client: counted as an abort and logged as an error, so it shows on the
            // dashboard and in the logs (the client gets 503 `spool_failed` and may send it again).
            metrics.uploadAborted()
            await driver.spoolFailed(task.id, client: client, failure)
            throw failure
        }
        metrics.updateReceived(bytes: received.byteCount)
        try await driver.submitFit(task.id, client: client, update: received.update)
    }
}
