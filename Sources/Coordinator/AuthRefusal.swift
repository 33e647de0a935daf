/// A request refused by authentication or authorisation; `label` is the `reason` label of
/// `rondo_auth_refusals_total`.
public enum AuthRefusal: Error, Sendable, Equatable {
    /// No bearer token, or one nobody holds: 401.
    case unauthenticated(String)
    /// A valid token that may not do this (another client's resource, a viewer on an operator route): 403.
    case forbidden(String)
    /// A revoked client's token: 403 for good.
    case revoked

    /// Every value of the metric label.
    public static let labels = ["unauthenticated", "forbidden", "revoked"]

    public var label: String {
        switch self {
        case .unauthenticated: "unauthenticated"
        case .forbidden: "forbidden"
        case .revoked: "revoked"
        }
    }
}
