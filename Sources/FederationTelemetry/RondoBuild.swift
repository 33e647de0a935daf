import Foundation

/// What `rondo_build_info` reports.
public enum RondoBuild {
    /// The release version.
    public static let version = "0.1.0"
    /// The source revision, from `RONDO_REVISION` at run time (the container and CI set it), else `unknown`.
    public static var revision: String { ProcessInfo.processInfo.environment["RONDO_REVISION"] ?? "unknown" }
}
