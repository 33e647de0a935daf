import ArgumentParser
import Coordinator
import Foundation
import Logging

/// What `serve` checks before it starts: flags that cannot work together, TLS files, tokens and config pairs.
extension ServeCommand {
    func validate() throws {
        if let goal = selection.goal {
            guard minFitResults >= 1, minFitResults <= goal.minimum else {
                throw ValidationError(
                    "--min-fit-results must be between 1 and the goal's minimum (\(goal.minimum): the goal count times "
                        + "--selection-minimum-share)")
            }
        } else {
            guard minFitResults >= 1, minFitResults <= minFitClients else {
                throw ValidationError("--min-fit-results must be between 1 and --min-fit-clients")
            }
        }
        guard fractionFit > 0, fractionFit <= 1, fractionEvaluate >= 0, fractionEvaluate <= 1 else {
            throw ValidationError("fractions must be in (0, 1]")
        }
        for (name, value) in [("fit", fitTimeout), ("evaluate", evaluateTimeout), ("liveness", livenessTimeout)] {
            guard value.isFinite, value > 0, value <= 86_400 else {
                throw ValidationError("--\(name)-timeout must be between 0 and 86400 seconds")
            }
        }
        guard maxClients >= 1, maxParkedPolls >= 1, maxParkedPollsPerClient >= 1, maxConnections >= 1, minBodyRate >= 0,
            registrationsPerSecond > 0, refusedSubmissionsPerSecond > 0,
            registrationsPerSecond.isFinite, refusedSubmissionsPerSecond.isFinite, idleTimeout.isFinite,
            idleTimeout >= 1, idleTimeout <= 86_400, keepAliveTimeout.isFinite, keepAliveTimeout >= 1,
            keepAliveTimeout <= 86_400
        else {
            throw ValidationError(
                "limits must be positive (--idle-timeout and --keep-alive-timeout between 1 and 86400 seconds)")
        }
        if let drainTimeout, !(drainTimeout.isFinite && drainTimeout >= 0 && drainTimeout <= 86_400) {
            throw ValidationError("--drain-timeout must be between 0 and 86400 seconds")
        }
        for (name, token) in [("viewer", viewerToken), ("metrics", metricsToken)] where (token?.count ?? 16) < 16 {
            throw ValidationError("--\(name)-token must be at least 16 characters")
        }
        _ = try serverTLS()
        guard maxNumExamples >= 1 else { throw ValidationError("--max-num-examples must be at least 1") }
        if let share = maxClientWeightShare, !(share > 0 && share <= 1) {
            throw ValidationError("--max-client-weight-share must be in (0, 1]")
        }
        guard minAvailableClients >= 1, minFitClients >= 1 else {
            throw ValidationError("client minimums must be at least 1")
        }
        try checkReplicaTokens()
    }

    /// Replicas on one PostgreSQL store must share their admin and enrolment tokens: tokens generated into each
    /// replica's data directory would differ, and clients enrolled through one could not enrol through another.
    func checkReplicaTokens() throws {
        let environment = ProcessInfo.processInfo.environment
        guard (storeLocation.store ?? environment["RONDO_STORE"]).map({ !$0.isEmpty }) ?? false else { return }
        if adminToken == nil, adminTokenFile == nil, environment["RONDO_ADMIN_TOKEN"] == nil {
            throw ValidationError(
                "with --store, give every replica the same admin token (--admin-token-file or RONDO_ADMIN_TOKEN): "
                    + "one generated per data directory would differ between replicas")
        }
        if !openEnrolment, enrolmentToken == nil, enrolmentTokenFile == nil,
            environment["RONDO_ENROLMENT_TOKEN"] == nil
        {
            throw ValidationError(
                "with --store, give every replica the same enrolment token (--enrolment-token-file or "
                    + "RONDO_ENROLMENT_TOKEN): one generated per data directory would differ between replicas")
        }
    }

    /// The certificate and key from the flags, else from `RONDO_TLS_CERT` / `RONDO_TLS_KEY`; nil for plain HTTP.
    func serverTLS() throws -> ServerTLS? {
        let environment = ProcessInfo.processInfo.environment
        switch (tlsCert ?? environment["RONDO_TLS_CERT"], tlsKey ?? environment["RONDO_TLS_KEY"]) {
        case (nil, nil): return nil
        case (let certificate?, let key?): return ServerTLS(certificateChainPath: certificate, privateKeyPath: key)
        default: throw ValidationError("--tls-cert and --tls-key go together")
        }
    }

    /// One line with every setting that shapes rounds (`/v1/status` and `rondo status` show the same), so a bad
    /// `--fit-config learning_rate=20` is in the log from the first second. No secrets: only whether they are set.
    func logEffectiveConfiguration(_ configuration: CoordinatorConfiguration, logger: Logger) {
        let view = ConfigurationView(configuration)
        let json = (try? JSONStyle.encoder().encode(view)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        logger.notice("effective configuration", metadata: ["configuration": "\(json)"])
    }

    /// A token from its flag, its file (checked: this user's or root's, writable by no one else) or its
    /// environment variable, in that order.
    func secret(_ flag: String?, file: String?, environment name: String) throws -> String? {
        if flag != nil, file != nil { throw ValidationError("give a token or its file, not both (\(name))") }
        if let file { return try SecretFile.readConfigured(file) }
        return flag ?? ProcessInfo.processInfo.environment[name]
    }

    func parseConfig(_ pairs: [String]) throws -> [String: String] {
        var config: [String: String] = [:]
        for pair in pairs {
            guard let equals = pair.firstIndex(of: "=") else {
                throw ValidationError("--fit-config takes key=value, not \(pair)")
            }
            config[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
        }
        return config
    }
}
