import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import NIOSSL

/// HTTPS for the coordinator's own listener: the PEM certificate chain and private key it presents.
///
/// Without it the coordinator speaks plain HTTP, which is what a deployment behind a TLS-terminating proxy
/// or ingress wants. With it, only TLS 1.2 and newer is accepted and clients are not asked for certificates
/// (they authenticate with bearer tokens). The files are read once, when the server is built: a missing,
/// unreadable or mismatched file stops start-up with a ``ServerTLSError`` naming it, never a server that
/// fails on every handshake.
public struct ServerTLS: Sendable, Equatable {
    /// PEM file with the server certificate first, then any intermediates (env `RONDO_TLS_CERT`).
    public var certificateChainPath: String
    /// PEM file with the certificate's private key, unencrypted (env `RONDO_TLS_KEY`).
    public var privateKeyPath: String

    public init(certificateChainPath: String, privateKeyPath: String) {
        self.certificateChainPath = certificateChainPath
        self.privateKeyPath = privateKeyPath
    }

    /// The TLS settings for the listener, checked: the files are read and BoringSSL confirms that the key
    /// belongs to the leaf certificate.
    func checkedConfiguration() throws(ServerTLSError) -> TLSConfiguration {
        let configuration = try tlsConfiguration()
        do { _ = try NIOSSLContext(configuration: configuration) } catch {
            throw ServerTLSError(
                code: .keyMismatch,
                message: "\(privateKeyPath) is not the private key of \(certificateChainPath)'s certificate (\(error))")
        }
        return configuration
    }

    /// HTTP/1.1 (`base`, carrying the HTTP settings) inside TLS with `configuration`.
    static func channel<Base: ServerChildChannel>(_ base: Base, _ configuration: TLSConfiguration) throws
        -> TLSChannel<Base>
    {
        do { return try TLSChannel(base, tlsConfiguration: configuration) } catch {
            throw ServerTLSError(code: .keyMismatch, message: "TLS set-up failed: \(error)")
        }
    }

    private func tlsConfiguration() throws(ServerTLSError) -> TLSConfiguration {
        let chain: [NIOSSLCertificate]
        do { chain = try NIOSSLCertificate.fromPEMFile(certificateChainPath) } catch {
            throw ServerTLSError(
                code: .unreadableCertificate, message: "cannot read a PEM certificate from \(certificateChainPath)")
        }
        guard !chain.isEmpty else {
            throw ServerTLSError(
                code: .unreadableCertificate, message: "\(certificateChainPath) holds no PEM certificate")
        }
        let key: NIOSSLPrivateKey
        do { key = try NIOSSLPrivateKey(file: privateKeyPath, format: .pem) } catch {
            throw ServerTLSError(
                code: .unreadablePrivateKey,
                message: "cannot read an unencrypted PEM private key from \(privateKeyPath)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        return configuration
    }
}

/// Why the coordinator could not set up HTTPS.
public struct ServerTLSError: Error, Sendable, CustomStringConvertible {
    /// Which part failed, as a stable value.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Value: String {
            case unreadableCertificate = "unreadable_certificate", unreadablePrivateKey = "unreadable_private_key"
            case keyMismatch = "key_mismatch"
        }
        fileprivate let value: Value
        /// The certificate file is missing, unreadable or not PEM.
        public static let unreadableCertificate = Code(value: .unreadableCertificate)
        /// The key file is missing, unreadable, encrypted or not PEM.
        public static let unreadablePrivateKey = Code(value: .unreadablePrivateKey)
        /// The key does not belong to the certificate (or BoringSSL refused the pair).
        public static let keyMismatch = Code(value: .keyMismatch)
        public var description: String { value.rawValue }
    }

    public var code: Code
    public var message: String
    public var description: String { "\(code): \(message)" }
}
