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
    case aws(String)

    public init(_ error: AWSError) { self = .aws(error.description) }

    public var errorType: String {
        switch self {
        case .invalidEvent: return "InvalidEvent"
        case .invalidSecret: return "InvalidSecret"
        case .configuration: return "Configuration"
        case .rotationNotEnabled: return "RotationNotEnabled"
        case .versionNotPending: return "VersionNotPending"
        case .hostCommandFailed: return "HostCommandFailed"
        case .aws: return "AWSError"
        }
    }

    public var description: String {
        switch self {
        case .invalidEvent(let m), .invalidSecret(let m), .configuration(let m), .rotationNotEnabled(let m),
             .versionNotPending(let m), .hostCommandFailed(let m), .aws(let m):
            return m
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
