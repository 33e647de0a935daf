import Foundation

/// A throwaway certificate authority and a server certificate it signed for 127.0.0.1 and localhost, made by
/// the `openssl` command line tool in a temporary directory (P-256 keys, valid for two days).
public struct TestCertificates: Sendable {
    public let directory: String
    /// The CA certificate a client pins to trust the server.
    public var caFile: String { directory + "/ca.pem" }
    /// The CA's own key: a valid PEM key that does not belong to the server certificate.
    public var caKeyFile: String { directory + "/ca.key" }
    public var certificateFile: String { directory + "/server.pem" }
    public var keyFile: String { directory + "/server.key" }

    /// Makes the CA and the server certificate in a new temporary directory; remove it with `remove()`.
    public static func make() async throws -> TestCertificates {
        let certificates = TestCertificates(directory: RunningCoordinator.temporaryDirectory())
        let extensions = certificates.directory + "/server.ext"
        try "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
            .write(toFile: extensions, atomically: true, encoding: .utf8)
        let curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try await openssl(
            ["req", "-x509"] + curve + [
                "-keyout", certificates.caKeyFile, "-out", certificates.caFile, "-days", "2", "-subj",
                "/CN=Rondo test CA",
            ])
        let request = certificates.directory + "/server.csr"
        try await openssl(
            ["req"] + curve + ["-keyout", certificates.keyFile, "-out", request, "-subj", "/CN=127.0.0.1"])
        try await openssl([
            "x509", "-req", "-in", request, "-CA", certificates.caFile, "-CAkey", certificates.caKeyFile,
            "-CAcreateserial", "-out", certificates.certificateFile, "-days", "2", "-extfile", extensions,
        ])
        return certificates
    }

    public func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private static func openssl(_ arguments: [String]) async throws {
        let result = try await ChildProcess.runRondoLike("/usr/bin/openssl", arguments, timeout: .seconds(30))
        guard result.status == 0 else {
            throw ChildProcessError(message: "openssl \(arguments.joined(separator: " ")) failed:\n\(result.output)")
        }
    }
}
