/// AWS credentials used to sign requests.
///
/// Every textual form of this value (`print`, string interpolation, `String(reflecting:)`,
/// `dump`) shows only the access key id: credentials end up in log lines and error messages
/// far more often than anyone intends, so the secret parts must not be reachable that way.
public struct Credentials: Sendable {
    public let accessKeyId: String
    public let secretAccessKey: String
    public let sessionToken: String?

    public init(accessKeyId: String, secretAccessKey: String, sessionToken: String?) {
        self.accessKeyId = accessKeyId
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }
}

extension Credentials: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String {
        let token = sessionToken == nil ? "nil" : "<redacted>"
        return "Credentials(accessKeyId: \(accessKeyId), secretAccessKey: <redacted>, sessionToken: \(token))"
    }

    public var debugDescription: String { description }

    /// `dump()` and the default description of types that embed credentials walk the mirror,
    /// not `description`, so the mirror must not expose the secrets either.
    public var customMirror: Mirror {
        Mirror(self, children: ["accessKeyId": accessKeyId], displayStyle: .struct)
    }
}
