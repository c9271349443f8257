import AWS

/// Why a step failed. The `errorType` is what Lambda reports; the message is for the operator and
/// never holds a password, the rotation token or a credential.
public enum RotationError: Error, Equatable, CustomStringConvertible {
    case invalidEvent(String)
    case invalidSecret(String)
    case configuration(String)
    case rotationNotEnabled(String)
    case versionNotPending(String)
    case hostCommandFailed(String)
    /// An SSM document is not the one this rotator ships (DocumentVerifier): nothing was sent.
    case documentRefused(String)
    case aws(AWSError)

    public init(_ error: AWSError) { self = .aws(error) }

    /// An AWS call refused for the account's request rate.
    var isThrottling: Bool {
        if case .aws(let error) = self { return error.isThrottling }
        return false
    }

    /// The kind of failure, without its message. Its raw value is the `errorType` Lambda reports, the
    /// `Reason` of the step metric line, and what the operator's diagnosis reads back: a small fixed set.
    public enum Kind: String, Sendable, CaseIterable {
        case invalidEvent = "InvalidEvent"
        case invalidSecret = "InvalidSecret"
        case configuration = "Configuration"
        case rotationNotEnabled = "RotationNotEnabled"
        case versionNotPending = "VersionNotPending"
        case hostCommandFailed = "HostCommandFailed"
        case documentRefused = "DocumentRefused"
        case aws = "AWSError"
    }

    public var kind: Kind {
        switch self {
        case .invalidEvent: return .invalidEvent
        case .invalidSecret: return .invalidSecret
        case .configuration: return .configuration
        case .rotationNotEnabled: return .rotationNotEnabled
        case .versionNotPending: return .versionNotPending
        case .hostCommandFailed: return .hostCommandFailed
        case .documentRefused: return .documentRefused
        case .aws: return .aws
        }
    }

    public var errorType: String { kind.rawValue }

    public var description: String {
        switch self {
        case .invalidEvent(let m), .invalidSecret(let m), .configuration(let m), .rotationNotEnabled(let m),
             .versionNotPending(let m), .hostCommandFailed(let m), .documentRefused(let m):
            return m
        case .aws(let error):
            return error.description
        }
    }
}

/// Runs one AWS call, reporting its failure as the step's error.
func aws<T>(_ call: () throws(AWSError) -> T) throws(RotationError) -> T {
    do {
        return try call()
    } catch {
        throw RotationError(error)
    }
}
